"""Background work: pending registrations (with backoff), event deliveries (outbox) and the erasure of
expired records."""

from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .app import Services

log = logging.getLogger(__name__)

# `zgw-identificatie worker` touches this file after every iteration that ran without an error;
# `zgw-identificatie health` (the container's HEALTHCHECK) reads its age. In a read-only container
# the temporary folder is the tmpfs at /tmp.
HEARTBEAT_FILE = Path(tempfile.gettempdir()) / "zgw-identificatie-worker.heartbeat"


def beat(path: Path = HEARTBEAT_FILE) -> None:
    try:
        path.touch()
        os.utime(path)
    except OSError as exc:
        log.warning("worker heartbeat %s not written: %s", path, exc)


def heartbeat_age(path: Path = HEARTBEAT_FILE) -> float | None:
    """Seconds since the last heartbeat; None when there was none."""
    try:
        return max(0.0, time.time() - path.stat().st_mtime)
    except OSError:
        return None


def run_once(services: Services, *, limit: int = 20, stop: Callable[[], bool] = lambda: False) -> int:
    """Process the registrations (and §2.1 code confirmations) that are due; returns how many were attempted.

    The registry is built only when something is due; when it cannot be built (wrong secret, catalogue
    not resolvable, zaaksysteem down) each due registration records a failed attempt with backoff."""
    from .flows.registration import process_due

    done = process_due(
        store=services.store,
        registry_factory=lambda: services.registry,
        renderer=services.renderer,
        clock=services.clock,
        settings=services.settings,
        limit=limit,
        stop=stop,
    )
    return done + _confirmations(services, limit, stop)


def _confirmations(services: Services, limit: int, stop: Callable[[], bool]) -> int:
    """§2.1 code confirmations onto their zaak (flows/confirmation.py), after the registrations."""
    from .flows.confirmation import process_due_confirmations

    return process_due_confirmations(
        store=services.store,
        registry_factory=lambda: services.registry,
        clock=services.clock,
        settings=services.settings,
        limit=limit,
        stop=stop,
    )


def run_events(services: Services, stop: Callable[[], bool] = lambda: False) -> int:
    """Deliver due events from the outbox (notificaties, webhooks); returns how many were attempted."""
    from . import outbox

    return outbox.run_once(services, stop)


def purge(services: Services) -> dict[str, int]:
    counts = services.store.purge(services.clock.now())
    if services.settings.digid.simulator:
        from .demo.digid_simulator import purge_expired

        counts = {**counts, "simulator_state": purge_expired(services.store, services.clock.now())}
    from .metrics import count_purge

    count_purge(counts)
    if any(counts.values()):
        log.info("purged expired records: %s", counts)
    return counts


def loop(
    services: Services,
    stop: threading.Event,
    *,
    interval: float = 1.0,
    heartbeat: Callable[[], None] | None = None,
) -> None:
    from .domain.errors import RegistryUnavailable

    last_purge = 0.0
    unavailable_logged = -math.inf
    while not stop.is_set():
        try:
            run_once(services, stop=stop.is_set)
            if heartbeat is not None:
                heartbeat()
        except RegistryUnavailable as exc:
            # The zaaksysteem is down (its catalogue cannot be resolved): registrations wait, the worker
            # itself is fine (it beats). One line a minute instead of a stack trace every second.
            if heartbeat is not None:
                heartbeat()
            if time.monotonic() - unavailable_logged >= 60:
                log.warning("zaaksysteem unavailable, registrations wait: %s", exc)
                unavailable_logged = time.monotonic()
        except Exception:  # the loop must survive; the registration keeps its state
            log.exception("registration worker iteration failed")
        try:
            run_events(services, stop.is_set)
        except Exception:  # the deliveries keep their state and are retried
            log.exception("event delivery iteration failed")
        if not stop.is_set() and time.monotonic() - last_purge >= services.settings.purge_interval_seconds:
            try:
                purge(services)
            except Exception:
                log.exception("purge failed")
            last_purge = time.monotonic()
        stop.wait(interval)


_BACKGROUND: list[tuple[threading.Event, threading.Thread]] = []


def start_background(services: Services) -> threading.Event:
    """The worker loop in a thread of this (web) process; its stop event. ``stop_background`` ends it."""
    stop = threading.Event()
    thread = threading.Thread(target=loop, args=(services, stop), name="zgwid-worker", daemon=True)
    thread.start()
    _BACKGROUND.append((stop, thread))
    return stop


def stop_background(timeout: float) -> bool:
    """Ask this process's worker threads to stop and wait for them, at most ``timeout`` seconds in all: the
    registration or delivery at hand is finished, the rest of a batch handed back (see ``loop``), instead of the
    thread dying with the process and leaving its leases to run out. True when every thread ended in time."""
    deadline = time.monotonic() + timeout
    for stop, _thread in _BACKGROUND:
        stop.set()
    for _stop, thread in _BACKGROUND:
        thread.join(max(0.0, deadline - time.monotonic()))
    ended = not any(thread.is_alive() for _stop, thread in _BACKGROUND)
    _BACKGROUND[:] = [(stop, thread) for stop, thread in _BACKGROUND if thread.is_alive()]
    return ended
