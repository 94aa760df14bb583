"""Performance figures of the hot paths, printed and never asserted (``make bench``).

    python scripts/benchmark.py                 # every case, each at most --seconds (default 6) or --n calls
    python scripts/benchmark.py --only pdf,code

Everything runs in this one process, through the real code: the Flask app (test client) with the
real SAML service provider talking to the DigiD simulator and the real ZGW clients talking to the
sandbox over the in-process WSGI transport (the single-process demo wiring), the production
``SqlSessionStore`` on SQLite (a temp file) and on PostgreSQL (a throw-away schema on 127.0.0.1:5432,
skipped when it is down). The table has a target per case and says whether it was met; a missed target
is information for the reader, not a failure (exit status 0).
"""

from __future__ import annotations

import argparse
import html
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

API_KEY = "bench-api-key-0123456789abcdef"
BASE_URL = "http://bench.local"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BSN = "999993653"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_HIDDEN = re.compile(r'type="hidden" name="(\w+)" value="([^"]*)"')


class Case:
    def __init__(self, name: str, target_ms: float, fn: Callable[[], Any], setup: Callable[[], None] | None = None):
        self.name, self.target_ms, self.fn, self.setup = name, target_ms, fn, setup


def measure(fn: Callable[[], Any], *, n: int, seconds: float) -> list[float]:
    fn()  # warm-up (imports, caches, first connection)
    times: list[float] = []
    stop = time.perf_counter() + seconds
    while len(times) < n and time.perf_counter() < stop:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def build_app(tmp: Path, database_url: str = "") -> Any:
    from zgw_identificatie.app import create_app
    from zgw_identificatie.testing.settings import make_settings
    from zgw_identificatie.web.security import hash_secret_sha256

    settings = make_settings(
        tmp,
        base_url=BASE_URL,
        database_url=database_url,
        log_level="ERROR",
        rate_limit_start="1000000/minute",
        rate_limit_citizen="1000000/minute",
        rate_limit_api="1000000/minute",
        api_keys={"bench": {"key_hash": hash_secret_sha256(API_KEY), "name": "Bench", "behandelaar": "Team B"}},
    )
    return create_app(settings)


def path_of(url: str) -> str:
    return url.replace(BASE_URL, "") if url.startswith(BASE_URL) else url


class Web:
    """The demo app through Flask's test client: what a behandelaar's API client and a citizen do."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.api = app.test_client()
        self.auth = {"Authorization": f"Bearer {API_KEY}"}
        self.acs_ms: list[float] = []

    def create(self, flow: str = "new-citizen") -> str:
        body = {"flow": flow, "bsn": BSN} if flow == "known-citizen" else {"flow": flow}
        resp = self.api.post("/api/v1/sessions", json=body, headers=self.auth)
        assert resp.status_code == 201, resp.status_code
        return str(resp.get_json()["id"])

    def round_trip(self, flow: str = "new-citizen") -> str:
        """Start page → signed AuthnRequest → simulator → artifact → ACS (resolve + verify) → result page."""
        sid = self.create(flow)
        client = self.app.test_client()
        start = client.get(f"/i/{sid}")
        token = _CSRF.search(start.text)
        assert token, start.status_code
        hand_off = client.post(f"/i/{sid}/login", data={"csrf_token": token.group(1)}, follow_redirects=True)
        action = re.search(r'<form method="post" action="([^"]+)" id="saml-post"', hand_off.text)
        assert action, hand_off.status_code
        fields = {k: html.unescape(v) for k, v in _HIDDEN.findall(hand_off.text)}
        page = client.post(path_of(html.unescape(action.group(1))), data=fields, follow_redirects=True)
        form = re.search(r"<form[^>]*>(.*?)</form>", page.text, re.S)
        assert form, page.status_code
        target = re.search(r'action="([^"]*)"', form.group(0))
        data = {k: html.unescape(v) for k, v in _HIDDEN.findall(form.group(0))}
        data.update(bsn=BSN, loa="midden", action="inloggen")
        back = client.post(path_of(html.unescape(target.group(1))), data=data)  # type: ignore[union-attr]
        t0 = time.perf_counter()
        resp = client.get(path_of(back.location))
        self.acs_ms.append((time.perf_counter() - t0) * 1000)
        while resp.status_code in (302, 303):
            resp = client.get(path_of(resp.location))
        assert resp.status_code == 200, resp.status_code
        return sid


def proof_data(session_id: str = "bench-session") -> Any:
    from zgw_identificatie.testing.builders import a_proof

    return a_proof(
        datetime.now(UTC) - timedelta(minutes=1),
        bsn=BSN,
        zaak_identificatie="ZAAK-2026-0000000001",
        behandelaar="Sanne de Vries",
        session_id=session_id,
    )


def sealed_pdf_case(tmp: Path) -> Callable[[], bytes]:
    """Render + seal (PAdES, demo certificate) with a DigiD-shaped signed assertion embedded (issue 12)."""
    from zgw_identificatie.adapters.digid.keys import generate_key_pair
    from zgw_identificatie.adapters.digid.xmldsig import sign
    from zgw_identificatie.adapters.proof_seal import build_renderer
    from zgw_identificatie.settings import Settings

    pair = generate_key_pair("bench idp")
    assertion = sign(
        '<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_bench" Version="2.0" '
        'IssueInstant="2026-11-30T10:00:00Z"><saml:Issuer>https://digid.bench/idp</saml:Issuer>'
        f"<saml:Subject><saml:NameID>s00000000:{BSN}</saml:NameID></saml:Subject></saml:Assertion>",
        pair.key_pem,
        pair.cert_pem,
    ).decode("utf-8")
    renderer = build_renderer(Settings(instance_path=str(tmp / "seal-instance")))
    proof = replace(proof_data(), assertion_xml=assertion)
    return lambda: renderer.render(proof)


def session_for_store(i: int) -> Any:
    from zgw_identificatie.domain.assurance import AssuranceLevel
    from zgw_identificatie.domain.bsn import Bsn
    from zgw_identificatie.domain.sessions import Flow, IdentificationSession, SessionState

    now = datetime.now(UTC)
    return IdentificationSession(
        id=f"bench-{i}-{secrets.token_hex(6)}",
        flow=Flow.MUTUAL,
        state=SessionState.CREATED,
        created_at=now,
        expires_at=now + timedelta(minutes=15),
        owner_id="bench",
        owner_name="Bench",
        gemeente="Gemeente Voorbeeld",
        min_level=AssuranceLevel.MIDDEN,
        register=False,
        bsn=Bsn(BSN),
    )


def store_case(store: Any) -> Callable[[], None]:
    counter = iter(range(10**9))

    def run() -> None:
        session = session_for_store(next(counter))
        store.add(session)
        loaded = store.get(session.id)
        store.update(replace(loaded, purpose="benchmark"))

    return run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=6.0, help="at most this long per case")
    p.add_argument("--n", type=int, default=300, help="at most this many calls per case")
    p.add_argument("--only", default="", help="comma-separated case keys (see the table's first column)")
    args = p.parse_args(argv)
    wall = time.perf_counter()

    import sqlalchemy as sa

    from zgw_identificatie.adapters.crypto import DataCipher, generate_key
    from zgw_identificatie.adapters.proof_pdf import ReportlabProofRenderer
    from zgw_identificatie.adapters.sql_store import SqlSessionStore, make_engine, migrate
    from zgw_identificatie.app import services_of
    from zgw_identificatie.domain.assurance import AssuranceLevel
    from zgw_identificatie.domain.bsn import Bsn
    from zgw_identificatie.domain.codes import derive_code
    from zgw_identificatie.flows.registration import run_registration, start_registration
    from zgw_identificatie.testing.clock import FixedClock
    from zgw_identificatie.testing.store import InMemorySessionStore

    tmp = Path(tempfile.mkdtemp(prefix="zgwid-bench-"))
    app = build_app(tmp / "sqlite")
    web = Web(app)
    svc = services_of(app)
    renderer = ReportlabProofRenderer()
    key = secrets.token_bytes(32)
    bsn = Bsn(BSN)
    pool = [web.create() for _ in range(3)]
    pool_iter = iter(range(10**9))

    reg_store = InMemorySessionStore()
    clock = FixedClock(datetime.now(UTC))

    def registration() -> None:
        from zgw_identificatie.testing.builders import a_session

        session = a_session(clock.now(), id=secrets.token_hex(8), owner_id="bench", owner_name="Bench")
        reg_store.add(session)
        reg = start_registration(session, proof_data(session.id), existing_zaak=None, store=reg_store, clock=clock)
        done = run_registration(
            reg, store=reg_store, registry=svc.registry, renderer=renderer, clock=clock, settings=svc.settings
        )
        assert done.state.value == "done", done.error

    cases: dict[str, Case] = {
        "api": Case("session create (API, SQLite)", 50, lambda: web.create()),
        "start": Case(
            "citizen start page", 50, lambda: web.app.test_client().get(f"/i/{pool[next(pool_iter) % len(pool)]}")
        ),
        "authn": Case(
            "AuthnRequest build + sign",
            20,
            lambda: svc.idp.begin_login(min_level=AssuranceLevel.MIDDEN, relay_state="bench"),
        ),
        "digid": Case("DigiD round trip (all hops)", 300, web.round_trip),
        "code": Case(
            "code derivation (§2.2)",
            1,
            lambda: derive_code(key, gemeentecode="9999", session_id=secrets.token_hex(16), bsn=bsn),
        ),
        "pdf": Case("proof PDF rendering", 100, lambda: renderer.render(proof_data())),
        "pdfseal": Case("proof PDF render + seal (assertion embedded)", 150, sealed_pdf_case(tmp)),
        "registration": Case("registration vs sandbox (5 calls + PDF)", 250, registration),
        "sqlite": Case("store add+get+update (SQLite)", 15, lambda: None),
        "postgresql": Case("store add+get+update (PostgreSQL)", 15, lambda: None),
    }
    sqlite_store = SqlSessionStore(make_engine(f"sqlite:///{tmp / 'store.sqlite'}"), DataCipher([generate_key()]))
    migrate(sqlite_store.engine)
    cases["sqlite"].fn = store_case(sqlite_store)
    pg_schema = "zgwid_bench_" + secrets.token_hex(4)
    admin = None
    try:
        admin = sa.create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{pg_schema}"'))
        pg_engine = sa.create_engine(PG_URL, connect_args={"options": f"-csearch_path={pg_schema}"}, pool_pre_ping=True)
        migrate(pg_engine)
        cases["postgresql"].fn = store_case(SqlSessionStore(pg_engine, DataCipher([generate_key()])))
    except sa.exc.OperationalError:
        admin = None
        del cases["postgresql"]
        print("PostgreSQL on 127.0.0.1:5432 is down: skipping the PostgreSQL case", file=sys.stderr)

    only = {k.strip() for k in args.only.split(",") if k.strip()}
    rows = []
    try:
        for key_name, case in cases.items():
            if only and key_name not in only:
                continue
            t0 = time.perf_counter()
            times = measure(case.fn, n=args.n, seconds=args.seconds)
            elapsed = time.perf_counter() - t0
            rows.append((key_name, case, times, len(times) / elapsed))
            if key_name == "digid":
                acs = web.acs_ms[1:]
                rows.append(
                    ("acs", Case("  of which ACS: artifact resolve + verify", 150, lambda: None), acs, float("nan"))
                )
    finally:
        if admin is not None:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{pg_schema}" CASCADE'))
            admin.dispose()

    print(
        f"\n{'key':13} {'case':42} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'per s':>8}  {'target':>14}  met"
    )
    for key_name, case, times, rate in rows:
        if not times:
            continue
        p95 = pct(times, 95)
        met = "yes" if p95 < case.target_ms else "NO"
        rate_text = f"{rate:8.1f}" if rate == rate else f"{'':8}"
        print(
            f"{key_name:13} {case.name:42} {len(times):5d} {pct(times, 50):8.2f} {p95:8.2f} {pct(times, 99):8.2f} "
            f"{rate_text}  {'p95 < ' + format(case.target_ms, 'g') + ' ms':>14}  {met}"
        )
    print(
        f"\nsingle thread, one process; mean of all samples {statistics.fmean(t for r in rows for t in r[2]):.2f} ms;"
        f" wall {time.perf_counter() - wall:.0f} s. Figures only; targets are not enforced."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
