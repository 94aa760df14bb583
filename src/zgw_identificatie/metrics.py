"""Prometheus metrics: what an operator alerts on. Labels never hold a BSN, a session id or a URL.

Counters and the ZGW latency histogram are process-local objects of ``prometheus_client``; under
gunicorn (``zgw-identificatie serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers start, and
``gunicorn_conf.child_exit`` marks dead workers) they are summed over all worker processes at scrape
time. Registration states, attempts and the age of the oldest pending registration, and the outbox's
backlog (events waiting for the fan-out, deliveries pending or given up, the age of the oldest of each) are
read from the store at scrape time (``StoreCollector``), so every replica reports the same, shared truth.

Exposed on the service's port at ``/metrics`` behind ``ZGWID_METRICS_TOKEN`` (a bearer token; no token:
404), and/or without a token on ``ZGWID_METRICS_PORT`` (a separate listener, for a scraper inside the
cluster network).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
if os.environ.get(MULTIPROC_ENV):  # any process started with it (worker, purge) writes there: make sure it exists
    os.makedirs(os.environ[MULTIPROC_ENV], exist_ok=True)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

IDENTIFICATIONS = Counter(
    "zgwid_identifications",
    "Identifications by flow and outcome: started (a session made), then at the end of the DigiD login "
    "identified, code_mismatch, cancelled, failed or level_too_low",
    ["flow", "outcome"],
)
DIGID_LOGINS = Counter(
    "zgwid_digid_logins",
    "DigiD logins at the assertion consumer service, by outcome (success, cancelled, failed) and reason",
    ["outcome", "reason"],
)
REGISTRATIONS = Counter(
    "zgwid_registrations",
    "Registration transitions: started, done, retry (a transient failure), failed",
    ["outcome"],
)
REGISTRATION_ATTEMPTS = Counter("zgwid_registration_attempts", "Attempts to run a registration (worker)")
ZGW_LATENCY = Histogram(
    "zgwid_zgw_request_duration_seconds",
    "Duration of calls to the ZGW APIs, by API, operation (method and resource) and status",
    ["api", "operation", "status"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
EVENT_DELIVERIES = Counter(
    "zgwid_event_deliveries",
    "Deliveries of events (notifications, webhooks) by channel and outcome",
    ["channel", "outcome"],
)
PURGED = Counter("zgwid_purged_records", "Records erased by the purge, by kind", ["kind"])
HTTP_REQUESTS = Counter(
    "zgwid_http_requests",
    "HTTP requests answered, by route template (never a concrete path) and status class",
    ["route", "status"],
)

#: DigiD refusal reasons (free text for the security log) → a bounded label value.
_REASONS = (
    ("back channel", "back_channel"),
    ("replay", "replay"),
    ("signature", "signature"),
    ("relaystate", "browser_flow"),
    ("login flow", "browser_flow"),
    ("session behind", "session_gone"),
    ("samlresponse", "wrong_binding"),
    ("samlart", "bad_request"),
    ("below the required level", "level_too_low"),
    ("level-too-low", "level_too_low"),
    ("status", "idp_status"),
    ("artifact", "artifact"),
    ("not utc", "time"),
    ("expired", "time"),
    ("notonorafter", "time"),
    ("notbefore", "time"),
)


def login_reason(text: str) -> str:
    lowered = text.lower()
    for needle, label in _REASONS:
        if needle in lowered:
            return label
    return "invalid_response"


def zgw_operation(method: str, path: str) -> str:
    """``POST rollen``: the method and the resource's collection name, from a relative or absolute URL."""
    parts = [p for p in urlsplit(path).path.split("/") if p]
    if "v1" in parts:
        parts = parts[parts.index("v1") + 1 :]
    name = parts[0] if parts else "root"
    if len(parts) > 2 and parts[2] in ("download", "audittrail"):
        name += "/" + parts[2]
    return f"{method.upper()} {name}"[:60]


def observe_zgw(api: str, method: str, path: str, status: str, seconds: float) -> None:
    try:
        ZGW_LATENCY.labels(api, zgw_operation(method, path), status).observe(seconds)
    except Exception:  # metrics never break a registration
        log.debug("zgw metric not recorded", exc_info=True)


def count_purge(counts: dict[str, int]) -> None:
    for kind, n in counts.items():
        if n:
            PURGED.labels(kind).inc(n)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, documentation)
    gauge.add_metric([], value)
    return gauge


class StoreCollector(Collector):
    """Registration states, the age of the oldest unfinished registration and its attempts, and the outbox's
    backlog, read at scrape time."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = "1 when the store answered the metrics query"
        try:
            by_state, oldest, max_attempts = registration_stats(self.store)
        except Exception as exc:  # a database that is away must not break the scrape
            log.warning("registration metrics unavailable: %s", type(exc).__name__)
            yield _gauge("zgwid_store_up", up, 0)
            return
        yield _gauge("zgwid_store_up", up, 1)
        states = GaugeMetricFamily("zgwid_registrations_by_state", "Stored registrations by state", labels=["state"])
        for state in ("pending", "retrying", "done", "failed"):
            states.add_metric([state], by_state.get(state, 0))
        yield states
        yield _gauge(
            "zgwid_registration_oldest_pending_age_seconds",
            "Age of the oldest registration that is pending or retrying (0 when none)",
            oldest,
        )
        yield _gauge(
            "zgwid_registration_pending_max_attempts",
            "Most attempts made by a registration that is not finished",
            max_attempts,
        )
        try:
            waiting, waiting_age, deliveries, pending_age = outbox_stats(self.store)
        except Exception as exc:  # as above: the scrape goes on without these
            log.warning("outbox metrics unavailable: %s", type(exc).__name__)
            return
        yield _gauge("zgwid_events_waiting", "Session events not yet fanned out into deliveries", waiting)
        yield _gauge(
            "zgwid_event_oldest_waiting_age_seconds",
            "Age of the oldest event not yet fanned out (0 when none)",
            waiting_age,
        )
        to_send = GaugeMetricFamily(
            "zgwid_event_deliveries_by_state",
            "Deliveries of events still to send (pending) or given up (failed), by channel",
            labels=["channel", "state"],
        )
        for (channel, state), n in sorted(deliveries.items()):
            to_send.add_metric([channel, state], n)
        yield to_send
        yield _gauge(
            "zgwid_event_delivery_oldest_pending_age_seconds",
            "Age of the event behind the oldest pending delivery: how far the receivers lag (0 when none)",
            pending_age,
        )


def registration_stats(store: Any, now: datetime | None = None) -> tuple[dict[str, int], float, int]:
    """({state: count}, age in seconds of the oldest unfinished one, its most attempts)."""
    now = now or datetime.now(UTC)
    unfinished = ("pending", "retrying")
    engine = getattr(store, "engine", None)
    if engine is not None:
        import sqlalchemy as sa

        from .adapters.sql_store import UNFINISHED_REGISTRATIONS
        from .adapters.sql_store import registrations as t

        with engine.connect() as conn:
            counted = conn.execute(sa.select(t.c.state, sa.func.count().label("n")).group_by(t.c.state))
            by_state = {r.state: int(r.n) for r in counted}
            # The unfinished ones through their own index (its predicate, word for word), not all registrations.
            row = conn.execute(
                sa.select(sa.func.min(t.c.created_at), sa.func.max(t.c.attempts)).where(UNFINISHED_REGISTRATIONS)
            ).one()
        first, most = row[0], row[1]
        if first is not None and first.tzinfo is None:
            first = first.replace(tzinfo=UTC)
    else:  # the in-memory store of the tests
        regs = list(getattr(store, "registrations", {}).values())
        by_state = {}
        for reg in regs:
            by_state[reg.state.value] = by_state.get(reg.state.value, 0) + 1
        pending = [r for r in regs if r.state.value in unfinished]
        first = min((r.created_at for r in pending), default=None)
        most = max((r.attempts for r in pending), default=0)
    oldest = max(0.0, (now - first).total_seconds()) if first is not None else 0.0
    return by_state, oldest, int(most or 0)


def outbox_stats(store: Any, now: datetime | None = None) -> tuple[int, float, dict[tuple[str, str], int], float]:
    """(events waiting for the fan-out, age in seconds of the oldest of them, {(channel kind, state): n} of the
    pending and failed deliveries, age in seconds of the event behind the oldest pending delivery)."""
    now = now or datetime.now(UTC)
    engine = getattr(store, "engine", None)
    if engine is None:  # the in-memory store of the unit tests has no outbox tables
        return 0, 0.0, {}, 0.0
    import sqlalchemy as sa

    from .adapters.sql_store import event_deliveries as d
    from .adapters.sql_store import events as e
    from .outbox import WEBHOOK_PREFIX

    # outbox.channel_kind in SQL: the channel, or "webhook" for every webhook:<API client>
    kind = sa.case((d.c.channel.startswith(WEBHOOK_PREFIX), WEBHOOK_PREFIX.rstrip(":")), else_=d.c.channel)
    with engine.connect() as conn:
        waiting, first_new = conn.execute(
            sa.select(sa.func.count(), sa.func.min(e.c.created_at)).where(sa.not_(e.c.fanned_out))
        ).one()
        counted = conn.execute(
            sa.select(kind.label("kind"), d.c.state, sa.func.count().label("n"))
            .where(d.c.state.in_(("pending", "failed")))
            .group_by(kind, d.c.state)
        )
        deliveries = {(str(r.kind), str(r.state)): int(r.n) for r in counted}
        # Event ids grow with time: the oldest pending delivery's event is the one with the lowest id (a walk up
        # an index that stops at the first pending one, instead of joining every pending delivery to its event).
        oldest_event = sa.select(sa.func.min(d.c.event_id)).where(d.c.state == "pending").scalar_subquery()
        first_pending = conn.execute(sa.select(e.c.created_at).where(e.c.id == oldest_event)).scalar()

    def age(first: datetime | None) -> float:
        if first is None:
            return 0.0
        if first.tzinfo is None:  # SQLite
            first = first.replace(tzinfo=UTC)
        return max(0.0, (now - first).total_seconds())

    return int(waiting), age(first_new), deliveries, age(first_pending)


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def scrape_registry(store: Any) -> CollectorRegistry:
    """A registry for one scrape: this process's metrics (or every gunicorn worker's) plus the store's."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess():
        from prometheus_client import multiprocess as mp

        mp.MultiProcessCollector(registry)
    else:
        registry.register(_Process())
    if store is not None:
        registry.register(StoreCollector(store))
    return registry


class _Process(Collector):
    def collect(self) -> Iterator[Any]:
        yield from REGISTRY.collect()


def render(store: Any) -> bytes:
    return generate_latest(scrape_registry(store))


def start_metrics_server(port: int, addr: str, store: Any) -> Any:
    """The separate, token-less metrics listener (gunicorn master or the worker command)."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=addr, registry=scrape_registry(store))
    log.info("metrics on http://%s:%d/metrics", addr, server.server_port)
    return server
