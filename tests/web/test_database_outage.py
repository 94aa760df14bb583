"""A database that is away for a moment gives a calm 503 with Retry-After, never a stack trace."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from demo_driver import API_KEY, demo_app
from zgw_identificatie.app import services_of


@pytest.fixture
def app_without_database(tmp_path):
    app = demo_app(tmp_path)
    store = services_of(app).store
    store.engine = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")  # nothing listens on port 1
    return app


def test_a_citizen_sees_a_dutch_page_that_says_to_try_again_in_a_minute(app_without_database):
    """503, Retry-After, the page says the link stays valid; no traceback text."""
    resp = app_without_database.test_client().get("/i/some-link")
    assert resp.status_code == 503 and int(resp.headers["Retry-After"]) > 0
    assert "Even niet beschikbaar" in resp.text and "Traceback" not in resp.text and "psycopg" not in resp.text


def test_an_api_client_gets_a_503_problem_with_retry_after(app_without_database):
    """problem+json 503, as documented in the OpenAPI document."""
    resp = app_without_database.test_client().post(
        "/api/v1/sessions", json={"flow": "mutual"}, headers={"Authorization": f"Bearer {API_KEY}"}
    )
    assert resp.status_code == 503 and resp.mimetype == "application/problem+json"
    assert int(resp.headers["Retry-After"]) > 0
    doc = app_without_database.test_client().get("/api/v1/openapi.json").get_json()
    assert "503" in doc["paths"]["/sessions"]["post"]["responses"]
