"""python3-saml's schema check with the compiled XSD cached: the same verdicts, one compilation."""

from __future__ import annotations

from lxml import etree
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

from threads import in_two_threads
from zgw_identificatie.adapters.digid import schema_cache, sp  # noqa: F401 - sp installs the cache

VALID = (
    b'<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_a" Version="2.0"'
    b' IssueInstant="2026-01-01T00:00:00Z"><samlp:Status><samlp:StatusCode'
    b' Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:Response>'
)


def test_the_library_validates_against_the_cached_schema_with_the_same_verdicts(monkeypatch):
    """Valid → the document; a missing required attribute or an unknown element → 'invalid_xml';
    not XML → 'unloaded_xml'. Fifty validations in this thread compile the schema at most once."""
    assert OneLogin_Saml2_XML.validate_xml is schema_cache.validate_xml
    built = []
    real = etree.XMLSchema
    monkeypatch.setattr(schema_cache.etree, "XMLSchema", lambda doc: built.append(1) or real(doc))
    schema = "saml-schema-protocol-2.0.xsd"
    for _ in range(50):
        assert OneLogin_Saml2_XML.validate_xml(VALID, schema).tag.endswith("Response")
    assert OneLogin_Saml2_XML.validate_xml(VALID.replace(b' Version="2.0"', b""), schema) == "invalid_xml"
    assert OneLogin_Saml2_XML.validate_xml(VALID.replace(b"samlp:Status>", b"samlp:Statuz>"), schema) == "invalid_xml"
    assert OneLogin_Saml2_XML.validate_xml(b"<not xml", schema) == "unloaded_xml"
    assert len(built) <= 1


def test_each_thread_has_its_own_compiled_schema():
    """lxml validators keep an error log: two threads never share one."""
    seen = in_two_threads(lambda: schema_cache.compiled("saml-schema-protocol-2.0.xsd"))
    mine = schema_cache.compiled("saml-schema-protocol-2.0.xsd")
    assert len(seen) == 2 and seen[0] is not seen[1] and all(s is not mine for s in seen)
