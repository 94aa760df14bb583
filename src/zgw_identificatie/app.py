"""The composition root: the one place where settings become adapters and adapters meet the web."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from flask import Flask

from .adapters.crypto import DataCipher
from .adapters.sql_store import SqlSessionStore, make_engine, migrate
from .clock import SystemClock
from .domain.errors import RegistryUnavailable
from .logging_setup import configure_logging
from .ports import Clock, IdentityProvider, ProofRenderer, SessionStore, ZaakRegistry
from .settings import Settings, load_settings
from .web.framework import ServiceFlask

log = logging.getLogger(__name__)


@dataclass
class Services:
    """What the views and background jobs get: ports, settings and nothing else."""

    settings: Settings
    store: SessionStore
    clock: Clock
    idp: IdentityProvider
    renderer: ProofRenderer
    registry_factory: Any  # () -> ZaakRegistry; lazy, so a zaaksysteem that is down does not stop start-up
    brp: Any = None  # adapters.brp.HaalCentraalBrp when settings.brp.url is set; None: no BRP lookup
    _registry: ZaakRegistry | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def registry(self) -> ZaakRegistry:
        with self._lock:
            if self._registry is None:
                self._registry = self.registry_factory()
            return self._registry


def _cipher(settings: Settings) -> DataCipher:
    if settings.encryption_keys:
        return DataCipher(settings.encryption_keys)
    return DataCipher.for_development(settings.secret_key)


def build_store(settings: Settings) -> SqlSessionStore:
    engine = make_engine(settings.effective_database_url)
    migrate(engine)
    return SqlSessionStore(engine, _cipher(settings))


def create_app(settings: Settings | None = None, *, adapters: dict[str, Any] | None = None) -> Flask:
    """Build the Flask app. ``adapters`` lets tests inject ports: store, clock, idp, renderer, registry,
    http (a requests.Session for the SAML back channel and the ZGW APIs)."""
    settings = settings or load_settings()
    adapters = dict(adapters or {})
    configure_logging(settings.log_level, settings.log_format, settings.replica_name)
    Path(settings.instance_path).mkdir(parents=True, exist_ok=True)

    web_dir = Path(__file__).resolve().parent / "web"
    app = ServiceFlask(
        __name__,
        instance_path=str(Path(settings.instance_path).resolve()),
        template_folder=str(web_dir / "templates"),
        static_folder=str(web_dir / "static"),
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME="zgwid",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
        MAX_CONTENT_LENGTH=256 * 1024,
        JSON_SORT_KEYS=False,
    )
    if settings.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]

    clock: Clock = adapters.get("clock") or SystemClock()
    store: SessionStore = adapters.get("store") or build_store(settings)
    http: requests.Session = adapters.get("http") or requests.Session()
    demo_blueprints = []

    if settings.digid.simulator or settings.zgw.sandbox:
        from .demo import refuse_in_production

        refuse_in_production(settings)

    if settings.digid.simulator:
        from .demo.digid_simulator import create_simulator_blueprint

        demo_blueprints.append(("/demo/digid", create_simulator_blueprint(settings, clock=clock, store=store)))
    if settings.zgw.sandbox:
        from .demo.zgw_sandbox import create_sandbox_blueprint

        demo_blueprints.append(("/sandbox", create_sandbox_blueprint(settings, clock=clock)))

    idp = adapters.get("idp")
    if idp is None:
        from .adapters.digid import DigidServiceProvider, sp_config_from_settings

        idp = DigidServiceProvider(sp_config_from_settings(settings), one_time=store, clock=clock, http=http)

    renderer = adapters.get("renderer")
    if renderer is None:
        from .adapters.proof_seal import build_renderer

        renderer = build_renderer(settings)  # sealed with the municipality's certificate (demo: generated)

    brp = adapters.get("brp")
    if brp is None and settings.brp.url:
        from .adapters.brp import HaalCentraalBrp

        brp = HaalCentraalBrp(settings.brp, http=http)

    registry = adapters.get("registry")

    def registry_factory() -> ZaakRegistry:
        if registry is not None:
            return registry
        from .adapters.zgw import build_registry

        def share_transports(session: requests.Session) -> None:
            for prefix, adapter in http.adapters.items():
                session.mount(prefix, adapter)

        roots = None
        if settings.zgw.sandbox:
            from .demo.zgw_sandbox import sandbox_api_roots

            roots = sandbox_api_roots(settings.base_url)
        return build_registry(settings, http=share_transports, roots=roots)

    services = Services(
        settings=settings,
        store=store,
        clock=clock,
        idp=idp,
        renderer=renderer,
        registry_factory=registry_factory,
        brp=brp,
    )
    app.extensions["zgwid"] = services

    from .web import register_web

    register_web(app, services)
    from .web import ratelimit

    ratelimit.init_app(app, settings)
    from .web import observability

    observability.init_app(app, services)
    for prefix, bp in demo_blueprints:
        app.register_blueprint(bp, url_prefix=prefix)

    if (settings.digid.simulator or settings.zgw.sandbox) and "http" not in adapters:
        # Single-process demo: the back channels reach the simulator and sandbox in-process, so the
        # real HTTP clients run their whole code path without a second server.
        from .demo.wsgi_transport import mount

        mount(http, settings.base_url.rstrip("/") + "/demo/", app)
        mount(http, settings.base_url.rstrip("/") + "/sandbox/", app)

    if not settings.zgw.sandbox and settings.zgw.check_on_start and registry is None:
        try:
            services.registry  # noqa: B018 - resolve the catalogue now: a wrong setting stops start-up
        except RegistryUnavailable as exc:
            # The zaaksysteem is down, not misconfigured: start anyway (registrations wait and retry);
            # a gunicorn worker that refused to boot would take the whole service down with it.
            log.warning("ZGW catalogue not resolved at start-up (%s); will retry on first use", exc)
    return app


def services_of(app: Flask) -> Services:
    return app.extensions["zgwid"]
