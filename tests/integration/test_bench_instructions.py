"""``scripts/bench_instructions.py``: its driver (what runs under valgrind) works for every case, so the
benchmark does not rot between the runs someone makes of it. Counting itself needs valgrind and minutes."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_instructions.py"

pytestmark = pytest.mark.postgres


def load_script():
    spec = importlib.util.spec_from_file_location("zgwid_bench_instructions", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("case", ["hello", "status", "start", "create", "identification"])
def test_the_driver_runs_each_case(case, monkeypatch):
    script = load_script()
    calls: list[int] = []

    def counting(function, iterable, initial):
        items = list(iterable)
        calls.append(len(items))
        return functools.reduce(function, items, initial)

    monkeypatch.setattr(script, "functools", SimpleNamespace(reduce=counting))  # the script's own name only
    script.drive(case, 2)
    assert calls == [2]  # the counted loop ran once, with the requests asked for


def _layout() -> tuple[list[str], list[str], int]:
    """The driver's schemas, the tables in the database's ``public`` schema, and the sessions stored there."""
    import sqlalchemy as sa

    from zgw_identificatie.testing.settings import TEST_PG_URL

    engine = sa.create_engine(TEST_PG_URL)
    with engine.connect() as conn:
        ours = "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'zgwid_instr_%'"
        schemas = sorted(conn.execute(sa.text(ours)).scalars())
        tables = sorted(conn.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
        sessions = conn.execute(sa.text("SELECT count(*) FROM public.sessions")).scalar() if "sessions" in tables else 0
    engine.dispose()
    return schemas, tables, int(sessions or 0)


def test_the_driver_leaves_nothing_behind_in_the_database(monkeypatch):
    """Its throw-away schema is dropped again; nothing lands in ``public`` (a run once filled it with the
    service's tables and sessions, beside whatever else uses the database)."""
    script = load_script()
    monkeypatch.setattr(script, "functools", SimpleNamespace(reduce=functools.reduce))
    before = _layout()
    script.drive("create", 2)
    assert _layout() == before
