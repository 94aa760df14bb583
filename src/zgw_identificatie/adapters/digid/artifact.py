"""SAML artifacts (HTTP-Artifact binding) and the SOAP back channel's messages.

Sources: SAML Bindings §3.6.4 (type 0x0004 artifact: EndpointIndex, SourceID = SHA-1 of the issuer's
entityID, 20-byte MessageHandle), §3.2 (SOAP binding), SAML core §3.5 (ArtifactResolve /
ArtifactResponse), DIGID-SAML-NOTES R5–R7 and §2.3.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from .xmldsig import NS_SAML, NS_SAMLP, NS_SOAP, XmlRejected, parse_xml, q, sign, xpath

TYPE_CODE = b"\x00\x04"
ARTIFACT_BYTES = 44
MAX_ARTIFACT_CHARS = 100
SOAP_ENVELOPE = f'<soap:Envelope xmlns:soap="{NS_SOAP}"><soap:Body>{{body}}</soap:Body></soap:Envelope>'


class ArtifactRejected(Exception):
    """The SAMLart value is not one of our IdP's artifacts; refused before any network call (R5)."""


@dataclass(frozen=True)
class Artifact:
    endpoint_index: int
    source_id: bytes
    message_handle: bytes


def source_id(entity_id: str) -> bytes:
    return hashlib.sha1(entity_id.encode("utf-8")).digest()  # noqa: S324 - SAML Bindings §3.6.4 mandates SHA-1


def make_artifact(idp_entity_id: str, *, endpoint_index: int = 0, handle: bytes | None = None) -> str:
    """A type 0x0004 artifact, base64 (the simulator issues these; tests forge them)."""
    handle = secrets.token_bytes(20) if handle is None else handle
    raw = TYPE_CODE + endpoint_index.to_bytes(2, "big") + source_id(idp_entity_id) + handle
    return base64.b64encode(raw).decode("ascii")


def parse_artifact(value: str, *, idp_entity_id: str, endpoint_indexes: frozenset[int]) -> Artifact:
    """Check SAMLart before anything is sent (R5): base64, 44 bytes, type 0x0004, our IdP's SourceID, known index."""
    if not isinstance(value, str) or not value or len(value) > MAX_ARTIFACT_CHARS:
        raise ArtifactRejected("artifact missing or too long")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise ArtifactRejected("artifact is not base64") from None
    if len(raw) != ARTIFACT_BYTES:
        raise ArtifactRejected("artifact has the wrong length")
    if raw[:2] != TYPE_CODE:
        raise ArtifactRejected("artifact has the wrong type code")
    index = int.from_bytes(raw[2:4], "big")
    if index not in endpoint_indexes:
        raise ArtifactRejected("artifact names an unknown endpoint index")
    if not secrets.compare_digest(raw[4:24], source_id(idp_entity_id)):
        raise ArtifactRejected("artifact comes from another issuer")
    return Artifact(endpoint_index=index, source_id=raw[4:24], message_handle=raw[24:])


def saml_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id() -> str:
    """A SAML ID: an NCName with 160 random bits (SAML core §1.3.4)."""
    return "_" + secrets.token_hex(20)


def build_artifact_resolve(
    *,
    request_id: str,
    issue_instant: datetime,
    destination: str,
    issuer: str,
    artifact: str,
    key_pem: str,
    cert_pem: str,
) -> bytes:
    """A signed ArtifactResolve (RSA-SHA256, exclusive C14N) in a SOAP 1.1 envelope (R6)."""
    root = etree.Element(q(NS_SAMLP, "ArtifactResolve"), nsmap={"samlp": NS_SAMLP, "saml": NS_SAML})
    root.set("ID", request_id)
    root.set("Version", "2.0")
    root.set("IssueInstant", saml_time(issue_instant))
    root.set("Destination", destination)
    etree.SubElement(root, q(NS_SAML, "Issuer")).text = issuer
    etree.SubElement(root, q(NS_SAMLP, "Artifact")).text = artifact
    signed = sign(root, key_pem, cert_pem).decode("utf-8")
    return soap_envelope(signed)


def soap_envelope(body_xml: str) -> bytes:
    if body_xml.startswith("<?xml"):
        body_xml = body_xml.split("?>", 1)[1]
    return SOAP_ENVELOPE.format(body=body_xml).encode("utf-8")


def soap_body_child(data: bytes) -> etree._Element:
    """The single element in a SOAP 1.1 Body; a Fault or anything else unexpected is refused (R7)."""
    root = parse_xml(data)
    if root.tag != q(NS_SOAP, "Envelope"):
        raise XmlRejected("not a SOAP 1.1 envelope")
    bodies = root.findall(q(NS_SOAP, "Body"))
    if len(bodies) != 1:
        raise XmlRejected("expected exactly one SOAP Body")
    children = [c for c in bodies[0] if isinstance(c.tag, str)]
    if len(children) != 1:
        raise XmlRejected("expected exactly one element in the SOAP Body")
    if children[0].tag == q(NS_SOAP, "Fault") or xpath(root, "//soap:Fault"):
        raise XmlRejected("SOAP fault")
    return children[0]
