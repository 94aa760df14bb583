"""Signing and verifying with keys parsed once: the same signatures as python3-saml's, keys loaded once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from lxml import etree
from onelogin.saml2.constants import OneLogin_Saml2_Constants as C
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from saml_helpers import keys, make_simulator_world

from zgw_identificatie.adapters.digid import xmldsig
from zgw_identificatie.adapters.digid.xmldsig import NS_SAMLP, XmlRejected, q, sign, verify_enveloped
from zgw_identificatie.domain.assurance import AssuranceLevel

AUTHN_REQUEST = (
    '<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
    'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_request" Version="2.0" '
    'IssueInstant="2026-01-01T00:00:00Z" ForceAuthn="true"><saml:Issuer>urn:sp</saml:Issuer>'
    '<samlp:RequestedAuthnContext Comparison="minimum"><saml:AuthnContextClassRef>urn:x</saml:AuthnContextClassRef>'
    "</samlp:RequestedAuthnContext></samlp:AuthnRequest>"
)
METADATA = (
    '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" ID="_metadata" entityID="urn:sp">'
    "<md:SPSSODescriptor/></md:EntityDescriptor>"
)


@pytest.mark.parametrize("document", [AUTHN_REQUEST, METADATA])
@pytest.mark.parametrize("as_bytes", [False, True])
def test_the_signature_is_byte_for_byte_python3_saml_s(document: str, as_bytes: bool) -> None:
    """RSA PKCS#1 v1.5 is deterministic, so the same template, placement and serialisation give the same bytes."""
    pair = keys("sp")
    xml: str | bytes = document.encode() if as_bytes else document
    theirs = OneLogin_Saml2_Utils.add_sign(
        xml, pair.key_pem, pair.cert_pem, sign_algorithm=C.RSA_SHA256, digest_algorithm=C.SHA256
    )
    assert sign(xml, pair.key_pem, pair.cert_pem) == (theirs if isinstance(theirs, bytes) else theirs.encode())


def test_the_certificate_in_key_info_is_written_as_xmlsec_writes_it_for_every_length() -> None:
    """KeyInfo is written by us (not by xmlsec from a key with its certificate): the same bytes as python3-saml's
    signature for certificates of every DER length modulo 48 (base64 lines of 64 characters)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    pair = keys("sp")
    private = serialization.load_pem_private_key(pair.key_pem.encode(), None)
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer")])
    now = dt.datetime.now(dt.UTC)
    seen: set[int] = set()
    for n in range(1, 65):
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x" * n)])
        cert = (
            x509.CertificateBuilder(subject, issuer, private.public_key(), 1, now, now + dt.timedelta(days=1)).sign(
                private, hashes.SHA256()
            )  # type: ignore[arg-type]
        )
        remainder = len(cert.public_bytes(serialization.Encoding.DER)) % 48
        if remainder in seen:
            continue
        seen.add(remainder)
        cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        theirs = OneLogin_Saml2_Utils.add_sign(
            AUTHN_REQUEST, pair.key_pem, cert_pem, sign_algorithm=C.RSA_SHA256, digest_algorithm=C.SHA256
        )
        assert sign(AUTHN_REQUEST, pair.key_pem, cert_pem) == theirs, remainder
    assert seen == set(range(48))


def test_an_element_is_signed_in_place_like_python3_saml_does() -> None:
    pair = keys("sp")
    ours, theirs = etree.fromstring(AUTHN_REQUEST), etree.fromstring(AUTHN_REQUEST)
    signed = sign(ours, pair.key_pem, pair.cert_pem)
    assert signed == OneLogin_Saml2_Utils.add_sign(
        theirs, pair.key_pem, pair.cert_pem, sign_algorithm=C.RSA_SHA256, digest_algorithm=C.SHA256
    )
    assert etree.tostring(ours) == etree.tostring(theirs)


def test_a_login_parses_the_sp_key_once_and_each_idp_certificate_once(tmp_path: Path) -> None:
    """Before, every AuthnRequest and ArtifactResolve parsed the private key again, and OpenSSL set the fresh
    key up again for its first signature (about 1 ms each); every verification parsed the certificate."""
    xmldsig.signing_key.cache_clear()
    xmldsig.verification_key.cache_clear()
    world = make_simulator_world(tmp_path)  # the SP loads its key at start-up
    sp_loads = xmldsig.signing_key.cache_info().misses
    for _ in range(3):
        assert world.login(required=AssuranceLevel.MIDDEN).level is AssuranceLevel.MIDDEN
    signing, verifying = xmldsig.signing_key.cache_info(), xmldsig.verification_key.cache_info()
    # the SP's key pair and the simulator's IdP key pair; the SP's cert (simulator) and the IdP's cert (SP)
    assert sp_loads == 1 and signing.misses == 2 and signing.hits >= 3 * 2
    assert verifying.misses == 2 and verifying.hits >= 3 * 3


def test_one_key_signs_from_many_threads_at_once() -> None:
    """Each signature context takes its own reference to the shared key; concurrent signatures all verify."""
    pair = keys("sp")
    results: list[bytes] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(20):
                results.append(sign(AUTHN_REQUEST, pair.key_pem, pair.cert_pem))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1 and len(results) == 120
    root = etree.fromstring(results[0])
    assert root.tag == q(NS_SAMLP, "AuthnRequest")
    verify_enveloped(root, [pair.cert_pem])


def test_a_cached_certificate_still_refuses_another_key_s_signature() -> None:
    pair, attacker = keys("sp"), keys("attacker")
    root = etree.fromstring(sign(AUTHN_REQUEST, attacker.key_pem, attacker.cert_pem))
    for _ in range(2):  # the second time from the cache
        with pytest.raises(XmlRejected, match="signature invalid"):
            verify_enveloped(root, [pair.cert_pem])
    verify_enveloped(root, [pair.cert_pem, attacker.cert_pem])  # rollover: the second pinned cert
