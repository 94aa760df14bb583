"""Safe XML parsing and XML signatures on xmlsec's primitives, restricted to what DigiD uses.

Sources: DIGID-SAML-NOTES §2.5 and §6 (DigiD signs RSA-SHA256/SHA-256 with exclusive C14N and the
enveloped-signature transform), python3-saml issue #447 / GHSA-8mmq-f9vf-8fg2 (xmlsec runs any
``ds:Transform`` unless restricted), OWASP XML Security Cheat Sheet (no DTDs, no entities).
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

from .xpath_cache import XPathCache

NS_SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
NS_SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
NS_MD = "urn:oasis:names:tc:SAML:2.0:metadata"
NS_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
NSMAP = {"saml": NS_SAML, "samlp": NS_SAMLP, "ds": NS_DS, "md": NS_MD, "soap": NS_SOAP}

ALG_EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ALG_ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
ALG_RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ALG_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
_ALLOWED_TRANSFORMS = (ALG_ENVELOPED, ALG_EXC_C14N)

MAX_XML_BYTES = 1_000_000
_xpath = XPathCache(NSMAP)  # our expressions, each compiled once per thread


class XmlRejected(Exception):
    """The XML is malformed, unsafe, or its signature is missing, weak or invalid (no values in the text)."""


def parse_xml(data: bytes | str) -> etree._Element:
    """Parse untrusted XML: no DTD, no entities, no network, no huge trees, comments dropped (OWASP XXE).

    The DOCTYPE test on the raw bytes runs first so a billion-laughs document is refused before
    libxml2 sees it; the python3-saml parser then refuses what slips through (CVE-2017-9672 class).
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > MAX_XML_BYTES:
        raise XmlRejected("document too large")
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise XmlRejected("DTDs are forbidden")
    try:
        root = OneLogin_Saml2_XML.to_etree(raw)
    except Exception as exc:
        raise XmlRejected(f"unparseable XML ({type(exc).__name__})") from None
    if not isinstance(root.tag, str):
        raise XmlRejected("unexpected document root")
    return root


def q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


def xpath(node: etree._Element, expr: str, **variables: str) -> list[Any]:
    result = _xpath(node, expr, **variables)
    return list(result) if isinstance(result, list) else []


def sign(xml: str | bytes | etree._Element, key_pem: str, cert_pem: str) -> bytes:
    """Enveloped signature (RSA-SHA256, SHA-256, exclusive C14N) on the parent of the first saml:Issuer.

    The same signature as ``OneLogin_Saml2_Utils.add_sign`` (same template, placement, ID handling and
    serialisation; the ds:Signature lands right after the Issuer as the SAML schema requires, SAML core
    §3.2.1, §2.3.3), but with the key loaded once (``signing_key``) instead of on every call: a freshly
    loaded RSA key costs its parsing plus OpenSSL's per-key set-up on the first private operation
    (about 1 ms, twice per identification).
    """
    if xml is None or xml == "":
        raise ValueError("empty document")
    elem = OneLogin_Saml2_XML.to_etree(xml)
    signature = xmlsec.template.create(
        elem, xmlsec.constants.TransformExclC14N, xmlsec.constants.TransformRsaSha256, ns="ds"
    )
    issuers = OneLogin_Saml2_XML.query(elem, "//saml:Issuer")
    if issuers:
        issuers[0].addnext(signature)
        target = issuers[0].getparent()
    else:
        if OneLogin_Saml2_XML.query(elem, "//md:EntityDescriptor"):
            elem.insert(0, signature)
        else:
            elem[0].insert(0, signature)
        target = elem
    element_id = target.get("ID")
    if element_id is None:
        element_id = OneLogin_Saml2_Utils.generate_unique_id()
        target.set("ID", element_id)
    xmlsec.tree.add_ids(target, ["ID"])
    reference = xmlsec.template.add_reference(
        signature, xmlsec.constants.TransformSha256, uri=f"#{element_id}" if element_id else ""
    )
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformExclC14N)
    key, certificate = signing_key(key_pem, cert_pem)
    ctx = xmlsec.SignatureContext()
    ctx.key = key  # xmlsec takes its own reference to the key
    ctx.sign(signature)
    # KeyInfo is not signed (SignedInfo references the element only): written here as xmlsec writes it from a
    # key that carries its certificate, which xmlsec would first copy into the context (about 0.07 ms).
    key_info = etree.SubElement(signature, q(NS_DS, "KeyInfo"))
    x509_data = etree.SubElement(key_info, q(NS_DS, "X509Data"))
    etree.SubElement(x509_data, q(NS_DS, "X509Certificate")).text = certificate
    for node in (key_info, x509_data, x509_data[0]):
        node.text, node.tail = node.text or "\n", "\n"
    signed = OneLogin_Saml2_XML.to_string(elem)
    return signed if isinstance(signed, bytes) else signed.encode("utf-8")


@functools.lru_cache(maxsize=16)
def signing_key(key_pem: str, cert_pem: str) -> tuple[xmlsec.Key, str]:
    """The private key and the certificate's base64 text as xmlsec writes it in ds:X509Certificate (64
    characters a line), parsed once per process (the service's own key pair, plus the simulator's in
    development). Read-only after loading: every signature context takes its own reference to the key."""
    key = xmlsec.Key.from_memory(key_pem, xmlsec.constants.KeyDataFormatPem, None)
    der = x509.load_pem_x509_certificate(cert_pem.encode("ascii")).public_bytes(serialization.Encoding.DER)
    encoded = base64.b64encode(der).decode("ascii")
    return key, "".join(encoded[i : i + 64] + "\n" for i in range(0, len(encoded), 64))


@functools.lru_cache(maxsize=16)
def verification_key(cert_pem: str) -> xmlsec.Key:
    """The public key of a pinned certificate, parsed once per process.

    The key alone, without the certificate: xmlsec copies a key's certificates into every signature context
    (about 0.07 ms per verification) and uses none of them to verify a signature with a key set on the
    context (nor does it look at the certificate's dates); the RSA key is the same."""
    public = x509.load_pem_x509_certificate(cert_pem.encode("ascii")).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatPem, None)


def check_signed_info(signature: etree._Element, expected_id: str) -> None:
    """The only signature shape we accept, checked before xmlsec runs anything (p3s #447, notes §6).

    Exclusive C14N, RSA-SHA256, exactly one Reference whose URI is ``#<ID of the parent>``, at most the
    enveloped and exclusive-C14N transforms, SHA-256 digest. XSLT, XPath, SHA-1 and DSA never reach xmlsec.
    """
    signed_info = signature.find(q(NS_DS, "SignedInfo"))
    if signed_info is None:
        raise XmlRejected("signature without SignedInfo")
    c14n = signed_info.find(q(NS_DS, "CanonicalizationMethod"))
    method = signed_info.find(q(NS_DS, "SignatureMethod"))
    if c14n is None or c14n.get("Algorithm") != ALG_EXC_C14N:
        raise XmlRejected("canonicalization method not allowed")
    if method is None or method.get("Algorithm") != ALG_RSA_SHA256:
        raise XmlRejected("signature method not allowed")
    references = signed_info.findall(q(NS_DS, "Reference"))
    if len(references) != 1 or len(signed_info) != 3:
        raise XmlRejected("expected exactly one Reference")
    reference = references[0]
    if not expected_id or reference.get("URI") != "#" + expected_id:
        raise XmlRejected("signature does not reference the signed element")
    transforms_node = reference.find(q(NS_DS, "Transforms"))
    transforms = [] if transforms_node is None else list(transforms_node)
    if len(transforms) > 2:
        raise XmlRejected("too many transforms")
    for transform in transforms:
        if transform.tag != q(NS_DS, "Transform") or transform.get("Algorithm") not in _ALLOWED_TRANSFORMS:
            raise XmlRejected("transform not allowed")
        for child in transform:
            if child.tag != "{http://www.w3.org/2001/10/xml-exc-c14n#}InclusiveNamespaces":
                raise XmlRejected("transform parameters not allowed")
    digest = reference.find(q(NS_DS, "DigestMethod"))
    if digest is None or digest.get("Algorithm") != ALG_SHA256:
        raise XmlRejected("digest method not allowed")


def verify_enveloped(element: etree._Element, certs: Sequence[str]) -> None:
    """Verify the one enveloped ds:Signature directly under ``element`` against the pinned ``certs``.

    XML-DSig core §4.3.3 + SAML core §5.4 (the Reference points at the signed element's ID). A key or
    certificate inside KeyInfo is never used: the context key is set from the pinned certificate, and
    only the enveloped, exclusive-C14N, SHA-256 and RSA-SHA256 transforms are enabled in xmlsec.
    """
    signatures = element.findall(q(NS_DS, "Signature"))
    if len(signatures) != 1:
        raise XmlRejected("expected exactly one signature on the element")
    element_id = element.get("ID") or ""
    check_signed_info(signatures[0], element_id)
    document = element.getroottree().getroot()
    if len(xpath(document, "//*[@ID=$id]", id=_xpath_literal_safe(element_id))) != 1:
        raise XmlRejected("duplicate or missing ID")
    if not certs:
        raise XmlRejected("no pinned certificate")
    xmlsec.tree.add_ids(element, ["ID"])
    for cert in certs:
        ctx = xmlsec.SignatureContext()
        for transform in (
            xmlsec.constants.TransformEnveloped,
            xmlsec.constants.TransformExclC14N,
            xmlsec.constants.TransformSha256,
        ):
            ctx.enable_reference_transform(transform)
        for transform in (xmlsec.constants.TransformExclC14N, xmlsec.constants.TransformRsaSha256):
            ctx.enable_signature_transform(transform)
        try:
            ctx.key = verification_key(cert)
            ctx.verify(signatures[0])
        except Exception:  # noqa: S112 - try the next pinned certificate (rollover, R22)
            continue
        return
    raise XmlRejected("signature invalid")


def _xpath_literal_safe(value: str) -> str:
    # The ID is passed as an XPath variable now, not quoted into the expression; such IDs stay refused.
    if "'" in value or not value.isprintable():
        raise XmlRejected("unusable ID")
    return value


def canonical_sha256(element: etree._Element) -> str:
    """SHA-256 hex of the exclusive canonical form (without comments) of ``element``."""
    c14n = etree.tostring(element, method="c14n", exclusive=True, with_comments=False)
    return hashlib.sha256(c14n).hexdigest()


def text_of(element: etree._Element | None) -> str | None:
    """Text content of a simple element, ignoring comments; None when absent or when it has child elements."""
    if element is None or any(isinstance(child.tag, str) for child in element):
        return None
    return "".join(str(t) for t in xpath(element, "text()"))


def only_child(parent: etree._Element, tag: str) -> etree._Element | None:
    found = parent.findall(tag)
    return found[0] if len(found) == 1 else None


def all_ids(root: etree._Element) -> Iterable[str]:
    return (str(v) for v in xpath(root, "//@ID"))
