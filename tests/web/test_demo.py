"""Issue 9 item 8: the demo honours settings, the simulator works across processes, the sandbox keeps its data."""

from __future__ import annotations

import html
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from demo_driver import API_KEY, Citizen, Staff, csrf, demo_app, path_of, run_worker
from zgw_identificatie.adapters.crypto import generate_key
from zgw_identificatie.app import services_of
from zgw_identificatie.cli import _fresh_start, demo_banner, demo_settings
from zgw_identificatie.demo.zgw_sandbox import ZgwSandbox
from zgw_identificatie.settings import load_settings

BSN = "999993653"
ROOT = Path(__file__).resolve().parents[2]
_HIDDEN = re.compile(r'type="hidden" name="(\w+)" value="([^"]*)"')


def test_the_simulator_page_of_a_finished_login_says_what_happened_and_what_to_do(tmp_path):
    """The back button after logging in (or a second click on Inloggen) reaches a pending login that is used:
    still a 404 without SAML, as DigiD refuses it, but a page that says so, instead of "Pagina niet gevonden"."""
    app = demo_app(tmp_path)
    sid = Staff.login(app).start("known-citizen", bsn=BSN)
    citizen = Citizen.new(app)
    start = citizen.open(sid)
    hand_off = citizen.client.post(f"/i/{sid}/login", data={"csrf_token": csrf(start.text)}, follow_redirects=True)
    action = re.search(r'<form method="post" action="([^"]+)" id="saml-post"', hand_off.text).group(1)
    sso = citizen.client.post(path_of(html.unescape(action)), data=dict(_HIDDEN.findall(hand_off.text)))
    login_page = path_of(sso.location)
    form = dict(_HIDDEN.findall(citizen.client.get(login_page).text))
    form.update(bsn=BSN, loa="midden", action="inloggen")
    assert citizen.client.post("/demo/digid/login", data=form).status_code == 302

    for again in (citizen.client.get(login_page), citizen.client.post("/demo/digid/login", data=form)):
        assert again.status_code == 404
        assert again.headers["Cache-Control"] == "no-store"
        text = again.text
        assert "<h1>Deze inlogpoging is afgerond of verlopen</h1>" in text
        assert "Vooruit" in text and "opnieuw" in text
        assert "Pagina niet gevonden" not in text and "SAMLart" not in text and BSN not in text
    unknown = citizen.client.get("/demo/digid/inloggen?login=nope")
    assert unknown.status_code == 404 and "afgerond of verlopen" in unknown.text


# --- the simulator on several processes or replicas ---------------------------------------------------


def test_a_login_whose_sso_login_form_and_back_channel_land_on_three_different_replicas_succeeds(tmp_path):
    """Three apps on one database and instance folder stand in for three replicas: the SSO goes to B, the
    login form to C, the ACS (and so the back channel) to A. Before, the state lived in one process's memory."""
    shared = {"database_url": f"sqlite:///{tmp_path / 'shared.sqlite'}", "encryption_keys": [generate_key()]}
    a, b, c = (demo_app(tmp_path, **shared) for _ in range(3))
    sid = Staff.login(a).start("known-citizen", bsn=BSN)
    citizen = Citizen.new(a)
    start = citizen.open(sid)
    hand_off = citizen.client.post(f"/i/{sid}/login", data={"csrf_token": csrf(start.text)}, follow_redirects=True)
    action = re.search(r'<form method="post" action="([^"]+)" id="saml-post"', hand_off.text).group(1)
    fields = dict(_HIDDEN.findall(hand_off.text))
    sso = b.test_client().post(path_of(action), data=fields)
    assert sso.status_code == 303  # POST-redirect-GET to the login page, which another replica serves
    page = c.test_client().get(path_of(sso.location))
    assert page.status_code == 200
    form = dict(_HIDDEN.findall(page.text))
    form.update(bsn=BSN, loa="midden", action="inloggen")
    other = c.test_client()
    back = other.post("/demo/digid/login", data=form)
    assert back.status_code == 302
    assert other.post("/demo/digid/login", data=form).status_code == 404  # the pending login is single use
    acs = citizen.client.get(path_of(back.location))
    assert acs.status_code == 303 and acs.location.endswith(f"/i/{sid}/klaar"), acs.status_code
    status = Staff.login(c).status(sid)
    assert status["progress"] == "match"


def test_the_artifacts_in_the_database_are_encrypted_and_single_use(tmp_path):
    import sqlalchemy as sa

    from zgw_identificatie.adapters.sql_store import demo_digid_state

    app = demo_app(tmp_path)
    sid = Staff.login(app).start("new-citizen")
    citizen = Citizen.new(app)
    page = citizen.to_simulator(sid)
    form = dict(_HIDDEN.findall(page.text))
    form.update(bsn=BSN, loa="midden", action="inloggen")
    back = citizen.client.post("/demo/digid/login", data=form)
    engine = services_of(app).store.engine
    with engine.connect() as conn:
        rows = conn.execute(sa.select(demo_digid_state)).all()
    assert [r.kind for r in rows] == ["artifact"]
    assert BSN.encode() not in rows[0].value_enc
    assert citizen.client.get(path_of(back.location)).status_code == 303
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(demo_digid_state)).scalar() == 0


def test_an_artifact_nobody_resolved_is_erased_by_the_purge(tmp_path):
    from datetime import timedelta

    import sqlalchemy as sa

    from zgw_identificatie.adapters.sql_store import demo_digid_state
    from zgw_identificatie.testing.clock import FixedClock
    from zgw_identificatie.worker import purge

    app = demo_app(tmp_path)
    sid = Staff.login(app).start("new-citizen")
    citizen = Citizen.new(app)
    form = dict(_HIDDEN.findall(citizen.to_simulator(sid).text))
    form.update(bsn=BSN, loa="midden", action="inloggen")
    assert citizen.client.post("/demo/digid/login", data=form).status_code == 302  # the browser never comes back
    svc = services_of(app)
    svc.clock = FixedClock(svc.clock.now() + timedelta(minutes=20))
    counts = purge(svc)
    assert counts["simulator_state"] == 1
    with svc.store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(demo_digid_state)).scalar() == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"process exited with {proc.returncode}"
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def login_over_http(base: str, api_key: str) -> int:
    """One §2.2 login with real HTTP requests; returns the status of the final page."""
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {api_key}"
    sid = api.post(f"{base}/api/v1/sessions", json={"flow": "known-citizen", "bsn": BSN}, timeout=30).json()["id"]
    web = requests.Session()
    start = web.get(f"{base}/i/{sid}", timeout=30)
    hand_off = web.post(f"{base}/i/{sid}/login", data={"csrf_token": csrf(start.text)}, timeout=30)
    if hand_off.status_code != 200:
        return hand_off.status_code
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)" id="saml-post"', hand_off.text).group(1))
    page = web.post(action, data={k: html.unescape(v) for k, v in _HIDDEN.findall(hand_off.text)}, timeout=30)
    if page.status_code != 200:
        return page.status_code
    form = {k: html.unescape(v) for k, v in _HIDDEN.findall(page.text)}
    form.update(bsn=BSN, loa="midden", action="inloggen")
    back = web.post(f"{base}/demo/digid/login", data=form, allow_redirects=False, timeout=30)
    if back.status_code != 302:
        return back.status_code
    return web.get(back.headers["Location"], timeout=30).status_code


@pytest.mark.slow
def test_serve_with_three_worker_processes_lets_every_simulator_login_succeed(tmp_path):
    """The issue's reproduction: gunicorn with several workers answered 404 at the simulator's SSO in 1 of 6."""
    from zgw_identificatie.web.security import hash_secret_sha256

    port, metrics_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "ZGWID_METRICS_PORT": str(metrics_port),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
        **os.environ,
        "ZGWID_BASE_URL": base,
        "ZGWID_INSTANCE_PATH": str(tmp_path / "instance"),
        "ZGWID_API_KEYS": json.dumps({"t": {"key_hash": hash_secret_sha256(API_KEY), "name": "t", "behandelaar": "T"}}),
        "ZGWID_WORKER_IN_PROCESS": "false",
        # nine citizens from one address: 27 requests under the per-IP limit (20/minute), counted per worker
        "ZGWID_RATE_LIMIT_CITIZEN": "1000/minute",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    # migrate once, as a release step would, so three workers do not race on SQLite
    subprocess.run([sys.executable, "-m", "zgw_identificatie.cli", "purge"], env=env, check=True, timeout=120)
    proc = subprocess.Popen(
        [sys.executable, "-m", "zgw_identificatie.cli", "serve", "--bind", f"127.0.0.1:{port}", "--workers", "3"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(f"{base}/health/live", proc)
        outcomes = [login_over_http(base, API_KEY) for _ in range(9)]
        # the gunicorn master's metrics listener sums the three workers' counters
        scraped = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    assert outcomes == [200] * 9
    counted = {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(scraped)
        for s in family.samples
        if s.name == "zgwid_identifications_total"
    }
    assert counted == {
        (("flow", "known-citizen"), ("outcome", "started")): 9.0,
        (("flow", "known-citizen"), ("outcome", "identified")): 9.0,
    }
    assert len(list((tmp_path / "prom").glob("counter_*.db"))) >= 2  # more than one worker wrote counters


# --- the demo honours settings ------------------------------------------------------------------------


def test_the_demo_keeps_a_real_zaaksysteem_and_a_real_idp_from_the_settings_and_says_so(tmp_path):
    environ = {
        "ZGWID_INSTANCE_PATH": str(tmp_path / "inst"),
        "ZGWID_ZGW_SANDBOX": "false",
        "ZGWID_ZGW_ZAKEN_URL": "https://zaken.gemeente.test/zaken/api/v1/",
        "ZGWID_ZGW_DOCUMENTEN_URL": "https://zaken.gemeente.test/documenten/api/v1/",
        "ZGWID_ZGW_CATALOGI_URL": "https://zaken.gemeente.test/catalogi/api/v1/",
        "ZGWID_DIGID_SIMULATOR": "false",
        "ZGWID_DIGID_IDP_ENTITY_ID": "https://idp.test/saml/idp/metadata",
        "ZGWID_DIGID_IDP_SSO_URL": "https://idp.test/saml/idp/request_authentication",
    }
    given = load_settings(environ, validate=False)
    os.environ.update({k: v for k, v in environ.items()})
    try:
        settings, password, api_key = demo_settings(given, 8123)
    finally:
        for k in environ:
            os.environ.pop(k, None)
    assert settings.zgw.sandbox is False and settings.digid.simulator is False
    assert settings.zgw.zaken_url == "https://zaken.gemeente.test/zaken/api/v1/"
    banner = demo_banner(settings, password, api_key)
    assert "https://zaken.gemeente.test/zaken/api/v1/" in banner and "ECHT zaaksysteem" in banner
    assert "https://idp.test/saml/idp/request_authentication" in banner and "ECHTE IdP" in banner
    assert "/sandbox/" not in banner and "simulator" not in banner


def test_the_demo_without_settings_uses_the_stand_ins_and_keeps_the_sandbox_in_the_instance_folder(tmp_path):
    given = load_settings({}, validate=False)
    given.instance_path = str(tmp_path / "inst")
    settings, password, api_key = demo_settings(given, 8124)
    assert settings.zgw.sandbox and settings.digid.simulator
    assert settings.zgw.sandbox_state_file == str(tmp_path / "inst" / "zgw-sandbox.json")
    banner = demo_banner(settings, password, api_key)
    assert password in banner and api_key in banner and "de ZGW-sandbox" in banner and "de simulator" in banner


def test_the_demo_keeps_accounts_from_the_settings_and_prints_no_password(tmp_path):
    given = load_settings({}, validate=False)
    given.staff_users = {"jan": {"name": "Jan", "password_hash": "x"}}
    settings, password, _key = demo_settings(given, 8125)
    assert password is None and list(settings.staff_users) == ["jan"]
    assert "wachtwoord" not in demo_banner(settings, password, _key)


@pytest.mark.slow
def test_the_demo_command_with_sandbox_off_mounts_no_sandbox_and_names_the_real_zaaksysteem(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "ZGWID_INSTANCE_PATH": str(tmp_path / "inst"),
        "ZGWID_ZGW_SANDBOX": "false",
        "ZGWID_ZGW_ZAKEN_URL": "http://127.0.0.1:9/zaken/api/v1/",
        "ZGWID_ZGW_DOCUMENTEN_URL": "http://127.0.0.1:9/documenten/api/v1/",
        "ZGWID_ZGW_CATALOGI_URL": "http://127.0.0.1:9/catalogi/api/v1/",
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "zgw_identificatie.cli", "demo", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        banner = []
        for _ in range(40):
            line = proc.stdout.readline()
            banner.append(line)
            if "Stop with Ctrl+C" in line or not line:
                break
        text = "".join(banner)
        assert "http://127.0.0.1:9/zaken/api/v1/" in text and "ZGWID_ZGW_SANDBOX=false" in text, text
        wait_for(f"http://127.0.0.1:{port}/health/live", proc)
        assert requests.get(f"http://127.0.0.1:{port}/sandbox/", timeout=10).status_code == 404
        assert requests.get(f"http://127.0.0.1:{port}/demo/digid/metadata", timeout=10).status_code == 200
    finally:
        proc.terminate()
        proc.wait(30)
        proc.stdout.close()


# --- the sandbox across restarts and processes --------------------------------------------------------


def registered_zaak(app) -> str:
    staff = Staff.login(app)
    sid = staff.start("new-citizen")
    Citizen.new(app).login(sid, bsn=BSN)
    assert run_worker(app) == 1
    return staff.status(sid)["zaak"]["identificatie"]


def test_after_a_demo_restart_the_sandbox_still_has_its_zaken_and_numbers_on(tmp_path):
    """Before: the SQLite store kept its sessions, the in-memory sandbox started at ZAAK-…-0000000001 again."""
    state = str(tmp_path / "instance" / "zgw-sandbox.json")
    first = demo_app(tmp_path, zgw__sandbox_state_file=state)
    one = registered_zaak(first)
    restarted = demo_app(tmp_path, zgw__sandbox_state_file=state)
    page = restarted.test_client().get("/sandbox/")
    assert one in page.text
    two = registered_zaak(restarted)
    assert two != one and two.endswith("0000000002")
    doc = re.search(r'href="(/sandbox/documenten/[0-9a-f-]+\.pdf)"', page.text).group(1)
    assert restarted.test_client().get(doc).data.startswith(b"%PDF")


def test_two_processes_share_one_sandbox_file(tmp_path):
    state = str(tmp_path / "sandbox.json")
    a = ZgwSandbox(client_id="c", secret="s", rsin="002220647", state_file=state)
    b = ZgwSandbox(client_id="c", secret="s", rsin="002220647", state_file=state)
    assert a.all("zaaktypen")[0]["url"] == b.all("zaaktypen")[0]["url"]  # seeded once
    first = a.add_zaak()
    second = b.add_zaak()
    assert first["identificatie"] != second["identificatie"]
    with a.synced(write=False):
        assert len(a.all("zaken")) == 2


def test_fresh_removes_the_demo_database_and_the_sandbox_together_but_never_a_configured_database(tmp_path):
    given = load_settings({}, validate=False)
    given.instance_path = str(tmp_path / "inst")
    settings, _p, _k = demo_settings(given, 8126)
    app = demo_app(
        tmp_path, instance_path=settings.instance_path, zgw__sandbox_state_file=settings.zgw.sandbox_state_file
    )
    registered_zaak(app)
    removed = _fresh_start(settings)
    assert any(p.endswith("zgw-sandbox.json") for p in removed) and any(p.endswith(".sqlite") for p in removed)
    settings.database_url = f"sqlite:///{tmp_path / 'mine.sqlite'}"
    (tmp_path / "mine.sqlite").write_bytes(b"keep")
    _fresh_start(settings)
    assert (tmp_path / "mine.sqlite").read_bytes() == b"keep"
