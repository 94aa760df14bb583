"""JSON API ``/api/v1``: start sessions, read their status, complete them. API keys from configuration.

Errors are ``application/problem+json`` (RFC 9457) with ``invalidParams`` as the ZGW APIs use them.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from ..domain.assurance import AssuranceLevel
from ..domain.bsn import Bsn
from ..domain.errors import InvalidBsn, InvalidLevel, NotOwner, RegistryUnavailable, SessionExpired, SessionNotFound
from ..domain.sessions import Flow
from ..flows import common, lifecycle, registration
from ..settings import ConfigError
from . import ratelimit
from .openapi import OPENAPI
from .presenters import session_status
from .security import api_client, services

bp = Blueprint("api", __name__, url_prefix="/api/v1")


class ApiError(Exception):
    def __init__(self, status: int, title: str, detail: str, invalid: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.invalid = status, title, detail, invalid or []


def problem(status: int, title: str, detail: str, invalid: list[dict[str, str]] | None = None) -> tuple[Response, int]:
    body: dict[str, Any] = {"type": f"about:blank#{status}", "title": title, "status": status, "detail": detail}
    if invalid:
        body["invalidParams"] = invalid
    resp = jsonify(body)
    resp.mimetype = "application/problem+json"
    if status in (429, 503):
        resp.headers["Retry-After"] = "60" if status == 429 else "30"
    return resp, status


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> tuple[Response, int]:
    return problem(exc.status, exc.title, exc.detail, exc.invalid)


def _invalid(name: str, code: str, reason: str) -> ApiError:
    return ApiError(
        400, "Bad Request", "The request body is not valid.", [{"name": name, "code": code, "reason": reason}]
    )


@bp.before_request
def _authenticate() -> None:
    if request.endpoint == "api.openapi":
        return
    try:
        g.api_client = api_client()
    except ApiError:
        if not ratelimit.allow_failed_api_key():
            raise ApiError(429, "Too Many Requests", "Too many requests without a valid API key.") from None
        raise


@bp.get("/openapi.json")
def openapi() -> Response:
    doc = dict(OPENAPI)
    doc["servers"] = [{"url": services().settings.base_url.rstrip("/") + "/api/v1"}]
    return jsonify(doc)


@bp.post("/sessions")
def create_session() -> tuple[Response, int]:
    svc = services()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(
            400,
            "Bad Request",
            "The body must be a JSON object.",
            [{"name": "body", "code": "invalid", "reason": "Expected a JSON object."}],
        )
    allowed = {"flow", "bsn", "zaak", "register", "level"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise _invalid(unknown[0], "unknown-field", f"Unknown field; allowed: {', '.join(sorted(allowed))}.")
    flow = body.get("flow")
    if flow not in {f.value for f in Flow}:
        raise _invalid("flow", "invalid-choice", "One of new-citizen, known-citizen, mutual.")
    zaak = body.get("zaak")
    if zaak is not None and (not isinstance(zaak, str) or not 1 <= len(zaak) <= 40):
        raise _invalid("zaak", "invalid", "A zaak identificatie of 1 to 40 characters.")
    register = body.get("register", bool(zaak))
    if not isinstance(register, bool):
        raise _invalid("register", "invalid", "true or false.")
    level_raw = body.get("level")
    level: AssuranceLevel | None = None
    if level_raw is not None:
        if not isinstance(level_raw, str):
            raise _invalid("level", "invalid-choice", "One of basis, midden, substantieel, hoog.")
        try:
            level = AssuranceLevel.from_name(level_raw)
        except InvalidLevel:
            raise _invalid("level", "invalid-choice", "One of basis, midden, substantieel, hoog.") from None
    if flow != Flow.KNOWN_CITIZEN.value and "bsn" in body:
        raise _invalid("bsn", "not-allowed", "A BSN is only given for the known-citizen flow.")
    client = g.api_client
    owner = {
        "owner_id": client["id"],
        "owner_name": client["behandelaar"],
        "store": svc.store,
        "clock": svc.clock,
        "settings": svc.settings,
        "min_level": level,
    }
    if flow == Flow.KNOWN_CITIZEN.value:
        if "bsn" not in body:
            raise _invalid("bsn", "required", "The citizen's BSN is required for the known-citizen flow.")
        try:
            Bsn.parse(body["bsn"])
        except InvalidBsn:
            raise _invalid("bsn", "invalid-bsn", "Nine digits that pass the elfproef.") from None
        if zaak is not None:
            _check_zaak(zaak)
        try:
            ident = lifecycle.start(Flow.KNOWN_CITIZEN, bsn=body["bsn"], zaak=zaak, register=register, **owner)
        except InvalidBsn:
            raise _invalid("bsn", "invalid-bsn", "Nine digits that pass the elfproef.") from None
    elif flow == Flow.NEW_CITIZEN.value:
        if zaak is not None:
            raise _invalid("zaak", "not-allowed", "The new-citizen flow always creates a new zaak.")
        ident = lifecycle.start(Flow.NEW_CITIZEN, **owner)
    else:
        if zaak is not None:
            _check_zaak(zaak)
        ident = lifecycle.start(Flow.MUTUAL, zaak=zaak, register=register, **owner)
    data = session_status(ident, svc.store, svc.clock.now())
    resp = jsonify(data)
    resp.headers["Location"] = f"/api/v1/sessions/{ident.id}"
    return resp, 201


_ZAAK_REASONS = {
    "unknown": "The Zaken API has no zaak with this identificatie.",
    "other-bronorganisatie": "The zaak belongs to another bronorganisatie than this municipality's RSIN.",
    "closed": "The zaak is closed (einddatum is set).",
}


def _check_zaak(zaak: str) -> None:
    """Look the zaak up before the session (and its link) exists: 422 when it cannot take the proof."""
    svc = services()
    try:
        client = g.api_client
        registration.check_existing_zaak(
            zaak, registry=svc.registry, settings=svc.settings, user=(client["id"], client["behandelaar"])
        )
    except registration.ZaakNotUsable as exc:
        reason = _ZAAK_REASONS[exc.reason]
        raise ApiError(
            422, "Unprocessable Entity", reason, [{"name": "zaak", "code": exc.reason, "reason": reason}]
        ) from None
    except (RegistryUnavailable, ConfigError):
        raise ApiError(
            503, "Service Unavailable", "The zaaksysteem cannot be reached to check the zaak; retry later."
        ) from None


def _load(session_id: str) -> Any:
    svc = services()
    try:
        return common.load_for_owner(session_id, g.api_client["id"], store=svc.store, clock=svc.clock)
    except (SessionNotFound, NotOwner):
        raise ApiError(404, "Not Found", "No such session for this client.") from None
    except SessionExpired:
        raise ApiError(410, "Gone", "The session has expired.") from None


@bp.get("/sessions/<session_id>")
def get_session(session_id: str) -> Response:
    svc = services()
    return jsonify(session_status(_load(session_id), svc.store, svc.clock.now()))


_NOT_RESUMABLE = {
    "no-registration": "This session has no registration.",
    "not-failed": "The registration has not failed: it is pending, retrying or done.",
    "proof-erased": "The proof was erased 24 hours after the failure; start a new session.",
}


@bp.post("/sessions/<session_id>/registration/retry")
def retry_registration(session_id: str) -> tuple[Response, int]:
    """Resume a failed registration from its last completed step (after the cause was fixed)."""
    svc = services()
    ident = _load(session_id)
    try:
        registration.resume(ident.id, store=svc.store, clock=svc.clock, actor=g.api_client["id"])
    except registration.NotResumable as exc:
        raise ApiError(
            409,
            "Conflict",
            _NOT_RESUMABLE.get(exc.reason, exc.reason),
            [{"name": "registration", "code": exc.reason, "reason": _NOT_RESUMABLE.get(exc.reason, exc.reason)}],
        ) from None
    common.audit(svc.store, svc.clock, ident, actor=g.api_client["id"], event="registration-resumed")
    current = svc.store.get(ident.id) or ident
    return jsonify(session_status(current, svc.store, svc.clock.now())), 202


@bp.post("/sessions/<session_id>/complete")
def complete_session(session_id: str) -> tuple[str, int]:
    svc = services()
    ident = _load(session_id)
    lifecycle.finish(ident.id, owner_id=g.api_client["id"], store=svc.store, clock=svc.clock, settings=svc.settings)
    return "", 204


# -- §2.1 code confirmation (flows/confirmation.py) ------------------------------------------------------


@bp.post("/sessions/<session_id>/confirmation")
def confirm_code(session_id: str) -> tuple[Response, int]:
    """The behandelaar's answer after the citizen read the code aloud: {"codeMatches": true|false}.

    201 when recorded, 200 when the same answer was recorded before (a retried request), 409 for the other
    answer, a session that is not §2.1, or a citizen who has not logged in yet."""
    from ..flows import confirmation

    svc = services()
    ident = _load(session_id)
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or set(body) != {"codeMatches"} or not isinstance(body["codeMatches"], bool):
        raise _invalid("codeMatches", "required", "A JSON object with only codeMatches: true or false.")
    client = g.api_client
    try:
        stored, new = confirmation.confirm(
            ident,
            matches=body["codeMatches"],
            actor_id=client["id"],
            actor_name=client["behandelaar"],
            store=svc.store,
            clock=svc.clock,
        )
    except confirmation.ConfirmationNotApplicable:
        raise ApiError(409, "Conflict", "Only a new-citizen (§2.1) session has a code to confirm.") from None
    except confirmation.ConfirmationTooEarly:
        raise ApiError(409, "Conflict", "The citizen has not logged in with DigiD yet.") from None
    except confirmation.ConfirmationConflict:
        raise ApiError(409, "Conflict", "The code was already confirmed with the other answer.") from None
    resp = jsonify(confirmation.confirmation_view(stored))
    resp.headers["Location"] = f"/api/v1/sessions/{ident.id}/confirmation"
    return resp, 201 if new else 200
