"""JSON API ``/api/v1``: start, list, read, complete and withdraw sessions. API keys from configuration.

Errors are ``application/problem+json`` (RFC 9457) with a stable ``type`` URI per kind of problem (see
``openapi.PROBLEM_TYPES``) and ``invalidParams`` as the ZGW APIs use them.

Who sees what: a session belongs to the API client that started it (``client_id``). A client configured with
``acts_for_staff`` names the behandelaar it acts for on create (``behandelaar: {id, name}``) and on every other
call (``X-Behandelaar-Id``); it then sees only that behandelaar's sessions, unless it is configured as ``team``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from werkzeug.exceptions import TooManyRequests

from ..domain.assurance import AssuranceLevel
from ..domain.bsn import Bsn
from ..domain.errors import InvalidBsn, InvalidLevel, InvalidTransition, RegistryUnavailable
from ..domain.sessions import Flow, IdentificationSession, SessionState
from ..flows import common, lifecycle, registration
from ..settings import ConfigError
from . import ratelimit
from .openapi import OPENAPI, PROBLEM_TYPES, problem_type
from .presenters import registration_of, session_status
from .security import api_client, services

bp = Blueprint("api", __name__, url_prefix="/api/v1")

BEHANDELAAR_HEADER = "X-Behandelaar-Id"
IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_WAIT_SECONDS = 5.0  # a retry that races the first request waits this long for its answer
_DEFAULT_KIND = {
    400: "invalid-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    410: "expired",
    413: "too-large",
    415: "unsupported-media-type",
    422: "unprocessable",
    429: "rate-limited",
    500: "internal-error",
    503: "unavailable",
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        invalid: list[dict[str, str]] | None = None,
        *,
        kind: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.invalid, self.kind = status, title, detail, invalid or [], kind


def problem(
    status: int, title: str, detail: str, invalid: list[dict[str, str]] | None = None, *, kind: str | None = None
) -> tuple[Response, int]:
    kind = kind or _DEFAULT_KIND.get(status, "internal-error" if status >= 500 else "invalid-request")
    assert kind in PROBLEM_TYPES, kind
    body: dict[str, Any] = {"type": problem_type(kind), "title": title, "status": status, "detail": detail}
    if invalid:
        body["invalidParams"] = invalid
    resp = jsonify(body)
    resp.mimetype = "application/problem+json"
    if status in (429, 503):
        resp.headers["Retry-After"] = "60" if status == 429 else "30"
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="zgw-identificatie"'
    return resp, status


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> tuple[Response, int]:
    resp, status = problem(exc.status, exc.title, exc.detail, exc.invalid, kind=exc.kind)
    if exc.kind == "idempotency-key-in-use":
        resp.headers["Retry-After"] = "1"
    return resp, status


def _invalid(name: str, code: str, reason: str) -> ApiError:
    return ApiError(400, "Bad Request", "The request is not valid.", [{"name": name, "code": code, "reason": reason}])


@bp.before_request
def _authenticate() -> None:
    if request.endpoint == "api.openapi":
        return
    try:
        g.api_client = api_client()
    except ApiError:
        if not ratelimit.allow_failed_api_key():
            raise TooManyRequests(
                "Too many requests without a valid API key.", retry_after=ratelimit.failed_api_key_retry_after()
            ) from None
        raise


@bp.get("/openapi.json")
def openapi() -> Response:
    doc = dict(OPENAPI)
    doc["servers"] = [{"url": services().settings.base_url.rstrip("/") + "/api/v1"}]
    return jsonify(doc)


# --- who is asking -----------------------------------------------------------------------------------------


def _asking_behandelaar() -> str | None:
    """The behandelaar a trusted, non-team client acts for on this call; None when the client sees all it started."""
    client = g.api_client
    if not client["acts_for_staff"] or client["team"]:
        return None
    value = request.headers.get(BEHANDELAAR_HEADER, "").strip()
    if not value:
        raise ApiError(
            400,
            "Bad Request",
            f"This API client acts for behandelaars and sees only their own sessions: send {BEHANDELAAR_HEADER}.",
            [{"name": BEHANDELAAR_HEADER, "code": "required", "reason": "The id of the behandelaar asking."}],
            kind="behandelaar-required",
        )
    return value


def _visible(session: IdentificationSession) -> bool:
    if session.client_id != g.api_client["id"]:
        return False
    asking = _asking_behandelaar()
    return asking is None or session.owner_id == asking


def _load(session_id: str) -> IdentificationSession:
    svc = services()
    session = svc.store.get(session_id)
    if session is None or not _visible(session):
        raise ApiError(404, "Not Found", "No such session for this client.")
    if session.is_expired(svc.clock.now()):
        raise ApiError(410, "Gone", "The session has expired; its record is erased shortly.", kind="expired")
    return session


# --- what a client reads -----------------------------------------------------------------------------------


def _detail(session: IdentificationSession) -> str | None:
    if session.reason is not None:
        return session.reason.value
    if session.flow is Flow.KNOWN_CITIZEN and session.code_match is not None:
        return "code-match" if session.code_match else "code-mismatch"
    return None


def present(session: IdentificationSession) -> dict[str, Any]:
    """The API's Session (OpenAPI ``Session``): the status block plus what an integrator needs to act on it."""
    svc = services()
    reg = registration_of(session, svc.store)
    data = session_status(session, svc.store, svc.clock.now(), reg)
    data["url"] = svc.settings.base_url.rstrip("/") + f"/api/v1/sessions/{session.id}"
    data["detail"] = _detail(session)
    data["behandelaarId"] = session.owner_id
    data["endedAt"] = session.ended_at.isoformat() if session.ended_at else None
    data["documents"] = [reg.document_url] if reg and reg.document_url else []
    zaak_url = session.zaak_url or (reg.zaak_url if reg else None)
    zaak_id = session.zaak_identificatie or (reg.zaak_identificatie if reg else None)
    data["zaak"] = {"identificatie": zaak_id, "url": zaak_url} if zaak_url or zaak_id else None
    return data


# --- create ------------------------------------------------------------------------------------------------


def _behandelaar(body: dict[str, Any]) -> tuple[str, str]:
    """(owner_id, owner_name) for a create: the named behandelaar for a trusted client, else the client."""
    client = g.api_client
    given = body.get("behandelaar")
    if given is None:
        if client["acts_for_staff"] and not client["team"]:
            raise _invalid("behandelaar", "required", "This API client acts for behandelaars: name one {id, name}.")
        return client["id"], client["behandelaar"]
    if not client["acts_for_staff"]:
        raise ApiError(
            403,
            "Forbidden",
            "This API client is not configured to act for a behandelaar (api_keys.<client>.acts_for_staff); "
            "leave out 'behandelaar' or ask the administrator to trust this client.",
            kind="behandelaar-not-allowed",
        )
    if not isinstance(given, dict) or set(given) - {"id", "name"}:
        raise _invalid("behandelaar", "invalid", "An object {id, name}.")
    bid, name = given.get("id"), given.get("name")
    if not isinstance(bid, str) or not 1 <= len(bid.strip()) <= 200:
        raise _invalid("behandelaar.id", "invalid", "The behandelaar's stable id, 1 to 200 characters.")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200:
        raise _invalid("behandelaar.name", "invalid", "The behandelaar's display name, 1 to 200 characters.")
    asking = request.headers.get(BEHANDELAAR_HEADER, "").strip()
    if asking and asking != bid.strip() and not client["team"]:
        raise ApiError(
            403,
            "Forbidden",
            f"A behandelaar starts sessions for themselves: behandelaar.id differs from {BEHANDELAAR_HEADER}.",
            kind="behandelaar-not-allowed",
        )
    return bid.strip(), " ".join(name.split())


def _parse_create(body: Any) -> dict[str, Any]:
    svc = services()
    if not isinstance(body, dict):
        raise ApiError(
            400,
            "Bad Request",
            "The body must be a JSON object.",
            [{"name": "body", "code": "invalid", "reason": "Expected a JSON object."}],
        )
    allowed = {"flow", "bsn", "zaak", "register", "level", "behandelaar"}
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
        minimum = common.min_level_for(Flow(flow), svc.settings)
        if level < minimum:
            name = minimum.name.lower()
            raise ApiError(
                422,
                "Unprocessable Content",
                f"The {flow} flow requires at least DigiD level {name}; ask for {name} or higher, or leave out level.",
                [{"name": "level", "code": "below-minimum", "reason": f"The minimum for this flow is {name}."}],
                kind="level-below-minimum",
            )
    if flow != Flow.KNOWN_CITIZEN.value and "bsn" in body:
        raise _invalid("bsn", "not-allowed", "A BSN is only given for the known-citizen flow.")
    if flow == Flow.KNOWN_CITIZEN.value and "bsn" not in body:
        raise _invalid("bsn", "required", "The citizen's BSN is required for the known-citizen flow.")
    if flow == Flow.NEW_CITIZEN.value and zaak is not None:
        raise _invalid("zaak", "not-allowed", "The new-citizen flow always creates a new zaak.")
    owner_id, owner_name = _behandelaar(body)
    return {"flow": Flow(flow), "zaak": zaak, "register": register, "level": level, "bsn": body.get("bsn"),
            "owner_id": owner_id, "owner_name": owner_name}  # fmt: skip


def _start(req: dict[str, Any]) -> IdentificationSession:
    svc = services()
    owner = {
        "owner_id": req["owner_id"],
        "owner_name": req["owner_name"],
        "client_id": g.api_client["id"],
        "store": svc.store,
        "clock": svc.clock,
        "settings": svc.settings,
        "min_level": req["level"],
    }
    try:
        if req["flow"] is Flow.KNOWN_CITIZEN:
            Bsn.parse(req["bsn"])  # a wrong BSN is named before the zaaksysteem is asked about the zaak
        if req["zaak"] is not None:
            _check_zaak(req["zaak"], (req["owner_id"], req["owner_name"]))
        ident = lifecycle.start(req["flow"], bsn=req["bsn"], zaak=req["zaak"], register=req["register"], **owner)
    except InvalidBsn:
        raise _invalid("bsn", "invalid-bsn", "Nine digits that pass the elfproef.") from None
    return ident


def _fingerprint(body: Any) -> str:
    """Keyed, so a stored fingerprint of a body with a BSN cannot be matched against guessed BSNs."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    key = services().settings.audit_hash_key.encode()
    return hmac.new(key, b"idempotency\0" + canonical.encode(), hashlib.sha256).hexdigest()


def _created(session: IdentificationSession, *, replayed: bool = False) -> tuple[Response, int]:
    data = present(session)
    resp = jsonify(data)
    resp.headers["Location"] = data["url"]
    if replayed:
        resp.headers["Idempotent-Replayed"] = "true"
    return resp, 201


_ZAAK_REASONS = {
    "unknown": "The Zaken API has no zaak with this identificatie.",
    "other-bronorganisatie": "The zaak belongs to another bronorganisatie than this municipality's RSIN.",
    "closed": "The zaak is closed (einddatum is set).",
}


def _check_zaak(zaak: str, user: tuple[str, str]) -> None:
    """Look the zaak up before the session (and its link) exists: 422 when it cannot take the proof."""
    svc = services()
    try:
        registration.check_existing_zaak(zaak, registry=svc.registry, settings=svc.settings, user=user)
    except registration.ZaakNotUsable as exc:
        reason = _ZAAK_REASONS[exc.reason]
        raise ApiError(
            422,
            "Unprocessable Content",
            reason,
            [{"name": "zaak", "code": exc.reason, "reason": reason}],
            kind="zaak-not-usable",
        ) from None
    except (RegistryUnavailable, ConfigError):
        raise ApiError(
            503, "Service Unavailable", "The zaaksysteem cannot be reached to check the zaak; retry later."
        ) from None


@bp.post("/sessions")
def create_session() -> tuple[Response, int]:
    svc = services()
    body = request.get_json(silent=True)
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return _created(_start(_parse_create(body)))
    key = key.strip()
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise _invalid(IDEMPOTENCY_HEADER, "invalid", "1 to 255 printable characters, e.g. a UUID.")
    req = _parse_create(body)  # a body that is wrong is wrong again on a retry: no key is taken for it
    client_id = g.api_client["id"]
    fingerprint = _fingerprint(body)
    deadline = time.monotonic() + IDEMPOTENCY_WAIT_SECONDS
    while True:
        now = svc.clock.now()
        held = svc.store.claim_idempotency_key(
            client_id, key, fingerprint, now=now, expires_at=now + timedelta(minutes=svc.settings.session_minutes)
        )
        if held is None:
            break
        earlier_fingerprint, session_id = held
        if not hmac.compare_digest(earlier_fingerprint, fingerprint):
            raise ApiError(
                422,
                "Unprocessable Content",
                f"This {IDEMPOTENCY_HEADER} was used with another request body; use a new key for a new session.",
                [{"name": IDEMPOTENCY_HEADER, "code": "reused", "reason": "Same key, different body."}],
                kind="idempotency-key-reused",
            )
        if session_id is not None:
            session = svc.store.get(session_id)
            if session is None or not _visible(session):
                raise ApiError(410, "Gone", "The session made for this key has expired and is erased.", kind="expired")
            return _created(session, replayed=True)
        if time.monotonic() >= deadline:
            raise ApiError(
                409,
                "Conflict",
                f"A request with this {IDEMPOTENCY_HEADER} is still being processed; retry in a moment.",
                kind="idempotency-key-in-use",
            )
        time.sleep(0.05)
    try:
        session = _start(req)
    except BaseException:
        svc.store.settle_idempotency_key(client_id, key, None, svc.clock.now())
        raise
    svc.store.settle_idempotency_key(client_id, key, session.id, session.expires_at)
    return _created(session)


# --- list, read, complete, withdraw ------------------------------------------------------------------------


def _when(name: str) -> datetime | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise _invalid(name, "invalid-datetime", "An ISO 8601 date-time with offset, e.g. 2026-11-30T09:00:00+01:00.")
    return value


def _cursor(session: IdentificationSession) -> str:
    raw = json.dumps([session.created_at.isoformat(), session.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_cursor(raw: str) -> tuple[datetime, str]:
    try:
        at, sid = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        return datetime.fromisoformat(at), str(sid)
    except (ValueError, TypeError, binascii.Error):
        raise _invalid("cursor", "invalid", "Use the 'next' URL of the previous page as it is.") from None


@bp.get("/sessions")
def list_sessions() -> Response:
    svc = services()
    args = request.args
    allowed = {"state", "flow", "behandelaar", "createdAfter", "createdBefore", "cursor", "limit"}
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise _invalid(unknown[0], "unknown-parameter", f"Allowed: {', '.join(sorted(allowed))}.")
    state, flow = args.get("state"), args.get("flow")
    if state is not None and state not in {s.value for s in SessionState}:
        raise _invalid("state", "invalid-choice", ", ".join(s.value for s in SessionState))
    if flow is not None and flow not in {f.value for f in Flow}:
        raise _invalid("flow", "invalid-choice", ", ".join(f.value for f in Flow))
    try:
        limit = int(args.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise _invalid("limit", "invalid", "A whole number from 1 to 100.")
    asking = _asking_behandelaar()
    wanted = args.get("behandelaar")
    if asking is not None and wanted is not None and wanted != asking:
        return jsonify({"results": [], "next": None})  # a behandelaar sees only their own sessions
    now = svc.clock.now()
    found = svc.store.list_sessions(
        client_id=g.api_client["id"],
        owner_id=asking or wanted,
        state=state,
        flow=flow,
        created_after=_when("createdAfter"),
        created_before=_when("createdBefore"),
        before=_parse_cursor(args["cursor"]) if "cursor" in args else None,
        limit=limit + 1,
    )
    page = list(found[:limit])
    nxt = None
    if len(found) > limit:
        query = {k: v for k, v in args.items() if k != "cursor"} | {"cursor": _cursor(page[-1])}
        from urllib.parse import urlencode

        nxt = svc.settings.base_url.rstrip("/") + "/api/v1/sessions?" + urlencode(query)
    results = [present(s) for s in page if not s.is_expired(now)]
    return jsonify({"results": results, "next": nxt})


@bp.get("/sessions/<session_id>")
def get_session(session_id: str) -> Response:
    return jsonify(present(_load(session_id)))


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
            kind="invalid-state",
        ) from None
    common.audit(svc.store, svc.clock, ident, actor=g.api_client["id"], event="registration-resumed")
    return jsonify(present(svc.store.get(ident.id) or ident)), 202


@bp.post("/sessions/<session_id>/complete")
def complete_session(session_id: str) -> tuple[str, int]:
    svc = services()
    ident = _load(session_id)
    if ident.state is SessionState.WITHDRAWN:
        raise ApiError(409, "Conflict", "The session was withdrawn; start a new one.", kind="invalid-state")
    lifecycle.finish(ident, owner_id=ident.owner_id, store=svc.store, clock=svc.clock, settings=svc.settings)
    return "", 204


@bp.delete("/sessions/<session_id>")
def withdraw_session(session_id: str) -> tuple[str, int]:
    svc = services()
    ident = _load(session_id)
    try:
        lifecycle.withdraw(ident, owner_id=ident.owner_id, store=svc.store, clock=svc.clock)
    except InvalidTransition:
        raise ApiError(
            409,
            "Conflict",
            "The session is completed already: there is no link left to withdraw."
            if ident.state is SessionState.COMPLETED
            else f"A {ident.state.value} session cannot be withdrawn: the citizen has logged in. Complete it instead "
            "(POST …/complete erases the BSN).",
            kind="invalid-state",
        ) from None
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
