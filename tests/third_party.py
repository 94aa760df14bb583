"""Where the tests find third-party reference data, and what happens when it is absent.

The official OpenAPI documents (ZGW, BRP, Notificaties) and the recordings of a real Open Zaak server
are third-party data: they stay outside the repository. The tests find them through two environment
variables, read here and nowhere else:

* ``ZGWID_TEST_SPECS_DIR`` — the OpenAPI documents (default ``../shared/specs`` next to the checkout);
  ``make specs`` (``scripts/fetch_specs.py``) downloads them at pinned commits and checks their SHA-256.
* ``ZGWID_TEST_FIXTURES_DIR`` — recorded exchanges (default ``../shared/fixtures``), of which the tests
  use ``openzaak-smoke/``: request/response pairs recorded from Open Zaak 1.30. They cannot be
  downloaded; docs/ARCHITECTURE.md ("Third-party reference data") says how they are made.

When something is missing, the tests that need it skip with one message, or fail with the same message
when ``CI`` is true (a CI run must not go green without them). A test module that needs the data at
import time (module-level constants, parametrize lists) is listed in ``MODULES``; the root conftest
then replaces the whole module by one item that skips or fails, so collection never crashes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SPECS_ENV = "ZGWID_TEST_SPECS_DIR"
FIXTURES_ENV = "ZGWID_TEST_FIXTURES_DIR"


def _dir(env: str, default: Path) -> Path:
    value = os.environ.get(env, "").strip()
    return Path(value).expanduser().resolve() if value else default.resolve()


SPECS_DIR = _dir(SPECS_ENV, REPO.parent / "shared" / "specs")
FIXTURES_DIR = _dir(FIXTURES_ENV, REPO.parent / "shared" / "fixtures")
RECORDINGS_DIR = FIXTURES_DIR / "openzaak-smoke"

# What the tests read: the three ZGW documents requests are validated against, and the recordings.
ZGW_SPECS = ("zaken-api-1.5.1.yaml", "documenten-api-1.4.3.yaml", "catalogi-api-1.3.1.yaml")
SPECS = "specs"
RECORDINGS = "recordings"

# Test modules (path below tests/) that read the data at import time, and what they need.
MODULES: dict[str, tuple[str, ...]] = {
    "integration/test_zgw_http.py": (SPECS, RECORDINGS),
}


def in_ci() -> bool:
    """``CI`` set to a true value (GitHub Actions, GitLab CI and most others set ``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def missing(*needs: str) -> list[str]:
    """The needed items that are absent, as short descriptions (empty: everything is there)."""
    absent: list[str] = []
    if SPECS in needs:
        absent += [f"{SPECS_DIR / name}" for name in ZGW_SPECS if not (SPECS_DIR / name).is_file()]
    if RECORDINGS in needs and not any(RECORDINGS_DIR.glob("01-*.json")):
        absent.append(f"{RECORDINGS_DIR}/*.json")
    return absent


MESSAGE = (
    "third-party specs or recordings are absent "
    f"({SPECS_ENV}={SPECS_DIR}, {FIXTURES_ENV}={FIXTURES_DIR}); "
    "`make specs` fetches the specs, docs/ARCHITECTURE.md explains the recordings"
)


def message() -> str:
    return MESSAGE + (" [CI=true: a failure, not a skip]" if in_ci() else "")


def require(*needs: str) -> None:
    """Skip the calling test when data is absent (fail under CI=true), with the one message."""
    absent = missing(*needs)
    if not absent:
        return
    if in_ci():
        pytest.fail(message(), pytrace=False)
    pytest.skip(message())


def module_needs(path: Path) -> tuple[str, ...]:
    """What a test module listed in ``MODULES`` needs; () for every other module."""
    try:
        relative = path.resolve().relative_to(REPO / "tests").as_posix()
    except ValueError:
        return ()
    return MODULES.get(relative, ())
