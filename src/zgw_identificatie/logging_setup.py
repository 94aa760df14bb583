"""Logging that cannot leak a BSN: every record passes a filter that masks standalone nine-digit numbers.

The code never logs a BSN on purpose (the ``Bsn`` repr is masked); this filter is the second line,
for third-party libraries and mistakes. It also masks SAML artifacts in request lines.
"""

from __future__ import annotations

import logging
import re

#: A standalone nine-digit number: not part of a longer run of letters and digits (a hex id, a UUID's
#: segment, a longer number), so log correlation by registration or request id keeps working.
_NINE_DIGITS = re.compile(r"(?<![0-9A-Za-z])\d{9}(?![0-9A-Za-z])")
_SAMLART = re.compile(r"(SAMLart=)[^&\s\"']+")


def scrub(text: str) -> str:
    return _SAMLART.sub(r"\1[masked]", _NINE_DIGITS.sub("*********", text))


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


_configured = False
_base_factory = logging.getLogRecordFactory()


def _scrubbing_factory(*args: object, **kwargs: object) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    BsnScrubFilter().filter(record)
    return record


def configure_logging(level: str = "INFO") -> None:
    """Scrub every record at creation (so every handler, also a test's, sees masked text)."""
    global _configured
    if logging.getLogRecordFactory() is not _scrubbing_factory:
        logging.setLogRecordFactory(_scrubbing_factory)
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    if not _configured:
        root.setLevel(level.upper())
        logging.getLogger("alembic").setLevel(logging.WARNING)
        _configured = True
