"""The browser fixtures; their code and the page checks live in browser_support.py (importable by name)."""

from browser_support import browser, browsers, demo_server, playwright_instance  # noqa: F401
