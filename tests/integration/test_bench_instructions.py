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
