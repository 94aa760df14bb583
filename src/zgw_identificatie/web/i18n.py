"""Translations looked up once per request, and templates compiled once per language.

flask-babel resolves the domain, the locale and the catalogue on every ``gettext`` call (a third of the
citizen start page's rendering went there); the catalogue does not change within a request, so it is
kept on the request's context after the first lookup. Outside a request (the worker, the CLI) this is
flask-babel's own lookup. Templates get the same callables (``install``).

Nearly every ``_("…")`` in the templates is a constant string, and each call costs a trip through
Jinja's context and the catalogue while the page is rendered (the start page has nineteen). So within a
request every template is compiled once per language, under the name ``"<lang>::<name>"``
(:class:`LocalisedEnvironment`): its constant ``_("…")`` calls are replaced by their translation as
markup, exactly what ``template_gettext`` returns, and a call's variables are still formatted and
escaped into it at rendering. Jinja folds the constant text into the page's literal parts. Templates
extended, included or imported from a localised template are localised in the same language. Outside a
request, or for a template that binds ``_`` itself, a template is compiled as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.globals import _cv_request  # the request context itself: cheaper than the proxies around it
from flask.templating import Environment
from flask_babel import get_locale, get_translations
from jinja2 import BaseLoader, Template, nodes
from jinja2 import Environment as BaseEnvironment
from jinja2.visitor import NodeTransformer
from markupsafe import Markup


def translations() -> Any:
    ctx = _cv_request.get(None)
    if ctx is None:
        return get_translations()
    found = getattr(ctx, "zgwid_translations", None)
    if found is None:
        found = ctx.zgwid_translations = get_translations()  # type: ignore[attr-defined]
    return found


def page_language() -> str | None:
    """The current request's language (flask-babel's locale) as a string, once per request; None outside one."""
    ctx = _cv_request.get(None)
    if ctx is None:
        return None
    found: str | None = getattr(ctx, "zgwid_language", None)
    if found is None:
        found = ctx.zgwid_language = str(get_locale() or "nl")  # type: ignore[attr-defined]
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


LANGUAGE_MARK = "::"


class LocalisedEnvironment(Environment):
    """Flask's template environment, with every template compiled once per request language (module doc)."""

    def __init__(self, app: Any, **options: Any) -> None:
        super().__init__(app, **options)
        assert self.loader is not None
        self.loader = _LocalisedLoader(self.loader)

    def get_template(self, name: str | Template, parent: str | None = None, globals: Any = None) -> Template:
        if parent is None and isinstance(name, str) and LANGUAGE_MARK not in name:
            language = page_language()
            if language is not None:
                name = language + LANGUAGE_MARK + name
        return super().get_template(name, parent, globals)

    def join_path(self, template: str, parent: str) -> str:
        language, mark, _rest = parent.partition(LANGUAGE_MARK)
        return language + mark + template if mark and LANGUAGE_MARK not in template else template

    def compile(
        self,
        source: str | nodes.Template,
        name: str | None = None,
        filename: str | None = None,
        raw: bool = False,
        defer_init: bool = False,
    ) -> Any:
        language, mark, _rest = (name or "").partition(LANGUAGE_MARK)
        if mark and isinstance(source, str):
            if language != page_language():  # the template is loaded by a request in its language
                raise RuntimeError(f"template {name!r} compiled outside a request in its language")
            source = localise(self.parse(source, name, filename), translations(), self, name or "")
        return super().compile(source, name, filename, raw, defer_init)  # type: ignore[call-overload]


class _LocalisedLoader(BaseLoader):
    """The app's loader; a localised name gets the source of the template it localises."""

    def __init__(self, inner: BaseLoader) -> None:
        self.inner = inner

    def get_source(self, environment: Any, template: str) -> tuple[str, str | None, Callable[[], bool] | None]:
        _language, mark, name = template.partition(LANGUAGE_MARK)
        return self.inner.get_source(environment, name if mark else template)

    def list_templates(self) -> list[str]:
        return self.inner.list_templates()


_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


class _ConstantGettext(NodeTransformer):
    """``_("text")`` → the translation as markup; ``_("text", name=value)`` → that markup ``% {"name": value}``.
    Output directly (``{{ _("…", naam=x) }}``) and naming each variable once as ``%(name)s`` (and no other
    ``%``), the translation becomes template text around the escaped variables: the same characters,
    without formatting at rendering."""

    def __init__(self, catalog: Any, autoescape: bool) -> None:
        self.catalog = catalog
        self.autoescape = autoescape  # output is escaped throughout the template

    def _constant(self, node: nodes.Node) -> str | None:
        if (
            isinstance(node, nodes.Call)
            and isinstance(node.node, nodes.Name)
            and node.node.name == "_"
            and len(node.args) == 1
            and isinstance(node.args[0], nodes.Const)
            and isinstance(node.args[0].value, str)
            and node.dyn_args is None
            and node.dyn_kwargs is None
        ):
            return str(self.catalog.ugettext(node.args[0].value))
        return None

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        parts: list[nodes.Expr] = []
        for child in node.nodes:
            text = self._constant(child)
            pieces = _PLACEHOLDER.split(text) if text is not None and child.kwargs else []  # type: ignore[attr-defined]
            names = pieces[1::2]
            values = {kw.key: kw.value for kw in child.kwargs} if pieces else {}  # type: ignore[attr-defined]
            if pieces and sorted(names) == sorted(values) and len(set(names)) == len(names):
                if not any("%" in literal for literal in pieces[0::2]):
                    line = child.lineno
                    for i, piece in enumerate(pieces):
                        if i % 2 == 0:
                            if piece:
                                parts.append(nodes.TemplateData(piece, lineno=line))
                        else:
                            value = self.visit(values[piece])
                            if not self.autoescape:  # escaped here, as markup % value does
                                value = nodes.Filter(value, "escape", [], [], None, None, lineno=line)
                            parts.append(value)
                    continue
            parts.append(self.visit(child))
        node.nodes = parts
        return node

    def visit_Call(self, node: nodes.Call) -> nodes.Node:
        self.generic_visit(node)
        text = self._constant(node)
        if text is None:
            return node
        line = node.lineno
        markup: nodes.Expr = nodes.MarkSafe(nodes.Const(text, lineno=line), lineno=line)
        if node.kwargs:  # template_gettext: markup % variables, which escapes each variable
            pairs = [nodes.Pair(nodes.Const(kw.key, lineno=line), kw.value, lineno=line) for kw in node.kwargs]
            markup = nodes.Mod(markup, nodes.Dict(pairs, lineno=line), lineno=line)
        return markup


def localise(tree: nodes.Template, catalog: Any, environment: BaseEnvironment, name: str) -> nodes.Template:
    """``tree`` with its constant ``_("…")`` calls translated by ``catalog``; as it is if it binds ``_``."""
    if _binds_underscore(tree):
        return tree
    autoescape = environment.autoescape(name) if callable(environment.autoescape) else environment.autoescape
    switches = tree.find(nodes.EvalContextModifier) or tree.find(nodes.ScopedEvalContextModifier)  # {% autoescape %}
    localised: nodes.Template = _ConstantGettext(catalog, bool(autoescape) and switches is None).visit(tree)
    localised.set_environment(environment)  # the new nodes too
    return localised


def _binds_underscore(tree: nodes.Template) -> bool:
    if any(name.name == "_" and name.ctx != "load" for name in tree.find_all(nodes.Name)):
        return True  # {% set _ %}, {% for _ in %}, {% with _ = %}, a macro's parameter
    if any(node.target == "_" for node in tree.find_all(nodes.Import)):
        return True  # {% import "x" as _ %}
    return any(  # {% from "x" import _ %}, {% from "x" import y as _ %}
        (item if isinstance(item, str) else item[1]) == "_"
        for node in tree.find_all(nodes.FromImport)
        for item in node.names
    )
