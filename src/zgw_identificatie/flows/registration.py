"""The shared last step of every flow: record the proof in the zaaksysteem, resumably.

Steps, each stored with ``store.update_registration`` before the next one starts:
zaak (create, or find the existing one by identificatie) → rol (initiator, BSN) → status (new zaken
only) → render the proof PDF → upload the document → link it to the zaak. A retry resumes at the
first step without a stored URL. A step whose outcome is unknown (time-out, lost connection, 5xx)
is stored as ``uncertain_step``; the retry first asks the matching ``find_*`` method, so a resource
whose creation succeeded although the answer was lost is never created twice.

``RegistryUnavailable`` → retry later with exponential backoff (``Registration.retry_later``), until
``registration_max_attempts`` → failed. ``RegistrationFailed`` (a 4xx) → failed at once, with the
zaaksysteem's ``invalidParams``. When done, the proof payload (which holds the BSN) is dropped from
the registration (``proof=None``); the store then writes no payload for it (``sql_store`` keeps the
encrypted payload only while the registration is not done). Log lines carry ids, never the BSN.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from typing import Any, cast
from zoneinfo import ZoneInfo

from .. import metrics, request_context
from ..domain.errors import RegistrationFailed, RegistryUnavailable, ZaakNotFound
from ..domain.proof import ProofData
from ..domain.registration import Registration
from ..domain.sessions import Flow, IdentificationSession, RegistrationState
from ..ports import Clock, ProofRenderer, SessionStore, ZaakRegistry
from ..settings import Settings

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
    step = ""
    try:
        if reg.zaak_url is None:
            step = "zaak"
            reg = _zaak_step(reg, proof, registry, store, clock, settings)
        zaak_url = cast(str, reg.zaak_url)
        if reg.rol_url is None:
            step = "rol"
            reg, unsure = _begin(reg, step, store, clock)
            existing = reg.existing_zaak is not None
            # On an existing zaak the citizen may already be a rol (of any type): then that one is used.
            look = unsure or existing
            rol_url = registry.find_citizen_rol(zaak_url=zaak_url, bsn=proof.bsn, existing=existing) if look else None
            rol_url = rol_url or registry.add_citizen_rol(
                zaak_url=zaak_url, bsn=proof.bsn, toelichting=ROL_TOELICHTING, existing=existing
            )
            reg = _save(reg, store, clock, rol_url=rol_url)
        if reg.status_url is None and reg.existing_zaak is None:
            step = "status"
            reg, unsure = _begin(reg, step, store, clock)
            status_url = registry.find_status(zaak_url=zaak_url) if unsure else None
            status_url = status_url or registry.set_first_status(
                zaak_url=zaak_url, when=clock.now(), toelichting=STATUS_TOELICHTING
            )
            reg = _save(reg, store, clock, status_url=status_url)
        if reg.document_url is None:
            step = "document"
            reg, unsure = _begin(reg, step, store, clock)
            document_url = registry.find_document(marker=reg.id) if unsure else None
            if document_url is None:
                pdf = renderer.render(replace(proof, zaak_identificatie=reg.zaak_identificatie or ""))
                document_url = registry.upload_document(
                    marker=reg.id,
                    titel=DOCUMENT_TITEL,
                    bestandsnaam=f"identificatie-{reg.zaak_identificatie or reg.id}.pdf",
                    inhoud=pdf,
                    creatiedatum=clock.now().astimezone(AMSTERDAM).date(),
                    beschrijving=_beschrijving(proof),
                )
            reg = _save(reg, store, clock, document_url=document_url)
        if reg.link_url is None:
            step = "link"
            document_url = cast(str, reg.document_url)
            reg, unsure = _begin(reg, step, store, clock)
            link_url = registry.find_link(zaak_url=zaak_url, document_url=document_url) if unsure else None
            link_url = link_url or registry.link_document(
                zaak_url=zaak_url, document_url=document_url, titel=DOCUMENT_TITEL
            )
            reg = _save(reg, store, clock, link_url=link_url)
    except RegistryUnavailable as exc:
        return _transient(reg, store, clock, settings, step, str(exc))
    except ZaakNotFound:
        return _finish_failed(reg, store, clock, f"zaak {reg.existing_zaak} not found", ())
    except RegistrationFailed as exc:
        params = tuple((p.get("name", ""), p.get("code", ""), p.get("reason", "")) for p in exc.invalid_params)
        return _finish_failed(reg, store, clock, f"{step}: {exc}", params)
    done = _erase_proof(
        replace(
            reg,
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


def process_due(
    *,
    store: SessionStore,
    registry: ZaakRegistry,
    renderer: ProofRenderer,
    clock: Clock,
    settings: Settings,
    limit: int = 10,
) -> int:
    """Run the registrations that are due (leased, so two workers never run the same one); their number."""
    claimed = store.claim_due_registrations(clock.now(), lease_seconds=LEASE_SECONDS, limit=limit)
    outer = request_context.current()
    for reg in claimed:
        metrics.REGISTRATION_ATTEMPTS.inc()
        request_context.set_current(reg.request_id)  # the worker's lines carry the citizen request's id
        try:
            run_registration(reg, store=store, registry=registry, renderer=renderer, clock=clock, settings=settings)
        except Exception as exc:  # one broken registration must not stop the worker
            log.exception("registration %s: unexpected %s", reg.id, type(exc).__name__)
            current = store.get_registration(reg.id) or reg
            _transient(current, store, clock, settings, current.uncertain_step or "", type(exc).__name__)
    request_context.set_current(outer)
    return len(claimed)


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
        "registration %s: %s failed (attempt %d), retry at %s",
        reg.id,
        step,
        later.attempts,
        later.next_attempt_at.isoformat(),
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
    for step, url in zip(
        STEPS, (reg.zaak_url, reg.rol_url, reg.status_url, reg.document_url, reg.link_url), strict=True
    ):
        if url is None and not (step == "status" and reg.existing_zaak):
            return step
    return "link"
