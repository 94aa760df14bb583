"""Load and fault test: many identifications at once against gunicorn + PostgreSQL + worker processes.

    python scripts/loadtest.py --identifications 200 --concurrency 20 --max-seconds 300
    python scripts/loadtest.py --fault zgw-down        # the ZGW APIs answer 503 for a while mid-burst
    python scripts/loadtest.py --fault pg-restart      # PostgreSQL restarted mid-burst
    python scripts/loadtest.py --fault kill-worker     # a registration worker SIGKILLed mid-registration

What runs (all on 127.0.0.1, every process started here is stopped here):

* PostgreSQL (started when down); a fresh schema ``zgwid_load_<hex>`` for the run, dropped afterwards.
* ONE stand-in process (``python scripts/loadtest.py standin …``, threaded): the DigiD simulator and
  the ZGW sandbox in one memory, and the public origin of the run. It serves ``/demo/digid/``,
  ``/sandbox/`` and ``/_standin/`` (fault control, sandbox state) itself and forwards every other
  path to gunicorn, so browser-facing URLs (the ACS, the simulator's SSO) share one base URL exactly
  as in the single-process demo. The simulator derives its SSO/ACS URLs from ``base_url``; there is
  no setting for "the simulator lives at another base URL" (see docs/OPERATIONS.md).
* The service under test: ``zgw-identificatie serve`` (gunicorn, 2 sync workers) with the real DigiD
  adapter pointed at the simulator (``ZGWID_DIGID_SIMULATOR=false`` + ``ZGWID_DIGID_IDP_*``) and the
  real ZGW client pointed at the sandbox (``ZGWID_ZGW_SANDBOX=false`` + ``ZGWID_ZGW_*_URL``).
* Two ``zgw-identificatie worker`` processes (``ZGWID_WORKER_IN_PROCESS=false``).

The load: ``--concurrency`` citizens in threads, each a ``requests.Session`` that fills in the same
HTML forms as a browser, behandelaars through the JSON API (``ZGWID_API_KEYS``). Flows: new-citizen
(creates a zaak), mutual with ``register: true`` (creates a zaak; completed → record erased),
known-citizen without registration (code must match). Afterwards it waits for the registrations and
checks the invariants; exit status 1 when one is violated, 2 on a set-up error.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
PG_ADMIN_URL = os.environ.get("ZGWID_LOAD_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
API_KEY = "loadtest-api-key-" + "0123456789abcdef"
BSNS = ("999993653", "999990019", "999990020", "123456782", "111222333")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_HIDDEN = re.compile(r'type="hidden" name="(\w+)" value="([^"]*)"')


# --- the stand-in process --------------------------------------------------------------------------


def standin_main(argv: list[str]) -> int:
    """Serve the DigiD simulator + ZGW sandbox (one memory) and forward everything else to gunicorn."""
    from flask import Flask, jsonify, request
    from werkzeug.middleware.http_proxy import ProxyMiddleware
    from werkzeug.serving import run_simple

    from zgw_identificatie.adapters.digid.config import SIMULATOR_PREFIX
    from zgw_identificatie.clock import SystemClock
    from zgw_identificatie.demo.digid_simulator import create_simulator_blueprint
    from zgw_identificatie.demo.zgw_sandbox import create_sandbox_blueprint
    from zgw_identificatie.settings import load_settings

    p = argparse.ArgumentParser(prog="loadtest.py standin")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True)
    p.add_argument("--instance", required=True)
    p.add_argument("--zgw-secret", required=True)
    args = p.parse_args(argv)
    base_url = f"http://127.0.0.1:{args.port}"
    settings = load_settings(environ={}, base_url=base_url, instance_path=args.instance, zgw__secret=args.zgw_secret)
    app = Flask("zgwid_standin")
    app.register_blueprint(create_simulator_blueprint(settings, clock=SystemClock()), url_prefix=SIMULATOR_PREFIX)
    sandbox_bp = create_sandbox_blueprint(settings)
    app.register_blueprint(sandbox_bp, url_prefix="/sandbox")
    sandbox = sandbox_bp.sandbox
    write_delay = {"seconds": 0.0}

    @app.post("/_standin/faults")
    def add_fault() -> Any:
        body = request.get_json(force=True)
        if body.get("clear"):
            sandbox.faults.clear()
        for method in body.get("methods", []):
            sandbox.faults.add(body["path"], body["kind"], method=method, times=int(body.get("times", 1)))
        if "write_delay" in body:
            write_delay["seconds"] = float(body["write_delay"])
        return jsonify({"faults": len(sandbox.faults), "write_delay": write_delay["seconds"]})

    @app.get("/_standin/state")
    def state() -> Any:
        with sandbox._lock:
            zaken = [
                {
                    "url": z["url"],
                    "identificatie": z["identificatie"],
                    "kenmerken": [k["kenmerk"] for k in z.get("kenmerken") or []],
                }
                for z in sandbox.all("zaken")
            ]
            rollen = [r["zaak"] for r in sandbox.all("rollen")]
            statussen = [s["zaak"] for s in sandbox.all("statussen")]
            documenten = [d["identificatie"] for d in sandbox.all("enkelvoudiginformatieobjecten")]
            links = [
                {"zaak": z["zaak"], "document": z["informatieobject"]} for z in sandbox.all("zaakinformatieobjecten")
            ]
            doc_ids = {d["url"]: d["identificatie"] for d in sandbox.all("enkelvoudiginformatieobjecten")}
        for link in links:
            link["document"] = doc_ids.get(link["document"], "?")
        return jsonify(
            {
                "zaken": zaken,
                "rollen": rollen,
                "statussen": statussen,
                "documenten": documenten,
                "links": links,
                "requests": len(sandbox.requests_seen),
            }
        )

    @app.get("/_standin/live")
    def live() -> Any:
        return jsonify({"status": "ok"})

    local_prefixes = (SIMULATOR_PREFIX + "/", "/sandbox/", "/_standin/")
    proxy = ProxyMiddleware(app.wsgi_app, {"/any": {"target": args.upstream, "host": None}}, timeout=60)
    proxy_opts = proxy.targets["/any/"]  # a "/" prefix is normalised to "//" and never matches: call proxy_to

    def upstream(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        return proxy.proxy_to(proxy_opts, environ.get("PATH_INFO", ""), "/any/")(environ, start_response)

    def edge(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith(local_prefixes):
            delay = write_delay["seconds"]
            if delay and environ["REQUEST_METHOD"] == "POST" and "/api/v1/" in path:
                body = list(app.wsgi_app(environ, start_response))  # the sandbox did the work …
                time.sleep(delay)  # … and the answer is slow (a worker killed now leaves an unknown outcome)
                return body
            return app.wsgi_app(environ, start_response)
        return upstream(environ, start_response)

    requests_seen = sandbox.requests_seen
    sandbox.requests_seen = _BoundedList(requests_seen)
    run_simple("127.0.0.1", args.port, edge, threaded=True, use_reloader=False)
    return 0


class _BoundedList(list):
    """The sandbox records every request; keep memory flat during a long run."""

    def __init__(self, initial: list[Any]) -> None:
        super().__init__(initial)
        self.total = len(initial)

    def append(self, item: Any) -> None:
        self.total += 1
        if len(self) > 1000:
            del self[:500]
        super().append(item)

    def __len__(self) -> int:
        return getattr(self, "total", super().__len__())


# --- process management ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_ready() -> bool:
    cmd = ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]
    return subprocess.run(cmd, check=False).returncode == 0  # noqa: S603 - fixed argv, tools on PATH


def pg_ctl(action: str) -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    cmd = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603


def ensure_postgres() -> None:
    if not pg_ready():
        print("PostgreSQL is down: starting it", flush=True)
        pg_ctl("start")
    for _ in range(20):
        if pg_ready():
            return
        time.sleep(0.5)
    raise SystemExit("PostgreSQL did not come up on 127.0.0.1:5432")


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def service_env(
    *,
    base: str,
    instance: Path,
    database_url: str,
    zgw_secret: str,
    rate_limit: str,
    staff: tuple[str, str],
    api_client: tuple[str, str, str],
) -> dict[str, str]:
    """The settings of ``zgw-identificatie serve`` against the stand-in at ``base`` (DigiD and the ZGW APIs there,
    the simulator's key files in ``instance``), PostgreSQL at ``database_url``, every rate limit ``rate_limit``,
    one behandelaar (id, name) and one API client (id, name, behandelaar) with ``API_KEY``."""
    from werkzeug.security import generate_password_hash

    from zgw_identificatie.adapters.crypto import generate_key
    from zgw_identificatie.adapters.digid.keys import simulator_key_files
    from zgw_identificatie.web.security import hash_secret_sha256

    keys = simulator_key_files(instance)
    client_id, client_name, behandelaar = api_client
    return {
        "ZGWID_BASE_URL": base,
        "ZGWID_INSTANCE_PATH": str(instance),
        "ZGWID_DATABASE_URL": database_url,
        "ZGWID_ENCRYPTION_KEYS": generate_key(),
        "ZGWID_SECRET_KEY": secrets.token_urlsafe(32),
        "ZGWID_LOG_LEVEL": "WARNING",
        "ZGWID_DIGID_SIMULATOR": "false",
        "ZGWID_DIGID_IDP_ENTITY_ID": f"{base}/demo/digid/metadata",
        "ZGWID_DIGID_IDP_SSO_URL": f"{base}/demo/digid/sso",
        "ZGWID_DIGID_IDP_ARS_URL": f"{base}/demo/digid/resolve",
        "ZGWID_DIGID_IDP_CERT_FILES": str(keys.idp_cert),
        "ZGWID_DIGID_SP_KEY_FILE": str(keys.sp_key),
        "ZGWID_DIGID_SP_CERT_FILE": str(keys.sp_cert),
        "ZGWID_ZGW_SANDBOX": "false",
        "ZGWID_ZGW_ZAKEN_URL": f"{base}/sandbox/zaken/api/v1/",
        "ZGWID_ZGW_DOCUMENTEN_URL": f"{base}/sandbox/documenten/api/v1/",
        "ZGWID_ZGW_CATALOGI_URL": f"{base}/sandbox/catalogi/api/v1/",
        "ZGWID_ZGW_SECRET": zgw_secret,
        "ZGWID_WORKER_IN_PROCESS": "false",
        "ZGWID_RATE_LIMIT_START": rate_limit,
        "ZGWID_RATE_LIMIT_CITIZEN": rate_limit,
        "ZGWID_RATE_LIMIT_API": rate_limit,
        "ZGWID_STAFF_USERS": json.dumps(
            {staff[0]: {"name": staff[1], "password_hash": generate_password_hash("x" * 16)}}
        ),
        "ZGWID_API_KEYS": json.dumps(
            {client_id: {"key_hash": hash_secret_sha256(API_KEY), "name": client_name, "behandelaar": behandelaar}}
        ),
    }


def spawn(name: str, cmd: list[str], env: dict[str, str], logdir: Path) -> Proc:
    log = logdir / f"{name}.log"
    fh = open(log, "ab")
    popen = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)  # noqa: S603
    fh.close()
    return Proc(name, popen, log)


def wait_http(url: str, proc: Proc, seconds: float = 30) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise SystemExit(
                f"{proc.name} exited ({proc.popen.returncode}); see {proc.log}:\n" + proc.log.read_text()[-3000:]
            )
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{proc.name} did not answer {url} within {seconds:.0f} s; see {proc.log}")


# --- the load --------------------------------------------------------------------------------------


@dataclass
class Result:
    flow: str
    ok: bool = False
    session_id: str = ""
    registers: bool = False
    error: str = ""
    steps: dict[str, float] = field(default_factory=dict)
    http_errors: list[str] = field(default_factory=list)


class Driver:
    def __init__(self, base: str) -> None:
        self.base = base

    @contextmanager
    def _step(self, result: Result, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        yield
        result.steps[name] = result.steps.get(name, 0.0) + time.perf_counter() - t0

    def _check(self, result: Result, resp: Any, expected: tuple[int, ...], what: str) -> Any:
        if resp.status_code not in expected:
            result.http_errors.append(f"{what}: HTTP {resp.status_code}")
            raise RuntimeError(f"{what}: HTTP {resp.status_code}")
        return resp

    def identify(self, flow: str, bsn: str) -> Result:
        import requests

        result = Result(flow=flow)
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {API_KEY}"
        citizen = requests.Session()
        timeout = 30
        try:
            body: dict[str, Any] = {"flow": flow}
            if flow == "known-citizen":
                body.update(bsn=bsn, register=False)
            elif flow == "mutual":
                body["register"] = True
            with self._step(result, "api create session"):
                resp = self._check(
                    result, api.post(f"{self.base}/api/v1/sessions", json=body, timeout=timeout), (201,), "api create"
                )
            sid = resp.json()["id"]
            result.session_id = sid
            result.registers = flow in ("new-citizen", "mutual")
            with self._step(result, "citizen start page"):
                start = self._check(result, citizen.get(f"{self.base}/i/{sid}", timeout=timeout), (200,), "start page")
            token = _CSRF.search(start.text)
            if not token:
                raise RuntimeError("start page without CSRF token")
            with self._step(result, "authn request (sign)"):
                hand_off = self._check(
                    result,
                    citizen.post(f"{self.base}/i/{sid}/login", data={"csrf_token": token.group(1)}, timeout=timeout),
                    (200,),
                    "login hand-off",
                )
            action = re.search(r'<form method="post" action="([^"]+)" id="saml-post"', hand_off.text)
            if not action:
                raise RuntimeError("hand-off page without the SAML form")
            fields = {k: html.unescape(v) for k, v in _HIDDEN.findall(hand_off.text)}
            with self._step(result, "simulator sso + login"):
                page = self._check(
                    result,
                    citizen.post(html.unescape(action.group(1)), data=fields, timeout=timeout),
                    (200,),
                    "simulator sso",
                )
                form = re.search(r"<form[^>]*>(.*?)</form>", page.text, re.S)
                target = re.search(r'action="([^"]*)"', form.group(0)) if form else None
                if form is None or target is None:
                    raise RuntimeError("simulator page without a form")
                data = {k: html.unescape(v) for k, v in _HIDDEN.findall(form.group(0))}
                data.update(bsn=bsn, loa="midden", action="inloggen")
                back = self._check(
                    result,
                    citizen.post(
                        self.base + html.unescape(target.group(1)), data=data, allow_redirects=False, timeout=timeout
                    ),
                    (302, 303),
                    "simulator login",
                )
            with self._step(result, "acs (artifact resolve + verify)"):
                final = citizen.get(back.headers["Location"], allow_redirects=False, timeout=timeout)
                self._check(result, final, (200, 302, 303), "acs")
            with self._step(result, "result page"):
                hops = 0
                while final.status_code in (302, 303) and hops < 5:
                    final = citizen.get(
                        requests.compat.urljoin(final.url, final.headers["Location"]),
                        allow_redirects=False,
                        timeout=timeout,
                    )
                    hops += 1
                self._check(result, final, (200,), "result page")
            with self._step(result, "api status"):
                status = self._check(
                    result, api.get(f"{self.base}/api/v1/sessions/{sid}", timeout=timeout), (200,), "api status"
                ).json()
            if status["state"] != "authenticated":
                raise RuntimeError(f"session state {status['state']} after the login")
            if flow == "known-citizen" and status["codeMatch"] is not True:
                raise RuntimeError("known-citizen code does not match")
            if flow == "mutual":
                if status.get("bsn") != bsn:
                    raise RuntimeError("mutual: BSN not handed to the behandelaar")
                with self._step(result, "api complete"):
                    self._check(
                        result,
                        api.post(f"{self.base}/api/v1/sessions/{sid}/complete", timeout=timeout),
                        (204,),
                        "api complete",
                    )
            if result.registers and not status.get("registration"):
                raise RuntimeError("no registration state visible after the login")
            result.ok = True
        except Exception as exc:
            result.error = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            api.close()
            citizen.close()
        return result


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


# --- the run ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["standin"]:
        return standin_main(argv[1:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--identifications", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=20)
    p.add_argument("--max-seconds", type=float, default=300, help="hard bound on the burst plus the wait")
    p.add_argument("--fault", choices=["none", "zgw-down", "pg-restart", "kill-worker"], default="none")
    p.add_argument("--fault-seconds", type=float, default=15, help="how long the ZGW APIs answer 503")
    p.add_argument("--kills", type=int, default=3, help="kill-worker: how many SIGKILLs, 3 s apart")
    p.add_argument(
        "--lease-seconds",
        type=int,
        default=30,
        help="registration lease of the worker processes (LEASE_SECONDS is 300 and not a setting; "
        "the worker is started through a wrapper that lowers it so a killed worker's "
        "registrations are taken over within the run)",
    )
    p.add_argument("--max-attempts", type=int, default=12, help="ZGWID_REGISTRATION_MAX_ATTEMPTS")
    p.add_argument("--keep", action="store_true", help="keep the schema and the log folder")
    args = p.parse_args(argv)
    started = time.monotonic()
    deadline = started + args.max_seconds

    import requests
    import sqlalchemy as sa

    ensure_postgres()
    schema = "zgwid_load_" + secrets.token_hex(4)
    admin = sa.create_engine(PG_ADMIN_URL, pool_pre_ping=True)  # survives --fault pg-restart
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    workdir = Path(tempfile.mkdtemp(prefix="zgwid-load-"))
    instance = workdir / "instance"
    gport, eport = free_port(), free_port()
    base = f"http://127.0.0.1:{eport}"
    zgw_secret = secrets.token_urlsafe(32)
    procs: list[Proc] = []
    workers: list[Proc] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZGWID_")}
    env.update(PYTHONUNBUFFERED="1", PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}")  # serve execs gunicorn
    print(
        f"run: schema {schema}, logs {workdir}, edge {base}, gunicorn 127.0.0.1:{gport}, fault {args.fault}", flush=True
    )
    violations: list[str] = []
    try:
        standin = spawn(
            "standin",
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "standin",
                "--port",
                str(eport),
                "--upstream",
                f"http://127.0.0.1:{gport}",
                "--instance",
                str(instance),
                f"--zgw-secret={zgw_secret}",  # "=": a secret may begin with "-"
            ],
            env,
            workdir,
        )
        procs.append(standin)
        wait_http(f"{base}/_standin/live", standin)
        svc_env = dict(env)
        svc_env.update(
            service_env(
                base=base,
                instance=instance,
                database_url=f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}",
                zgw_secret=zgw_secret,
                rate_limit="100000/minute",
                staff=("loadtest", "Load Test"),
                api_client=("loadtest", "Load", "Team Belasting"),
            )
        )
        svc_env.update(ZGWID_ZGW_TIMEOUT="5", ZGWID_REGISTRATION_MAX_ATTEMPTS=str(args.max_attempts))
        # Migrate once before the web workers start (a release step; before b120891 two gunicorn workers
        # migrating an empty schema at the same time raced on CREATE TABLE and one failed to boot).
        from zgw_identificatie.adapters.sql_store import make_engine, migrate

        pre = make_engine(svc_env["ZGWID_DATABASE_URL"])
        migrate(pre)
        pre.dispose()
        gunicorn = spawn(
            "gunicorn",
            [str(VENV_BIN / "zgw-identificatie"), "serve", "--bind", f"127.0.0.1:{gport}", "--workers", "2"],
            svc_env,
            workdir,
        )
        procs.append(gunicorn)
        wait_http(f"http://127.0.0.1:{gport}/health/ready", gunicorn, 60)
        worker_cmd = [
            sys.executable,
            "-c",
            "import sys; import zgw_identificatie.flows.registration as r; "
            "r.LEASE_SECONDS = int(sys.argv[1]); from zgw_identificatie.cli import main; "
            "sys.exit(main(['worker']))",
            str(args.lease_seconds),
        ]
        for i in range(2):
            workers.append(spawn(f"worker-{i}", worker_cmd, svc_env, workdir))
        procs.extend(workers)
        time.sleep(1.5)
        for w in workers:
            if w.popen.poll() is not None:
                raise SystemExit(f"{w.name} exited; see {w.log}")
        if args.fault == "kill-worker":
            requests.post(f"{base}/_standin/faults", json={"write_delay": 0.3}, timeout=5)

        # -- the burst --
        flows = ["new-citizen", "new-citizen", "mutual", "known-citizen"]
        plan = [(flows[i % len(flows)], BSNS[i % len(BSNS)]) for i in range(args.identifications)]
        random.Random(7).shuffle(plan)  # noqa: S311 - a reproducible order, not a secret
        results: list[Result] = []
        lock = threading.Lock()
        index = iter(range(len(plan)))
        driver = Driver(base)
        burst_deadline = started + args.max_seconds * 0.6
        done_count = Counter[str]()

        def citizen_thread() -> None:
            while time.monotonic() < burst_deadline:
                with lock:
                    i = next(index, None)
                if i is None:
                    return
                r = driver.identify(*plan[i])
                with lock:
                    results.append(r)
                    done_count["n"] += 1

        fault_log: list[str] = []

        def fault_thread() -> None:
            trigger = max(1, args.identifications // 3)
            while done_count["n"] < trigger and time.monotonic() < burst_deadline:
                time.sleep(0.1)
            t = time.monotonic() - started
            if args.fault == "zgw-down":
                requests.post(
                    f"{base}/_standin/faults",
                    json={"path": "/api/v1/", "kind": "503", "methods": ["GET", "POST"], "times": 10**9},
                    timeout=5,
                )
                fault_log.append(f"{t:.1f}s: ZGW APIs answer 503")
                time.sleep(args.fault_seconds)
                requests.post(f"{base}/_standin/faults", json={"clear": True}, timeout=5)
                fault_log.append(f"{time.monotonic() - started:.1f}s: ZGW APIs back")
            elif args.fault == "pg-restart":
                pg_ctl("restart")
                fault_log.append(f"{t:.1f}s: PostgreSQL restart (took {time.monotonic() - started - t:.1f}s)")
            elif args.fault == "kill-worker":
                for k in range(args.kills):
                    victim = workers[k % len(workers)]
                    victim.popen.send_signal(signal.SIGKILL)
                    victim.popen.wait(5)
                    fault_log.append(
                        f"{time.monotonic() - started:.1f}s: SIGKILL {victim.name} (pid {victim.popen.pid})"
                    )
                    replacement = spawn(f"{victim.name}-r{k}", worker_cmd, svc_env, workdir)
                    workers[k % len(workers)] = replacement
                    procs.append(replacement)
                    time.sleep(3)

        threads = [threading.Thread(target=citizen_thread, daemon=True) for _ in range(args.concurrency)]
        burst_start = time.monotonic()
        for t in threads:
            t.start()
        ft = threading.Thread(target=fault_thread, daemon=True)
        if args.fault != "none":
            ft.start()
        for t in threads:
            t.join(max(1.0, burst_deadline - time.monotonic() + 60))
        if args.fault != "none":
            ft.join(max(1.0, deadline - time.monotonic()))
        burst_seconds = time.monotonic() - burst_start
        if args.fault == "kill-worker":
            requests.post(f"{base}/_standin/faults", json={"write_delay": 0.0}, timeout=5)

        # -- wait for the registrations --
        engine = sa.create_engine(svc_env["ZGWID_DATABASE_URL"], pool_pre_ping=True)
        open_states = ("pending", "retrying")
        wait_start = time.monotonic()
        restarts: list[str] = []
        while True:
            for k, w in enumerate(workers):  # a supervisor (systemd, Kubernetes) restarts a worker that exited
                if w.popen.poll() is not None:
                    restarts.append(f"{w.name} exited {w.popen.returncode}")
                    workers[k] = spawn(f"{w.name}-s{len(restarts)}", worker_cmd, svc_env, workdir)
                    procs.append(workers[k])
            with engine.connect() as conn:
                open_n = conn.execute(
                    sa.text("SELECT count(*) FROM registrations WHERE state IN ('pending', 'retrying')")
                ).scalar_one()
            if open_n == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
        wait_seconds = time.monotonic() - wait_start

        # -- invariants --
        with engine.connect() as conn:
            regs = [
                dict(r._mapping)
                for r in conn.execute(
                    sa.text(
                        "SELECT id, session_id, state, attempts, zaak_url, document_url, link_url, error, created_at, "
                        "updated_at FROM registrations"
                    )
                )
            ]
            sessions = [
                dict(r._mapping)
                for r in conn.execute(sa.text("SELECT id, flow, state, register, registration_state FROM sessions"))
            ]
        engine.dispose()
        sandbox = requests.get(f"{base}/_standin/state", timeout=30).json()
        ok_results = [r for r in results if r.ok]
        reg_by_session = defaultdict(list)
        for reg in regs:
            reg_by_session[reg["session_id"]].append(reg)
        zaken_by_marker: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for z in sandbox["zaken"]:
            for k in z["kenmerken"]:
                zaken_by_marker[k].append(z)
        rollen = Counter(sandbox["rollen"])
        statussen = Counter(sandbox["statussen"])
        documenten = Counter(sandbox["documenten"])
        links_per_zaak = Counter(lk["zaak"] for lk in sandbox["links"])
        from zgw_identificatie.adapters.zgw import document_identificatie

        def violate(text: str) -> None:
            if len(violations) < 40:
                violations.append(text)
            else:
                violations[-1] = f"… and more ({text})"

        http_errors = [e for r in results for e in r.http_errors]
        if args.fault != "pg-restart" and http_errors:
            violate(f"{len(http_errors)} HTTP errors, e.g. {http_errors[:3]}")
        failed_idents = [r for r in results if not r.ok]
        if args.fault != "pg-restart" and failed_idents:
            violate(f"{len(failed_idents)} identifications failed, e.g. {[r.error for r in failed_idents[:3]]}")
        if len(results) < args.identifications:
            violate(f"only {len(results)} of {args.identifications} identifications ran before the time bound")
        for r in ok_results:
            if not r.registers:
                continue
            found = reg_by_session.get(r.session_id, [])
            if len(found) != 1:
                violate(f"session {r.session_id[:8]}: {len(found)} registrations")
                continue
            reg = found[0]
            if reg["state"] != "done":
                violate(f"registration {reg['id'][:8]} {reg['state']} after {reg['attempts']} attempts: {reg['error']}")
            zaken = zaken_by_marker.get(reg["id"], [])
            if len(zaken) != 1:
                violate(f"registration {reg['id'][:8]}: {len(zaken)} zaken")
                continue
            zaak = zaken[0]["url"]
            n_rol, n_status, n_link = rollen[zaak], statussen[zaak], links_per_zaak[zaak]
            n_doc = documenten[document_identificatie(reg["id"])]
            if (n_rol, n_status, n_doc, n_link) != (1, 1, 1, 1):
                violate(
                    f"registration {reg['id'][:8]}: rol {n_rol}, status {n_status}, document {n_doc}, link {n_link}"
                )
        known_markers = {reg["id"] for reg in regs}
        stray = [z["identificatie"] for z in sandbox["zaken"] if not set(z["kenmerken"]) & known_markers]
        if stray:
            violate(f"{len(stray)} zaken without a registration: {stray[:3]}")
        doubles = {m: len(z) for m, z in zaken_by_marker.items() if len(z) > 1}
        if doubles:
            violate(f"{len(doubles)} registrations with more than one zaak")
        half = [
            s
            for s in sessions
            if s["state"] in ("created", "opened") and any(r.session_id == s["id"] and r.ok for r in results)
        ]
        if half:
            violate(f"{len(half)} successful identifications whose session is still {half[0]['state']}")
        stuck = [s for s in sessions if s["registration_state"] in open_states]
        if stuck:
            violate(f"{len(stuck)} sessions with registration still {stuck[0]['registration_state']}")
        regless = [
            s for s in sessions if s["register"] and s["state"] == "authenticated" and not reg_by_session.get(s["id"])
        ]
        if regless:
            violate(f"{len(regless)} authenticated registering sessions without a registration")

        # -- summary --
        reg_states = Counter(reg["state"] for reg in regs)
        attempts = Counter(reg["attempts"] for reg in regs)
        reg_seconds = [
            (reg["updated_at"] - reg["created_at"]).total_seconds() for reg in regs if reg["state"] == "done"
        ]
        print("\n== zgw-identificatie load test ==")
        print(f"fault: {args.fault}  " + "; ".join(fault_log))
        print(
            f"identifications: {len(results)} run, {len(ok_results)} succeeded, {len(failed_idents)} failed "
            f"({Counter(r.flow for r in ok_results)})"
        )
        print(
            f"burst: {burst_seconds:.1f} s at concurrency {args.concurrency} → "
            f"{len(results) / burst_seconds:.1f} identifications/s; waited {wait_seconds:.1f} s for registrations"
        )
        print(f"HTTP errors: {len(http_errors)} {Counter(http_errors).most_common(5)}")
        if restarts:
            print(f"worker processes that exited by themselves and were restarted: {restarts} (see their logs)")
        if failed_idents:
            print(f"failures: {Counter(r.error for r in failed_idents).most_common(5)}")
        print(f"registrations: {dict(reg_states)}; attempts {dict(sorted(attempts.items()))}")
        print(
            f"sandbox: {len(sandbox['zaken'])} zaken, {len(sandbox['rollen'])} rollen, {len(sandbox['statussen'])} "
            f"statussen, {len(sandbox['documenten'])} documenten, {len(sandbox['links'])} links; "
            f"{sandbox['requests']} ZGW requests"
        )
        print(f"{'step':34} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        per_step: dict[str, list[float]] = defaultdict(list)
        for r in results:
            for name, secs in r.steps.items():
                per_step[name].append(secs * 1000)
        per_step["whole identification"] = [sum(r.steps.values()) * 1000 for r in ok_results]
        per_step["registration (login → done)"] = [s * 1000 for s in reg_seconds]
        for name, vals in per_step.items():
            print(
                f"{name:34} {len(vals):5d} {pct(vals, 50):8.0f} {pct(vals, 95):8.0f} "
                f"{max(vals) if vals else float('nan'):8.0f}"
            )
        print(f"mean whole identification: {statistics.fmean(per_step['whole identification'] or [0]):.0f} ms")
        if violations:
            print(f"\nINVARIANTS VIOLATED ({len(violations)}):")
            for v in violations:
                print(f"  - {v}")
        else:
            print(
                "\ninvariants: OK (every successful registering identification has exactly one zaak, rol, status, "
                "document and link; no doubles, no stray zaken, no session left half-done)"
            )
    finally:
        for proc in reversed(procs):
            proc.stop()
        if not args.keep:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
        if not args.keep and not violations:
            shutil.rmtree(workdir, ignore_errors=True)
        elif violations:
            print(f"logs kept in {workdir}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
