"""Our signed SP metadata for the DigiD aansluiting (R10; dde ``saml2/base.py`` shape, notes §2.6)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from lxml import etree

from .xmldsig import NS_DS, NS_MD, q, sign

if TYPE_CHECKING:
    from .config import SpConfig

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def _cert_body(pem: str) -> str:
    return "".join(line for line in pem.strip().splitlines() if "-----" not in line)


def build_sp_metadata(config: SpConfig) -> str:
    """EntityDescriptor signed RSA-SHA256: AuthnRequestsSigned and WantAssertionsSigned true, one signing
    KeyDescriptor, artifact ACS, AttributeConsumingService, Organization, ContactPerson, no validUntil."""
    from .config import BINDING_ARTIFACT, NAMEID_UNSPECIFIED

    root = etree.Element(q(NS_MD, "EntityDescriptor"), nsmap={"md": NS_MD, "ds": NS_DS})
    root.set("entityID", config.sp_entity_id)
    root.set("ID", "_" + hashlib.sha256(config.sp_entity_id.encode("utf-8")).hexdigest()[:40])
    sp = etree.SubElement(root, q(NS_MD, "SPSSODescriptor"))
    sp.set("AuthnRequestsSigned", "true")
    sp.set("WantAssertionsSigned", "true")
    sp.set("protocolSupportEnumeration", "urn:oasis:names:tc:SAML:2.0:protocol")
    key = etree.SubElement(sp, q(NS_MD, "KeyDescriptor"), use="signing")
    x509 = etree.SubElement(etree.SubElement(key, q(NS_DS, "KeyInfo")), q(NS_DS, "X509Data"))
    etree.SubElement(x509, q(NS_DS, "X509Certificate")).text = _cert_body(config.sp_cert_pem)
    etree.SubElement(sp, q(NS_MD, "NameIDFormat")).text = NAMEID_UNSPECIFIED
    etree.SubElement(
        sp,
        q(NS_MD, "AssertionConsumerService"),
        Binding=BINDING_ARTIFACT,
        Location=config.acs_url,
        index="0",
        isDefault="true",
    )
    service = etree.SubElement(sp, q(NS_MD, "AttributeConsumingService"), index="1")
    etree.SubElement(service, q(NS_MD, "ServiceName"), {XML_LANG: "nl"}).text = config.service_name
    etree.SubElement(service, q(NS_MD, "ServiceDescription"), {XML_LANG: "nl"}).text = config.service_name
    etree.SubElement(service, q(NS_MD, "RequestedAttribute"), Name="bsn", isRequired="true")
    if config.organization_name:
        org = etree.SubElement(root, q(NS_MD, "Organization"))
        etree.SubElement(org, q(NS_MD, "OrganizationName"), {XML_LANG: "nl"}).text = config.organization_name
        etree.SubElement(org, q(NS_MD, "OrganizationDisplayName"), {XML_LANG: "nl"}).text = config.organization_name
        etree.SubElement(org, q(NS_MD, "OrganizationURL"), {XML_LANG: "nl"}).text = (
            config.organization_url or config.sp_entity_id
        )
    if config.contact_email:
        for kind in ("technical", "administrative"):
            contact = etree.SubElement(root, q(NS_MD, "ContactPerson"), contactType=kind)
            etree.SubElement(contact, q(NS_MD, "EmailAddress")).text = "mailto:" + config.contact_email
    return sign(root, config.sp_key_pem, config.sp_cert_pem).decode("utf-8")
