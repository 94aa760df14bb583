"""DigiD's IdP metadata compared with what we pin (R22, DIGID-SAML-NOTES §2.6 and §8.24).

DigiD's metadata changes after Logius maintenance (a new signing certificate, other endpoints; of
#6612). We never load it into the configuration: the signing certificate(s) and endpoints stay pinned
(``idp_entity_id``, ``idp_cert_files``, ``idp_sso_url``, ``idp_ars_url``), and this check, run daily,
fetches the published metadata over verified TLS, parses it with the same safe parser as the SAML
messages (no DTD, no entities; OWASP XXE) and reports every difference for an operator to approve.
DigiD's metadata signature names its key only by KeyName, so the pin is the trust anchor, not the
metadata's own signature.

Exit codes of ``zgw-identificatie digid-metadata-check``: 0 everything matches, 1 something changed
(``CHANGED: …`` lines), 2 the metadata (or the pinned configuration) could not be read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from dataclasses import dataclass

import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from ...settings import Settings
from .config import BINDING_POST, BINDING_SOAP, SpConfig, sp_config_from_settings
from .xmldsig import MAX_XML_BYTES, NS_DS, NS_MD, XmlRejected, parse_xml, q

log = logging.getLogger(__name__)

BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
OK, CHANGED, UNUSABLE = 0, 1, 2


class MetadataUnusable(Exception):
    """The metadata could not be fetched or is not usable IdP metadata (exit 2)."""


@dataclass(frozen=True)
class IdpMetadata:
    entity_id: str
    signing_fingerprints: tuple[str, ...]  # SHA-256 of the DER certificates, AA:BB:… as openssl prints them
    sso_url: str | None  # HTTP-POST, else HTTP-Redirect
    ars_url: str | None  # SOAP, index 0


@dataclass(frozen=True)
class CheckResult:
    exit_code: int
    lines: tuple[str, ...]


def fingerprint_der(der: bytes) -> str:
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def fingerprints_of_pem(pem: str) -> list[str]:
    """SHA-256 fingerprints of every certificate in a PEM text (a file may hold the current and the next)."""
    return [fingerprint_der(cert.public_bytes(Encoding.DER)) for cert in x509.load_pem_x509_certificates(pem.encode())]


def fetch_metadata(
    url: str,
    *,
    ca_bundle_file: str | None,
    timeout: tuple[float, float],
    http: requests.Session | None = None,
    allow_http: bool = False,
    max_bytes: int = MAX_XML_BYTES,
) -> bytes:
    """GET the metadata over verified TLS (R22): the CA bundle, no redirects, time-outs, a size limit."""
    if not url.startswith("https://") and not allow_http:
        raise MetadataUnusable(f"the metadata URL must be https:// ({url})")
    session = http or requests.Session()
    try:
        response = session.get(
            url,
            verify=ca_bundle_file or True,
            timeout=timeout,
            stream=True,
            allow_redirects=False,
            headers={"Accept": "application/samlmetadata+xml, application/xml, text/xml"},
        )
        try:
            if response.status_code != 200:
                raise MetadataUnusable(f"HTTP {response.status_code} from {url}")
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_content(65536):
                size += len(chunk)
                if size > max_bytes:
                    raise MetadataUnusable(f"the metadata is larger than {max_bytes} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            response.close()
    except requests.exceptions.RequestException as exc:
        raise MetadataUnusable(f"cannot fetch {url}: {type(exc).__name__}") from None
    finally:
        if http is None:
            session.close()


def parse_idp_metadata(data: bytes, *, entity_id_hint: str = "") -> IdpMetadata:
    """entityID, signing certificates (use="signing" or no use), SSO URL and ARS URL (SAML metadata §2.4.3)."""
    try:
        root = parse_xml(data)
    except XmlRejected as exc:
        raise MetadataUnusable(f"metadata refused: {exc}") from None
    entity = root
    if root.tag == q(NS_MD, "EntitiesDescriptor"):
        entities = root.findall(q(NS_MD, "EntityDescriptor"))
        matching = [e for e in entities if e.get("entityID") == entity_id_hint]
        if len(matching) != 1 and len(entities) != 1:
            raise MetadataUnusable("an EntitiesDescriptor without one clear EntityDescriptor")
        entity = matching[0] if len(matching) == 1 else entities[0]
    if entity.tag != q(NS_MD, "EntityDescriptor"):
        raise MetadataUnusable("not SAML metadata (no md:EntityDescriptor)")
    idps = entity.findall(q(NS_MD, "IDPSSODescriptor"))
    if len(idps) != 1:
        raise MetadataUnusable("expected exactly one md:IDPSSODescriptor")
    idp = idps[0]
    return IdpMetadata(
        entity_id=entity.get("entityID") or "",
        signing_fingerprints=tuple(_signing_fingerprints(idp)),
        sso_url=_sso_url(idp),
        ars_url=_ars_url(idp),
    )


def _signing_fingerprints(idp: etree._Element) -> list[str]:
    found: list[str] = []
    for descriptor in idp.findall(q(NS_MD, "KeyDescriptor")):
        if descriptor.get("use") not in (None, "signing"):
            continue
        for node in descriptor.iter(q(NS_DS, "X509Certificate")):
            text = "".join((node.text or "").split())
            try:
                der = base64.b64decode(text, validate=True)
                x509.load_der_x509_certificate(der)
            except (binascii.Error, ValueError):
                raise MetadataUnusable("a signing KeyDescriptor holds no valid X509Certificate") from None
            fingerprint = fingerprint_der(der)
            if fingerprint not in found:
                found.append(fingerprint)
    return found


def _sso_url(idp: etree._Element) -> str | None:
    services = idp.findall(q(NS_MD, "SingleSignOnService"))
    for binding in (BINDING_POST, BINDING_REDIRECT):
        for service in services:
            if service.get("Binding") == binding and service.get("Location"):
                return service.get("Location")
    return None


def _ars_url(idp: etree._Element) -> str | None:
    for service in idp.findall(q(NS_MD, "ArtifactResolutionService")):
        if service.get("Binding") == BINDING_SOAP and (service.get("index") or "").strip() == "0":
            return service.get("Location")
    return None


def compare(config: SpConfig, pinned_fingerprints: list[str], metadata: IdpMetadata) -> list[str]:
    """One ``CHANGED: …`` line per difference between the pinned configuration and the metadata."""
    changes: list[str] = []
    if metadata.entity_id != config.idp_entity_id:
        changes.append(f"CHANGED: entityID: pinned {config.idp_entity_id} → published {metadata.entity_id or '(none)'}")
    pinned_text = ", ".join(pinned_fingerprints) or "(none)"
    for fingerprint in metadata.signing_fingerprints:
        if fingerprint not in pinned_fingerprints:
            changes.append(
                f"CHANGED: signing certificate: published sha256 {fingerprint} is not pinned (pinned: {pinned_text})"
            )
    for fingerprint in pinned_fingerprints:
        if fingerprint not in metadata.signing_fingerprints:
            changes.append(f"CHANGED: signing certificate: pinned sha256 {fingerprint} is no longer published")
    if metadata.sso_url != config.idp_sso_url:
        changes.append(
            f"CHANGED: SingleSignOnService: pinned {config.idp_sso_url} → published {metadata.sso_url or '(none)'}"
        )
    if metadata.ars_url != config.idp_ars_url:
        changes.append(
            "CHANGED: ArtifactResolutionService (SOAP, index 0): "
            f"pinned {config.idp_ars_url} → published {metadata.ars_url or '(none)'}"
        )
    return changes


def run_check(settings: Settings, *, http: requests.Session | None = None) -> CheckResult:
    """Fetch, parse and compare; never changes the configuration. The report's lines and the exit code."""
    digid = settings.digid
    try:
        config = sp_config_from_settings(settings)
        pinned = [fp for pem in config.idp_certs for fp in fingerprints_of_pem(pem)]
    except (OSError, ValueError) as exc:
        log.warning("digid metadata check: pinned configuration unreadable (%s)", type(exc).__name__)
        return CheckResult(UNUSABLE, (f"ERROR: the pinned DigiD configuration cannot be read: {exc}",))
    url = digid.idp_metadata_url or config.idp_entity_id
    lines = [f"DigiD metadata: {url}"]
    try:
        data = fetch_metadata(
            url,
            ca_bundle_file=config.ca_bundle_file,
            timeout=(config.connect_timeout, config.read_timeout),
            http=http,
            allow_http=digid.simulator,
        )
        metadata = parse_idp_metadata(data, entity_id_hint=config.idp_entity_id)
    except MetadataUnusable as exc:
        log.warning("digid metadata check failed: %s", exc)
        return CheckResult(UNUSABLE, (*lines, f"ERROR: {exc}"))
    lines += [
        f"  entityID:                  {metadata.entity_id}",
        *(f"  signing certificate:       sha256 {fp}" for fp in metadata.signing_fingerprints),
        f"  SingleSignOnService:       {metadata.sso_url or '(none)'}",
        f"  ArtifactResolutionService: {metadata.ars_url or '(none)'}",
    ]
    changes = compare(config, pinned, metadata)
    if changes:
        log.warning("digid metadata differs from the pinned configuration: %s", "; ".join(changes))
        return CheckResult(
            CHANGED,
            (
                *lines,
                *changes,
                "Nothing was changed. Verify the change with Logius, then update the pinned settings.",
            ),
        )
    return CheckResult(OK, (*lines, "OK: the metadata matches the pinned configuration"))
