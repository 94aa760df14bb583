"""Translations looked up once per request.

flask-babel resolves the domain, the locale and the catalogue on every ``gettext`` call (a third of the
citizen start page's rendering went there); the catalogue does not change within a request, so it is
kept on the request's context after the first lookup. Outside a request (the worker, the CLI) this is
flask-babel's own lookup. Templates get the same callables (``install``).
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.globals import _cv_request  # the request context itself: cheaper than the proxies around it
from flask_babel import get_translations
from markupsafe import Markup


def translations() -> Any:
    ctx = _cv_request.get(None)
    if ctx is None:
        return get_translations()
    found = getattr(ctx, "zgwid_translations", None)
    if found is None:
        found = ctx.zgwid_translations = get_translations()  # type: ignore[attr-defined]
    return found


def gettext(string: str, **variables: Any) -> str:
    text: str = translations().ugettext(string)
    return text % variables if variables else text


# Translated template strings as markup, per catalogue (flask-babel keeps one per locale for the life of
# the process, so this holds at most every msgid once per language).
_markup: dict[tuple[Any, str], Markup] = {}


def template_gettext(string: str, **variables: Any) -> Markup:
    """``_()`` in the (autoescaped HTML) templates, as Jinja's newstyle gettext does it: the translation is
    markup, the variables are escaped into it. A plain global: Jinja's own ``_`` passes through two
    context calls per string, a sixth of a page's rendering."""
    catalog = translations()
    text = _markup.get((catalog, string))
    if text is None:
        text = _markup[(catalog, string)] = Markup(catalog.ugettext(string))  # noqa: S704 - our own catalogue
    return text % variables if variables else text


def install(app: Flask) -> None:
    """The Jinja i18n callables (newstyle: Jinja formats and escapes) on the cached catalogue; ``_`` direct."""
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s: translations().ugettext(s),
        ngettext=lambda s, p, n: translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: translations().unpgettext(c, s, p, n),
    )
    app.jinja_env.globals["_"] = template_gettext
