"""Templates compiled once per language (web/i18n.py) give the pages the templates describe, character for
character, with no translation looked up while a page is rendered; the URL helpers give url_for's URLs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jinja2
import pytest
from flask import render_template_string, url_for

from demo_driver import Citizen, Staff, demo_app
from zgw_identificatie.app import services_of
from zgw_identificatie.domain.sessions import RegistrationState
from zgw_identificatie.testing.clock import FixedClock
from zgw_identificatie.web import i18n, language_url, session_url

BSN = "999993653"


@pytest.fixture
def app(tmp_path):
    return demo_app(
        tmp_path,
        clock=FixedClock(datetime.now(UTC).replace(microsecond=0)),
        rate_limit_citizen="1000/minute",
        rate_limit_start="1000/minute",
    )


def _pages(app: Any) -> list[tuple[Any, str]]:
    """(client, path) of the staff's and the citizen's pages in several states."""
    staff = Staff.login(app)
    store = services_of(app).store
    clock = services_of(app).clock
    created = staff.start("mutual")
    known = staff.start("known-citizen", bsn=BSN)
    done = staff.start("new-citizen")
    citizen = Citizen.new(app)
    citizen.login(done, bsn=BSN)
    store.update(store.get(done).with_registration(RegistrationState.PENDING))
    cancelled = staff.start("mutual")
    other = Citizen.new(app)
    other.digid(cancelled, action="annuleren")
    withdrawn = staff.start("mutual")
    store.update(store.get(withdrawn).withdrawn(clock.now()))
    stranger = Citizen.new(app)
    return [
        (staff.client, "/staff/"),
        (staff.client, f"/staff/sessions/{created}"),
        (staff.client, f"/staff/sessions/{done}"),
        (staff.client, f"/staff/sessions/{done}/status.html"),
        (staff.client, f"/staff/sessions/{cancelled}/nieuwe-link"),
        (app.test_client(), "/staff/login"),
        (stranger.client, f"/i/{created}"),
        (stranger.client, f"/i/{known}"),
        (other.client, f"/i/{cancelled}"),
        (citizen.client, f"/i/{done}/klaar"),
        (stranger.client, f"/i/{withdrawn}"),
        (stranger.client, "/i/no-such-link"),
        (stranger.client, "/bestaat-niet"),
    ]


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_a_page_compiled_for_its_language_is_the_page_the_template_describes(app, lang, monkeypatch):
    pages = _pages(app)
    for client in {id(c): c for c, _path in pages}.values():
        client.get(f"/taal/{lang}")
    plain = jinja2.Environment.get_template  # no language in the name: compiled as written, _() at rendering
    compared = 0
    for client, path in pages:
        cookie = client.get_cookie("zgwid")
        localised = client.get(path)
        if cookie is not None:
            client.set_cookie("zgwid", cookie.value)  # the same page again (the "stopped" notice is shown once)
        with monkeypatch.context() as m:
            m.setattr(i18n.LocalisedEnvironment, "get_template", plain)
            as_written = client.get(path)
        assert localised.status_code == as_written.status_code, path
        assert f'<html lang="{lang}"' in localised.text or "<html" not in localised.text, path  # or a fragment
        assert localised.text == as_written.text, path
        compared += 1
    assert compared == len(pages)
    names = {name for _loader, name in app.jinja_env.cache.keys()}  # type: ignore[union-attr]
    assert f"{lang}::base.html" in names and f"{lang}::_macros.html" in names  # extended and imported: localised
    assert f"{lang}::citizen/start.html" in names and f"{lang}::staff/session.html" in names


def test_a_localised_page_looks_nothing_up_while_it_is_rendered(app):
    staff = Staff.login(app)
    sid = staff.start("mutual")
    client = Citizen.new(app).client
    assert client.get(f"/i/{sid}").status_code == 200  # compiled
    looked_up: list[str] = []
    real = app.jinja_env.globals["_"]
    app.jinja_env.globals["_"] = lambda s, **kw: looked_up.append(s) or real(s, **kw)
    page = Citizen.new(app).client.get(f"/i/{sid}", headers={"Accept-Language": "en"})
    assert "Show who you are" in page.text
    page = Citizen.new(app).client.get(f"/i/{sid}")
    assert "Laat zien wie u bent" in page.text and "Sanne de Vries van Gemeente Voorbeeld" in page.text
    assert looked_up == []


def test_variables_are_escaped_into_a_localised_text_and_a_template_that_binds_underscore_is_left_alone(app):
    macros = jinja2.DictLoader(
        {
            "t.html": '{{ _("Organisatie: %(gemeente)s", gemeente=g) }}|{{ _("Organisatie: %(gemeente)s", '
            'gemeente=g)|length }}|{% for x in [1] %}{{ _("Inloggen met DigiD") }}{% endfor %}',
            "own.html": '{% set _ = own %}{{ _("Inloggen met DigiD") }}',
            "other.html": '{% macro m(_) %}{{ _("x") }}{% endmacro %}{{ m(own) }}|{{ _("Inloggen met DigiD") }}',
        }
    )
    env = app.jinja_env
    monkey_loader = env.loader.inner  # type: ignore[union-attr]
    env.loader.inner = jinja2.ChoiceLoader([monkey_loader, macros])  # type: ignore[union-attr]
    try:
        with app.test_request_context("/", headers={"Cookie": "lang=en"}):
            page = env.get_template("t.html").render(g="<b>Gemeente & co</b>")
            text = "Organisation: &lt;b&gt;Gemeente &amp; co&lt;/b&gt;"
            assert page == f"{text}|{len(text)}|Log in with DigiD"  # |length of the markup, as with _() itself
            assert env.get_template("own.html").render(own=lambda s: f"own:{s}") == "own:Inloggen met DigiD"
            assert env.get_template("other.html").render(own=lambda s: f"own:{s}") == "own:x|Log in with DigiD"
        with app.test_request_context("/"):
            assert render_template_string('{{ _("Inloggen met DigiD") }}') == "Inloggen met DigiD"
    finally:
        env.loader.inner = monkey_loader  # type: ignore[union-attr]


def test_a_localised_template_is_compiled_only_in_a_request_in_its_language(app):
    with app.test_request_context("/", headers={"Cookie": "lang=nl"}), pytest.raises(RuntimeError):
        app.jinja_env.get_template("en::message.html")


@pytest.mark.parametrize("session_id", ["p31l3h3e-Bx2-vX4I8lhgzr_UWhMVatW", "a b", "ë/?#%", "x&y=z+1", "(a)!$'*,;:@"])
@pytest.mark.parametrize("script_name", ["", "/id"])
def test_session_url_is_url_for(app, session_id, script_name):
    with app.test_request_context(f"/i/{session_id}", environ_base={"SCRIPT_NAME": script_name}):
        for endpoint in ("citizen.login", "citizen.logout", "citizen.start"):
            assert session_url(endpoint, session_id) == url_for(endpoint, session_id=session_id)


@pytest.mark.parametrize(
    "query", ["", "?", "?a=1&b=2", "?q=a b+c", "?x=%2F%3F&y=ë", "?next=/i/x?y#z", "?n=!$'()*,/:;?@&m=[]{}|^`\"<>"]
)
@pytest.mark.parametrize("script_name", ["", "/id"])
def test_language_url_is_url_for(app, query, script_name):
    with app.test_request_context(f"/i/a b/ë{query}", environ_base={"SCRIPT_NAME": script_name}):
        from flask import request

        for lang in ("nl", "en"):
            expected = url_for("set_language", lang=lang, next=request.full_path.rstrip("?"))
            assert language_url(lang) == expected
