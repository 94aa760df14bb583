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
        if self._headers_unchanged_by_werkzeug():
            copy = Headers()
            copy._list = list(self.headers._list)  # each (name, value) was checked when it was set
            return copy
        return super().get_wsgi_headers(environ)

    def _headers_unchanged_by_werkzeug(self) -> bool:
        """werkzeug's ``get_wsgi_headers`` would return the headers as they are: a 2xx/3xx with a body, a
        ``Content-Length``, no ``Content-Location``, and no ``Location`` for it to rewrite."""
        status = self.status_code
        if not 200 <= status < 400 or status in (204, 304):
            return False
        has_length = False
        for name, value in self.headers._list:
            lower = name.lower()
            if lower == "content-length":
                has_length = True
            elif lower == "content-location":
                return False
            elif lower == "location" and (self.autocorrect_location_header or not _PLAIN_LOCATION.fullmatch(value)):
                return False
        return has_length


class ServiceFlask(Flask):
    response_class = ServiceResponse

    def ensure_sync(self, func: Any) -> Any:
        if type(func) is FunctionType and not func.__code__.co_flags & CO_COROUTINE:
            return func
        return super().ensure_sync(func)
