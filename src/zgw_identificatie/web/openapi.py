"""The OpenAPI 3.0 document of ``/api/v1`` (served at ``/api/v1/openapi.json``; tests check responses against it,
validate it with openapi-spec-validator and fuzz the API with schemathesis)."""

from __future__ import annotations

from typing import Any

PROBLEM_TYPE_PREFIX = "urn:zgw-identificatie:problem:"

# Every problem ``type`` the API answers with: stable URNs, documented here, in the OpenAPI document and README.
PROBLEM_TYPES: dict[str, str] = {
    "invalid-request": "The body, a parameter or a header is not valid; invalidParams names it.",
    "behandelaar-required": "This client acts for behandelaars and must name the one asking (X-Behandelaar-Id).",
    "unauthorized": "No API key, or a wrong one (Authorization: Bearer <key>).",
    "forbidden": "The API key is valid but may not do this.",
    "behandelaar-not-allowed": "The client is not configured to act for a behandelaar (api_keys.<id>.acts_for_staff),"
    " or names another behandelaar than the one asking.",
    "not-found": "No such session for this client (or for this behandelaar).",
    "method-not-allowed": "The method is not supported on this resource.",
    "conflict": "The request conflicts with the resource's current state.",
    "invalid-state": "The session's state does not allow this (e.g. withdrawing after the citizen logged in).",
    "idempotency-key-in-use": "A request with the same Idempotency-Key is still being processed; retry shortly.",
    "expired": "The session has expired; its record is erased shortly.",
    "too-large": "The body is larger than 256 kB.",
    "unsupported-media-type": "The body must be application/json.",
    "unprocessable": "The request is well-formed but cannot be carried out.",
    "level-below-minimum": "The requested DigiD level is below the flow's configured minimum (named in detail).",
    "idempotency-key-reused": "The Idempotency-Key was used before with another body.",
    "zaak-not-usable": "The given zaak cannot take the proof: unknown, of another bronorganisatie, or closed "
    "(invalidParams[0].code says which).",
    "rate-limited": "Too many requests; wait Retry-After seconds.",
    "internal-error": "An unexpected error; the request id (X-Request-Id) helps the administrator find it.",
    "unavailable": "The service (its database) is briefly unavailable; retry after Retry-After seconds.",
}


def problem_type(kind: str) -> str:
    return PROBLEM_TYPE_PREFIX + kind


_PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": _PROBLEM}}}


_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}
_ERRORS = {
    "401": {
        **_problem_response("No or wrong API key"),
        "headers": {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    },
    "503": {
        **_problem_response(
            "The database (or, to check a given zaak, the zaaksysteem) is briefly unavailable; "
            "retry after Retry-After seconds"
        ),
        "headers": _RETRY_AFTER,
    },
    "429": {
        **_problem_response("Too many requests for this API client (rate_limit_api, rate_limit_start)"),
        "headers": _RETRY_AFTER,
    },
}
_BEHANDELAAR_ERRORS = {"400": _problem_response("X-Behandelaar-Id missing (type behandelaar-required)")}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_BEHANDELAAR_HEADER = {
    "name": "X-Behandelaar-Id",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 200},
    "description": "For clients configured with acts_for_staff (and not team): the id of the behandelaar asking; "
    "required on every call but create, which names the behandelaar in the body. Such a client sees only that "
    "behandelaar's sessions. Ignored for other clients.",
}
_SESSION = {"application/json": {"schema": {"$ref": "#/components/schemas/Session"}}}

_DESCRIPTION = """Identify a citizen with DigiD during a video call (VNG guide §2.1, §2.2, §2.3).

**Authentication**: `Authorization: Bearer <API key>`; a missing or wrong key is a 401 with
`WWW-Authenticate: Bearer`.

**Acting for a behandelaar**: a client configured with `acts_for_staff` names the behandelaar (`behandelaar:
{id, name}`) when it creates a session. The citizen reads that name (§2.3), the proof PDF records id and name,
the ZGW JWT carries them (`user_id`, `user_representation`), and audit events and staff pages show them.
Unless the client is also configured as `team`, it sends `X-Behandelaar-Id` on every other call and sees only
that behandelaar's sessions. Other clients act as themselves (their configured `behandelaar` name).

**States** (`state`): `created` (link made), `opened` (citizen opened the link; `detail: cancelled` after a cancel at
DigiD, the link still works), `authenticated` (DigiD login accepted; §2.2 `detail` is `code-match` or
`code-mismatch`), `completed` (finished by the behandelaar: the BSN is erased at once, for every flow; what remains
readable until the session expires is this tombstone without personal data), `failed` (`detail`: `level-too-low`,
`digid-error`, `expired-during-login`; a new session is needed), `withdrawn` (the link was withdrawn and is dead).
After `expiresAt` the session answers 410 and is erased by the purge. `progress` is kept for older clients.

**Complete** (`POST …/complete`) is idempotent. On a session without a successful login it withdraws the session.

**Idempotent creates**: send `Idempotency-Key` (e.g. a UUID) with `POST /sessions`. The same key with the same body
answers the same session (201, `Idempotent-Replayed: true`), for at least the session's lifetime and across all
processes; the same key with another body is a 422 (`idempotency-key-reused`).

**Events**: every change of a session's state (and of its registration) is delivered from an outbox, in order per
session, retried with backoff: as a notificatie on the Notificaties API kanaal `identificaties` (kenmerken `flow`,
`state`, `behandelaar`) and to the client's webhook (schema `Event`), signed the Standard Webhooks way
(`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`). Neither
carries a BSN: fetch the session with your key.

**Problems** (`application/problem+json`, RFC 9457) have a stable `type`:
""" + "\n".join(f"- `{PROBLEM_TYPE_PREFIX}{k}`: {v}" for k, v in PROBLEM_TYPES.items())

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "zgw-identificatie", "version": "1.1.0", "description": _DESCRIPTION},
    "security": [{"apiKey": []}],
    "paths": {
        "/sessions": {
            "post": {
                "operationId": "createSession",
                "summary": "Start an identification session",
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                        "description": "Retry a create safely: same key and body → the same session",
                    },
                    _BEHANDELAAR_HEADER,
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SessionCreate"}}},
                },
                "responses": {
                    "201": {
                        "description": "Created (or, with a known Idempotency-Key, the session created before)",
                        "headers": {
                            "Location": {"schema": {"type": "string"}},
                            "Idempotent-Replayed": {"schema": {"type": "string", "enum": ["true"]}},
                        },
                        "content": _SESSION,
                    },
                    "400": _problem_response("Invalid body or header; invalidParams names it"),
                    "403": _problem_response("behandelaar given by a client not trusted to act for staff"),
                    "409": {
                        **_problem_response("The same Idempotency-Key is still being processed"),
                        "headers": _RETRY_AFTER,
                    },
                    "410": _problem_response("The session made for this Idempotency-Key has expired"),
                    "413": _problem_response("The body is larger than 256 kB"),
                    "422": _problem_response(
                        "Level below the flow's minimum (problem type level-below-minimum), Idempotency-Key reused "
                        "(idempotency-key-reused), or the zaak cannot take the proof (zaak-not-usable; "
                        "invalidParams[0].code is unknown, other-bronorganisatie or closed, looked up in the Zaken "
                        "API before the session exists)"
                    ),
                    **_ERRORS,
                },
            },
            "get": {
                "operationId": "listSessions",
                "summary": "Sessions of this client (or behandelaar), newest first, with cursor pagination",
                "parameters": [
                    {
                        "name": "state",
                        "in": "query",
                        "schema": {"$ref": "#/components/schemas/State"},
                    },
                    {"name": "flow", "in": "query", "schema": {"$ref": "#/components/schemas/Flow"}},
                    {
                        "name": "behandelaar",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "behandelaar id",
                    },
                    {
                        "name": "createdAfter",
                        "in": "query",
                        "schema": {"type": "string", "format": "date-time"},
                        "description": "created at or after (ISO 8601 with offset)",
                    },
                    {
                        "name": "createdBefore",
                        "in": "query",
                        "schema": {"type": "string", "format": "date-time"},
                        "description": "created before (ISO 8601 with offset)",
                    },
                    {
                        "name": "cursor",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "from the previous page's next URL",
                    },
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                    _BEHANDELAAR_HEADER,
                ],
                "responses": {
                    "200": {
                        "description": "One page; expired sessions are left out",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SessionPage"}}},
                    },
                    "400": _problem_response("A parameter is not valid, or X-Behandelaar-Id is missing"),
                    **_ERRORS,
                },
            },
        },
        "/sessions/{id}": {
            "parameters": [_ID, _BEHANDELAAR_HEADER],
            "get": {
                "operationId": "getSession",
                "summary": "Status of a session created by this client (for this behandelaar)",
                "responses": {
                    "200": {"description": "The session", "content": _SESSION},
                    **_BEHANDELAAR_ERRORS,
                    "404": _problem_response("No such session for this client"),
                    "410": _problem_response("The session has expired"),
                    **_ERRORS,
                },
            },
            "delete": {
                "operationId": "withdrawSession",
                "summary": "Withdraw a session: the citizen's link dies at once and the citizen is told so",
                "description": "Allowed before a successful login (created, opened, failed); idempotent. "
                "After a login: 409, complete it instead.",
                "responses": {
                    "204": {"description": "Withdrawn (state withdrawn, readable until expiry)"},
                    **_BEHANDELAAR_ERRORS,
                    "404": _problem_response("No such session for this client"),
                    "409": _problem_response("The citizen has logged in: complete the session instead"),
                    "410": _problem_response("The session has expired"),
                    **_ERRORS,
                },
            },
        },
        "/sessions/{id}/registration/retry": {
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "post": {
                "operationId": "retryRegistration",
                "summary": "Resume a failed registration from its last completed step",
                "description": "After the cause is fixed (a missing scope, a catalogue setting): the worker "
                "continues where the registration stopped; nothing already created is created again. "
                "Possible while the proof is kept (24 hours after the failure).",
                "responses": {
                    "202": {
                        "description": "Resumed: registration.state is pending",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Session"}}},
                    },
                    "404": _problem_response("No such session for this client"),
                    "409": _problem_response(
                        "Not resumable; invalidParams[0].code is no-registration, not-failed or proof-erased"
                    ),
                    "410": _problem_response("The session has expired"),
                    **_ERRORS,
                },
            },
        },
        "/sessions/{id}/complete": {
            "parameters": [_ID, _BEHANDELAAR_HEADER],
            "post": {
                "operationId": "completeSession",
                "summary": "Finish a session: the BSN is erased at once (every flow); idempotent",
                "description": "An authenticated session becomes completed and keeps no personal data; a session "
                "without a successful login is withdrawn.",
                "responses": {
                    "204": {"description": "Completed (or withdrawn when nobody logged in)"},
                    **_BEHANDELAAR_ERRORS,
                    "404": _problem_response("No such session for this client"),
                    "409": _problem_response("The session was withdrawn"),
                    "410": _problem_response("The session has expired"),
                    **_ERRORS,
                },
            },
        },
    },
    "components": {
        "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Flow": {"type": "string", "enum": ["new-citizen", "known-citizen", "mutual"]},
            "State": {
                "type": "string",
                "enum": ["created", "opened", "authenticated", "completed", "failed", "withdrawn"],
            },
            "SessionCreate": {
                "type": "object",
                "additionalProperties": False,
                "required": ["flow"],
                "properties": {
                    "flow": {"$ref": "#/components/schemas/Flow"},
                    "bsn": {
                        "type": "string",
                        "pattern": "^[0-9]{9}$",
                        "description": "known-citizen only: the BSN the behandelaar knows",
                    },
                    "zaak": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 40,
                        "description": "identificatie of an existing zaak to attach the proof to",
                    },
                    "register": {"type": "boolean", "description": "make a proof PDF and register it"},
                    "level": {
                        "type": "string",
                        "enum": ["basis", "midden", "substantieel", "hoog"],
                        "description": "minimum DigiD level; below the flow's configured minimum is a 422",
                    },
                    "behandelaar": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["id", "name"],
                        "description": "Clients configured with acts_for_staff only (others: 403): the behandelaar "
                        "in the call, shown to the citizen and recorded in the proof, the ZGW JWT and the audit",
                        "properties": {
                            "id": {"type": "string", "minLength": 1, "maxLength": 200},
                            "name": {"type": "string", "minLength": 1, "maxLength": 200},
                        },
                    },
                },
            },
            "Session": {
                "type": "object",
                "required": ["id", "url", "flow", "state", "detail", "progress", "citizenUrl", "expiresAt"],
                "properties": {
                    "id": {"type": "string"},
                    "url": {"type": "string", "format": "uri", "description": "this resource"},
                    "flow": {"$ref": "#/components/schemas/Flow"},
                    "state": {"$ref": "#/components/schemas/State"},
                    "detail": {
                        "type": "string",
                        "nullable": True,
                        "enum": [
                            "cancelled",
                            "level-too-low",
                            "digid-error",
                            "expired-during-login",
                            "code-match",
                            "code-mismatch",
                            None,
                        ],
                        "description": "why the session is in its state (see the description of the API)",
                    },
                    "progress": {
                        "type": "string",
                        "deprecated": True,
                        "description": "older one-word status; use state and detail",
                    },
                    "citizenUrl": {"type": "string", "format": "uri"},
                    "createdAt": {"type": "string", "format": "date-time"},
                    "expiresAt": {"type": "string", "format": "date-time"},
                    "endedAt": {"type": "string", "format": "date-time", "nullable": True},
                    "behandelaar": {"type": "string", "description": "display name the citizen reads"},
                    "behandelaarId": {"type": "string"},
                    "minimumLevel": {"type": "string"},
                    "level": {"type": "string", "nullable": True},
                    "authenticatedAt": {"type": "string", "format": "date-time", "nullable": True},
                    "code": {"type": "string", "nullable": True, "pattern": "^[0-9]{6}$"},
                    "codeMatch": {"type": "boolean", "nullable": True},
                    "bsn": {"type": "string", "description": "mutual flow only, while authenticated"},
                    "zaak": {
                        "type": "object",
                        "nullable": True,
                        "properties": {
                            "identificatie": {"type": "string", "nullable": True, "description": "zaaknummer"},
                            "url": {"type": "string", "nullable": True},
                        },
                    },
                    "documents": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "URL(s) of the proof document in the Documenten API, once registered",
                    },
                    "registration": {
                        "type": "object",
                        "nullable": True,
                        "properties": {
                            "state": {"type": "string", "enum": ["pending", "retrying", "done", "failed", "skipped"]},
                            "error": {"type": "string", "nullable": True},
                            "resumable": {
                                "type": "boolean",
                                "description": "failed, and POST .../registration/retry can finish it",
                            },
                            "invalidParams": {"type": "array", "items": {"$ref": "#/components/schemas/InvalidParam"}},
                        },
                    },
                },
            },
            "SessionPage": {
                "type": "object",
                "required": ["results", "next"],
                "properties": {
                    "results": {"type": "array", "items": {"$ref": "#/components/schemas/Session"}},
                    "next": {"type": "string", "nullable": True, "description": "URL of the next page"},
                },
            },
            "Event": {
                "type": "object",
                "description": "Webhook body (Standard Webhooks). Verify webhook-signature before trusting it; "
                "no BSN: GET data.url with your key for details.",
                "required": ["type", "timestamp", "data"],
                "properties": {
                    "type": {
                        "type": "string",
                        "enum": [
                            "session.created",
                            "session.opened",
                            "session.cancelled",
                            "session.authenticated",
                            "session.completed",
                            "session.failed",
                            "session.withdrawn",
                            "session.expired",
                            "registration.pending",
                            "registration.retrying",
                            "registration.done",
                            "registration.failed",
                        ],
                    },
                    "timestamp": {"type": "string", "format": "date-time"},
                    "data": {
                        "type": "object",
                        "required": ["id", "url", "flow", "state"],
                        "properties": {
                            "id": {"type": "string"},
                            "url": {"type": "string", "format": "uri"},
                            "flow": {"$ref": "#/components/schemas/Flow"},
                            "state": {"$ref": "#/components/schemas/State"},
                            "detail": {
                                "type": "string",
                                "nullable": True,
                                "description": "as Session.detail; 'expired'",
                            },
                            "behandelaarId": {"type": "string"},
                            "sequence": {"type": "integer", "description": "increases with every event"},
                        },
                    },
                },
            },
            "InvalidParam": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "code": {"type": "string"}, "reason": {"type": "string"}},
            },
            "Problem": {
                "type": "object",
                "required": ["type", "title", "status"],
                "properties": {
                    "type": {
                        "type": "string",
                        "enum": [PROBLEM_TYPE_PREFIX + k for k in PROBLEM_TYPES],
                        "description": "stable problem type URI (see the API description)",
                    },
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "invalidParams": {"type": "array", "items": {"$ref": "#/components/schemas/InvalidParam"}},
                },
            },
        },
    },
}


# -- §2.1 code confirmation (flows/confirmation.py) ------------------------------------------------------

_CONFIRMATION_REF = {"$ref": "#/components/schemas/Confirmation"}
OPENAPI["paths"]["/sessions/{id}/confirmation"] = {
    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
    "post": {
        "operationId": "confirmCode",
        "summary": "§2.1: the behandelaar's answer after the citizen read the code aloud",
        "description": "Recorded once per session and put on the zaak as a status (zgw.statustype_code_klopt or "
        "zgw.statustype_code_klopt_niet) by the background worker, exactly once. Sending the same answer again "
        "returns the recorded confirmation (200); the other answer is refused (409).",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["codeMatches"],
                        "properties": {
                            "codeMatches": {
                                "type": "boolean",
                                "description": "true: the code read aloud is the code in the zaak",
                            }
                        },
                    }
                }
            },
        },
        "responses": {
            "201": {"description": "Recorded", "content": {"application/json": {"schema": _CONFIRMATION_REF}}},
            "200": {
                "description": "Already recorded with this answer",
                "content": {"application/json": {"schema": _CONFIRMATION_REF}},
            },
            "400": _problem_response("Invalid body; invalidParams names the field"),
            "404": _problem_response("No such session for this client"),
            "409": _problem_response("Not a §2.1 session, not logged in yet, or already confirmed otherwise"),
            "410": _problem_response("The session has expired"),
            **_ERRORS,
        },
    },
}
OPENAPI["components"]["schemas"]["Confirmation"] = {
    "type": "object",
    "required": ["codeMatches", "state", "behandelaar", "confirmedAt"],
    "properties": {
        "codeMatches": {"type": "boolean"},
        "state": {
            "type": "string",
            "enum": ["pending", "done", "failed"],
            "description": "pending: not yet on the zaak; done: the status is set; failed: see error",
        },
        "behandelaar": {"type": "string"},
        "confirmedAt": {"type": "string", "format": "date-time"},
        "statusUrl": {"type": "string", "nullable": True},
        "error": {"type": "string", "nullable": True},
    },
}
OPENAPI["components"]["schemas"]["Session"]["properties"]["confirmation"] = {
    "allOf": [_CONFIRMATION_REF],
    "nullable": True,
    "description": "new-citizen only: the behandelaar's confirmation of the code, once given",
}
