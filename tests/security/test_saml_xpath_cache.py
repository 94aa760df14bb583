"""XPath expressions compiled once per thread (python3-saml's queries and ours): the same results."""

from __future__ import annotations

import threading
from pathlib import Path

from lxml import etree
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML
from saml_helpers import make_simulator_world

from threads import in_two_threads
from zgw_identificatie.adapters.digid import sp, xpath_cache  # noqa: F401 - sp installs the cache
from zgw_identificatie.domain.assurance import AssuranceLevel

RESPONSE = (
    b'<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"'
    b' xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" ID="_r">'
    b"<saml:Issuer>urn:idp</saml:Issuer>"
    b'<saml:Assertion ID="_a"><saml:Issuer>urn:idp</saml:Issuer><ds:Signature><ds:SignedInfo>'
    b'<ds:Reference URI="#_a"/></ds:SignedInfo></ds:Signature>'
    b"<saml:Subject><saml:NameID>s00000000:999993653</saml:NameID></saml:Subject></saml:Assertion>"
    b"</samlp:Response>"
)


def library_query(dom, query, context=None, tagid=None):
    """python3-saml 1.16.0's own ``OneLogin_Saml2_XML.query``, as it was before ``install``."""
    source = dom if context is None else context
    if tagid is None:
        return source.xpath(query, namespaces=OneLogin_Saml2_Constants.NSMAP)
    return source.xpath(query, tagid=tagid, namespaces=OneLogin_Saml2_Constants.NSMAP)


def test_python3_saml_s_queries_give_the_same_results_compiled():
    """Absolute and relative paths, a context node, the $tagid variable, attributes and no match at all."""
    assert OneLogin_Saml2_XML.query is xpath_cache.query
    root = etree.fromstring(RESPONSE)
    assertion = root[1]
    cases = [
        (root, "/samlp:Response/saml:Issuer", None, None),
        (root, "/samlp:Response/saml:Assertion/ds:Signature/ds:SignedInfo/ds:Reference", None, None),
        (root, "/samlp:Response/saml:Assertion[@ID=$tagid]/saml:Subject/saml:NameID", None, "_a"),
        (root, "/samlp:Response/saml:Assertion[@ID=$tagid]/saml:Subject/saml:NameID", None, "_other"),
        (root, "//saml:Assertion", None, None),
        (root, ".//ds:Reference", assertion, None),
        (assertion, "/samlp:Response/saml:Issuer", None, None),  # absolute from an inner element
        (root, "//@ID", None, None),
        (root, "//saml:EncryptedAssertion", None, None),
    ]
    for _ in range(2):  # compiled, then from the cache
        for dom, query, context, tagid in cases:
            expected = library_query(dom, query, context, tagid)
            found = OneLogin_Saml2_XML.query(dom, query, context, tagid)
            assert len(found) == len(expected) and all(a is b or a == b for a, b in zip(found, expected, strict=True))


def test_a_login_compiles_each_expression_once_per_thread(tmp_path: Path, monkeypatch):
    """The second and third logins compile nothing in the citizen's thread: every expression comes from the
    thread's cache. (The simulator answers the back channel in the exchange's own, new thread.)"""
    world = make_simulator_world(tmp_path)
    assert world.login(required=AssuranceLevel.MIDDEN).level is AssuranceLevel.MIDDEN
    compiled: list[str] = []
    real = etree.XPath
    me = threading.get_ident()

    def counting(expr: str, **kw: object) -> etree.XPath:
        if threading.get_ident() == me:
            compiled.append(expr)
        return real(expr, **kw)

    monkeypatch.setattr(xpath_cache.etree, "XPath", counting)
    for _ in range(2):
        assert world.login(required=AssuranceLevel.MIDDEN).level is AssuranceLevel.MIDDEN
    assert compiled == []


def test_each_thread_compiles_its_own_and_the_cache_is_bounded(monkeypatch):
    cache = xpath_cache.XPathCache({"x": "urn:x"})
    root = etree.fromstring(b'<x:a xmlns:x="urn:x"><x:b/><x:b/></x:a>')
    seen = in_two_threads(lambda: cache.compiled("//x:b"))
    assert seen[0] is not seen[1] and cache.compiled("//x:b") not in seen
    monkeypatch.setattr(xpath_cache, "MAX_EXPRESSIONS", 1)
    fresh = xpath_cache.XPathCache({"x": "urn:x"})
    assert len(fresh(root, "//x:b")) == 2 and fresh.compiled("//x:b") is not None
    assert fresh.compiled("count(//x:b)") is None and fresh(root, "count(//x:b)") == 2.0  # evaluated uncompiled
