"""Logging that cannot leak a BSN: every record passes a filter that masks standalone nine-digit numbers.

The code never logs a BSN on purpose (the ``Bsn`` repr is masked); this filter is the second line,
for third-party libraries and mistakes. It also masks SAML artifacts in request lines.

Two output formats (``ZGWID_LOG_FORMAT``): ``text`` (one human line) and ``json`` (one JSON object a
line, python-json-logger). Both carry the request id (``request_id``, see ``request_context``) and the
replica's name, and both are masked three times over: the message at record creation, every structured
field (``extra=``) by the handler's filter, and the whole formatted line (tracebacks included).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

from . import request_context

#: A standalone nine-digit number: not part of a longer run of letters and digits (a hex id, a UUID's
#: segment, a longer number), so log correlation by registration or request id keeps working.
_NINE_DIGITS = re.compile(r"(?<![0-9A-Za-z])\d{9}(?![0-9A-Za-z])")
_SAMLART = re.compile(r"(SAMLart=)[^&\s\"']+")

#: Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id", "replica"}


def scrub(text: str) -> str:
    return _SAMLART.sub(r"\1[masked]", _NINE_DIGITS.sub("*********", text))


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, int) and not isinstance(value, bool) and _NINE_DIGITS.fullmatch(str(abs(value))):
        return "*********"
    if isinstance(value, list | tuple):
        return [_scrub_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _scrub_value(v) for k, v in value.items()}
    return value


class BsnScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is still logged, masked
            message = str(record.msg)
        record.msg = scrub(message)
        record.args = ()
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


_replica = ""


def replica_name() -> str:
    """``ZGWID_REPLICA_NAME`` (set by ``configure_logging``), else host:pid (the pid tells gunicorn workers apart)."""
    return _replica or f"{socket.gethostname()}:{os.getpid()}"


class ContextFilter(logging.Filter):
    """Adds ``request_id`` and ``replica`` and masks every structured field (``extra=``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        BsnScrubFilter().filter(record)
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD:
                record.__dict__[key] = _scrub_value(value)
        if not getattr(record, "request_id", None):
            record.request_id = request_context.current() or "-"
        record.replica = replica_name()
        return True


class ScrubbingTextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class ScrubbingJsonFormatter(JsonFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(replica)s"


def make_handler(log_format: str = "text", stream: IO[str] | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    if log_format == "json":
        handler.setFormatter(
            ScrubbingJsonFormatter(
                JSON_FIELDS,
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                json_ensure_ascii=False,
            )
        )
    else:
        handler.setFormatter(ScrubbingTextFormatter(TEXT_FORMAT))
    handler._zgwid = True  # type: ignore[attr-defined]
    return handler


_configured = False
_base_factory = logging.getLogRecordFactory()


def _scrubbing_factory(*args: object, **kwargs: object) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    BsnScrubFilter().filter(record)
    return record


def configure_logging(level: str = "INFO", log_format: str = "text", replica: str = "") -> None:
    """Scrub every record at creation (so every handler, also a test's, sees masked text), and give the
    root logger one handler in the chosen format (unless something, e.g. pytest, configured it already)."""
    global _configured, _replica
    _replica = replica
    if logging.getLogRecordFactory() is not _scrubbing_factory:
        logging.setLogRecordFactory(_scrubbing_factory)
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "_zgwid", False)]
    if not root.handlers or (ours and not _configured):
        for handler in ours:
            root.removeHandler(handler)
        root.addHandler(make_handler(log_format))
    if not _configured:
        root.setLevel(level.upper())
        logging.getLogger("alembic").setLevel(logging.WARNING)
        _configured = True
