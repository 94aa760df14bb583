"""The worker loop's heartbeat: it beats while the loop works, also while the zaaksysteem is down, and
not when an iteration fails otherwise (the container's HEALTHCHECK reads it)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from zgw_identificatie import worker
from zgw_identificatie.domain.errors import RegistryUnavailable


def run_loop(monkeypatch: pytest.MonkeyPatch, failure: Exception | None, iterations: int = 5) -> list[int]:
    """Run the loop for ``iterations`` iterations; the heartbeats seen per iteration."""
    stop = threading.Event()
    seen: list[int] = []
    beats = [0]

    def run_once(services: Any, **_options: Any) -> int:
        seen.append(beats[0])
        if len(seen) >= iterations:
            stop.set()
        if failure is not None:
            raise failure
        return 0

    monkeypatch.setattr(worker, "run_once", run_once)
    monkeypatch.setattr(worker, "run_events", lambda services, _stop: 0)
    services = SimpleNamespace(
        settings=SimpleNamespace(purge_interval_seconds=3600, digid=SimpleNamespace(simulator=False)),
        store=SimpleNamespace(purge=lambda now: {}),
        clock=None,
    )
    services.clock = SimpleNamespace(now=lambda: None)

    def beat() -> None:
        beats[0] += 1

    worker.loop(services, stop, interval=0, heartbeat=beat)  # type: ignore[arg-type]
    return [*seen, beats[0]]


def test_the_loop_beats_after_every_iteration(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_loop(monkeypatch, None) == [0, 1, 2, 3, 4, 5]


def test_an_unreachable_zaaksysteem_still_beats_and_logs_one_line_not_a_trace(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="zgw_identificatie.worker"):
        assert run_loop(monkeypatch, RegistryUnavailable("GET catalogi catalogussen: connection failed"))[-1] == 5
    lines = [r for r in caplog.records if r.name == "zgw_identificatie.worker"]
    assert len(lines) == 1 and lines[0].exc_info is None and "zaaksysteem unavailable" in lines[0].getMessage()


def test_another_failure_does_not_beat(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="zgw_identificatie.worker"):
        assert run_loop(monkeypatch, RuntimeError("database gone"))[-1] == 0
    assert sum(r.exc_info is not None for r in caplog.records) == 5


def test_the_heartbeat_file_records_its_age(tmp_path: Path) -> None:
    path = tmp_path / "beat"
    assert worker.heartbeat_age(path) is None
    worker.beat(path)
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime - 1000))
    age = worker.heartbeat_age(path)
    assert age is not None and age >= 1000
    worker.beat(path)  # touches an existing file too
    assert (worker.heartbeat_age(path) or 0) < 1000


def test_a_stop_reaches_the_work_at_hand_and_skips_the_purge(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM sets the event: the registrations and the event deliveries see it (they claim nothing more and
    hand back what they hold), and the purge does not start."""
    stop = threading.Event()
    seen: dict[str, bool] = {}
    purged: list[object] = []

    def run_once(services: Any, *, stop: Any) -> int:
        stop_event.set()  # SIGTERM while the registrations run
        seen["registrations"] = stop()
        return 0

    stop_event = stop
    monkeypatch.setattr(worker, "run_once", run_once)
    monkeypatch.setattr(worker, "run_events", lambda services, stopping: seen.setdefault("events", stopping()) and 0)
    monkeypatch.setattr(worker, "purge", lambda services: purged.append(services) or {})
    services = SimpleNamespace(settings=SimpleNamespace(purge_interval_seconds=0))
    worker.loop(services, stop, interval=0)  # type: ignore[arg-type]
    assert seen == {"registrations": True, "events": True} and purged == []


def test_stop_background_waits_for_the_thread_and_says_when_it_did_not_end(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def run_once(services: Any, **_options: Any) -> int:
        release.wait(5)  # a call to a zaaksysteem that takes a while
        return 0

    monkeypatch.setattr(worker, "run_once", run_once)
    monkeypatch.setattr(worker, "run_events", lambda services, _stop: 0)
    monkeypatch.setattr(worker, "_BACKGROUND", [])
    services = SimpleNamespace(settings=SimpleNamespace(purge_interval_seconds=3600))
    worker.start_background(services)  # type: ignore[arg-type]
    assert worker.stop_background(0.2) is False  # still in its call: the caller logs it, the leases run out
    release.set()
    assert worker.stop_background(5) is True and worker._BACKGROUND == []
