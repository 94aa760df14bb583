"""Events from the outbox: a Notificaties API stand-in (checked against the official OpenAPI document) and a
webhook receiver (checking Standard Webhooks signatures with the reference library), both real HTTP servers
on 127.0.0.1. Receivers that are down get every event once they are back, in order, exactly once."""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
import yaml
from flask import Flask, jsonify, request
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest
from standardwebhooks import Webhook
from werkzeug.serving import make_server

from demo_driver import API_KEY, Citizen, demo_app
from third_party import SPECS_DIR, in_ci
from zgw_identificatie.app import services_of
from zgw_identificatie.outbox import run_once
from zgw_identificatie.testing.clock import FixedClock

# The official document stays outside the repository (tests/third_party.py says where it is looked for).
SPEC = SPECS_DIR / "notificaties-1.0.0.yaml"
BSN = "999993653"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
ZGW_SECRET = "nrc-test-secret-0123456789-abcdefghijklmnop"
STATES = ["created", "opened", "authenticated", "completed"]


class Server:
    """A WSGI app on 127.0.0.1 (ephemeral port) that can be stopped and started again on the same port."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.port = 0
        self.start()

    def start(self) -> None:
        self.server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class NrcStandIn:
    """Enough of a Notificaties API 1.0.0 (as Open Notificaties behaves, NOTIFICATIES-NOTES.md) to publish to."""

    def __init__(self) -> None:
        if not SPEC.is_file():
            message = f"the Notificaties API 1.0.0 document is missing: {SPEC} (set ZGWID_TEST_SPECS_DIR)"
            if in_ci():
                pytest.fail(message)
            pytest.skip(message)
        with SPEC.open(encoding="utf-8") as fh:
            document = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        self.server: Server | None = None
        self.kanalen: dict[str, dict[str, Any]] = {}
        self.notificaties: list[dict[str, Any]] = []
        self.bodies: list[str] = []
        self.invalid: list[str] = []
        self.failing = False
        app = Flask("nrc")

        @app.before_request
        def check() -> Any:
            self.bodies.append(request.get_data(as_text=True))
            if self.failing:
                return jsonify({"detail": "down"}), 503
            try:
                self.spec.validate_request(WerkzeugOpenAPIRequest(request))
            except Exception as exc:  # any schema or security violation: a test failure
                self.invalid.append(f"{request.method} {request.path}: {exc}")
                return jsonify({"detail": str(exc)}), 400
            token = request.headers.get("Authorization", "").removeprefix("Bearer ")
            try:
                claims = jwt.decode(token, ZGW_SECRET, algorithms=["HS256"], options={"verify_exp": False})
            except jwt.PyJWTError as exc:
                self.invalid.append(f"jwt: {exc}")
                return jsonify({"code": "invalid-jwt-signature"}), 403
            if not claims.get("client_id") or "iat" not in claims:
                return jsonify({"code": "jwt-missing-iat-claim"}), 403
            return None

        @app.get("/api/v1/kanaal")
        def kanalen() -> Any:
            naam = request.args.get("naam")
            return jsonify([k for k in self.kanalen.values() if naam in (None, k["naam"])])

        @app.post("/api/v1/kanaal")
        def kanaal() -> Any:
            body = request.get_json()
            if body["naam"] in self.kanalen:
                return jsonify({"invalidParams": [{"name": "naam", "code": "unique"}]}), 400
            made = {"url": f"{self.url}/api/v1/kanaal/{len(self.kanalen) + 1}", **body}
            self.kanalen[body["naam"]] = made
            return jsonify(made), 201

        @app.post("/api/v1/notificaties")
        def notificaties() -> Any:
            body = request.get_json()
            kanaal = self.kanalen.get(body["kanaal"])
            if kanaal is None:
                return jsonify({"kanaal": ["Kanaal met deze naam bestaat niet."]}), 400
            names, filters = set(body.get("kenmerken") or {}), set(kanaal.get("filters", []))
            if "kenmerken" not in body or not (names <= filters or names >= filters):
                return jsonify({"detail": "kenmerken do not match the kanaal's filters"}), 400
            if datetime.fromisoformat(body["aanmaakdatum"]) > datetime.now(UTC):
                return jsonify({"detail": "aanmaakdatum in the future"}), 400
            self.notificaties.append(body)
            return jsonify(body), 201

        self.server = Server(app)
        document["servers"] = [{"url": f"{self.url}/api/v1"}]
        self.spec = OpenAPI.from_dict(document, config=Config(spec_validator_cls=None))

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url


class WebhookReceiver:
    def __init__(self, secret: str) -> None:
        self.verifier = Webhook(secret)
        self.events: list[dict[str, Any]] = []
        self.ids: list[str] = []
        self.rejected = 0
        self.failing = False
        app = Flask("receiver")

        @app.post("/hook")
        def hook() -> Any:
            if self.failing:
                return "", 503
            try:
                event = self.verifier.verify(request.get_data(), dict(request.headers))
            except Exception:
                self.rejected += 1
                return "", 401
            self.ids.append(request.headers["webhook-id"])
            self.events.append(event)
            return "", 204

        self.server = Server(app)


@pytest.fixture
def nrc() -> Iterator[NrcStandIn]:
    stand_in = NrcStandIn()
    yield stand_in
    assert stand_in.server is not None
    stand_in.server.stop()


def nrc_app(tmp_path: Path, clock: FixedClock, nrc: NrcStandIn) -> Flask:
    settings = {"notificaties_url": nrc.url + "/api/v1/", "client_id": "zgwid", "secret": ZGW_SECRET}
    return demo_app(tmp_path, clock=clock, **{f"zgw__{k}": v for k, v in settings.items()})


def drain(app: Flask, clock: FixedClock, rounds: int = 30) -> int:
    """Run the worker's event delivery until nothing is due, moving the clock past each backoff."""
    total = 0
    for _ in range(rounds):
        done = run_once(services_of(app))
        total += done
        clock.advance(minutes=61)  # beyond the longest backoff
        if not done:
            break
    return total


def a_whole_session(app: Flask) -> str:
    client = app.test_client()
    body = client.post("/api/v1/sessions", json={"flow": "mutual"}, headers=AUTH).get_json()
    Citizen.new(app).login(body["id"], bsn=BSN)
    assert client.post(f"/api/v1/sessions/{body['id']}/complete", headers=AUTH).status_code == 204
    return str(body["id"])


def test_a_notificaties_api_that_was_down_gets_one_notificatie_per_state_change_in_order(tmp_path, nrc):
    clock = FixedClock(datetime.now(UTC))
    app = demo_app(
        tmp_path,
        clock=clock,
        zgw__notificaties_url=nrc.url + "/api/v1/",
        zgw__client_id="zgwid",
        zgw__secret=ZGW_SECRET,
    )
    nrc.failing = True  # down (503) while the whole session happens
    first = a_whole_session(app)
    assert run_once(services_of(app)) >= 1
    assert nrc.notificaties == [] and nrc.bodies  # it was tried
    clock.advance(minutes=5)
    assert nrc.server is not None
    nrc.server.stop()  # now not even listening: connection refused
    run_once(services_of(app))
    nrc.server.start()
    nrc.failing = False
    second = a_whole_session(app)
    drain(app, clock)
    assert nrc.invalid == []
    assert list(nrc.kanalen) == ["identificaties"]
    assert nrc.kanalen["identificaties"]["filters"] == ["flow", "state", "behandelaar"]
    for sid in (first, second):
        mine = [n for n in nrc.notificaties if n["resourceUrl"].endswith("/" + sid)]
        assert [n["kenmerken"]["state"] for n in mine] == STATES  # one per state change, in order
        assert mine[0]["actie"] == "create" and {n["actie"] for n in mine[1:]} == {"update"}
        assert {n["kenmerken"]["behandelaar"] for n in mine} == {"api:demo"}
        assert all(n["hoofdObject"] == f"http://testserver.local/api/v1/sessions/{sid}" for n in mine)
    assert len(nrc.notificaties) == 8
    assert not any(BSN in body for body in nrc.bodies)
    drain(app, clock)
    assert len(nrc.notificaties) == 8  # nothing twice


def test_a_webhook_receiver_verifies_every_signature_and_sees_every_event_once(tmp_path):
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    receiver = WebhookReceiver(secret)
    try:
        clock = FixedClock(datetime.now(UTC))
        app = demo_app(tmp_path, clock=clock)
        settings = services_of(app).settings
        settings.api_keys["demo"] |= {"webhook_url": receiver.server.url + "/hook", "webhook_secret": secret}
        receiver.failing = True
        sid = a_whole_session(app)
        run_once(services_of(app))
        assert receiver.events == []
        receiver.failing = False
        withdrawn = app.test_client().post("/api/v1/sessions", json={"flow": "mutual"}, headers=AUTH).get_json()["id"]
        app.test_client().delete(f"/api/v1/sessions/{withdrawn}", headers=AUTH)
        drain(app, clock)
        assert receiver.rejected == 0
        assert len(receiver.ids) == len(set(receiver.ids)) == 6  # every event once
        mine = [e for e in receiver.events if e["data"]["id"] == sid]
        assert [e["type"] for e in mine] == [f"session.{s}" for s in STATES]
        other = [e["type"] for e in receiver.events if e["data"]["id"] == withdrawn]
        assert other == ["session.created", "session.withdrawn"]
        assert BSN not in json.dumps(receiver.events)
        # A forged or replayed-with-another-body message fails the receiver's check.
        from zgw_identificatie.outbox import webhook_headers

        forged = webhook_headers("whsec_" + base64.b64encode(b"x" * 24).decode(), "msg_x", b"{}")
        with pytest.raises(Exception):
            receiver.verifier.verify(b"{}", forged)
    finally:
        receiver.server.stop()


def test_the_events_of_a_session_are_in_the_outbox_with_no_personal_data(tmp_path):
    app = demo_app(tmp_path)
    sid = a_whole_session(app)
    events = services_of(app).store.list_events(session_id=sid)
    assert [e.type for e in events] == [f"session.{s}" for s in STATES]
    assert BSN not in repr(events)


def test_the_kanaal_is_registered_by_a_command_once(nrc, monkeypatch, capsys):
    from zgw_identificatie.cli import main

    monkeypatch.setenv("ZGWID_ZGW_NOTIFICATIES_URL", nrc.url + "/api/v1/")
    monkeypatch.setenv("ZGWID_ZGW_CLIENT_ID", "zgwid")
    monkeypatch.setenv("ZGWID_ZGW_SECRET", ZGW_SECRET)
    assert main(["notificaties-kanaal"]) == 0
    assert main(["notificaties-kanaal"]) == 0  # already there: found, not registered twice
    assert list(nrc.kanalen) == ["identificaties"] and nrc.invalid == []
    assert capsys.readouterr().out.count("kanaal identificaties: http://127.0.0.1") == 2


def test_a_notificaties_api_that_lost_its_kanaal_gets_it_registered_again(tmp_path, nrc):
    clock = FixedClock(datetime.now(UTC))
    app = nrc_app(tmp_path, clock, nrc)
    client = app.test_client()
    client.post("/api/v1/sessions", json={"flow": "mutual"}, headers=AUTH)
    drain(app, clock)
    nrc.kanalen.clear()  # the server was reset
    client.post("/api/v1/sessions", json={"flow": "mutual"}, headers=AUTH)
    drain(app, clock)
    assert list(nrc.kanalen) == ["identificaties"] and len(nrc.notificaties) == 2 and nrc.invalid == []


def test_a_session_nobody_finished_ends_with_an_expired_event_when_the_purge_erases_it(tmp_path, nrc):
    clock = FixedClock(datetime.now(UTC))
    app = nrc_app(tmp_path, clock, nrc)
    client = app.test_client()
    left = client.post("/api/v1/sessions", json={"flow": "mutual"}, headers=AUTH).get_json()["id"]
    done = a_whole_session(app)
    clock.advance(minutes=services_of(app).settings.session_minutes + 1)
    assert services_of(app).store.purge(clock.now())["sessions"] == 2
    drain(app, clock)
    states = {
        sid: [(n["actie"], n["kenmerken"]["state"]) for n in nrc.notificaties if n["resourceUrl"].endswith(sid)]
        for sid in (left, done)
    }
    assert states[left] == [("create", "created"), ("destroy", "created")]
    assert [s for _, s in states[done]] == STATES  # a completed session has said its last word already
    assert nrc.invalid == []


def test_the_outbox_backlog_and_every_delivery_attempt_are_in_the_metrics(tmp_path, nrc):
    """An operator sees events waiting for the fan-out, deliveries waiting for a receiver (and how old the oldest
    is), and a count per attempt by channel and outcome; none of it names a session."""
    from prometheus_client import REGISTRY, generate_latest

    from zgw_identificatie.metrics import outbox_stats, scrape_registry

    def attempts(outcome: str) -> float:
        labels = {"channel": "notificaties", "outcome": outcome}
        return REGISTRY.get_sample_value("zgwid_event_deliveries_total", labels) or 0.0

    clock = FixedClock(datetime.now(UTC))
    app = nrc_app(tmp_path, clock, nrc)
    store = services_of(app).store
    later = datetime.now(UTC) + timedelta(minutes=10)
    assert outbox_stats(store, later) == (0, 0.0, {}, 0.0)
    nrc.failing = True
    sid = a_whole_session(app)
    waiting, waiting_age, deliveries, lag = outbox_stats(store, later)
    assert (waiting, deliveries, lag) == (4, {}, 0.0) and 540 < waiting_age <= 600
    retries, delivered = attempts("retry"), attempts("delivered")
    run_once(services_of(app))  # fanned out; the first is tried and fails, the other three wait behind it
    waiting, waiting_age, deliveries, lag = outbox_stats(store, later)
    assert (waiting, waiting_age, deliveries) == (0, 0.0, {("notificaties", "pending"): 4}) and 540 < lag <= 600
    assert attempts("retry") == retries + 1
    text = generate_latest(scrape_registry(store)).decode()
    assert 'zgwid_event_deliveries_by_state{channel="notificaties",state="pending"} 4.0' in text
    assert "zgwid_events_waiting 0.0" in text and "zgwid_event_delivery_oldest_pending_age_seconds" in text
    assert sid not in text and sid[:8] not in text and BSN not in text
    nrc.failing = False
    clock.advance(minutes=1)  # past the first backoff
    drain(app, clock)
    assert outbox_stats(store, later) == (0, 0.0, {}, 0.0)
    assert attempts("delivered") == delivered + 4


class HangingReceiver:
    """A webhook URL whose server accepts the connection and never answers (a receiver that hangs)."""

    def __init__(self) -> None:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(50)
        self.connections: list[Any] = []
        self.closing = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closing:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)  # held open, never answered

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"

    def close(self) -> None:
        self.closing = True
        for conn in self.connections:
            conn.close()
        self.sock.close()


def test_a_hanging_webhook_receiver_costs_one_time_out_per_batch_and_holds_back_nothing_else(
    tmp_path, nrc, monkeypatch
):
    """Before, each of its deliveries in a batch waited out the time-out (10 s each, 50 to a batch: longer than
    the 60 s lease, so another worker could claim and send the same ones), and the notificaties waited behind."""
    from zgw_identificatie import outbox

    monkeypatch.setattr(outbox, "TIMEOUT_SECONDS", 0.5)
    hanging = HangingReceiver()
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    receiver = WebhookReceiver(secret)
    try:
        clock = FixedClock(datetime.now(UTC))
        app = nrc_app(tmp_path, clock, nrc)
        services = services_of(app)
        services.settings.api_keys["demo"] |= {"webhook_url": hanging.url, "webhook_secret": secret}
        sessions = [a_whole_session(app) for _ in range(4)]

        run_once(services)
        assert len(hanging.connections) == 1  # one time-out for the whole pass, not one per session
        assert len(nrc.notificaties) == 16  # every notificatie of the 4 sessions went out meanwhile, in order
        for sid in sessions:
            mine = [n["kenmerken"]["state"] for n in nrc.notificaties if n["resourceUrl"].endswith("/" + sid)]
            assert mine == STATES
        with services.store.engine.connect() as conn:  # type: ignore[attr-defined]
            deliveries = conn.execute(
                sa.text("SELECT attempts, lease_until FROM event_deliveries WHERE channel = 'webhook:demo'")
            ).all()
        assert sorted(a for a, _lease in deliveries) == [0] * 15 + [1]  # the skipped ones lost no attempt
        assert all(lease is None for _a, lease in deliveries)  # and are free for any worker

        services.settings.api_keys["demo"]["webhook_url"] = receiver.server.url + "/hook"  # it is back
        clock.advance(seconds=5)  # the failed delivery's retry, and with it the three skipped ones
        drain(app, clock)
        assert len(receiver.ids) == len(set(receiver.ids)) == 16  # every event once
        for sid in sessions:
            assert [e["type"] for e in receiver.events if e["data"]["id"] == sid] == [f"session.{s}" for s in STATES]
        assert len(hanging.connections) == 1
    finally:
        hanging.close()
        receiver.server.stop()
