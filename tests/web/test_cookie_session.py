"""The login cookie (web/cookie_session.py) is the cookie Flask writes, read as Flask reads it; less work."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from flask import Flask, session
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature, SignatureExpired
from markupsafe import Markup

from demo_driver import Staff, csrf, demo_app
from zgw_identificatie.web.cookie_session import CookieSessionsForPages

NOW = 1_796_000_000.0
SESSIONS = [
    {"_csrf": "I7pmxVdFCqMpo9CMbv7nbL8uivRDBW6MZokZyY3Oras"},
    {"_csrf": "I7pmxVdFCqMpo9CMbv7nbL8uivRDBW6MZokZyY3Oras", "digid_start": "p31l3h3e-Bx2-vX4I8lhgzr_UWhMVatW"},
    {"citizen_done": "abc", "citizen_seen": NOW + 0.123456, "citizen_since": NOW, "_csrf": "t"},
    {"staff": {"id": "sanne", "name": "Sanne de Vries"}, "staff_seen": NOW, "lang": "en"},
    {"_flashes": [("ok", "Afgerond.")], "_csrf": "t"},
    {"x": Markup("<b>"), "n": 3, "b": True, "none": None},
    {" t": ["a"]},  # one key named like a tag of Flask's tagged JSON
    {"name": "Zoë “quoted” <&>", "long": "ab" * 300},  # not ASCII; long enough to be compressed
    {},
]


def _app(**config: object) -> Flask:
    app = Flask("t")
    app.config.update({"SECRET_KEY": "s" * 40, **config})
    return app


@pytest.fixture
def frozen(monkeypatch):
    monkeypatch.setattr(time, "time", lambda: NOW)


@pytest.mark.parametrize("data", SESSIONS)
def test_the_cookie_is_the_one_flask_writes_and_each_reads_the_other(data, frozen):
    app = _app()
    ours, flasks = CookieSessionsForPages(), SecureCookieSessionInterface()
    with app.test_request_context("/"):
        mine = ours.get_signing_serializer(app).dumps(data)  # type: ignore[union-attr]
        theirs = flasks.get_signing_serializer(app).dumps(data)  # type: ignore[union-attr]
        assert mine == theirs
        max_age = int(app.permanent_session_lifetime.total_seconds())
        assert ours.get_signing_serializer(app).loads(theirs, max_age=max_age) == data  # type: ignore[union-attr]
        assert flasks.get_signing_serializer(app).loads(mine, max_age=max_age) == data  # type: ignore[union-attr]


def test_a_tampered_expired_or_foreign_cookie_is_refused_and_an_old_key_still_reads(frozen, monkeypatch):
    old = _app(SECRET_KEY="o" * 40)
    app = _app(SECRET_KEY_FALLBACKS=["o" * 40])
    ours = CookieSessionsForPages()
    data = {"_csrf": "token", "citizen_done": "abc"}
    max_age = int(app.permanent_session_lifetime.total_seconds())
    with app.test_request_context("/"):
        serializer = ours.get_signing_serializer(app)
        cookie = serializer.dumps(data)  # type: ignore[union-attr]
        payload, stamp, signature = cookie.split(".")
        for bad in (
            f"{payload}x.{stamp}.{signature}",
            f"{payload}.{stamp}.{signature[:-2]}AA",
            f"{payload}.{signature}",
            "garbage",
            "",
        ):
            with pytest.raises(BadSignature):
                serializer.loads(bad, max_age=max_age)  # type: ignore[union-attr]
        with old.test_request_context("/"):
            by_old_key = SecureCookieSessionInterface().get_signing_serializer(old).dumps(data)  # type: ignore[union-attr]
        assert serializer.loads(by_old_key, max_age=max_age) == data  # type: ignore[union-attr]
        assert ours.get_signing_serializer(_app()) is not serializer  # another set of keys: its own
        with pytest.raises(BadSignature):
            ours.get_signing_serializer(_app()).loads(by_old_key, max_age=max_age)  # type: ignore[union-attr]
        monkeypatch.setattr(time, "time", lambda: NOW + max_age + 1)
        with pytest.raises(SignatureExpired):
            serializer.loads(cookie, max_age=max_age)  # type: ignore[union-attr]
        monkeypatch.setattr(time, "time", lambda: NOW - 5)
        with pytest.raises(SignatureExpired):
            serializer.loads(cookie, max_age=max_age)  # type: ignore[union-attr]


def _view_app(interface: SecureCookieSessionInterface) -> Flask:
    app = _app()
    app.session_interface = interface

    @app.get("/<action>")
    def view(action: str) -> tuple[str, int, dict[str, str]]:
        if action == "read":
            session.get("x")
        elif action == "write":
            session["x"] = "1"
        elif action == "clear":
            session.clear()
        elif action == "vary":
            session["x"] = "1"
            return "", 200, {"Vary": "Accept-Language"}
        elif action == "permanent":
            session.permanent = True
            session["x"] = "1"
        return "", 200, {}

    return app


@pytest.mark.parametrize("action", ["none", "read", "write", "clear", "vary", "permanent"])
def test_the_answer_has_the_headers_flask_gives_it(action, frozen):
    answers = []
    for interface in (CookieSessionsForPages(), SecureCookieSessionInterface()):
        client = _view_app(interface).test_client()
        client.get("/write")
        answers.append(client.get(f"/{action}").headers.to_wsgi_list())
    assert answers[0] == answers[1]


def test_the_serializer_is_built_once_and_a_bad_cookie_starts_a_fresh_session(tmp_path):
    app = demo_app(tmp_path)
    interface = app.session_interface
    assert interface.get_signing_serializer(app) is interface.get_signing_serializer(app)
    client = app.test_client()
    token = csrf(client.get("/staff/login").text)
    client.set_cookie("zgwid", client.get_cookie("zgwid").value[:-3] + "AAA")  # type: ignore[union-attr]
    assert csrf(client.get("/staff/login").text) != token  # tampered: a new session, a new token
    staff = Staff.login(app)
    assert staff.client.get("/staff/").status_code == 200  # our cookie carries the login


def test_the_session_lifetime_still_limits_a_permanent_cookie(frozen):
    app = _app(PERMANENT_SESSION_LIFETIME=timedelta(seconds=60))
    with app.test_request_context("/"):
        serializer = CookieSessionsForPages().get_signing_serializer(app)
        cookie = serializer.dumps({"x": "1"})  # type: ignore[union-attr]
        assert serializer.loads(cookie, max_age=60) == {"x": "1"}  # type: ignore[union-attr]
