"""zgw-identificatie demo | serve | worker | purge | saml-metadata | check-config | digid-metadata-check | …"""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import sys
from typing import Any

from .settings import ConfigError, describe, load_settings


def _app(**overrides: Any) -> Any:
    from .app import create_app

    return create_app(load_settings(**overrides))


def cmd_demo(args: argparse.Namespace) -> int:
    """Everything embedded: SQLite, the DigiD simulator, the ZGW sandbox, the worker in-process."""
    from werkzeug.security import generate_password_hash

    from .app import services_of
    from .settings import Settings
    from .web.security import hash_secret_sha256
    from .worker import start_background

    given = load_settings(validate=False)
    if given.production:
        print("The demo refuses to run with ZGWID_ENV=production.", file=sys.stderr)
        return 2
    defaults = Settings()
    port = args.port or given.demo_port
    password = given.demo_password or secrets.token_urlsafe(9)
    api_key = given.api_key or secrets.token_urlsafe(24)
    settings = load_settings(
        base_url=given.base_url if given.base_url != defaults.base_url else f"http://127.0.0.1:{port}",
        instance_path=given.instance_path if given.instance_path != defaults.instance_path else "instance/demo",
        digid__simulator=True,
        zgw__sandbox=True,
        staff_users={
            "behandelaar": {"name": "Sanne de Vries", "password_hash": generate_password_hash(password)},
            "collega": {"name": "Ahmed Bakker", "password_hash": generate_password_hash(password)},
        },
        api_keys={
            "demo": {"key_hash": hash_secret_sha256(api_key), "name": "Demo-client", "behandelaar": "Team Burgerzaken"}
        },
    )
    from .app import create_app
    from .demo.digid_simulator import TEST_BSNS

    app = create_app(settings)
    start_background(services_of(app))
    print(
        f"""
zgw-identificatie demo
  Behandelaar:  {settings.base_url}/staff/   gebruiker: behandelaar (of collega)  wachtwoord: {password}
  Zaaksysteem:  {settings.base_url}/sandbox/  (de ZGW-sandbox)
  API:          {settings.base_url}/api/v1/openapi.json   Authorization: Bearer {api_key}
  DigiD:        de simulator ({settings.base_url}/demo/digid/); test-BSN's: {", ".join(TEST_BSNS)}
  Bewijs-PDF:   zgw-identificatie verify-proof BESTAND.pdf --digid-cert {settings.instance_path}/digid-sim/idp.crt \\
                  --seal-cert {settings.instance_path}/seal/seal.crt
Stop with Ctrl+C.
""",
        flush=True,
    )
    app.run(host="127.0.0.1", port=port, threaded=True, use_reloader=False)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """gunicorn with the app factory (production)."""
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        args.bind,
        "--workers",
        str(args.workers),
        "--access-logfile",
        "-",
        "zgw_identificatie.wsgi:app",
    ]
    os.execvp(cmd[0], cmd)  # noqa: S606 - fixed argv
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    import signal
    import threading

    from .app import services_of
    from .worker import loop

    app = _app(worker_in_process=False)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())  # finish the registration at hand, then exit
    loop(services_of(app), stop)
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    from .app import services_of
    from .worker import purge

    counts = purge(services_of(_app()))
    print(" ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


def cmd_saml_metadata(args: argparse.Namespace) -> int:
    from .app import services_of

    print(services_of(_app()).idp.metadata_xml())
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    from .app import services_of

    settings = load_settings()
    svc = services_of(_app())
    if not settings.zgw.sandbox:
        svc.registry  # noqa: B018 - resolves the catalogue; a wrong setting raises ConfigError
    print("configuration OK")
    return 0


def cmd_digid_metadata_check(args: argparse.Namespace) -> int:
    """R22: compare DigiD's published metadata with the pinned settings; 0 same, 1 changed, 2 unreadable."""
    from .adapters.digid.metadata_check import run_check

    result = run_check(load_settings())
    print("\n".join(result.lines))
    return result.exit_code


def cmd_hash_password(args: argparse.Namespace) -> int:
    from werkzeug.security import generate_password_hash

    password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    print(generate_password_hash(password))
    return 0


def cmd_hash_api_key(args: argparse.Namespace) -> int:
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


def cmd_settings(args: argparse.Namespace) -> int:
    """The settings table in Markdown (the README's is generated with this), or the example TOML file."""
    if args.toml:
        from .settings import example_toml

        print(example_toml(), end="")
        return 0
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
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("serve", help="run under gunicorn")
    p.add_argument("--bind", default="0.0.0.0:8000")  # all interfaces: inside a container
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(func=cmd_serve)
    for name, func, text in [
        ("worker", cmd_worker, "process pending registrations and erase expired records"),
        ("purge", cmd_purge, "erase expired sessions and data once"),
        ("saml-metadata", cmd_saml_metadata, "print the SP metadata for the DigiD aansluiting"),
        ("check-config", cmd_check_config, "validate settings and resolve the ZGW catalogue"),
        ("digid-metadata-check", cmd_digid_metadata_check, "compare DigiD's metadata with the pinned settings"),
        ("hash-password", cmd_hash_password, "hash a staff password (read from the terminal or stdin)"),
        ("generate-key", cmd_generate_key, "print a new encryption key for ZGWID_ENCRYPTION_KEYS"),
        ("rotate-keys", cmd_rotate_keys, "re-encrypt stored data with the newest encryption key"),
    ]:
        sub.add_parser(name, help=text).set_defaults(func=func)
    p = sub.add_parser("settings", help="print every setting as a Markdown table (or --toml: the example file)")
    p.add_argument("--toml", action="store_true")
    p.set_defaults(func=cmd_settings)
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
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
