"""A requests transport adapter that hands requests to a WSGI app in the same process.

Tests and the single-process demo use it so the real HTTP clients (ZGW, SAML back channel) run
their full code path (headers, status codes, bodies) without a socket. Production never mounts it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response as WerkzeugResponse


class WSGITransport(BaseAdapter):
    def __init__(self, app: Callable[..., Any]) -> None:
        super().__init__()
        self.app = app
        self.calls: list[requests.PreparedRequest] = []

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        self.calls.append(request)
        parts = urlsplit(request.url or "")
        body = request.body
        if isinstance(body, str):
            body = body.encode("utf-8")
        builder = EnvironBuilder(
            method=request.method or "GET",
            base_url=f"{parts.scheme}://{parts.netloc}",
            path=parts.path,
            query_string=parts.query,
            headers=list(request.headers.items()),
            data=body or b"",
        )
        try:
            environ = builder.get_environ()
        finally:
            builder.close()
        wz = WerkzeugResponse.from_app(self.app, environ)
        response = requests.Response()
        response.status_code = wz.status_code
        response.headers = CaseInsensitiveDict(dict(wz.headers))
        response.raw = io.BytesIO(wz.get_data())
        response.url = request.url or ""
        response.request = request
        response.reason = wz.status.split(" ", 1)[1] if " " in wz.status else ""
        response.encoding = requests.utils.get_encoding_from_headers(response.headers)
        return response

    def close(self) -> None:
        pass


def mount(session: requests.Session, prefix: str, app: Callable[..., Any]) -> WSGITransport:
    """Route every request under ``prefix`` (e.g. ``http://sandbox.local/``) to ``app``."""
    transport = WSGITransport(app)
    session.mount(prefix, transport)
    return transport
