"""Translations are looked up once per request, follow each request's language, and escape what is put in."""

from __future__ import annotations

from demo_driver import demo_app
from zgw_identificatie.web import i18n


def test_each_request_gets_its_own_language_and_the_catalogue_is_looked_up_once(tmp_path, monkeypatch):
    app = demo_app(tmp_path)
    lookups: list[object] = []
    real = i18n.get_translations

    def counted() -> object:
        found = real()
        lookups.append(found)
        return found

    monkeypatch.setattr(i18n, "get_translations", counted)
    with app.test_request_context("/", headers={"Cookie": "lang=en"}):
        assert str(i18n.template_gettext("Inloggen met DigiD")) == "Log in with DigiD"
        assert i18n.gettext("Inloggen met DigiD") == "Log in with DigiD"
        assert str(i18n.template_gettext("Organisatie: %(gemeente)s", gemeente="X")) == "Organisation: X"
    assert len(lookups) == 1  # three strings, one lookup
    with app.test_request_context("/", headers={"Cookie": "lang=nl"}):
        assert str(i18n.template_gettext("Inloggen met DigiD")) == "Inloggen met DigiD"  # not the last request's
    assert len(lookups) == 2


def test_template_strings_escape_their_variables_but_not_themselves(tmp_path):
    app = demo_app(tmp_path)
    with app.test_request_context("/"):
        text = i18n.template_gettext("Organisatie: %(gemeente)s", gemeente="<b>Gemeente & co</b>")
    assert str(text) == "Organisatie: &lt;b&gt;Gemeente &amp; co&lt;/b&gt;"
    with app.test_request_context("/"):
        page = app.jinja_env.from_string('{{ _("Organisatie: %(gemeente)s", gemeente=g) }}').render(g="<i>")
    assert page == "Organisatie: &lt;i&gt;"
