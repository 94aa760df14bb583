"""A real demo server and Debian's chromium for the end-to-end tests (fixtures re-exported by conftest.py).

The server is the real app (DigiD simulator, ZGW sandbox, SQLite) served by werkzeug in a thread, with the
registration worker running, so the browser sees exactly what `make demo` shows. Every page a test passes is
checked with axe-core (WCAG 2.0/2.1/2.2 A and AA rules) and saved as a screenshot.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from werkzeug.security import generate_password_hash
from werkzeug.serving import make_server

from zgw_identificatie.app import create_app, services_of
from zgw_identificatie.testing.settings import make_settings
from zgw_identificatie.worker import start_background

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
VENDOR_CSS = ROOT / "src" / "zgw_identificatie" / "web" / "static" / "vendor" / "nlds-components.css"
CHROMIUM = os.environ.get("ZGWID_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
# The pages shown in docs/ACCESSIBILITY.md; refreshed with ZGWID_UPDATE_DOCS_SCREENSHOTS=1.
CURATED = {
    "staff-overview",
    "staff-new-citizen-done",
    "citizen-new-citizen-result",
    "staff-known-citizen-match",
    "citizen-known-citizen-start",
    "citizen-known-citizen-result",
    "citizen-mutual-start-en",
    "staff-mutual-bsn",
    # issue 10: every way a call can go
    "staff-state-created",
    "staff-state-cancelled",
    "staff-state-level-too-low",
    "staff-state-expired-during-login",
    "staff-state-mismatch",
    "staff-state-registration-failed",
    "staff-state-withdrawn",
    "staff-state-expired",
    "staff-state-completed",
    "staff-new-link-bsn",
    "staff-overview-completed",
    "citizen-level-too-low",
    "citizen-expired-during-login",
    "citizen-link-withdrawn",
    "citizen-link-completed",
    "citizen-link-failed",
    "citizen-result-200pct-text-375px",
}

STAFF_USER = "sanne"
STAFF_NAME = "Sanne de Vries"
STAFF_PASSWORD = "correct horse battery staple"

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


class ShiftableClock:
    """The system clock plus an offset a test can move, so a link can expire without waiting."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class DemoServer:
    base_url: str
    app: Any
    clock: ShiftableClock


def _closed_before_serving(app: Any) -> Any:
    """The app's answer read whole and closed before werkzeug's dev server writes it.

    werkzeug 3.1's ``serve`` closes the app's iterable only at the end of a ``finally`` that first drains the
    socket; when the browser has already dropped the connection (a page that navigates on while its favicon
    is in flight), that drain raises and the static file's handle is left to the garbage collector, whose
    ResourceWarning then fails whichever test runs at that moment. gunicorn, the production server, closes
    it. Every answer of this app is small and none streams, so reading it whole changes nothing else.
    """

    def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        answer = app(environ, start_response)
        try:
            return [b"".join(answer)]
        finally:
            close = getattr(answer, "close", None)
            if close is not None:
                close()

    return wsgi


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """The demo app on a free port of 127.0.0.1 with the background worker (registrations) running."""
    if not VENDOR_CSS.is_file() or not AXE.is_file():
        pytest.fail("NL Design System CSS or axe-core is missing: run `make setup` (npm install + build_assets)")
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    clock = ShiftableClock()
    settings = make_settings(
        tmp_path_factory.mktemp("e2e"),
        base_url=base_url,
        staff_users={STAFF_USER: {"name": STAFF_NAME, "password_hash": generate_password_hash(STAFF_PASSWORD)}},
        # every "person" in the suite browses from 127.0.0.1, so the per-IP limits would count them as one
        rate_limit_citizen="1000/minute",
        rate_limit_start="1000/minute",
        # tests that shift the clock past expiry read the expired state; a periodic purge must not race them
        purge_interval_seconds=86_400,
    )
    app = create_app(settings, adapters={"clock": clock})
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request drowns the test report
    server = make_server("127.0.0.1", port, _closed_before_serving(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-server", daemon=True)
    thread.start()
    stop_worker = start_background(services_of(app))
    try:
        yield DemoServer(base_url=base_url, app=app, clock=clock)
    finally:
        stop_worker.set()
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser-deps` (apt-get install chromium)")
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@dataclass
class Browsers:
    """Opens browser contexts (a behandelaar's desktop, a citizen's phone) and closes them after the test."""

    browser: Browser
    base_url: str
    contexts: list[BrowserContext] = field(default_factory=list)

    def open(self, *, viewport: dict[str, int] = DESKTOP, locale: str = "nl-NL", java_script: bool = True) -> Page:
        context = self.browser.new_context(
            base_url=self.base_url,
            viewport=viewport,
            locale=locale,
            java_script_enabled=java_script,
            extra_http_headers={"Accept-Language": locale.split("-")[0]},
        )
        context.set_default_timeout(10_000)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=self.base_url)
        self.contexts.append(context)
        return context.new_page()

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def browsers(browser: Browser, demo_server: DemoServer) -> Iterator[Browsers]:
    opened = Browsers(browser, demo_server.base_url)
    yield opened
    opened.close()


_AXE_SOURCE: str | None = None


def check_page(page: Page, name: str) -> None:
    """Zero axe-core violations for WCAG 2.x A/AA, then a screenshot (test-artifacts, and docs if curated).

    axe is evaluated through the DevTools protocol, which the page's CSP (no inline script) does not block.
    """
    global _AXE_SOURCE
    if _AXE_SOURCE is None:
        _AXE_SOURCE = AXE.read_text(encoding="utf-8")
    page.wait_for_load_state("load")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_AXE_SOURCE)
    result = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        AXE_TAGS,
    )
    violations = [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
    ]
    save_screenshot(page, name)
    assert not violations, f"axe found WCAG violations on {name} ({page.url}):\n" + json.dumps(violations, indent=2)


def save_screenshot(page: Page, name: str) -> None:
    """The whole page to test-artifacts/screenshots; curated ones also to docs/screenshots on request."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    if name in CURATED and os.environ.get("ZGWID_UPDATE_DOCS_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_SCREENSHOTS / f"{name}.png"), full_page=False)
