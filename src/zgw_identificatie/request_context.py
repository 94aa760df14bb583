"""The request id that ties one identification's log lines together, across replicas and the worker.

A request id comes from the ``X-Request-Id`` header when it is safe (1–64 characters from
``A-Z a-z 0-9 . _ : -``, and nothing the log filter would mask as a BSN), otherwise a new one is
made. It lives in a context variable, so every log record made while a request (or a registration)
is handled carries it, and the ZGW client sends it on as ``X-Request-Id``. A registration stores the
id of the request that started it; the worker puts it back in the context while it runs that
registration.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

HEADER = "X-Request-Id"
MAX_LENGTH = 64
_SAFE = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_LENGTH}}}")

_current: ContextVar[str | None] = ContextVar("zgwid_request_id", default=None)


def new_request_id() -> str:
    while True:
        value = secrets.token_hex(16)
        if _unmasked(value):
            return value


def _unmasked(value: str) -> bool:
    """The log filter would leave it as it is: no run of digits it takes for a BSN, so it correlates."""
    from .logging_setup import scrub

    return scrub(value) == value


def valid(value: str | None) -> bool:
    return bool(value) and _SAFE.fullmatch(value or "") is not None and _unmasked(value or "")


def accept(value: str | None) -> str:
    """The given id when it is safe to log and echo; a new one otherwise."""
    return value if value is not None and valid(value) else new_request_id()


def current() -> str | None:
    return _current.get()


def set_current(value: str | None) -> object:
    """Set the id for this context; returns a token for :func:`reset`."""
    return _current.set(value)


def reset(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]


@contextmanager
def bound(value: str | None) -> Iterator[None]:
    """Run a block (a registration attempt) under ``value``; ``None`` leaves the context empty."""
    token = _current.set(value if value is not None and valid(value) else None)
    try:
        yield
    finally:
        _current.reset(token)
