"""The service provider's configuration, read once from Settings (R6, R21, R22, R23)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...settings import Settings
from .keys import read_pem, simulator_key_files

SIMULATOR_PREFIX = "/demo/digid"
ACS_PATH = "/digid/acs"
BINDING_ARTIFACT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
BINDING_SOAP = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP"
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"


@dataclass(frozen=True)
class SpConfig:
    sp_entity_id: str
    acs_url: str
    idp_entity_id: str
    idp_sso_url: str
    idp_ars_url: str
    idp_certs: tuple[str, ...]  # pinned PEM signing certificates (two during a Logius rollover)
    sp_key_pem: str = field(repr=False)
    sp_cert_pem: str
    tls_client_cert_file: str | None = None  # None: no client certificate (simulator over plain HTTP)
    tls_client_key_file: str | None = None
    ca_bundle_file: str | None = None  # None: the system store
    soap_content_type: str = "text/xml"
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    exchange_timeout: float = 15.0  # one deadline for connect, send and reading the whole answer
    clock_drift_seconds: int = 120
    max_assertion_age_seconds: int = 300
    max_response_bytes: int = 1_000_000
    ars_endpoint_indexes: frozenset[int] = frozenset({0})
    artifact_ttl_seconds: int = 900
    service_name: str = "Identificatie tijdens videogesprek"
    organization_name: str = ""
    organization_url: str = ""
    contact_email: str = ""

    def __post_init__(self) -> None:
        if "?" in self.acs_url or "#" in self.acs_url:
            raise ValueError("the ACS URL must not carry a query string (DigiD appends ?SAMLart=)")
        if not self.idp_certs:
            raise ValueError("pin at least one IdP signing certificate")


def simulator_idp_entity_id(base_url: str) -> str:
    return base_url.rstrip("/") + SIMULATOR_PREFIX + "/metadata"


def sp_config_from_settings(settings: Settings) -> SpConfig:
    """SpConfig from ``settings.digid``; with the simulator, its generated keys and routes on ``base_url``."""
    digid = settings.digid
    base = settings.base_url.rstrip("/")
    common: dict[str, Any] = {
        "sp_entity_id": settings.sp_entity_id,
        "acs_url": base + ACS_PATH,
        "soap_content_type": digid.soap_content_type,
        "connect_timeout": digid.connect_timeout,
        "read_timeout": digid.read_timeout,
        "exchange_timeout": digid.exchange_timeout,
        "clock_drift_seconds": digid.clock_drift_seconds,
        "max_assertion_age_seconds": digid.max_assertion_age_seconds,
        "service_name": digid.service_name,
        "organization_name": digid.organization_name or settings.gemeente_naam,
        "organization_url": digid.organization_url or base,
        "contact_email": digid.contact_email,
    }
    if digid.simulator:
        files = simulator_key_files(settings.instance_path)
        return SpConfig(
            idp_entity_id=simulator_idp_entity_id(base),
            idp_sso_url=base + SIMULATOR_PREFIX + "/sso",
            idp_ars_url=base + SIMULATOR_PREFIX + "/resolve",
            idp_certs=(read_pem(files.idp_cert),),
            sp_key_pem=read_pem(files.sp_key),
            sp_cert_pem=read_pem(files.sp_cert),
            **common,
        )
    return SpConfig(
        idp_entity_id=digid.idp_entity_id,
        idp_sso_url=digid.idp_sso_url,
        idp_ars_url=digid.idp_ars_url,
        idp_certs=tuple(read_pem(path) for path in digid.idp_cert_files),
        sp_key_pem=read_pem(digid.sp_key_file),
        sp_cert_pem=read_pem(digid.sp_cert_file),
        tls_client_cert_file=digid.tls_client_cert_file or digid.sp_cert_file,
        tls_client_key_file=digid.tls_client_key_file or digid.sp_key_file,
        ca_bundle_file=digid.ca_bundle_file or None,
        **common,
    )


def onelogin_settings(config: SpConfig, requested_context_uri: str) -> dict[str, Any]:
    """python3-saml settings of DIGID-SAML-NOTES §4 (strict, signed assertions, no deprecated algorithms)."""
    idp: dict[str, Any] = {
        "entityId": config.idp_entity_id,
        "singleSignOnService": {"url": config.idp_sso_url, "binding": BINDING_POST},
    }
    if len(config.idp_certs) == 1:
        idp["x509cert"] = config.idp_certs[0]
    else:
        idp["x509certMulti"] = {"signing": list(config.idp_certs)}
    return {
        "strict": True,
        "debug": False,
        "sp": {
            "entityId": config.sp_entity_id,
            "assertionConsumerService": {"url": config.acs_url, "binding": BINDING_ARTIFACT},
            "NameIDFormat": NAMEID_UNSPECIFIED,
            "x509cert": config.sp_cert_pem,
            "privateKey": config.sp_key_pem,
        },
        "idp": idp,
        "security": {
            "authnRequestsSigned": True,
            "wantAssertionsSigned": True,
            "wantMessagesSigned": False,
            "wantNameId": True,
            "wantNameIdEncrypted": False,
            "wantAssertionsEncrypted": False,
            "wantAttributeStatement": False,
            "rejectDeprecatedAlgorithm": True,
            "failOnAuthnContextMismatch": False,
            "requestedAuthnContext": [requested_context_uri],
            "requestedAuthnContextComparison": "minimum",
            "signatureAlgorithm": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "digestAlgorithm": "http://www.w3.org/2001/04/xmlenc#sha256",
            "signMetadata": False,
        },
    }
