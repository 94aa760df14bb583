"""Settings for tests: development defaults, a temporary instance folder, a fresh encryption key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..adapters.crypto import generate_key
from ..settings import Settings, load_settings


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    defaults: dict[str, Any] = {
        "instance_path": str(tmp_path / "instance"),
        "base_url": "http://testserver.local",
        "encryption_keys": [generate_key()],
    }
    defaults.update(overrides)
    return load_settings(environ={}, **defaults)
