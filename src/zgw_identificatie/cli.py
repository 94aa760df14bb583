"""zgw-identificatie demo | serve | worker | purge | health | saml-metadata | check-config | digid-metadata-check | …"""

# Every command imports what it needs itself: ``--help`` and the small commands stay fast (no Flask,
# SQLAlchemy or SAML at import time).
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .settings import Settings


def load_settings(*, validate: bool = True, **overrides: Any) -> Settings:
    """settings.load_settings, imported when a command needs it (not for --help)."""
    from .settings import load_settings as load

    return load(validate=validate, **overrides)


def _app(**overrides: Any) -> Any:
    from .app import create_app

    return create_app(load_settings(**overrides))


def demo_settings(given: Any, port: int) -> tuple[Any, str | None, str | None]:
    """The demo's settings: what the user set explicitly is kept (a real zaaksysteem with
    ``ZGWID_ZGW_SANDBOX=false``, a real IdP with ``ZGWID_DIGID_SIMULATOR=false``, own accounts, a database);
    only what is unset gets a demo value. Returns (settings, demo password or None, demo API key or None)."""
    import secrets

    from werkzeug.security import generate_password_hash

    from .settings import Settings
    from .web.security import hash_secret_sha256

    defaults = Settings()
    instance = given.instance_path if given.instance_path != defaults.instance_path else "instance/demo"
    overrides: dict[str, Any] = {
        "base_url": given.base_url if given.base_url != defaults.base_url else f"http://127.0.0.1:{port}",
        "instance_path": instance,
    }
    if given.zgw.sandbox and not given.zgw.sandbox_state_file:
        # The demo's SQLite keeps its sessions across restarts, so the sandbox keeps its zaken too.
        overrides["zgw__sandbox_state_file"] = str(Path(instance) / "zgw-sandbox.json")
    password = api_key = None
    if not given.staff_users and not given.oidc.issuer:
        password = given.demo_password or secrets.token_urlsafe(9)
        overrides["staff_users"] = {
            "behandelaar": {"name": "Sanne de Vries", "password_hash": generate_password_hash(password)},
            "collega": {"name": "Ahmed Bakker", "password_hash": generate_password_hash(password)},
        }
    if not given.api_keys:
        api_key = given.api_key or secrets.token_urlsafe(24)
        overrides["api_keys"] = {
            # Acts for the behandelaar it names (README "API"), and as a team sees every session it started.
            "demo": {
                "key_hash": hash_secret_sha256(api_key),
                "name": "Demo-client",
                "behandelaar": "Team Burgerzaken",
                "acts_for_staff": True,
                "team": True,
            }
        }
    import copy

    settings = copy.deepcopy(given)
    for key, value in overrides.items():
        section, _, name = key.rpartition("__")
        setattr(getattr(settings, section) if section else settings, name, value)
    settings.validate()
    return settings, password, api_key


def demo_banner(settings: Any, password: str | None, api_key: str | None) -> str:
    """What the demo uses, said plainly: which zaaksysteem, which IdP, which store."""
    from .demo.digid_simulator import TEST_BSNS

    base = settings.base_url
    if password:
        staff = f"gebruiker: behandelaar (of collega)  wachtwoord: {password}"
    elif settings.oidc.issuer:
        staff = f"inloggen via {settings.oidc.issuer} (uw instellingen)"
    else:
        staff = "accounts uit uw instellingen (ZGWID_STAFF_USERS)"
    if settings.zgw.sandbox:
        zgw = f"{base}/sandbox/  (de ZGW-sandbox; bewaard in {settings.zgw.sandbox_state_file or 'het geheugen'})"
    else:
        zgw = f"{settings.zgw.zaken_url}  (ECHT zaaksysteem uit uw instellingen, ZGWID_ZGW_SANDBOX=false)"
    if settings.digid.simulator:
        digid = f"de simulator ({base}/demo/digid/); test-BSN's: {', '.join(TEST_BSNS)}"
    else:
        digid = f"{settings.digid.idp_sso_url}  (ECHTE IdP {settings.digid.idp_entity_id}, ZGWID_DIGID_SIMULATOR=false)"
    if settings.database_url:
        from sqlalchemy.engine import make_url

        store = make_url(settings.database_url).render_as_string(hide_password=True)
    else:
        store = settings.effective_database_url
    api = f"Authorization: Bearer {api_key}" if api_key else "sleutels uit uw instellingen (ZGWID_API_KEYS)"
    digid_cert = f"{settings.instance_path}/digid-sim/idp.crt" if settings.digid.simulator else "<DigiD-certificaat>"
    seal_cert = settings.seal.cert_file or f"{settings.instance_path}/seal/seal.crt"
    return f"""
zgw-identificatie demo
  Behandelaar:  {base}/staff/   {staff}
  Zaaksysteem:  {zgw}
  DigiD:        {digid}
  API:          {base}/api/v1/openapi.json   {api}
  Opslag:       {store}
  Bewijs-PDF:   zgw-identificatie verify-proof BESTAND.pdf --digid-cert {digid_cert} \\
                  --seal-cert {seal_cert}
Stop with Ctrl+C.  Start fresh (demo database and sandbox together): zgw-identificatie demo --fresh
"""


def _fresh_start(settings: Any) -> list[str]:
    """--fresh: remove the demo's SQLite file and the sandbox's file together (never a configured database)."""
    removed = []
    candidates = []
    if not settings.database_url:
        db = Path(settings.effective_database_url.split("///", 1)[1])
        candidates += [db, Path(str(db) + "-wal"), Path(str(db) + "-shm")]
    if settings.zgw.sandbox and settings.zgw.sandbox_state_file:
        candidates.append(Path(settings.zgw.sandbox_state_file))
    for path in candidates:
        if path.is_file():
            path.unlink()
            removed.append(str(path))
    return removed


def cmd_demo(args: argparse.Namespace) -> int:
    """The walk-through: the DigiD simulator, the ZGW sandbox and SQLite unless settings name real ones."""
    from .app import create_app, services_of
    from .worker import start_background

    given = load_settings(validate=False)
    if given.production:
        print("The demo refuses to run with ZGWID_ENV=production.", file=sys.stderr)
        return 2
    port = args.port or given.demo_port
    settings, password, api_key = demo_settings(given, port)
    if args.fresh:
        for path in _fresh_start(settings):
            print(f"removed {path}")
    app = create_app(settings)
    start_background(services_of(app))
    print(demo_banner(settings, password, api_key), flush=True)
    app.run(host="127.0.0.1", port=port, threaded=True, use_reloader=False)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """gunicorn with the app factory (production)."""
    settings = load_settings()
    _prepare_multiprocess_metrics()
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "python:zgw_identificatie.gunicorn_conf",
        "--bind",
        args.bind,
        "--workers",
        str(args.workers),
        "--no-control-socket",  # gunicorn >= 25.1 would put a socket under $HOME (not writable in the image)
    ]
    if settings.log_format != "json":  # JSON logs: the app writes one structured line per request instead
        cmd += ["--access-logfile", "-"]
    cmd.append("zgw_identificatie.wsgi:app")
    os.execvp(cmd[0], cmd)  # noqa: S606 - fixed argv
    return 0


def _prepare_multiprocess_metrics() -> None:
    """gunicorn's workers share their Prometheus counters through files in PROMETHEUS_MULTIPROC_DIR: a fresh
    folder per start (given and emptied, or a new temporary one), set before any worker imports the client."""
    import tempfile
    from pathlib import Path

    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="zgwid-metrics-")


def cmd_worker(args: argparse.Namespace) -> int:
    import signal
    import threading

    from .app import services_of
    from .worker import beat, loop

    app = _app(worker_in_process=False)
    svc = services_of(app)
    if svc.settings.metrics_port:
        from .metrics import start_metrics_server

        start_metrics_server(svc.settings.metrics_port, svc.settings.metrics_bind, svc.store)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())  # finish the registration at hand, then exit
    beat()
    loop(services_of(app), stop, heartbeat=beat)
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    from .app import services_of
    from .worker import purge

    counts = purge(services_of(_app()))
    print(" ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


def cmd_registrations(args: argparse.Namespace) -> int:
    """List failed registrations; ``--resume ID …`` / ``--resume-all`` makes them due again (the worker
    continues each from its last completed step), also after the session has expired."""
    from .app import services_of
    from .flows.registration import NotResumable, next_step, resume_registration

    svc = services_of(_app(worker_in_process=False))
    failed = list(svc.store.failed_registrations(limit=args.limit))
    wanted = [r.id for r in failed if r.proof is not None] if args.resume_all else list(args.resume or [])
    if not wanted:
        for reg in failed:
            can = "resumable" if reg.proof is not None else "proof erased"
            print(
                f"{reg.id}  {reg.updated_at:%Y-%m-%d %H:%M}Z  zaak={reg.zaak_identificatie or '-'}  "
                f"stopped-at={next_step(reg)}  {can}  {reg.error or ''}"
            )
        print(f"{len(failed)} failed registration(s)")
        return 0
    status = 0
    for reg_id in wanted:
        try:
            resume_registration(reg_id, store=svc.store, clock=svc.clock, actor="operator")
            print(f"{reg_id}: resumed")
        except NotResumable as exc:
            print(f"{reg_id}: not resumed ({exc.reason})", file=sys.stderr)
            status = 1
    return status


def cmd_events(args: argparse.Namespace) -> int:
    """The outbox per channel: deliveries still to send and given up; ``--retry-failed [--channel C]`` queues the
    given-up ones again (kept a day after giving up), once the receiver is fixed."""
    from .app import services_of

    svc = services_of(_app(worker_in_process=False))
    store: Any = svc.store
    if not hasattr(store, "unsent_deliveries"):
        print("this store has no outbox", file=sys.stderr)
        return 1
    if args.retry_failed:
        n = store.retry_given_up_deliveries(svc.clock.now(), channel=args.channel)
        where = f" of {args.channel}" if args.channel else ""
        print(f"{n} given-up deliveries{where} are due again; the worker sends them, in order per session")
        return 0
    rows = store.unsent_deliveries()
    for row in rows:
        waiting = row.state == "pending"
        print(
            f"{row.channel}  {'waiting' if waiting else 'given-up'}={row.n}  most-attempts={row.attempts}  "
            f"{'next' if waiting else 'since'}={row.next_at:%Y-%m-%d %H:%M}Z  {row.error or ''}".rstrip()
        )
    given_up = sum(row.n for row in rows if row.state == "failed")
    print(
        f"{sum(row.n for row in rows) - given_up} waiting, {given_up} given up"
        + (" (--retry-failed [--channel CHANNEL] sends those again)" if given_up else "")
    )
    return 0


def cmd_saml_metadata(args: argparse.Namespace) -> int:
    from .app import services_of

    print(services_of(_app()).idp.metadata_xml())
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    from .app import services_of
    from .domain.errors import RegistryUnavailable

    settings = load_settings()
    svc = services_of(_app())
    if not settings.zgw.sandbox:
        from .adapters.zgw.registry import ZgwHttpRegistry, check_access

        try:
            registry = svc.registry  # resolves the catalogue; a wrong setting raises ConfigError
            if isinstance(registry, ZgwHttpRegistry):
                # A read on the Zaken and the Documenten API: credentials and scopes (ConfigError names the scope).
                print("\n".join(check_access(registry)))
        except RegistryUnavailable as exc:
            print(
                f"zaaksysteem unreachable: {exc}\nThe settings are valid, but the ZGW APIs could not be checked"
                f" ({settings.zgw.catalogi_url}); try again when they answer.",
                file=sys.stderr,
            )
            return 3
    print("configuration OK")
    return 0


def health_target(cmdline: list[str]) -> tuple[str, str]:
    """What to check for the process that runs ``cmdline``: ("http", url), ("worker", ""), ("none", why), or
    ("unknown", why) when the command line could not be read.

    ``serve`` execs gunicorn, so its command line carries the ``--bind`` address; the check follows it. Until
    the exec (settings being read) the command line is still ``zgw-identificatie serve …``: the same port is
    asked, and nothing answering yet is unhealthy, not "nothing to check".
    """
    if not cmdline:
        return "unknown", "the process's command line could not be read"
    ours = any("zgw-identificatie" in part or "zgw_identificatie" in part for part in cmdline)
    if any(part.endswith("gunicorn") for part in cmdline) or (ours and "serve" in cmdline[1:]):
        bind = "0.0.0.0:8000"
        for i, part in enumerate(cmdline):
            if part in ("--bind", "-b") and i + 1 < len(cmdline):
                bind = cmdline[i + 1]
            elif part.startswith("--bind="):
                bind = part.split("=", 1)[1]
        if bind.startswith(("unix:", "fd://")):
            return "none", f"gunicorn listens on {bind}, not on TCP"
        host, _, port = bind.rpartition(":")
        host = host.strip("[]")
        if host in ("", "0.0.0.0", "::"):  # noqa: S104 - an address we connect to, not one we bind
            host = "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        return "http", f"http://{host}:{port}/health/live"
    if "worker" in cmdline[1:] and ours:
        return "worker", ""
    return "none", "not the service or the worker: " + " ".join(cmdline[:3])


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def cmd_health(args: argparse.Namespace) -> int:
    """The container's HEALTHCHECK: /health/live of ``serve`` on its own port, or the worker's heartbeat.

    Without options it looks at the container's main process (PID 1, or ``--pid``) to see which it is.
    Exit 0 healthy, 1 unhealthy.
    """
    import urllib.request

    from .worker import HEARTBEAT_FILE, heartbeat_age

    if args.url:
        kind, target = "http", args.url
    elif args.worker:
        kind, target = "worker", ""
    else:
        kind, target = health_target(_cmdline(args.pid))
    if kind == "http":
        try:
            with urllib.request.urlopen(target, timeout=args.timeout) as answer:  # noqa: S310 - our own URL
                status = answer.status
        except OSError as exc:
            print(f"unhealthy: {target}: {exc}")
            return 1
        print(f"{'healthy' if status == 200 else 'unhealthy'}: {target} answered {status}")
        return 0 if status == 200 else 1
    if kind == "worker":
        age = heartbeat_age()
        if age is None:
            print(f"unhealthy: no worker heartbeat at {HEARTBEAT_FILE}")
            return 1
        healthy = age <= args.max_age
        word = "healthy" if healthy else "unhealthy"
        print(f"{word}: last worker iteration {age:.0f} s ago (limit {args.max_age} s)")
        return 0 if healthy else 1
    if kind == "unknown":
        print(f"unhealthy: {target}")
        return 1
    print(f"healthy: nothing to check ({target})")
    return 0


def cmd_digid_metadata_check(args: argparse.Namespace) -> int:
    """R22: compare DigiD's published metadata with the pinned settings; 0 same, 1 changed, 2 unreadable."""
    from .adapters.digid.metadata_check import run_check

    result = run_check(load_settings())
    print("\n".join(result.lines))
    return result.exit_code


def cmd_hash_password(args: argparse.Namespace) -> int:
    import getpass

    from werkzeug.security import generate_password_hash

    password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    print(generate_password_hash(password))
    return 0


def cmd_hash_api_key(args: argparse.Namespace) -> int:
    import secrets

    from .web.security import hash_secret_sha256

    key = args.key or secrets.token_urlsafe(32)
    if not args.key:
        print(f"key:      {key}")
    print(f"key_hash: {hash_secret_sha256(key)}")
    return 0


def cmd_generate_key(args: argparse.Namespace) -> int:
    from .adapters.crypto import generate_key

    print(generate_key())
    return 0


def cmd_rotate_keys(args: argparse.Namespace) -> int:
    from .app import build_store

    print(f"re-encrypted {build_store(load_settings()).rotate_keys()} values")
    return 0


def cmd_notificaties_kanaal(args: argparse.Namespace) -> int:
    """Register the kanaal on the Notificaties API (the worker also does so before its first notificatie)."""
    import requests

    from .outbox import DeliveryFailed, ensure_kanaal

    settings = load_settings()
    if not settings.zgw.notificaties_url:
        print("ZGWID_ZGW_NOTIFICATIES_URL is not set: no notificaties are sent", file=sys.stderr)
        return 2
    try:
        print(f"kanaal {settings.zgw.notificaties_kanaal}: {ensure_kanaal(settings, requests.Session())}")
    except DeliveryFailed as exc:
        print(f"could not register the kanaal: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_webhook_secret(args: argparse.Namespace) -> int:
    """A new Standard Webhooks secret for api_keys.<client>.webhook_secret."""
    import base64
    import secrets

    print("whsec_" + base64.b64encode(secrets.token_bytes(32)).decode())
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    """The settings table in Markdown (the README's is generated with this), or the example TOML file."""
    if args.toml:
        from .settings import example_toml

        print(example_toml(), end="")
        return 0
    from .settings import describe

    print("| Environment variable | TOML key | Default | What it does |\n| --- | --- | --- | --- |")
    for env, key, default, help_text in describe():
        print(f"| `{env}` | `{key}` | `{default}` | {help_text} |")
    return 0


def cmd_verify_proof(args: argparse.Namespace) -> int:
    """Check a sealed proof PDF offline: seal, embedded DigiD assertion, and the page against it (exit 0/1)."""
    from pathlib import Path

    from .adapters.proof_verify import read_certificates, verify_proof

    try:
        pdf = Path(args.file).read_bytes()
        digid = read_certificates(args.digid_cert)
        seal = [Path(p).read_bytes() for p in args.seal_cert]
        tsa = [Path(p).read_bytes() for p in args.tsa_cert]
    except (OSError, UnicodeDecodeError) as exc:
        print(f"ONGELDIG: een bestand is niet te lezen ({exc})")
        return 1
    verdict = verify_proof(pdf, digid_certs=digid, seal_certs=seal, tsa_certs=tsa)
    print(verdict.text())
    return 0 if verdict.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zgw-identificatie", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="start everything embedded for a walk-through")
    p.add_argument("--port", type=int, default=0, help="default: ZGWID_DEMO_PORT or 8000")
    p.add_argument("--fresh", action="store_true", help="start with an empty demo database and sandbox")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("serve", help="run under gunicorn")
    p.add_argument("--bind", default="0.0.0.0:8000")  # all interfaces: inside a container
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(func=cmd_serve)
    for name, func, text in [
        ("worker", cmd_worker, "process pending registrations and erase expired records"),
        ("purge", cmd_purge, "erase expired sessions and data once"),
        ("saml-metadata", cmd_saml_metadata, "print the SP metadata for the DigiD aansluiting"),
        (
            "check-config",
            cmd_check_config,
            "validate settings, resolve the ZGW catalogue, read the Zaken and Documenten APIs",
        ),
        ("digid-metadata-check", cmd_digid_metadata_check, "compare DigiD's metadata with the pinned settings"),
        ("hash-password", cmd_hash_password, "hash a staff password (read from the terminal or stdin)"),
        ("generate-key", cmd_generate_key, "print a new encryption key for ZGWID_ENCRYPTION_KEYS"),
        ("rotate-keys", cmd_rotate_keys, "re-encrypt stored data with the newest encryption key"),
        ("notificaties-kanaal", cmd_notificaties_kanaal, "register the kanaal on the Notificaties API"),
        ("webhook-secret", cmd_webhook_secret, "print a new webhook signing secret (whsec_…)"),
    ]:
        sub.add_parser(name, help=text).set_defaults(func=func)
    p = sub.add_parser("health", help="health check of serve (its /health/live) or worker (its heartbeat)")
    p.add_argument("--url", help="check this URL instead (e.g. http://127.0.0.1:8000/health/live)")
    p.add_argument("--worker", action="store_true", help="check the worker's heartbeat")
    p.add_argument("--max-age", type=int, default=300, help="seconds a worker heartbeat may be old (default 300)")
    p.add_argument("--timeout", type=float, default=4.0, help="seconds to wait for /health/live")
    p.add_argument("--pid", type=int, default=1, help="the process to look at (default 1: the container's)")
    p.set_defaults(func=cmd_health)
    p = sub.add_parser("settings", help="print every setting as a Markdown table (or --toml: the example file)")
    p.add_argument("--toml", action="store_true")
    p.set_defaults(func=cmd_settings)
    p = sub.add_parser("registrations", help="list failed registrations; --resume ID… or --resume-all finishes them")
    p.add_argument("--resume", nargs="+", metavar="ID")
    p.add_argument("--resume-all", action="store_true")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=cmd_registrations)
    p = sub.add_parser("events", help="notificaties and webhooks still to send or given up; --retry-failed resends")
    p.add_argument("--retry-failed", action="store_true", help="queue the given-up deliveries again")
    p.add_argument("--channel", help="only this channel (notificaties, webhook:<API client>)")
    p.set_defaults(func=cmd_events)
    p = sub.add_parser("hash-api-key", help="make an API key (or hash a given one) for ZGWID_API_KEYS")
    p.add_argument("key", nargs="?")
    p.set_defaults(func=cmd_hash_api_key)
    p = sub.add_parser("verify-proof", help="check a sealed proof PDF: seal, DigiD assertion, text (exit 0 or 1)")
    p.add_argument("file", help="the proof PDF")
    p.add_argument(
        "--digid-cert", action="append", required=True, help="PEM file of DigiD's signing certificate (repeatable)"
    )
    p.add_argument(
        "--seal-cert", action="append", default=[], help="PEM/DER trust anchor for the municipality's seal (repeatable)"
    )
    p.add_argument("--tsa-cert", action="append", default=[], help="PEM/DER trust anchor for the timestamp authority")
    p.set_defaults(func=cmd_verify_proof)
    args = parser.parse_args(argv)
    from .settings import ConfigError

    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
