"""Fuzz the JSON API against its own OpenAPI document (schemathesis + hypothesis).

Loaded from the running Flask app (``/api/v1/openapi.json``), authenticated with the test API key;
every response must be a documented status with a body that matches the documented schema, and
never a 5xx. Bounded: at most 50 examples per operation, no deadline (the app does real crypto).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from demo_driver import API_KEY, demo_app

AUTH = {"Authorization": f"Bearer {API_KEY}"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api_app(tmp_path_factory):
    # Fuzzing makes hundreds of calls with one key; the limits are tested in test_web_hardening.py.
    return demo_app(
        tmp_path_factory.mktemp("fuzz"),
        rate_limit_api="100000/minute",
        rate_limit_start="100000/minute",
        rate_limit_api_auth_failures="100000/minute",
    )


@pytest.fixture(scope="module")
def api_schema(api_app):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", api_app)


OPERATIONS = [
    ("/sessions", "POST"),
    ("/sessions", "GET"),
    ("/sessions/{id}", "GET"),
    ("/sessions/{id}", "DELETE"),
    ("/sessions/{id}/registration/retry", "POST"),
    ("/sessions/{id}/complete", "POST"),
    ("/sessions/{id}/confirmation", "POST"),
]


def test_the_operations_fuzzed_are_all_the_documented_ones(api_schema):
    documented = {(op.ok().path, op.ok().method.upper()) for op in api_schema.get_all_operations()}
    assert documented == set(OPERATIONS)


# schemathesis.pytest.from_fixture reads pytest internals that pytest 9 removed (request.node._nodeid),
# so each operation's hypothesis strategy is driven directly.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
@pytest.mark.parametrize(("path", "method"), OPERATIONS)
@pytest.mark.parametrize("key", ["valid", "none", "wrong"])
def test_every_api_operation_answers_as_documented(api_schema, path, method, mode, key):
    """No 5xx, only documented statuses and content types, bodies that match the schemas; valid and
    invalid input (negative mode), with the right key, without one and with a wrong one (401)."""
    operation = api_schema[path][method]
    headers = {"valid": AUTH, "none": {}, "wrong": {"Authorization": "Bearer not-a-key"}}[key]
    seen: set[int] = set()

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case):
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        seen.add(response.status_code)

    run()
    if key != "valid":
        assert seen == {401}
    elif mode is GenerationMode.POSITIVE:
        assert seen and 401 not in seen  # (negative mode also mutates the Authorization header)


def test_the_openapi_document_is_served_without_a_key_and_names_this_server(api_app):
    resp = api_app.test_client().get("/api/v1/openapi.json")
    assert resp.status_code == 200
    doc = resp.get_json()
    assert doc["servers"] == [{"url": "http://testserver.local/api/v1"}]
    assert doc["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


def test_an_oversized_body_is_a_documented_413_problem(api_app, api_schema):
    resp = api_app.test_client().post(
        "/api/v1/sessions", data=b"{" + b" " * 300_000 + b"}", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert resp.status_code == 413 and resp.mimetype == "application/problem+json"
    assert "413" in api_schema.raw_schema["paths"]["/sessions"]["post"]["responses"]


def test_a_rate_limited_call_is_a_documented_429_problem_with_retry_after(tmp_path):
    app = demo_app(tmp_path, rate_limit_api="1/minute")
    client = app.test_client()
    client.get("/api/v1/sessions/x", headers=AUTH)
    resp = client.get("/api/v1/sessions/x", headers=AUTH)
    assert resp.status_code == 429 and resp.mimetype == "application/problem+json"
    assert int(resp.headers["Retry-After"]) > 0
    doc = client.get("/api/v1/openapi.json").get_json()
    for path in doc["paths"].values():
        for operation in (v for k, v in path.items() if k != "parameters"):
            assert "Retry-After" in operation["responses"]["429"]["headers"]
