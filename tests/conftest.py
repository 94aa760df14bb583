"""Shared fixtures: settings for tests, a fixed clock, SQLite and PostgreSQL stores, the demo app.

Also the guard for third-party reference data (``third_party.py``): a module that needs it at import
time is replaced by one item that skips (or fails under ``CI=true``) when it is absent.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import third_party
from zgw_identificatie.adapters.crypto import DataCipher, generate_key
from zgw_identificatie.adapters.sql_store import SqlSessionStore, make_engine, migrate
from zgw_identificatie.settings import Settings
from zgw_identificatie.testing.clock import FixedClock
from zgw_identificatie.testing.settings import TEST_PG_URL, make_settings

PG_URL = TEST_PG_URL


class ThirdPartyDataMissing(pytest.Item):
    """Stands in for a test module whose third-party data is absent: skips, or fails under CI=true."""

    def __init__(self, *, needs: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.needs = needs

    def runtest(self) -> None:
        third_party.require(*self.needs)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.name}: needs {', '.join(self.needs)}"


class ThirdPartyModule(pytest.File):
    def __init__(self, *, needs: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.needs = needs

    def collect(self) -> Iterator[pytest.Item]:
        yield ThirdPartyDataMissing.from_parent(self, name="third-party-data", needs=self.needs)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """A module listed in third_party.MODULES is not imported when its data is absent."""
    needs = third_party.module_needs(module_path)
    if needs and third_party.missing(*needs):
        return ThirdPartyModule.from_parent(parent, path=module_path, needs=needs)  # type: ignore[no-any-return]
    return None


def pytest_report_header() -> list[str]:
    state = "present" if not third_party.missing(third_party.SPECS, third_party.RECORDINGS) else "ABSENT"
    return [f"third-party specs: {third_party.SPECS_DIR}; recordings: {third_party.RECORDINGS_DIR} ({state})"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str]:
    """A throw-away schema on the machine's PostgreSQL, so parallel runs never meet."""
    name = "zgwid_test_" + secrets.token_hex(4)
    engine = sa.create_engine(PG_URL)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is not reachable (make test starts it): {exc}")
    yield name
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
    engine.dispose()


def pg_engine(schema: str) -> sa.Engine:
    return sa.create_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlSessionStore]:
    """The production store on SQLite and on a real PostgreSQL server."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'store.sqlite'}")
    else:
        schema = request.getfixturevalue("pg_schema") + "_" + secrets.token_hex(3)
        admin = sa.create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        engine = pg_engine(schema)
    migrate(engine)
    yield SqlSessionStore(engine, DataCipher([generate_key()]))
    engine.dispose()
    if request.param == "postgresql":
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
