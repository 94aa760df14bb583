"""Request ids in the log context, one log line per request (JSON logs), ``/metrics`` behind a token.

``security.init_app`` takes the request id from ``X-Request-Id`` (validated) and echoes it; this module
puts it in the logging context for the whole request and clears it afterwards.
"""

from __future__ import annotations

import hmac
import logging
import time
from typing import TYPE_CHECKING

from flask import Flask, Response, abort, g, request

from .. import metrics, request_context

if TYPE_CHECKING:
    from ..app import Services

log = logging.getLogger("zgw_identificatie.requests")


def init_app(app: Flask, svc: Services) -> None:
    settings = svc.settings

    @app.before_request
    def _bind_request_id() -> None:
        g.request_started = time.perf_counter()
        if "request_id" not in g:  # security.init_app sets it first; without it (a bare app) make one here
            g.request_id = request_context.accept(request.headers.get(request_context.HEADER))
        g.request_id_token = request_context.set_current(g.request_id)

    @app.after_request
    def _account(resp: Response) -> Response:
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics.HTTP_REQUESTS.labels(route, f"{resp.status_code // 100}xx").inc()
        if settings.replica_name:
            resp.headers["X-Served-By"] = settings.replica_name
        if settings.log_format == "json" and route != "/metrics":
            started = g.get("request_started")
            log.info(
                "%s %s %s",
                request.method,
                route,
                resp.status_code,
                extra={
                    "method": request.method,
                    "route": route,
                    "status": resp.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1) if started else None,
                },
            )
        return resp

    @app.teardown_request
    def _unbind(_exc: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            try:
                request_context.reset(token)
            except ValueError:  # reset from another context (a streamed response): clear instead
                request_context.set_current(None)

    def metrics_view() -> Response:
        token = settings.metrics_token
        if not token:
            abort(404)
        given = request.headers.get("Authorization", "")
        if not given.startswith("Bearer ") or not hmac.compare_digest(given[7:].encode(), token.encode()):
            resp = Response("unauthorized\n", status=401, mimetype="text/plain")
            resp.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return resp
        return Response(metrics.render(svc.store), status=200, content_type=metrics.CONTENT_TYPE)

    app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])
