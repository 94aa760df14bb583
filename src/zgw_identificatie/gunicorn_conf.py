"""gunicorn hooks for ``zgw-identificatie serve`` (``-c python:zgw_identificatie.gunicorn_conf``).

Prometheus in several worker processes: ``serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` (a fresh folder)
before gunicorn starts; each worker writes its counters there; ``child_exit`` marks a dead worker so its
live gauges are dropped (its counters stay summed); ``when_ready`` starts the separate, token-less metrics
listener in the master when ``ZGWID_METRICS_PORT`` is set. ``worker_exit`` stops a web worker's own worker
thread (``ZGWID_WORKER_IN_PROCESS``) before the worker exits.
"""

from __future__ import annotations

from typing import Any


def when_ready(server: Any) -> None:
    from .settings import load_settings

    settings = load_settings()
    if settings.metrics_port:
        from .adapters.sql_store import make_engine
        from .metrics import start_metrics_server

        class _EngineOnly:  # the master only reads the registrations table at scrape time
            engine = make_engine(settings.effective_database_url)

        start_metrics_server(settings.metrics_port, settings.metrics_bind, _EngineOnly())


# A web worker's own worker thread (``ZGWID_WORKER_IN_PROCESS``) gets this long to finish what it holds when the
# worker exits (gunicorn's graceful_timeout is 30 s, after which the master kills the worker).
BACKGROUND_STOP_SECONDS = 20.0


def worker_exit(server: Any, worker: Any) -> None:
    """In the exiting web worker: stop its worker thread as the separate worker stops on SIGTERM."""
    from .worker import stop_background

    if not stop_background(BACKGROUND_STOP_SECONDS):
        server.log.warning("worker thread still busy after %g s; its leases run out instead", BACKGROUND_STOP_SECONDS)


def child_exit(server: Any, worker: Any) -> None:
    from .metrics import multiprocess

    if multiprocess():
        from prometheus_client import multiprocess as mp

        mp.mark_process_dead(worker.pid)
