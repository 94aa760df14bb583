"""The shared last step of every flow: record the proof in the zaaksysteem, resumably.

Steps, each stored with ``store.update_registration`` before the next one starts:
zaak (create, or find the existing one by identificatie) → rol (initiator, BSN) → status (new zaken
only) → render the proof PDF → upload the document → link it to the zaak. A retry resumes at the
first step without a stored URL. A step whose outcome is unknown (time-out, lost connection, 5xx)
is stored as ``uncertain_step``; the retry first asks the matching ``find_*`` method, so a resource
whose creation succeeded although the answer was lost is never created twice.

``RegistryUnavailable`` → retry later with exponential backoff (``Registration.retry_later``), until
``registration_max_attempts`` → failed. A registry that cannot be built (wrong secret, catalogue not
resolvable: ``ConfigError``) or any unexpected error is an attempt like a time-out: backoff, a stored
error the staff page shows, one log line. ``RegistrationFailed`` (a 4xx) → failed at once, with the
zaaksysteem's ``invalidParams``. When done, the proof payload (which holds the BSN) is dropped from
the registration (``proof=None``); the store then writes no payload for it (``sql_store`` keeps the
encrypted payload only while the registration is not done). Log lines carry ids, never the BSN.

A failed registration keeps every URL it created. ``resume`` (staff page "Opnieuw vastleggen", API
``POST …/registration/retry``) makes it due again with a fresh attempt budget; the worker then
continues at the first step without a URL, so nothing is created twice. Two resumes racing: the store
reopens a failed registration only once (a conditional update), and the worker's lease runs it once.
A registration that is never resumed is abandoned: its zaak stays in the zaaksysteem, recognisable by
the kenmerk ``{bron: zgw-identificatie}`` and the missing proof document; the service never deletes a
zaak (see the README, "Connecting a real zaaksysteem").

Every request of a registration carries the behandelaar in the ZGW JWT (``user_id``,
``user_representation``), so the zaaksysteem's audit trail names who identified the citizen.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, cast
from zoneinfo import ZoneInfo

from .. import metrics, request_context
from ..domain.errors import DomainError, RegistrationFailed, RegistryUnavailable, ZaakNotFound
from ..domain.proof import ProofData
from ..domain.registration import Registration
from ..domain.sessions import Flow, IdentificationSession, RegistrationState
from ..ports import Clock, ProofRenderer, SessionStore, ZaakRef, ZaakRegistry
from ..settings import ConfigError, Settings
from . import common

log = logging.getLogger(__name__)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
LEASE_SECONDS = 300
DOCUMENT_TITEL = "Bewijs van identificatie met DigiD"
ROL_TOELICHTING = "Inwoner geïdentificeerd met DigiD tijdens videogesprek"
STATUS_TOELICHTING = "Identificatie met DigiD vastgelegd"
FLOW_NAMES = {
    Flow.NEW_CITIZEN: "inwoner nog niet bekend",
    Flow.KNOWN_CITIZEN: "inwoner bekend, controle met code",
    Flow.MUTUAL: "wederzijdse zekerheid",
}
STEPS = ("zaak", "rol", "status", "document", "link")


def start_registration(
    session: IdentificationSession,
    proof: ProofData,
    *,
    existing_zaak: str | None,
    store: SessionStore,
    clock: Clock,
) -> Registration:
    """A new pending registration for ``session``, persisted; the worker (or ``run_registration``) runs it."""
    now = clock.now()
    registration = Registration(
        id=uuid.uuid4().hex,
        session_id=session.id,
        proof=proof,
        existing_zaak=(existing_zaak or "").strip() or None,
        state=RegistrationState.PENDING,
        created_at=now,
        updated_at=now,
        next_attempt_at=now,
        user_id=session.owner_id or None,
        user_representation=session.owner_name or None,
        request_id=request_context.current(),
    )
    store.add_registration(registration)
    metrics.REGISTRATIONS.labels("started").inc()
    log.info("registration %s started for session %s", registration.id, session.id[:8])
    return registration


def run_registration(
    reg: Registration,
    *,
    store: SessionStore,
    registry: ZaakRegistry,
    renderer: ProofRenderer,
    clock: Clock,
    settings: Settings,
) -> Registration:
    """One attempt: run every step not yet done; returns the registration as stored."""
    if reg.finished:
        return reg
    proof = reg.proof
    if proof is None:
        return _finish_failed(reg, store, clock, "the proof payload is no longer available", ())
    acting = (
        registry.acting_for(reg.user_id, reg.user_representation or reg.user_id)
        if reg.user_id
        else contextlib.nullcontext()
    )
    run = _Run(reg)
    try:
        with acting:
            _steps(run, proof, registry, renderer, store, clock, settings)
    except RegistryUnavailable as exc:
        return _transient(run.reg, store, clock, settings, run.step, str(exc))
    except ConfigError as exc:  # the catalogue no longer resolves (a zaaktype end date, a removed type)
        return _transient(run.reg, store, clock, settings, run.step, f"configuration: {exc}")
    except ZaakNotFound:
        return _finish_failed(run.reg, store, clock, f"zaak {reg.existing_zaak} not found", ())
    except RegistrationFailed as exc:
        params = tuple((p.get("name", ""), p.get("code", ""), p.get("reason", "")) for p in exc.invalid_params)
        return _finish_failed(run.reg, store, clock, f"{run.step}: {exc}", params)
    done = _erase_proof(
        replace(
            run.reg,
            state=RegistrationState.DONE,
            updated_at=clock.now(),
            error=None,
            uncertain_step=None,
            invalid_params=(),
        )
    )
    store.update_registration(done)
    _sync_session(store, done)
    metrics.REGISTRATIONS.labels("done").inc()
    log.info("registration %s done: zaak %s", done.id, done.zaak_identificatie)
    return done


@dataclass
class _Run:
    """One attempt in progress: the registration as stored so far and the step that is running."""

    reg: Registration
    step: str = ""


def _steps(
    run: _Run,
    proof: ProofData,
    registry: ZaakRegistry,
    renderer: ProofRenderer,
    store: SessionStore,
    clock: Clock,
    settings: Settings,
) -> None:
    """Every step not yet done, in order; ``run`` always holds what is stored."""
    if run.reg.zaak_url is None:
        run.step = "zaak"
        run.reg = _zaak_step(run.reg, proof, registry, store, clock, settings)
    zaak_url = cast(str, run.reg.zaak_url)
    if run.reg.rol_url is None:
        run.step = "rol"
        run.reg, unsure = _begin(run.reg, run.step, store, clock)
        existing = run.reg.existing_zaak is not None
        # On an existing zaak the citizen may already be a rol (of any type): then that one is used.
        look = unsure or existing
        rol_url = registry.find_citizen_rol(zaak_url=zaak_url, bsn=proof.bsn, existing=existing) if look else None
        rol_url = rol_url or registry.add_citizen_rol(
            zaak_url=zaak_url, bsn=proof.bsn, toelichting=ROL_TOELICHTING, existing=existing
        )
        run.reg = _save(run.reg, store, clock, rol_url=rol_url)
    if run.reg.status_url is None and run.reg.existing_zaak is None:
        run.step = "status"
        run.reg, unsure = _begin(run.reg, run.step, store, clock)
        status_url = registry.find_status(zaak_url=zaak_url) if unsure else None
        status_url = status_url or registry.set_first_status(
            zaak_url=zaak_url, when=clock.now(), toelichting=STATUS_TOELICHTING
        )
        run.reg = _save(run.reg, store, clock, status_url=status_url)
    if run.reg.document_url is None:
        run.step = "document"
        run.reg, unsure = _begin(run.reg, run.step, store, clock)
        document_url = registry.find_document(marker=run.reg.id) if unsure else None
        if document_url is None:
            zaak_identificatie = run.reg.zaak_identificatie
            pdf = renderer.render(replace(proof, zaak_identificatie=zaak_identificatie or ""))
            document_url = registry.upload_document(
                marker=run.reg.id,
                titel=DOCUMENT_TITEL,
                bestandsnaam=f"identificatie-{zaak_identificatie or run.reg.id}.pdf",
                inhoud=pdf,
                creatiedatum=clock.now().astimezone(AMSTERDAM).date(),
                beschrijving=_beschrijving(proof),
            )
        run.reg = _save(run.reg, store, clock, document_url=document_url)
    if run.reg.link_url is None:
        run.step = "link"
        document_url = cast(str, run.reg.document_url)
        run.reg, unsure = _begin(run.reg, run.step, store, clock)
        link_url = registry.find_link(zaak_url=zaak_url, document_url=document_url) if unsure else None
        link_url = link_url or registry.link_document(
            zaak_url=zaak_url, document_url=document_url, titel=DOCUMENT_TITEL
        )
        run.reg = _save(run.reg, store, clock, link_url=link_url)


def process_due(
    *,
    store: SessionStore,
    registry: ZaakRegistry | None = None,
    registry_factory: Callable[[], ZaakRegistry] | None = None,
    renderer: ProofRenderer,
    clock: Clock,
    settings: Settings,
    limit: int = 10,
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """Run the registrations that are due (leased, so two workers never run the same one); their number.

    They are claimed one at a time (a claim is one statement): a registration waits in the database, not
    leased to a worker that is busy with others. So several workers share the work, and when the database
    goes away mid-pass only the registration at hand waits for its lease (``LEASE_SECONDS``), not the rest of
    a batch claimed before it. When ``stop`` says so, the one at hand is finished and no other is claimed.

    ``registry_factory`` builds the registry only when something is due. When it cannot be built (a wrong
    secret, the Catalogi API down or refusing, a catalogue setting that does not resolve), every claimed
    registration records that as a failed attempt with backoff: never ``pending`` without an error."""
    outer = request_context.current()
    ran = 0
    unusable: str | None = None
    due = common.one_at_a_time(
        lambda: store.claim_due_registrations(clock.now(), lease_seconds=LEASE_SECONDS, limit=1), limit, stop
    )
    try:
        for reg in due:
            ran += 1
            metrics.REGISTRATION_ATTEMPTS.inc()
            if registry is None and unusable is None:
                if registry_factory is None:
                    raise TypeError("process_due needs a registry or a registry_factory")
                try:
                    registry = registry_factory()
                except Exception as exc:  # ConfigError, RegistryUnavailable, anything: an attempt, not a crash
                    unusable = f"the zaaksysteem cannot be used: {_reason(exc)}"
            if registry is None:  # its factory failed: every claimed registration records that as an attempt
                _transient(reg, store, clock, settings, reg.uncertain_step or "", str(unusable))
                continue
            request_context.set_current(reg.request_id)  # the worker's lines carry the citizen request's id
            try:
                run_registration(reg, store=store, registry=registry, renderer=renderer, clock=clock, settings=settings)
            except Exception as exc:  # one broken registration must not stop the worker
                current = store.get_registration(reg.id) or reg
                _transient(current, store, clock, settings, current.uncertain_step or "", f"unexpected {_reason(exc)}")
    finally:
        request_context.set_current(outer)
    return ran


def _reason(exc: BaseException) -> str:
    """One line for a stored error and the log: domain and configuration errors carry safe texts (no BSN,
    URLs without one); anything else is named by its type only."""
    if isinstance(exc, DomainError | ConfigError):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__


class NotResumable(DomainError):
    """``resume`` refused: ``reason`` is ``no-registration``, ``not-failed`` or ``proof-erased``."""

    code = "not-resumable"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def resume(session_id: str, *, store: SessionStore, clock: Clock, actor: str) -> Registration:
    """Make the failed registration of a session due again (after the cause was fixed); the worker then
    continues from the last completed step. Raises ``NotResumable``. Two resumes racing: one wins, the
    other gets ``not-failed`` (the store reopens a failed registration only once)."""
    reg = store.registration_for_session(session_id)
    if reg is None:
        raise NotResumable("no-registration")
    return resume_registration(reg.id, store=store, clock=clock, actor=actor)


def resume_registration(registration_id: str, *, store: SessionStore, clock: Clock, actor: str) -> Registration:
    """``resume`` by registration id: also after the session itself is gone (expired, or the mutual flow's
    record erased on Voltooien), for the operator (``zgw-identificatie registrations --resume``)."""
    reg = store.get_registration(registration_id)
    if reg is None:
        raise NotResumable("no-registration")
    if reg.state is not RegistrationState.FAILED:
        raise NotResumable("not-failed")
    if reg.proof is None:
        raise NotResumable("proof-erased")
    reopened = store.reopen_registration(reg.id, clock.now())
    if reopened is None:
        raise NotResumable("not-failed")
    _sync_session(store, reopened)
    log.info("registration %s resumed by %s at step %s", reopened.id, actor, describe_step(reopened))
    return reopened


class ZaakNotUsable(DomainError):
    """A zaaknummer given at start cannot take the proof; ``reason``: unknown, other-bronorganisatie, closed."""

    code = "zaak-not-usable"

    def __init__(self, reason: str, identificatie: str) -> None:
        super().__init__(f"zaak {identificatie}: {reason}")
        self.reason = reason
        self.identificatie = identificatie


def check_existing_zaak(
    identificatie: str, *, registry: ZaakRegistry, settings: Settings, user: tuple[str, str] | None = None
) -> ZaakRef:
    """Look the zaak up BEFORE the citizen gets a link: it must exist, belong to our bronorganisatie (RSIN)
    and be open (no einddatum). Raises ZaakNotUsable; RegistryUnavailable / ConfigError when the zaaksysteem
    cannot answer (the caller refuses the start then too: a link whose proof cannot land helps nobody).
    ``user`` (id, name): the behandelaar on whose behalf the zaak is read (the zaaksysteem's audit trail)."""
    with registry.acting_for(*user) if user else contextlib.nullcontext():
        found = list(registry.zaken_with_identificatie(identificatie))
    ours = [z for z in found if z.bronorganisatie in ("", settings.rsin)]
    if not found:
        raise ZaakNotUsable("unknown", identificatie)
    if not ours:
        raise ZaakNotUsable("other-bronorganisatie", identificatie)
    open_ = [z for z in ours if z.einddatum is None]
    if not open_:
        raise ZaakNotUsable("closed", identificatie)
    return open_[0]


def _zaak_step(
    reg: Registration,
    proof: ProofData,
    registry: ZaakRegistry,
    store: SessionStore,
    clock: Clock,
    settings: Settings,
) -> Registration:
    if reg.existing_zaak is not None:
        ref = registry.find_zaak(reg.existing_zaak)
    else:
        startdatum = proof.identified_at.astimezone(AMSTERDAM).date()
        reg, unsure = _begin(reg, "zaak", store, clock)
        found = registry.find_zaak_by_marker(marker=reg.id, startdatum=startdatum) if unsure else None
        ref = found or registry.create_zaak(
            marker=reg.id,
            startdatum=startdatum,
            omschrijving=settings.zgw.zaak_omschrijving,
            toelichting=_beschrijving(proof),
        )
    reg = _save(reg, store, clock, zaak_url=ref.url, zaak_identificatie=ref.identificatie)
    _sync_session(store, reg)
    return reg


def _begin(reg: Registration, step: str, store: SessionStore, clock: Clock) -> tuple[Registration, bool]:
    """Write ahead: mark ``step`` uncertain BEFORE its create call, so a worker killed (or a database lost)
    between the server's answer and ``_save`` makes the next attempt look the resource up instead of
    creating a second one. Returns the registration and whether an earlier attempt left this step unsure."""
    unsure = reg.uncertain_step == step
    if not unsure:
        reg = replace(reg, uncertain_step=step, updated_at=clock.now())
        store.update_registration(reg)
    return reg, unsure


def _save(reg: Registration, store: SessionStore, clock: Clock, **changes: Any) -> Registration:
    updated = replace(reg, updated_at=clock.now(), uncertain_step=None, **changes)
    store.update_registration(updated)
    return updated


def _transient(
    reg: Registration, store: SessionStore, clock: Clock, settings: Settings, step: str, error: str
) -> Registration:
    now = clock.now()
    if reg.attempts + 1 >= settings.registration_max_attempts:
        failed = replace(reg, attempts=reg.attempts + 1)
        return _finish_failed(failed, store, clock, f"gave up after {failed.attempts} attempts: {error}", ())
    later = reg.retry_later(now, error, uncertain_step=step or None)
    store.update_registration(later)
    metrics.REGISTRATIONS.labels("retry").inc()
    _sync_session(store, later)
    log.warning(
        "registration %s: %s failed (attempt %d), retry at %s: %s",
        reg.id,
        step or "start",
        later.attempts,
        later.next_attempt_at.isoformat(),
        error,
    )
    return later


def _finish_failed(
    reg: Registration,
    store: SessionStore,
    clock: Clock,
    error: str,
    invalid_params: tuple[tuple[str, str, str], ...],
) -> Registration:
    failed = replace(
        reg,
        state=RegistrationState.FAILED,
        updated_at=clock.now(),
        error=error,
        invalid_params=invalid_params,
    )
    store.update_registration(failed)
    _sync_session(store, failed)
    metrics.REGISTRATIONS.labels("failed").inc()
    log.error("registration %s failed: %s (%d invalid params)", reg.id, error, len(invalid_params))
    return failed


def _erase_proof(reg: Registration) -> Registration:
    """The proof is recorded in the zaaksysteem: drop the payload that holds the BSN."""
    return replace(reg, proof=None)


def _sync_session(store: SessionStore, reg: Registration) -> None:
    session = store.get(reg.session_id)
    if session is None:  # the mutual flow erases its session on Voltooien; the registration goes on
        return
    zaak_url = reg.zaak_url
    store.update(
        session.with_registration(
            reg.state,
            zaak_identificatie=reg.zaak_identificatie,
            zaak_url=zaak_url,
            error=reg.error if reg.state in (RegistrationState.FAILED, RegistrationState.RETRYING) else None,
        )
    )


def _beschrijving(proof: ProofData) -> str:
    when = proof.identified_at.astimezone(AMSTERDAM)
    return (
        f"Identificatie met DigiD tijdens videogesprek ({FLOW_NAMES.get(proof.flow, proof.flow.value)}), "
        f"niveau {proof.level.label}, {when:%d-%m-%Y %H:%M}"
    )


def describe_step(reg: Registration) -> str:
    """The next step this registration will run (for status pages)."""
    if reg.finished:
        return reg.state.value
    return next_step(reg)


def next_step(reg: Registration) -> str:
    """The first step without a stored URL: where a resumed registration continues."""
    for step, url in zip(
        STEPS, (reg.zaak_url, reg.rol_url, reg.status_url, reg.document_url, reg.link_url), strict=True
    ):
        if url is None and not (step == "status" and reg.existing_zaak):
            return step
    return "link"
