"""Staff SSO against a real OpenID provider: node-oidc-provider in its own process (tests/oidc_provider).

Our side is driven with the Flask test client, the provider's side with a requests.Session (the
"browser" there); the Location headers are carried across by hand, as a browser would follow them.
Nothing is mocked: discovery, PKCE, the code exchange, the JWKS and the ID token signature are real.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from demo_driver import BASE_URL, Staff, demo_app, path_of

OP_DIR = Path(__file__).resolve().parents[1] / "oidc_provider"
CLIENT_ID = "zgw-identificatie-test"
CLIENT_SECRET = "test-client-secret-0123456789abcdef"
GROUP = "burgerzaken"
ACCOUNTS = {
    "sanne": {"name": "Sanne Jansen", "email": "sanne@example.nl", "groups": [GROUP, "iedereen"]},
    "ahmed": {"name": "Ahmed El Amrani", "groups": [GROUP]},
    "piet": {"name": "Piet Pieters", "groups": ["andere-afdeling"]},
    "anoniem": {"groups": [GROUP]},
}


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start the provider on 127.0.0.1 (a free port it picks itself); installs its npm packages once."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node and npm are needed for the OpenID provider under tests/oidc_provider")
    if not (OP_DIR / "node_modules" / "oidc-provider").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=OP_DIR, check=True, timeout=300)
    log_file = tmp_path_factory.mktemp("op") / "op.log"
    env = {
        **os.environ,
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_REDIRECT_URI": f"{BASE_URL}/staff/oidc/callback",
        "OIDC_ACCOUNTS": json.dumps(ACCOUNTS),
    }
    with open(log_file, "w") as log:
        proc = subprocess.Popen(
            [node, "server.mjs"], cwd=OP_DIR, env=env, stdout=subprocess.PIPE, stderr=log, text=True
        )
    try:
        line = proc.stdout.readline()
        if not line:
            proc.wait(5)
            pytest.fail(f"the OpenID provider did not start:\n{log_file.read_text()}")
        yield json.loads(line)["issuer"]
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()


@pytest.fixture
def app(tmp_path: Path, issuer: str) -> Flask:
    return demo_app(
        tmp_path,
        oidc__issuer=issuer,
        oidc__client_id=CLIENT_ID,
        oidc__client_secret=CLIENT_SECRET,
        oidc__required_group=GROUP,
        oidc__scopes="openid profile groups",
    )


_FORM = re.compile(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', re.S)


def to_callback(
    client: FlaskClient, account: str, *, abort_at_provider: bool = False, next_path: str = "/staff/"
) -> str:
    """Start at our /staff/oidc/login and walk the provider's login and consent pages; returns the
    URL the provider sends the browser back to (our callback), without calling it."""
    start = client.get("/staff/oidc/login", query_string={"next": next_path})
    assert start.status_code == 302, (start.status_code, start.text[:300])
    browser = requests.Session()
    resp = browser.get(start.location, allow_redirects=False, timeout=10)
    for _ in range(12):
        if resp.status_code in (302, 303):
            location = urljoin(resp.url, resp.headers["Location"])
            if location.startswith(BASE_URL):
                return location
            resp = browser.get(location, allow_redirects=False, timeout=10)
            continue
        assert resp.status_code == 200, (resp.status_code, resp.text[:500])
        action, form = _FORM.search(resp.text).groups()
        prompt = re.search(r'name="prompt" value="(\w+)"', form).group(1)
        if abort_at_provider:
            resp = browser.get(urljoin(resp.url, action.rstrip("/") + "/abort"), allow_redirects=False, timeout=10)
            continue
        data = {"prompt": prompt}
        if prompt == "login":
            data.update({"login": account, "password": "any"})
        resp = browser.post(urljoin(resp.url, action), data=data, allow_redirects=False, timeout=10)
    raise AssertionError("the provider never sent the browser back")


def sso_login(app: Flask, account: str) -> tuple[FlaskClient, object]:
    client = app.test_client()
    back = to_callback(client, account)
    return client, client.get(path_of(back))


def with_param(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query[name] = value
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_a_behandelaar_in_the_required_group_logs_in_and_sees_their_name(app):
    """Code flow with PKCE against the real provider → logged in as oidc:<sub>, name on /staff/."""
    client, resp = sso_login(app, "sanne")
    assert resp.status_code == 302 and resp.location.endswith("/staff/")
    page = client.get("/staff/")
    assert page.status_code == 200 and "Sanne Jansen" in page.text
    with client.session_transaction() as sess:
        assert sess["staff"] == {"id": "oidc:sanne", "name": "Sanne Jansen"}
        assert not any(key.startswith("_state_") for key in sess)  # Authlib's state is single use


def test_the_login_page_offers_the_organisation_account_when_an_issuer_is_set(app):
    """The local login page shows the SSO button, which starts the flow with the next page kept."""
    page = app.test_client().get("/staff/login?next=/staff/")
    assert "Inloggen met uw organisatie-account" in page.text and "/staff/oidc/login" in page.text


def test_without_the_required_group_the_login_is_refused_with_a_dutch_403_page(app):
    """Piet is not in 'burgerzaken' → 403 'Geen toegang', no staff session."""
    client, resp = sso_login(app, "piet")
    assert resp.status_code == 403
    assert "Geen toegang" in resp.text and "groep" in resp.text
    assert client.get("/staff/").status_code == 302


def test_without_a_name_claim_the_login_is_refused_with_a_dutch_page(app):
    """An account without the configured name claim cannot log in (no anonymous behandelaar)."""
    client, resp = sso_login(app, "anoniem")
    assert resp.status_code == 403 and "naam of kenmerk" in resp.text
    assert client.get("/staff/").status_code == 302


def test_a_tampered_state_is_refused(app):
    """The callback with another state than the one this browser started with → 400, not logged in."""
    client = app.test_client()
    back = to_callback(client, "sanne")
    resp = client.get(path_of(with_param(back, "state", "tampered-" + "x" * 20)))
    assert resp.status_code == 400 and "Inloggen is mislukt" in resp.text
    assert client.get("/staff/").status_code == 302


def test_a_callback_delivered_to_another_browser_is_refused(app):
    """Login CSRF: browser A's code and state used by browser B (no state in its session) → refused."""
    back = to_callback(app.test_client(), "sanne")
    other = app.test_client()
    resp = other.get(path_of(back))
    assert resp.status_code == 400
    assert other.get("/staff/").status_code == 302


def test_a_replayed_code_is_refused(app):
    """The same callback twice in the same browser: the state is used up, the second one is refused."""
    client = app.test_client()
    back = to_callback(client, "sanne")
    assert client.get(path_of(back)).status_code == 302
    assert client.get(path_of(back)).status_code == 400


def test_a_tampered_code_is_refused_by_the_provider_without_a_500(app):
    """A made-up code → the token endpoint says invalid_grant → Dutch page."""
    client = app.test_client()
    back = to_callback(client, "sanne")
    resp = client.get(path_of(with_param(back, "code", "made-up-code")))
    assert resp.status_code == 400 and "Inloggen is mislukt" in resp.text


def test_cancelling_at_the_provider_gives_a_dutch_page(app):
    """access_denied from the provider → 403 'Inloggen afgebroken'."""
    client = app.test_client()
    back = to_callback(client, "sanne", abort_at_provider=True)
    assert "error=access_denied" in back
    resp = client.get(path_of(back))
    assert resp.status_code == 403 and "afgebroken" in resp.text


def test_an_open_redirect_in_next_is_ignored(app):
    """next=//evil.example → after login the behandelaar lands on /staff/."""
    client = app.test_client()
    back = to_callback(client, "sanne", next_path="//evil.example/")
    resp = client.get(path_of(back))
    assert resp.status_code == 302 and resp.location.endswith("/staff/")


def test_behandelaars_logged_in_over_oidc_only_see_their_own_sessions(app):
    """oidc:sanne's session is a 404 for oidc:ahmed and for the local account with the same user name."""
    sanne_client, _ = sso_login(app, "sanne")
    sanne = Staff(sanne_client)
    sid = sanne.start("mutual")
    assert sanne.client.get(f"/staff/sessions/{sid}").status_code == 200
    ahmed_client, _ = sso_login(app, "ahmed")
    assert ahmed_client.get(f"/staff/sessions/{sid}").status_code == 404
    assert ahmed_client.get(f"/staff/sessions/{sid}/status.json").status_code == 404
    assert sid not in ahmed_client.get("/staff/").text
    local_sanne = Staff.login(app, "sanne")
    assert local_sanne.client.get(f"/staff/sessions/{sid}").status_code == 404
    assert sid in sanne.client.get("/staff/").text


def test_an_unreachable_provider_gives_a_dutch_page_not_a_500(tmp_path):
    """Issuer on a closed port → 502 'Inloggen lukt nu niet'."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = demo_app(
        tmp_path, oidc__issuer=f"http://127.0.0.1:{port}", oidc__client_id=CLIENT_ID, oidc__client_secret=CLIENT_SECRET
    )
    resp = app.test_client().get("/staff/oidc/login")
    assert resp.status_code == 502 and "Inloggen lukt nu niet" in resp.text


def test_without_an_issuer_there_is_no_sso(tmp_path):
    """Local accounts only: no button, the SSO routes are 404."""
    app = demo_app(tmp_path)
    client = app.test_client()
    assert "organisatie-account" not in client.get("/staff/login").text
    assert client.get("/staff/oidc/login").status_code == 404
    assert client.get("/staff/oidc/callback?code=x&state=y").status_code == 404
