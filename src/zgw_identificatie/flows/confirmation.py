"""§2.1 steps 8–9: the behandelaar confirms that the code the citizen reads aloud is the code in the zaak.

``confirm`` records the answer (staff page or API) with an audit event; ``run_confirmation`` (the
background worker, ``process_due_confirmations``) puts it on the zaak as a status of the configured
statustype with a toelichting naming the behandelaar, once the registration has made the zaak. Exactly
once, also when a request or the worker is retried: the worker leases the confirmation, always looks
for a status of that statustype on the zaak before creating one, and stores ``uncertain`` (write-ahead)
before the create call.

§2.2 and §2.3 have no such step. In §2.2 the service itself compares the code derived from the BSN
the behandelaar entered with the code derived from the DigiD login; the outcome is already on the
proof PDF in the zaak ("Uitkomst codecontrole"), and nobody reads a code aloud. In §2.3 there is no
code: the citizen sees the behandelaar's name and the behandelaar sees the BSN DigiD gave, both on
their own screen; the §2.3 record is erased on Voltooien by design.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from zoneinfo import ZoneInfo

from ..domain.audit import AuditEvent
from ..domain.confirmation import CodeConfirmation, ConfirmationState
from ..domain.errors import DomainError, RegistrationFailed, RegistryUnavailable
from ..domain.sessions import Flow, IdentificationSession, RegistrationState, SessionState
from ..ports import Clock, SessionStore, ZaakRegistry
from ..settings import Settings
from . import common

log = logging.getLogger(__name__)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
LEASE_SECONDS = 120
WAIT_FOR_ZAAK = timedelta(days=1)  # after this, a confirmation whose zaak never came is given up


class ConfirmationNotApplicable(DomainError):
    code = "confirmation-not-applicable"


class ConfirmationTooEarly(DomainError):
    code = "not-authenticated"


class ConfirmationConflict(DomainError):
    code = "already-confirmed"


def confirm(
    session: IdentificationSession,
    *,
    matches: bool,
    actor_id: str,
    actor_name: str,
    store: SessionStore,
    clock: Clock,
) -> tuple[CodeConfirmation, bool]:
    """Record the behandelaar's answer for a §2.1 session; returns (the confirmation, whether it is new).

    The same answer twice is one confirmation (a retried request); another answer raises ConfirmationConflict.
    """
    if session.flow is not Flow.NEW_CITIZEN:
        raise ConfirmationNotApplicable("only §2.1 has a code read aloud")
    if session.state not in (SessionState.AUTHENTICATED, SessionState.COMPLETED) or not session.citizen_code:
        raise ConfirmationTooEarly("the citizen has not logged in with DigiD yet")
    now = clock.now()
    wanted = CodeConfirmation(
        id=uuid.uuid4().hex,
        session_id=session.id,
        matches=matches,
        behandelaar_id=actor_id,
        behandelaar_name=actor_name,
        confirmed_at=now,
        state=ConfirmationState.PENDING,
        next_attempt_at=now,
    )
    stored = store.confirmation_for_session(session.id) or store.add_confirmation(wanted)
    if stored.matches != matches:
        raise ConfirmationConflict("the code was already confirmed with the other answer")
    new = stored.id == wanted.id
    if new:
        store.add_audit(
            AuditEvent(
                at=now,
                actor=actor_id,
                flow=session.flow.value,
                session_id=session.id,
                event="code-confirmed",
                outcome=stored.outcome,
            )
        )
        log.info("code confirmation %s for session %s: %s", stored.id, session.id[:8], stored.outcome)
    return stored, new


def statustype_for(confirmation: CodeConfirmation, settings: Settings) -> str:
    zgw = settings.zgw
    return zgw.statustype_code_klopt if confirmation.matches else zgw.statustype_code_klopt_niet


def toelichting(confirmation: CodeConfirmation) -> str:
    when = confirmation.confirmed_at.astimezone(AMSTERDAM)
    verdict = "Code klopt" if confirmation.matches else "Code klopt niet"
    compared = "gelijk aan" if confirmation.matches else "NIET gelijk aan"
    return (
        f"{verdict}: behandelaar {confirmation.behandelaar_name} ({confirmation.behandelaar_id}) heeft op "
        f"{when:%d-%m-%Y om %H:%M:%S} vastgesteld dat de code die de inwoner in het videogesprek voorlas "
        f"{compared} de controlecode in deze zaak is (identificatie met DigiD, §2.1)."
    )


def run_confirmation(
    confirmation: CodeConfirmation, *, store: SessionStore, registry: ZaakRegistry, clock: Clock, settings: Settings
) -> CodeConfirmation:
    """One attempt to put the confirmation on the zaak; returns it as stored."""
    if confirmation.state is not ConfirmationState.PENDING:
        return confirmation
    now = clock.now()
    c = confirmation
    omschrijving = statustype_for(c, settings)
    if not omschrijving:  # configured off: the audit event is the record
        return _finish(c, store, clock, ConfirmationState.DONE, None)
    if c.zaak_url is None:
        reg = store.registration_for_session(c.session_id)
        if reg is None or reg.state is not RegistrationState.DONE or reg.zaak_url is None:
            if now - c.confirmed_at > WAIT_FOR_ZAAK:
                return _finish(c, store, clock, ConfirmationState.FAILED, "the zaak was never registered")
            waiting = c.retry_later(now, "waiting for the registration of the zaak", count=False)
            store.update_confirmation(waiting)
            return waiting
        c = replace(c, zaak_url=reg.zaak_url, zaak_identificatie=reg.zaak_identificatie)
    zaak_url = c.zaak_url
    assert zaak_url is not None
    try:
        # The zaaksysteem's audit trail names the behandelaar who answered (the JWT's user_id).
        with registry.acting_for(c.behandelaar_id, c.behandelaar_name):
            status_url = registry.find_status_of_type(zaak_url=zaak_url, statustype_omschrijving=omschrijving)
            if status_url is None:
                # Write ahead: a crash between the server's answer and the save below makes the next attempt
                # find the status instead of setting a second one; the lease keeps other workers away meanwhile.
                c = replace(c, uncertain=True, next_attempt_at=now + timedelta(seconds=LEASE_SECONDS))
                store.update_confirmation(c)
                status_url = registry.add_status(
                    zaak_url=zaak_url,
                    statustype_omschrijving=omschrijving,
                    when=c.confirmed_at,
                    toelichting=toelichting(c),
                )
    except RegistryUnavailable as exc:
        if c.attempts + 1 >= settings.registration_max_attempts:
            return _finish(replace(c, attempts=c.attempts + 1), store, clock, ConfirmationState.FAILED, str(exc))
        later = c.retry_later(now, str(exc))
        store.update_confirmation(later)
        log.warning("code confirmation %s: zaaksysteem unavailable (attempt %d)", c.id, later.attempts)
        return later
    except RegistrationFailed as exc:
        return _finish(c, store, clock, ConfirmationState.FAILED, str(exc))
    return _finish(replace(c, status_url=status_url), store, clock, ConfirmationState.DONE, None)


def _finish(
    c: CodeConfirmation, store: SessionStore, clock: Clock, state: ConfirmationState, error: str | None
) -> CodeConfirmation:
    done = replace(c, state=state, error=error, uncertain=False)
    store.update_confirmation(done)
    store.add_audit(
        AuditEvent(
            at=clock.now(),
            actor="worker",
            flow=Flow.NEW_CITIZEN.value,
            session_id=c.session_id,
            event="code-confirmation-on-zaak",
            outcome=c.outcome if state is ConfirmationState.DONE else "failed",
        )
    )
    if state is ConfirmationState.DONE:
        log.info("code confirmation %s on zaak %s", c.id, c.zaak_identificatie)
    else:
        log.error("code confirmation %s failed: %s", c.id, error)
    return done


def process_due_confirmations(
    *,
    store: SessionStore,
    registry_factory: Callable[[], ZaakRegistry],
    clock: Clock,
    settings: Settings,
    limit: int = 10,
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """Run the confirmations that are due (leased, like registrations); their number. The registry is built
    only when something is due; when it cannot be built, each claimed confirmation records a failed attempt.

    Claimed one at a time, as registrations are: a confirmation is leased when its turn comes. A batch claimed
    before the first call would keep its last ones leased while the first ones wait for a zaaksysteem that
    hangs (two calls of up to 20 s each), past their lease, when another worker may claim them too."""
    ran = 0
    registry: ZaakRegistry | None = None
    unusable: str | None = None
    due = common.one_at_a_time(
        lambda: store.claim_due_confirmations(clock.now(), lease_seconds=LEASE_SECONDS, limit=1), limit, stop
    )
    for c in due:
        ran += 1
        if registry is None and unusable is None:
            try:
                registry = registry_factory()
            except Exception as exc:  # ConfigError, RegistryUnavailable, anything: an attempt with backoff
                unusable = f"the zaaksysteem cannot be used: {type(exc).__name__}"
        if registry is None:
            store.update_confirmation(c.retry_later(clock.now(), str(unusable)))
            continue
        try:
            run_confirmation(c, store=store, registry=registry, clock=clock, settings=settings)
        except Exception as exc:  # one broken confirmation must not stop the worker; the lease expires
            log.exception("code confirmation %s: unexpected %s", c.id, type(exc).__name__)
    return ran


def confirmation_view(confirmation: CodeConfirmation | None) -> dict[str, object] | None:
    """The confirmation for the staff page and the API (no BSN in it)."""
    if confirmation is None:
        return None
    return {
        "codeMatches": confirmation.matches,
        "state": confirmation.state.value,
        "behandelaar": confirmation.behandelaar_name,
        "confirmedAt": confirmation.confirmed_at.isoformat(),
        "statusUrl": confirmation.status_url,
        "error": confirmation.error,
    }
