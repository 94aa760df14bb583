"""Background work: pending registrations (with backoff) and the erasure of expired records."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .app import Services

log = logging.getLogger(__name__)


def run_once(services: Services, *, limit: int = 20) -> int:
    """Process the registrations (and §2.1 code confirmations) that are due; returns how many were attempted."""
    from .flows.registration import process_due

    done = process_due(
        store=services.store,
        registry=services.registry,
        renderer=services.renderer,
        clock=services.clock,
        settings=services.settings,
        limit=limit,
    )
    return done + _confirmations(services, limit)


def _confirmations(services: Services, limit: int) -> int:
    """§2.1 code confirmations onto their zaak (flows/confirmation.py), after the registrations."""
    from .flows.confirmation import process_due_confirmations

    return process_due_confirmations(
        store=services.store, registry=services.registry, clock=services.clock, settings=services.settings, limit=limit
    )


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
