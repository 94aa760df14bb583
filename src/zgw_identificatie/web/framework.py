"""The Flask app and response classes the service runs on: Flask's, with two per-request chores done once.

* ``ensure_sync``: Flask asks, for every hook and view on every request (seven or more calls), whether the
  function is a coroutine function (``inspect.iscoroutinefunction``, which unwraps and inspects it). A
  plain ``def`` function's code flags answer that directly; anything else (a method, a partial, an
  ``async def``) still goes through Flask.
* ``get_wsgi_headers``: werkzeug copies every answer's headers through ``Headers(...)``, which checks each
  name and value for line breaks again, although each was checked when it was set, and runs a
  ``Location`` through ``iri_to_uri``. For the usual answer (a 2xx or 3xx status with a body, a ``Content-Length``
  already known, no ``Content-Location``, and a ``Location``, if any, that ``iri_to_uri`` would return
  unchanged: ASCII host in lower case, no user, no fragment, nothing to quote) the copy here is a plain
  copy of the list; every other answer goes through werkzeug's own code.

Both keep Flask's behaviour; ``tests/web/test_framework.py`` compares them with Flask's for the cases
that take the short way and the cases that do not.
"""

from __future__ import annotations

import re
from inspect import CO_COROUTINE
from types import FunctionType
from typing import Any

from flask import Flask
from flask.wrappers import Response
from werkzeug.datastructures import Headers

# A Location that werkzeug.urls.iri_to_uri returns as it is (tested against it): an absolute path, or
# http(s) with a lower-case ASCII host and an optional port, then path and query of characters it leaves
# unquoted (no fragment, no user).
_PLAIN_LOCATION = re.compile(
    r"(?:https?://[a-z0-9-]+(?:\.[a-z0-9-]+)*(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}))?)?"
    r"/(?!/)[A-Za-z0-9._~%!$&'()*+,/:;=@-]*"
    r"(?:\?[A-Za-z0-9._~%!$&'()*+,/:;=?@-]+)?"
)


class ServiceResponse(Response):
    def get_wsgi_headers(self, environ: dict[str, Any]) -> Headers:
        status = self.status_code
        if 200 <= status < 400 and status != 204 and status != 304:
            pairs = self.headers._list  # werkzeug's own list of (name, value), each checked when it was set
            has_length = False
            for name, value in pairs:
                lower = name.lower()
                if lower == "content-length":
                    has_length = True
                elif lower == "content-location" or (
                    lower == "location" and (self.autocorrect_location_header or not _PLAIN_LOCATION.fullmatch(value))
                ):
                    break
            else:
                if has_length:
                    copy = Headers()
                    copy._list = list(pairs)
                    return copy
        return super().get_wsgi_headers(environ)


class ServiceFlask(Flask):
    response_class = ServiceResponse

    def ensure_sync(self, func: Any) -> Any:
        if type(func) is FunctionType and not func.__code__.co_flags & CO_COROUTINE:
            return func
        return super().ensure_sync(func)
