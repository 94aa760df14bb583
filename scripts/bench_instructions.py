"""Instructions per request, counted by valgrind's callgrind: a figure that a busy machine does not move.

    python scripts/bench_instructions.py                     # this checkout (about 4 minutes)
    python scripts/bench_instructions.py --against 317e954   # and an earlier commit, side by side
    python scripts/bench_instructions.py --only status,create

Why: on the shared development machine, CPU time per request moves by 10–20 % between runs of the same
code (docs/OPERATIONS.md), so a change of a few per cent cannot be seen in ``bench_service.py``. The number
of instructions a request executes hardly moves (two runs of the same code: within 0.2 %). It is not time
(a cache miss or a system call costs more than an instruction), so it complements the wall-clock figures
and does not replace them; the issue's targets stay those of ``bench_service.py``.

What runs, each case in its own process under ``valgrind --tool=callgrind``, in process (Flask's WSGI
call, no gunicorn, no network server; PostgreSQL at 127.0.0.1:5432 in a throw-away schema):

* ``hello``: a one-route Flask app, the reference;
* ``status``: ``GET /api/v1/sessions/{id}`` with an API key;
* ``start``: the citizen's start page ``GET /i/{id}`` (a new browser each time: a new cookie);
* ``create``: ``POST /api/v1/sessions`` (§2.2, with a BSN);
* ``identification``: a whole §2.2 identification through the test client, the DigiD simulator
  in-process (so DigiD's side is counted too), and one status read.

Only the measured loop is counted: it runs inside ``functools.reduce`` and callgrind collects only while
that function is on the stack (``--toggle-collect``); start-up and warm-up are outside it. With
``--against REF`` a temporary git worktree of REF is measured by the same driver (its ``src`` first on
``PYTHONPATH``), case by case, alternating, and removed afterwards. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CASES = {"hello": 300, "status": 300, "start": 200, "create": 200, "identification": 20}
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_COLLECTED = re.compile(r"Collected : (\d+)")


def drive(case: str, n: int) -> None:
    """Run inside valgrind: warm up, then ``n`` requests inside functools.reduce (the counted part)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import benchmark

    tmp = Path(tempfile.mkdtemp(prefix="zgwid-instr-"))
    schema = throwaway_schema()
    try:
        drive_in(case, n, benchmark, tmp, f"{PG_URL}?options=-csearch_path%3D{schema}")
    finally:
        drop_schema(schema)
        shutil.rmtree(tmp, ignore_errors=True)


def throwaway_schema() -> str:
    """A schema of its own, so a run leaves nothing in the database's ``public`` (or in another run's way)."""
    import secrets

    import sqlalchemy as sa

    schema = f"zgwid_instr_{secrets.token_hex(4)}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    return schema


def drop_schema(schema: str) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def drive_in(case: str, n: int, benchmark: Any, tmp: Path, database_url: str) -> None:
    from werkzeug.test import EnvironBuilder

    from zgw_identificatie.app import services_of

    app: Any = benchmark.build_app(tmp, database_url=database_url)
    web = benchmark.Web(app)
    counted: Any
    if case == "identification":

        def counted(_acc: int, _i: int) -> int:
            sid = web.round_trip("known-citizen")
            web.api.get(f"/api/v1/sessions/{sid}", headers=web.auth)
            return 0

        warm = 10
    else:
        sid = web.create("known-citizen")
        if case == "hello":
            from flask import Flask

            app = Flask("hello")
            app.add_url_rule("/", "hello", lambda: "Hello, World!")
        builder = {
            "hello": lambda: EnvironBuilder(path="/"),
            "status": lambda: EnvironBuilder(path=f"/api/v1/sessions/{sid}", headers=list(web.auth.items())),
            "start": lambda: EnvironBuilder(path=f"/i/{sid}"),
            "create": lambda: EnvironBuilder(
                path="/api/v1/sessions",
                method="POST",
                headers=list(web.auth.items()),
                json={"flow": "known-citizen", "bsn": benchmark.BSN},
            ),
        }[case]()
        environ = builder.get_environ()
        body = environ["wsgi.input"].read()

        def start_response(*_args: Any) -> None:
            return None

        def counted(_acc: int, _i: int) -> int:
            env = dict(environ)
            env["wsgi.input"] = io.BytesIO(body)
            out = app(env, start_response)
            b"".join(out)
            getattr(out, "close", lambda: None)()
            return 0

        warm = 50
    for _ in range(warm):
        counted(0, 0)
    functools.reduce(counted, range(n), 0)
    services_of(web.app).store.engine.dispose()  # type: ignore[attr-defined]


def count(case: str, n: int, src: Path) -> int:
    """Instructions of ``n`` requests of ``case`` with the package from ``src``."""
    out = Path(tempfile.mkdtemp(prefix="zgwid-callgrind-"))
    env = dict(os.environ, PYTHONPATH=str(src))
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--collect-atstart=no",
        "--toggle-collect=functools_reduce",
        f"--callgrind-out-file={out / 'callgrind.out'}",
        sys.executable,
        str(Path(__file__).resolve()),
        "--drive",
        case,
        str(n),
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)  # noqa: S603
        found = _COLLECTED.findall(done.stderr)
        if done.returncode != 0 or not found:
            raise SystemExit(f"{case}: the driver failed under valgrind:\n{done.stderr[-2000:]}")
        return int(found[-1])
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", help="an earlier commit (or any git ref) to count side by side")
    parser.add_argument("--only", help="comma-separated cases: " + ",".join(CASES))
    parser.add_argument("--drive", nargs=2, metavar=("CASE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.drive:
        drive(args.drive[0], int(args.drive[1]))
        return 0
    if not shutil.which("valgrind"):
        print("valgrind is not installed (Debian package valgrind)", file=sys.stderr)
        return 2
    cases = [c for c in CASES if not args.only or c in args.only.split(",")]
    versions: list[tuple[str, Path]] = [("this checkout", ROOT / "src")]
    worktree: Path | None = None
    try:
        if args.against:
            worktree = Path(tempfile.mkdtemp(prefix="zgwid-against-")) / "tree"
            subprocess.run(  # noqa: S603
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(worktree), args.against],  # noqa: S607
                check=True,
            )
            versions.insert(0, (args.against, worktree / "src"))
        per_request: dict[tuple[str, str], float] = {}
        for case in cases:
            for label, src in versions:
                per_request[(label, case)] = count(case, CASES[case], src) / CASES[case]
                print(f"  {case:15} {label:15} {per_request[(label, case)] / 1e6:8.3f} M instructions", flush=True)
        print("\n| Case | " + " | ".join(label for label, _ in versions) + (" | change |" if worktree else " |"))
        print("| --- " * (len(versions) + 1 + bool(worktree)) + "|")
        for case in cases:
            cells = []
            for label, _src in versions:
                value = per_request[(label, case)]
                hello = per_request.get((label, "hello"))
                ratio = f" ({value / hello:.2f}× hello)" if hello and case != "hello" else ""
                cells.append(f"{value / 1e6:.3f} M{ratio}")
            change = ""
            if worktree:
                before, after = per_request[(versions[0][0], case)], per_request[(versions[1][0], case)]
                change = f" | {100 * (after - before) / before:+.1f} %"
            unit = "per identification" if case == "identification" else "per request"
            print(f"| {case} ({unit}) | " + " | ".join(cells) + change + " |")
    finally:
        if worktree is not None:
            subprocess.run(  # noqa: S603
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)],  # noqa: S607
                check=False,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
