"""The OpenAPI 3.0 document of ``/api/v1`` (served at ``/api/v1/openapi.json``; tests check responses against it)."""

from __future__ import annotations

from typing import Any

_PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": _PROBLEM}}}


_ERRORS = {
    "401": _problem_response("No or wrong API key"),
    "503": {
        **_problem_response(
            "The database (or, to check a given zaak, the zaaksysteem) is briefly unavailable; "
            "retry after Retry-After seconds"
        ),
        "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
    },
    "429": {
        **_problem_response("Too many requests for this API client (rate_limit_api, rate_limit_start)"),
        "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
    },
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "zgw-identificatie",
        "version": "1.0.0",
        "description": "Identify a citizen with DigiD during a video call (VNG guide §2.1, §2.2, §2.3). "
        "Authenticate with `Authorization: Bearer <API key>`.",
    },
    "security": [{"apiKey": []}],
    "paths": {
        "/sessions": {
            "post": {
                "operationId": "createSession",
                "summary": "Start an identification session",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SessionCreate"}}},
                },
                "responses": {
                    "201": {
                        "description": "Created",
                        "headers": {"Location": {"schema": {"type": "string"}}},
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Session"}}},
                    },
                    "400": _problem_response("Invalid body; invalidParams names the field"),
                    "413": _problem_response("The body is larger than 256 kB"),
                    "422": _problem_response(
                        "The zaak cannot take the proof; invalidParams[0].code is unknown, "
                        "other-bronorganisatie or closed (looked up in the Zaken API before the session exists)"
                    ),
                    **_ERRORS,
                },
            }
        },
        "/sessions/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "get": {
                "operationId": "getSession",
                "summary": "Status of a session created by this client",
                "responses": {
                    "200": {
                        "description": "The session",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Session"}}},
                    },
                    "404": _problem_response("No such session for this client"),
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
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "post": {
                "operationId": "completeSession",
                "summary": "Finish a session; a mutual-assurance record is erased at once",
                "responses": {
                    "204": {"description": "Completed and erased"},
                    "404": _problem_response("No such session for this client"),
                    "410": _problem_response("The session has expired"),
                    **_ERRORS,
                },
            },
        },
    },
    "components": {
        "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "SessionCreate": {
                "type": "object",
                "additionalProperties": False,
                "required": ["flow"],
                "properties": {
                    "flow": {"type": "string", "enum": ["new-citizen", "known-citizen", "mutual"]},
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
                        "description": "minimum DigiD level; never below the configured one",
                    },
                },
            },
            "Session": {
                "type": "object",
                "required": ["id", "flow", "state", "progress", "citizenUrl", "expiresAt"],
                "properties": {
                    "id": {"type": "string"},
                    "flow": {"type": "string", "enum": ["new-citizen", "known-citizen", "mutual"]},
                    "state": {"type": "string", "enum": ["created", "opened", "authenticated", "completed", "failed"]},
                    "progress": {
                        "type": "string",
                        "enum": [
                            "created",
                            "opened",
                            "authenticated",
                            "completed",
                            "failed",
                            "expired",
                            "match",
                            "mismatch",
                        ],
                    },
                    "citizenUrl": {"type": "string", "format": "uri"},
                    "createdAt": {"type": "string", "format": "date-time"},
                    "expiresAt": {"type": "string", "format": "date-time"},
                    "behandelaar": {"type": "string"},
                    "minimumLevel": {"type": "string"},
                    "level": {"type": "string", "nullable": True},
                    "authenticatedAt": {"type": "string", "format": "date-time", "nullable": True},
                    "code": {"type": "string", "nullable": True, "pattern": "^[0-9]{6}$"},
                    "codeMatch": {"type": "boolean", "nullable": True},
                    "bsn": {"type": "string", "description": "mutual flow only, once the citizen logged in"},
                    "zaak": {
                        "type": "object",
                        "nullable": True,
                        "properties": {
                            "identificatie": {"type": "string", "nullable": True},
                            "url": {"type": "string", "nullable": True},
                        },
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
            "InvalidParam": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "code": {"type": "string"}, "reason": {"type": "string"}},
            },
            "Problem": {
                "type": "object",
                "required": ["title", "status"],
                "properties": {
                    "type": {"type": "string"},
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
