"""zgw-identificatie: identify a citizen with DigiD during a video call, record the proof through ZGW."""

from .app import create_app

__all__ = ["create_app"]
