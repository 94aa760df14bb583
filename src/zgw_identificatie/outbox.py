"""Deliver the session events of the outbox: notificaties to a Notificaties API and signed webhooks.

The store writes an event with every change of a session (``domain/events.py``). The worker fans each event
out into one delivery per channel and sends them, in order per session and channel (a later event waits until
the earlier one is delivered or given up), retrying with backoff while a receiver is down. Nothing sent
carries a BSN: receivers fetch the session through the API.

- Notificaties API 1.0.0: kanaal ``zgw.notificaties_kanaal`` (registered by ``zgw-identificatie
  notificaties-kanaal`` or before the first notificatie), kenmerken ``flow``, ``state``, ``behandelaar``; the
  ZGW JWT of ``zgw.client_id``/``zgw.secret``.
- Webhooks (per API client: ``webhook_url``, ``webhook_secret`` = ``whsec_<base64>``), signed as Standard
  Webhooks: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256(id.timestamp.body)>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import requests

from . import metrics
from .domain.events import Delivery, SessionEvent
from .ports import EventOutbox
from .settings import Settings

if TYPE_CHECKING:
    from .app import Services

log = logging.getLogger(__name__)

NOTIFICATIES = "notificaties"
WEBHOOK_PREFIX = "webhook:"
KENMERKEN = ("flow", "state", "behandelaar")
LEASE_SECONDS = 60
TIMEOUT_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 3600
FAN_OUT_BATCH = 1000  # events per fan-out transaction
FAN_OUT_BUDGET_SECONDS = 2.0  # per worker pass, then the deliveries get their turn


class DeliveryFailed(Exception):
    """A receiver did not take the event (connection error, time-out, non-2xx); retried later.

    ``unreachable``: no answer at all (refused, reset, timed out), so the receiver's other deliveries in the
    same batch would most likely fail alike, each after up to a time-out."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def send_within_seconds() -> float:
    """How long after its claim the worker still starts a send of a leased batch: one send takes up to two
    time-outs (connect, then read), so one started later could end after the lease, when another worker may
    have claimed the same delivery."""
    return LEASE_SECONDS - 2 * TIMEOUT_SECONDS - 5


def channels_for(settings: Settings) -> Callable[[SessionEvent], Sequence[str]]:
    def channels(event: SessionEvent) -> list[str]:
        found = [NOTIFICATIES] if settings.zgw.notificaties_url else []
        if event.client_id and event.client_id.startswith("api:"):
            client_id = event.client_id.removeprefix("api:")
            if settings.api_keys.get(client_id, {}).get("webhook_url"):
                found.append(WEBHOOK_PREFIX + client_id)
        return found

    return channels


def backoff(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s, … up to an hour between tries."""
    return timedelta(seconds=min(5 * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))


def session_url(settings: Settings, session_id: str) -> str:
    return settings.base_url.rstrip("/") + f"/api/v1/sessions/{session_id}"


# --- Notificaties API --------------------------------------------------------------------------------------


def _nrc(settings: Settings, path: str) -> str:
    return settings.zgw.notificaties_url.rstrip("/") + "/" + path


def _jwt(settings: Settings) -> requests.auth.AuthBase:
    from .adapters.zgw.auth import ZgwJwtAuth

    return ZgwJwtAuth(
        settings.zgw.client_id,
        settings.zgw.secret,
        user_id=settings.zgw.client_id,
        user_representation=settings.gemeente_naam,
    )


def notificatie(settings: Settings, event: SessionEvent) -> dict[str, Any]:
    """A Notificaties API ``Message``: no BSN, only the session's URL and its kenmerken."""
    url = session_url(settings, event.session_id)
    return {
        "kanaal": settings.zgw.notificaties_kanaal,
        "hoofdObject": url,
        "resource": "session",
        "resourceUrl": url,
        "actie": {"session.created": "create", "session.expired": "destroy"}.get(event.type, "update"),
        "aanmaakdatum": event.created_at.isoformat(),
        "kenmerken": {"flow": event.flow, "state": event.state, "behandelaar": event.owner_id},
    }


def ensure_kanaal(settings: Settings, http: requests.Session) -> str:
    """Register the kanaal unless it exists; returns its URL (or the naam when the server does not say)."""
    naam = settings.zgw.notificaties_kanaal
    auth = _jwt(settings)
    try:
        found = http.get(_nrc(settings, "kanaal"), params={"naam": naam}, auth=auth, timeout=TIMEOUT_SECONDS)
        if found.status_code == 200 and isinstance(found.json(), list):
            for kanaal in found.json():
                if kanaal.get("naam") == naam:
                    return str(kanaal.get("url") or naam)
        made = http.post(
            _nrc(settings, "kanaal"),
            json={"naam": naam, "filters": list(KENMERKEN)},
            auth=auth,
            timeout=TIMEOUT_SECONDS,
        )
    except requests.RequestException as exc:
        raise DeliveryFailed(f"kanaal: {type(exc).__name__}", unreachable=True) from None
    if made.status_code == 201:
        return str(made.json().get("url") or naam)
    if made.status_code == 400 and any(p.get("code") == "unique" for p in made.json().get("invalidParams", [])):
        return naam  # registered by another process meanwhile
    raise DeliveryFailed(f"kanaal: HTTP {made.status_code}")


# --- webhooks ----------------------------------------------------------------------------------------------


def webhook_body(settings: Settings, event: SessionEvent) -> bytes:
    """The documented payload (OpenAPI ``Event``): what changed, where to read it; never a BSN."""
    payload = {
        "type": event.type,
        "timestamp": event.created_at.isoformat(),
        "data": {
            "id": event.session_id,
            "url": session_url(settings, event.session_id),
            "flow": event.flow,
            "state": event.state,
            "detail": event.detail,
            "behandelaarId": event.owner_id,
            "sequence": event.id,
        },
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def secret_bytes(secret: str) -> bytes:
    """A Standard Webhooks secret: ``whsec_`` and base64 of the key."""
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()).decode()


def webhook_headers(secret: str, msg_id: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    timestamp = int(time.time() if now is None else now)
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


# --- the delivery loop -------------------------------------------------------------------------------------


class EventSender:
    """Sends one delivery; keeps one HTTP session and whether the kanaal is known to exist."""

    def __init__(self, settings: Settings, http: requests.Session | None = None) -> None:
        self.settings = settings
        self.http = http or requests.Session()
        self.kanaal_ready = False

    def send(self, delivery: Delivery) -> None:
        if delivery.channel == NOTIFICATIES:
            self._notificatie(delivery.event)
        elif delivery.channel.startswith(WEBHOOK_PREFIX):
            self._webhook(delivery.channel.removeprefix(WEBHOOK_PREFIX), delivery.event)
        else:
            raise DeliveryFailed(f"unknown channel {delivery.channel}")

    def _post(self, url: str, **kwargs: Any) -> requests.Response:
        try:
            resp = self.http.post(url, timeout=TIMEOUT_SECONDS, **kwargs)
        except requests.RequestException as exc:
            raise DeliveryFailed(type(exc).__name__, unreachable=True) from None
        if not 200 <= resp.status_code < 300:
            if resp.status_code == 400 and "kanaal" in resp.text:
                self.kanaal_ready = False  # the kanaal is gone (a reset server): register it again next time
            raise DeliveryFailed(f"HTTP {resp.status_code}")
        return resp

    def _notificatie(self, event: SessionEvent) -> None:
        if not self.settings.zgw.notificaties_url:
            raise DeliveryFailed("zgw.notificaties_url is not set")
        if not self.kanaal_ready:
            ensure_kanaal(self.settings, self.http)
            self.kanaal_ready = True
        self._post(
            _nrc(self.settings, "notificaties"), json=notificatie(self.settings, event), auth=_jwt(self.settings)
        )

    def _webhook(self, client_id: str, event: SessionEvent) -> None:
        client = self.settings.api_keys.get(client_id, {})
        url, secret = client.get("webhook_url"), client.get("webhook_secret")
        if not url or not secret:
            raise DeliveryFailed(f"api_keys.{client_id}: webhook_url and webhook_secret are required")
        body = webhook_body(self.settings, event)
        self._post(str(url), data=body, headers=webhook_headers(str(secret), f"msg_{event.id}", body))


def fan_out(
    store: EventOutbox,
    channels: Callable[[SessionEvent], Sequence[str]],
    now: Callable[[], datetime],
    *,
    batch: int = FAN_OUT_BATCH,
    budget_seconds: float = FAN_OUT_BUDGET_SECONDS,
) -> int:
    """Fan out new events, batch after batch, until none is left or the time budget is spent (the worker's
    next pass goes on). A purge of a long backlog writes one ``session.expired`` event per unfinished
    session: at about ten thousand events a second these drain in minutes, not hours, so the events of
    today's identifications are not stuck behind them. Returns the events handled."""
    deadline = time.monotonic() + budget_seconds
    handled = 0
    while True:
        n = store.fan_out_events(channels, now(), limit=batch)
        handled += n
        if n < batch or time.monotonic() >= deadline:
            return handled
        time.sleep(0)  # let the web threads of this process run between batches


def deliver_due(
    store: EventOutbox,
    sender: EventSender,
    *,
    now: Callable[[], datetime],
    limit: int = 50,
    rounds: int = 10,
    clock: Callable[[], float] = time.monotonic,
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """Fan out new events, then send what is due, round after round (the next event of a session becomes due
    when the one before it is delivered). Returns the number of attempts.

    A receiver that does not answer costs a time-out per delivery. So once one of a channel's deliveries in a
    batch finds its receiver unreachable, the channel's other deliveries in that batch are handed back unsent,
    due when the failed one is retried: a hanging webhook receiver costs one time-out per batch, not fifty, and
    holds back neither the notificaties nor the other clients' webhooks. And no send starts so late that it
    could outlast the batch's lease (``send_within_seconds``), nor once ``stop`` says so (the worker was asked to
    exit): the rest is handed back (due at once, or with its unreachable channel's failed one) instead of waiting
    out the lease of a worker that is gone."""
    settings = sender.settings
    attempts = 0
    fan_out(store, channels_for(settings), now)
    for _ in range(rounds):
        if stop():
            break
        batch = store.claim_due_deliveries(now(), lease_seconds=LEASE_SECONDS, limit=limit)
        if not batch:
            break
        leased_at = clock()
        unreachable: dict[str, datetime] = {}  # channel → when its failed delivery is tried again
        skipped: dict[str, list[int]] = {}  # channel → the deliveries handed back unsent
        ended = False
        for delivery in batch:
            ended = ended or stop() or clock() - leased_at > send_within_seconds()
            if ended or delivery.channel in unreachable:
                skipped.setdefault(delivery.channel, []).append(delivery.id)
                continue
            attempts += 1
            attempt = delivery.attempts + 1
            try:
                sender.send(delivery)
            except DeliveryFailed as exc:
                give_up = attempt >= settings.event_max_attempts
                retry_at = None if give_up else now() + backoff(attempt)
                store.finish_delivery(delivery.id, now=now(), ok=False, error=str(exc), retry_at=retry_at)
                _log(delivery, attempt, "given-up" if give_up else "retry", str(exc))
                if exc.unreachable:
                    unreachable[delivery.channel] = retry_at or now()
                continue
            store.finish_delivery(delivery.id, now=now(), ok=True)
            _log(delivery, attempt, "delivered", "")
        for channel, ids in skipped.items():  # due with the channel's failed one, or at once for any worker
            store.defer_deliveries(ids, until=unreachable.get(channel) or now())
            log.info("event delivery channel=%s outcome=deferred deliveries=%d", channel_kind(channel), len(ids))
        if ended:
            break
    return attempts


def channel_kind(channel: str) -> str:
    """``notificaties`` or ``webhook`` (a webhook channel is ``webhook:<API client>``): for logs and metric labels."""
    return WEBHOOK_PREFIX.rstrip(":") if channel.startswith(WEBHOOK_PREFIX) else channel


def _log(delivery: Delivery, attempt: int, outcome: str, error: str) -> None:
    """One log line and one count (``zgwid_event_deliveries_total{channel,outcome}``) per attempt."""
    kind = channel_kind(delivery.channel)
    metrics.EVENT_DELIVERIES.labels(kind, outcome).inc()
    event = delivery.event
    log.info(
        "event delivery channel=%s outcome=%s event=%s type=%s session=%s attempt=%d%s",
        kind,
        outcome,
        event.id,
        event.type,
        event.session_id[:8],
        attempt,
        f" error={error}" if error else "",
    )


def run_once(services: Services, stop: Callable[[], bool] = lambda: False) -> int:
    """One pass of the worker's event delivery (the sender lives with the services)."""
    store = services.store
    if not hasattr(store, "claim_due_deliveries"):
        return 0
    sender = getattr(services, "_event_sender", None)
    if sender is None:
        sender = EventSender(services.settings)
        setattr(services, "_event_sender", sender)  # noqa: B010 - one HTTP session per process
    return deliver_due(store, sender, now=services.clock.now, stop=stop)  # type: ignore[arg-type]
