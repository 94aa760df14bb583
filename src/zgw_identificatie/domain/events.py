"""Events about sessions, kept in an outbox in the database and delivered by the worker.

The store writes an event in the same transaction as every change of a session's state, reason or
registration state, so no change is lost and none is announced that did not happen. An event carries
no personal data of the citizen: ids, flow, state, the behandelaar's id and the API client.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .sessions import IdentificationSession

# The documented event types (README "API"; the webhook payload's ``type``).
EVENT_TYPES = (
    "session.created",
    "session.opened",
    "session.cancelled",
    "session.authenticated",
    "session.completed",
    "session.failed",
    "session.withdrawn",
    "session.expired",  # written by the purge for a session nobody finished; its record is erased with it
    "registration.pending",
    "registration.retrying",
    "registration.done",
    "registration.failed",
)


@dataclass(frozen=True)
class SessionEvent:
    id: int
    session_id: str
    client_id: str | None
    owner_id: str
    flow: str
    type: str
    state: str
    detail: str | None  # the session's reason, or the registration state
    created_at: datetime


@dataclass(frozen=True)
class Delivery:
    id: int
    event: SessionEvent
    channel: str  # "notificaties" or "webhook:<api client id>"
    attempts: int


def event_type(old: IdentificationSession | None, new: IdentificationSession) -> str | None:
    """The event a change from ``old`` to ``new`` means, or None when nothing an integrator cares about changed."""
    if old is None:
        return "session.created"
    if old.state is not new.state:
        return f"session.{new.state.value}"
    if new.reason is not None and old.reason is not new.reason and new.reason.value == "cancelled":
        return "session.cancelled"
    if new.registration_state is not None and old.registration_state is not new.registration_state:
        return f"registration.{new.registration_state.value}"
    return None


def event_values(old: IdentificationSession | None, new: IdentificationSession) -> dict[str, object] | None:
    kind = event_type(old, new)
    if kind is None:
        return None
    detail = (
        new.registration_state.value
        if kind.startswith("registration.") and new.registration_state
        else new.reason.value
        if new.reason
        else None
    )
    return {
        "session_id": new.id,
        "client_id": new.client_id,
        "owner_id": new.owner_id,
        "flow": new.flow.value,
        "type": kind,
        "state": new.state.value,
        "detail": detail,
    }
