"""Background work: pending registrations (with backoff), event deliveries (outbox) and the erasure of
expired records."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .app import Services

log = logging.getLogger(__name__)


def run_once(services: Services, *, limit: int = 20) -> int:
    """Process the registrations that are due; returns how many were attempted."""
    from .flows.registration import process_due

    return process_due(
        store=services.store,
        registry=services.registry,
        renderer=services.renderer,
        clock=services.clock,
        settings=services.settings,
        limit=limit,
    )


def run_events(services: Services) -> int:
    """Deliver due events from the outbox (notificaties, webhooks); returns how many were attempted."""
    from . import outbox

    return outbox.run_once(services)


def purge(services: Services) -> dict[str, int]:
    counts = services.store.purge(services.clock.now())
    if any(counts.values()):
        log.info("purged expired records: %s", counts)
    return counts


def loop(services: Services, stop: threading.Event, *, interval: float = 1.0) -> None:
    last_purge = 0.0
    while not stop.is_set():
        try:
            run_once(services)
        except Exception:  # the loop must survive; the registration keeps its state
            log.exception("registration worker iteration failed")
        try:
            run_events(services)
        except Exception:  # the deliveries keep their state and are retried
            log.exception("event delivery iteration failed")
        if time.monotonic() - last_purge >= services.settings.purge_interval_seconds:
            try:
                purge(services)
            except Exception:
                log.exception("purge failed")
            last_purge = time.monotonic()
        stop.wait(interval)


def start_background(services: Services) -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=loop, args=(services, stop), name="zgwid-worker", daemon=True).start()
    return stop
