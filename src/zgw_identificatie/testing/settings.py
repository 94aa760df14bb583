"""Settings for tests: development defaults, a temporary instance folder, a fresh encryption key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..adapters.crypto import generate_key
from ..settings import Settings, load_settings

# The machine's PostgreSQL (trust auth); tests make a throw-away schema in it.
TEST_PG_URL = os.environ.get("ZGWID_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    defaults: dict[str, Any] = {
        "instance_path": str(tmp_path / "instance"),
        "base_url": "http://testserver.local",
        "encryption_keys": [generate_key()],
    }
    defaults.update(overrides)
    return load_settings(environ={}, **defaults)
