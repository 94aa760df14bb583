"""Metrics, request ids and structured logs, read the way an operator reads them: /metrics and log lines."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest
from prometheus_client.parser import text_string_to_metric_families

from demo_driver import Citizen, Staff, demo_app, run_worker
from zgw_identificatie import request_context
from zgw_identificatie.app import services_of
from zgw_identificatie.logging_setup import make_handler
from zgw_identificatie.metrics import login_reason, zgw_operation

BSN = "999993653"
TOKEN = "metrics-token-for-the-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def app(tmp_path):
    return demo_app(tmp_path, metrics_token=TOKEN)


def scrape(app) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = app.test_client().get("/metrics", headers=AUTH)
    assert resp.status_code == 200
    assert resp.content_type.startswith("text/plain")
    values = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            values[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return values


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples, name, **labels) -> float:
    """Sum over every sample of ``name`` whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


def with_request_id(client, request_id: str):
    client.environ_base["HTTP_X_REQUEST_ID"] = request_id
    return client


def test_metrics_need_the_token_and_are_absent_without_one(app, tmp_path):
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": TOKEN}).status_code == 401
    assert client.get("/metrics").headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers=AUTH).status_code == 200
    no_token = demo_app(tmp_path / "other")
    assert no_token.test_client().get("/metrics", headers=AUTH).status_code == 404


def test_an_identification_moves_the_counters_and_no_bsn_or_session_id_is_in_a_label(app):
    before = scrape(app)
    staff = Staff.login(app)
    sid = staff.start("new-citizen")
    Citizen.new(app).login(sid, bsn=BSN)
    mid = scrape(app)
    assert value(mid, "zgwid_registrations_by_state", state="pending") == 1
    assert run_worker(app) == 1
    after = scrape(app)

    def moved(name, **labels):
        return total(after, name, **labels) - total(before, name, **labels)

    assert moved("zgwid_identifications_total", flow="new-citizen", outcome="started") == 1
    assert moved("zgwid_identifications_total", flow="new-citizen", outcome="identified") == 1
    assert moved("zgwid_digid_logins_total", outcome="success", reason="ok") == 1
    assert moved("zgwid_registrations_total", outcome="started") == 1
    assert moved("zgwid_registrations_total", outcome="done") == 1
    assert moved("zgwid_registration_attempts_total") == 1
    # zaak, rol, status, document, link: one POST each, timed with its status
    for operation in ("POST zaken", "POST rollen", "POST statussen", "POST enkelvoudiginformatieobjecten"):
        assert moved("zgwid_zgw_request_duration_seconds_count", operation=operation, status="201") == 1, operation
    assert moved("zgwid_zgw_request_duration_seconds_count", api="zaken") >= 3
    assert value(after, "zgwid_registrations_by_state", state="done") == 1
    assert value(after, "zgwid_registrations_by_state", state="pending") == 0
    assert value(after, "zgwid_registration_oldest_pending_age_seconds") == 0
    assert moved("zgwid_http_requests_total", route="/digid/acs", status="3xx") == 1
    text = app.test_client().get("/metrics", headers=AUTH).text
    assert BSN not in text and sid not in text and sid[:8] not in text
    assert "zgwid_event_deliveries_total" in text or "zgwid_event_deliveries" in text


def test_cancel_and_a_too_low_level_are_counted_by_reason(app):
    before = scrape(app)
    staff = Staff.login(app)
    Citizen.new(app).digid(staff.start("known-citizen", bsn=BSN), action="annuleren")
    Citizen.new(app).digid(staff.start("known-citizen", bsn=BSN), loa="basis")
    after = scrape(app)
    assert (
        total(after, "zgwid_digid_logins_total", outcome="cancelled")
        - total(before, "zgwid_digid_logins_total", outcome="cancelled")
        == 1
    )
    assert (
        total(after, "zgwid_identifications_total", flow="known-citizen", outcome="level_too_low")
        - total(before, "zgwid_identifications_total", flow="known-citizen", outcome="level_too_low")
        == 1
    )
    assert total(after, "zgwid_digid_logins_total", outcome="failed", reason="level_too_low") > total(
        before, "zgwid_digid_logins_total", outcome="failed", reason="level_too_low"
    )


def test_login_reasons_and_zgw_operations_are_bounded_labels():
    assert login_reason("back channel unreachable") == "back_channel"
    assert login_reason("Assertion ID replayed") == "replay"
    assert login_reason("something nobody foresaw 999993653") == "invalid_response"
    assert zgw_operation("post", "zaken") == "POST zaken"
    assert zgw_operation("GET", "https://oz.example/zaken/api/v1/zaken/9b0c?x=1") == "GET zaken"
    download = zgw_operation("GET", "enkelvoudiginformatieobjecten/abc/download")
    assert download == "GET enkelvoudiginformatieobjecten/download"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("abc-123_x.y:z", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("", False),
        ("bad id", False),
        ("<script>", False),
        ("tab\tseparated", False),
        ("caf\u00e9", False),
        ("999993653", False),  # would be masked in the logs (and could be a BSN)
        ("req-999993653", False),
    ],
)
def test_a_request_id_is_taken_when_safe_and_made_otherwise(app, given, kept):
    resp = app.test_client().get("/health/live", headers={"X-Request-Id": given} if given else {})
    echoed = resp.headers["X-Request-Id"]
    assert (echoed == given) is kept
    assert request_context.valid(echoed) and len(echoed) <= 64


def test_the_request_id_follows_the_identification_into_the_registration_the_worker_and_the_zgw_calls(app):
    """The ACS request's id is stored with the registration; the worker logs under it and sends it on."""
    rid = "ident-7f3a9c"
    seen: list[str | None] = []

    @app.before_request
    def _record_zgw_headers():
        from flask import request

        # The registration's own calls; the catalogue is resolved once for all registrations, outside any of them.
        if request.path.startswith("/sandbox/") and "/api/v1/" in request.path and "/catalogi/" not in request.path:
            seen.append(request.headers.get("X-Request-Id"))

    stream = io.StringIO()
    handler = make_handler("json", stream)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        staff = Staff.login(app)
        sid = staff.start("new-citizen")
        citizen = Citizen.new(app)
        with_request_id(citizen.client, rid)
        citizen.login(sid, bsn=BSN)
        reg = services_of(app).store.registration_for_session(sid)
        assert reg is not None and reg.request_id == rid
        assert run_worker(app) == 1
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert seen and all(h == rid for h in seen), seen
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message", "request_id", "replica"} <= set(line) for line in lines)
    worker_lines = [line for line in lines if "registration" in line["message"] and "done" in line["message"]]
    assert worker_lines and all(line["request_id"] == rid for line in worker_lines)
    assert BSN not in stream.getvalue()


def test_json_logs_mask_a_bsn_in_the_message_in_structured_fields_and_in_tracebacks_at_debug():
    stream = io.StringIO()
    logger = logging.getLogger("zgwid.test.json")
    handler = make_handler("json", stream)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        with request_context.bound("req-42"):
            logger.debug(
                "looked up %s",
                BSN,
                extra={"bsn": BSN, "as_number": int(BSN), "nested": {"who": [f"s00000000:{BSN}"]}, "count": 3},
            )
            try:
                raise ValueError(f"bad person {BSN}")
            except ValueError:
                logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert BSN not in out
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["level"] == "DEBUG" and first["request_id"] == "req-42" and first["count"] == 3
    assert first["bsn"] == "*********" and first["as_number"] == "*********"
    assert first["nested"] == {"who": ["s00000000:*********"]}
    assert "ValueError" in second["exc_info"] and "*********" in second["exc_info"]


def test_text_logs_carry_the_request_id_and_stay_masked():
    stream = io.StringIO()
    logger = logging.getLogger("zgwid.test.text")
    handler = make_handler("text", stream)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with request_context.bound("req-43"):
            logger.warning("person %s", BSN)
    finally:
        logger.removeHandler(handler)
    assert "[req-43]" in stream.getvalue() and BSN not in stream.getvalue()


def test_counters_of_several_processes_are_summed_in_multiprocess_mode(tmp_path):
    """What gunicorn's workers do: each process writes its counters; one scrape sums them; a dead one stays."""
    folder = tmp_path / "prom"
    folder.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    child = textwrap.dedent(
        """
        from zgw_identificatie import metrics
        metrics.IDENTIFICATIONS.labels("mutual", "identified").inc()
        metrics.observe_zgw("zaken", "POST", "zaken", "201", 0.2)
        """
    )
    for _ in range(3):
        subprocess.run([sys.executable, "-c", child], env=env, check=True, timeout=60)
    reader = textwrap.dedent(
        """
        from zgw_identificatie import metrics
        print(metrics.render(None).decode())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", reader], env=env, check=True, timeout=60, capture_output=True, text=True
    )
    samples = {}
    for family in text_string_to_metric_families(out.stdout):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    assert value(samples, "zgwid_identifications_total", flow="mutual", outcome="identified") == 3
    labels = {"api": "zaken", "operation": "POST zaken", "status": "201"}
    assert value(samples, "zgwid_zgw_request_duration_seconds_count", **labels) == 3


def test_the_separate_metrics_port_serves_without_a_token(app):
    """ZGWID_METRICS_PORT: the listener the gunicorn master and the worker start (here on an ephemeral port)."""
    import requests

    from zgw_identificatie.metrics import start_metrics_server

    server = start_metrics_server(0, "127.0.0.1", services_of(app).store)
    try:
        resp = requests.get(f"http://127.0.0.1:{server.server_port}/metrics", timeout=10)
    finally:
        server.shutdown()
        server.server_close()
    assert resp.status_code == 200
    assert "zgwid_registrations_by_state" in resp.text and "zgwid_store_up 1.0" in resp.text


def test_the_replica_name_is_in_the_served_by_header_and_in_json_log_lines(tmp_path):
    named = demo_app(tmp_path / "a", replica_name="replica-7")
    assert named.test_client().get("/health/live").headers["X-Served-By"] == "replica-7"
    stream = io.StringIO()
    logger = logging.getLogger("zgwid.test.replica")
    handler = make_handler("json", stream)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("hello")
    finally:
        logger.removeHandler(handler)
    assert json.loads(stream.getvalue())["replica"] == "replica-7"
    unnamed = demo_app(tmp_path / "b")
    assert "X-Served-By" not in unnamed.test_client().get("/health/live").headers
