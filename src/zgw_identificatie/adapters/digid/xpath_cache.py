"""XPath expressions compiled once per thread instead of on every evaluation.

``element.xpath(expr)`` compiles ``expr`` each time (about 6 µs, three times the evaluation); python3-saml
runs some 36 fixed queries per validated Response (``OneLogin_Saml2_XML.query``) and our own checks a dozen
more. ``install()`` makes python3-saml's ``query`` use compiled ``etree.XPath`` objects: the same
expressions, namespaces, variables and context node, so the same results. Compiled evaluators are kept
per thread (as ``schema_cache`` keeps its schemas): lxml serialises the use of one evaluator, and a
document belongs to the thread that parsed it. A cache holds at most ``MAX_EXPRESSIONS`` expressions; any
further one is evaluated as before (python3-saml's queries are constants; ours too, bar none)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from lxml import etree
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

MAX_EXPRESSIONS = 256


class XPathCache:
    """Evaluate XPath expressions with fixed namespace prefixes, each compiled once per thread."""

    def __init__(self, namespaces: Mapping[str, str]) -> None:
        self.namespaces = dict(namespaces)
        self._local = threading.local()

    def compiled(self, expr: str) -> etree.XPath | None:
        cache: dict[str, etree.XPath] | None = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = {}
        found = cache.get(expr)
        if found is None and len(cache) < MAX_EXPRESSIONS:
            found = cache[expr] = etree.XPath(expr, namespaces=self.namespaces)
        return found

    def __call__(self, node: Any, expr: str, **variables: Any) -> Any:
        """``node.xpath(expr, namespaces=…, **variables)``: the same result."""
        evaluator = self.compiled(expr)
        if evaluator is None:
            return node.xpath(expr, namespaces=self.namespaces, **variables)
        return evaluator(node, **variables)


_library = XPathCache(OneLogin_Saml2_Constants.NSMAP)


def query(dom: Any, query: str, context: Any = None, tagid: str | None = None) -> Any:
    """``OneLogin_Saml2_XML.query`` (python3-saml 1.16.0) with the expression compiled once per thread."""
    source = dom if context is None else context
    if tagid is None:
        return _library(source, query)
    return _library(source, query, tagid=tagid)


def install() -> None:
    OneLogin_Saml2_XML.query = staticmethod(query)
