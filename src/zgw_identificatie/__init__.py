"""zgw-identificatie: identify a citizen with DigiD during a video call, record the proof through ZGW.

``create_app`` is imported on first use, so ``zgw-identificatie --help`` and the CLI commands that do
not need the web app do not pay for Flask, SQLAlchemy and the SAML libraries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
