"""python3-saml compiles its XSD (with the imported xmldsig and xenc schemas) on every validation:
about 1.5 ms of CPU per ACS. ``install()`` makes it compile each schema once per thread.

The validation itself is unchanged: the same schema files, the same result values ('unloaded_xml',
'invalid_xml' or the document). A compiled ``XMLSchema`` is kept per thread because lxml's
validators keep an error log and are not meant to be used by two threads at once."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from lxml import etree
from onelogin.saml2 import xml_utils
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

_SCHEMA_DIR = Path(xml_utils.__file__).parent / "schemas"
_local = threading.local()


def compiled(schema: str) -> etree.XMLSchema:
    cache: dict[str, etree.XMLSchema] = _local.__dict__.setdefault("schemas", {})
    if schema not in cache:
        cache[schema] = etree.XMLSchema(etree.parse(str(_SCHEMA_DIR / schema)))
    return cache[schema]


def validate_xml(xml: Any, schema: str, debug: bool = False) -> Any:
    """``OneLogin_Saml2_XML.validate_xml`` with a compiled schema from the cache."""
    assert isinstance(schema, str)
    try:
        xml = OneLogin_Saml2_XML.to_etree(xml)
    except Exception:  # python3-saml's contract: any parse failure is 'unloaded_xml'
        return "unloaded_xml"
    if not compiled(schema).validate(xml):
        return "invalid_xml"
    return xml


def install() -> None:
    OneLogin_Saml2_XML.validate_xml = staticmethod(validate_xml)
