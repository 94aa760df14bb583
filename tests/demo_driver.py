"""Drive the whole service over HTTP as a behandelaar and a citizen would (Flask test clients).

Used by the web tests and the security tests: the real app with the real SAML SP talking to the
DigiD simulator and the real ZGW clients talking to the sandbox, in one process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from zgw_identificatie.app import create_app, services_of
from zgw_identificatie.testing.settings import make_settings
from zgw_identificatie.web.security import hash_secret_sha256

BASE_URL = "http://testserver.local"
PASSWORD = "correct horse battery staple"
API_KEY = "test-api-key-0123456789"
OTHER_API_KEY = "other-api-key-9876543210"
TRUSTED_API_KEY = "trusted-api-key-5555555555"  # acts_for_staff: names the behandelaar
TEAM_API_KEY = "team-api-key-7777777777"  # acts_for_staff and team: sees all sessions it started

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def demo_app(tmp_path: Path, *, clock: Any = None, store: Any = None, **overrides: Any) -> Flask:
    settings = make_settings(
        tmp_path,
        base_url=BASE_URL,
        staff_users={
            "sanne": {"name": "Sanne de Vries", "password_hash": generate_password_hash(PASSWORD)},
            "ahmed": {"name": "Ahmed Bakker", "password_hash": generate_password_hash(PASSWORD)},
        },
        api_keys={
            "demo": {"key_hash": hash_secret_sha256(API_KEY), "name": "Demo", "behandelaar": "Team Burgerzaken"},
            "other": {"key_hash": hash_secret_sha256(OTHER_API_KEY), "name": "Other", "behandelaar": "Team X"},
            "zac": {"key_hash": hash_secret_sha256(TRUSTED_API_KEY), "name": "ZAC", "acts_for_staff": True},
            "kcc": {
                "key_hash": hash_secret_sha256(TEAM_API_KEY),
                "name": "KCC",
                "acts_for_staff": True,
                "team": True,
            },
        },
        **overrides,
    )
    adapters = {name: value for name, value in (("clock", clock), ("store", store)) if value is not None}
    return create_app(settings, adapters=adapters)


def path_of(url: str) -> str:
    return url.replace(BASE_URL, "") if url.startswith(BASE_URL) else url


@dataclass
class Staff:
    client: FlaskClient

    @classmethod
    def login(cls, app: Flask, username: str = "sanne") -> Staff:
        client = app.test_client()
        page = client.get("/staff/login")
        resp = client.post(
            "/staff/login", data={"csrf_token": csrf(page.text), "username": username, "password": PASSWORD}
        )
        assert resp.status_code == 302, resp.status_code
        return cls(client)

    def start(self, flow: str, **fields: str) -> str:
        """Start a session through the staff form; returns the session id."""
        page = self.client.get("/staff/")
        resp = self.client.post("/staff/sessions", data={"csrf_token": csrf(page.text), "flow": flow, **fields})
        assert resp.status_code == 303, (resp.status_code, resp.text[:500])
        return resp.location.rsplit("/", 1)[-1]

    def status(self, session_id: str) -> dict[str, Any]:
        return self.client.get(f"/staff/sessions/{session_id}/status.json").get_json()  # type: ignore[no-any-return]

    def complete(self, session_id: str) -> int:
        page = self.client.get(f"/staff/sessions/{session_id}")
        return self.client.post(
            f"/staff/sessions/{session_id}/voltooien", data={"csrf_token": csrf(page.text)}
        ).status_code


@dataclass
class Citizen:
    client: FlaskClient

    @classmethod
    def new(cls, app: Flask) -> Citizen:
        return cls(app.test_client())

    def open(self, session_id: str) -> Any:
        return self.client.get(f"/i/{session_id}")

    def to_simulator(self, session_id: str) -> Any:
        """Open the link, press 'Inloggen met DigiD', post the signed AuthnRequest to the simulator."""
        start = self.open(session_id)
        assert start.status_code == 200, start.status_code
        hand_off = self.client.post(
            f"/i/{session_id}/login", data={"csrf_token": csrf(start.text)}, follow_redirects=True
        )  # POST-redirect-GET to the hand-off page
        assert hand_off.status_code == 200
        action = re.search(r'<form method="post" action="([^"]+)" id="saml-post"', hand_off.text).group(1)
        fields = dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', hand_off.text))
        page = self.client.post(path_of(action), data=fields, follow_redirects=True)  # DigiD answers with a 303
        assert page.status_code == 200, page.status_code
        return page

    def digid(self, session_id: str, bsn: str = "999993653", loa: str = "midden", action: str = "inloggen") -> Any:
        """Log in (or cancel) at the simulator and follow DigiD's redirect to our ACS."""
        page = self.to_simulator(session_id)
        form = re.search(r"<form[^>]*>(.*?)</form>", page.text, re.S).group(0)
        target = re.search(r'action="([^"]*)"', form).group(1)
        data = dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', form))
        data.update({"bsn": bsn, "loa": loa, "action": action})
        back = self.client.post(path_of(target), data=data)
        assert back.status_code in (302, 303), (back.status_code, back.text[:300])
        self.artifact_url = path_of(back.location)
        return self.client.get(self.artifact_url)

    def login(self, session_id: str, **kw: str) -> Any:
        """The whole login; returns the final page after following our redirects."""
        resp = self.digid(session_id, **kw)
        while resp.status_code in (302, 303):
            resp = self.client.get(path_of(resp.location))
        return resp


def run_worker(app: Flask) -> int:
    from zgw_identificatie.worker import run_once

    return run_once(services_of(app))
