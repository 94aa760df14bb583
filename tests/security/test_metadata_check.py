"""§8.24 / R22: `zgw-identificatie digid-metadata-check` compares DigiD's metadata with what we pin.

The metadata is served by ``responses`` through requests' real HTTPAdapter (and once by the DigiD
simulator through the in-process WSGI transport); the command runs through ``cli.main`` with
``ZGWID_*`` environment variables, as cron would run it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import requests
import responses
from flask import Flask
from saml_helpers import BASE_URL, IDP_ARS_URL, IDP_ENTITY_ID, IDP_SSO_URL, keys, now_utc

from zgw_identificatie.adapters.digid.metadata_check import fingerprints_of_pem, run_check
from zgw_identificatie.cli import main
from zgw_identificatie.demo.digid_simulator import SIMULATOR_PREFIX, create_simulator_blueprint
from zgw_identificatie.demo.wsgi_transport import mount
from zgw_identificatie.settings import Settings
from zgw_identificatie.testing.clock import FixedClock

METADATA_URL = IDP_ENTITY_ID  # DigiD publishes its metadata at its entityID
NEW_ARS_URL = "https://was-preprod2.digid.nl/saml/idp/resolve_artifact"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
SOAP = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP"


def _body(pem: str) -> str:
    return "".join(line for line in pem.strip().splitlines() if "-----" not in line)


def metadata(
    signing: list[str],
    *,
    ars_url: str = IDP_ARS_URL,
    sso_url: str = IDP_SSO_URL,
    encryption: list[str] | None = None,
    prolog: str = "",
) -> str:
    """DigiD-shaped IdP metadata: signing KeyDescriptors, ARS (SOAP, index 0), SSO (POST and Redirect)."""
    keys_xml = "".join(
        f'<md:KeyDescriptor use="{use}"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{_body(pem)}'
        "</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        for use, pems in (("signing", signing), ("encryption", encryption or []))
        for pem in pems
    )
    return (
        f'{prolog}<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{IDP_ENTITY_ID}">'
        '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f"{keys_xml}"
        f'<md:ArtifactResolutionService Binding="{SOAP}" Location="{ars_url}" index="0"/>'
        f'<md:SingleSignOnService Binding="{REDIRECT}" Location="{sso_url}"/>'
        f'<md:SingleSignOnService Binding="{POST}" Location="{sso_url}"/>'
        "</md:IDPSSODescriptor></md:EntityDescriptor>"
    )


def fingerprint(role: str) -> str:
    (fp,) = fingerprints_of_pem(keys(role).cert_pem)
    return fp


@pytest.fixture
def pinned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment of a real-DigiD deployment that pins keys("idp") and the preprod endpoints."""
    monkeypatch.chdir(tmp_path)
    files = {}
    for name, text in (
        ("idp.crt", keys("idp").cert_pem),
        ("idp-next.crt", keys("idp-next").cert_pem),
        ("sp.crt", keys("sp").cert_pem),
        ("sp.key", keys("sp").key_pem),
        ("ca.pem", keys("idp").cert_pem),
    ):
        (tmp_path / name).write_text(text)
        files[name] = str(tmp_path / name)
    env = {
        "ZGWID_BASE_URL": BASE_URL,
        "ZGWID_DIGID_SIMULATOR": "false",
        "ZGWID_DIGID_IDP_ENTITY_ID": IDP_ENTITY_ID,
        "ZGWID_DIGID_IDP_SSO_URL": IDP_SSO_URL,
        "ZGWID_DIGID_IDP_ARS_URL": IDP_ARS_URL,
        "ZGWID_DIGID_IDP_CERT_FILES": files["idp.crt"],
        "ZGWID_DIGID_SP_CERT_FILE": files["sp.crt"],
        "ZGWID_DIGID_SP_KEY_FILE": files["sp.key"],
        "ZGWID_DIGID_CA_BUNDLE_FILE": files["ca.pem"],
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return files


def check(capsys: pytest.CaptureFixture[str], body: str | Exception, status: int = 200) -> tuple[int, str]:
    """Serve ``body`` at the metadata URL and run the command; (exit code, printed report)."""
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, METADATA_URL, body=body, status=status, content_type="application/samlmetadata+xml")
        code = main(["digid-metadata-check"])
        assert len(mock.calls) == 1
    return code, capsys.readouterr().out


def test_metadata_that_matches_the_pinned_configuration_is_ok(pinned, capsys) -> None:
    """Same entityID, signing cert, SSO and ARS URL → exit 0; an encryption key is not a signing key."""
    code, out = check(capsys, metadata([keys("idp").cert_pem], encryption=[keys("attacker").cert_pem]))
    assert code == 0, out
    assert "OK" in out and "CHANGED" not in out
    assert fingerprint("idp") in out and fingerprint("attacker") not in out


def test_a_new_signing_certificate_is_reported_with_both_fingerprints_and_exit_1(pinned, capsys, caplog) -> None:
    """§8.24: Logius replaced the signing cert → CHANGED lines with the old and new fingerprint, a WARNING."""
    with caplog.at_level(logging.WARNING):
        code, out = check(capsys, metadata([keys("idp-next").cert_pem]))
    assert code == 1
    changed = [line for line in out.splitlines() if line.startswith("CHANGED: ")]
    assert any(fingerprint("idp-next") in line and fingerprint("idp") in line for line in changed), out
    assert any(f"pinned sha256 {fingerprint('idp')} is no longer published" in line for line in changed)
    assert any(r.levelno == logging.WARNING and "differs" in r.getMessage() for r in caplog.records)


def test_the_configuration_is_never_changed_by_the_check(pinned, capsys) -> None:
    """After a reported change the pinned file is untouched and a second run reports it again."""
    before = Path(pinned["idp.crt"]).read_text()
    assert check(capsys, metadata([keys("idp-next").cert_pem]))[0] == 1
    assert Path(pinned["idp.crt"]).read_text() == before
    assert check(capsys, metadata([keys("idp-next").cert_pem]))[0] == 1


def test_a_new_artifact_resolution_url_is_reported(pinned, capsys) -> None:
    """§8.24: a moved ArtifactResolutionService → CHANGED with the pinned and the published URL, exit 1."""
    code, out = check(capsys, metadata([keys("idp").cert_pem], ars_url=NEW_ARS_URL))
    assert code == 1
    (line,) = [line for line in out.splitlines() if line.startswith("CHANGED: ")]
    assert "ArtifactResolutionService" in line and IDP_ARS_URL in line and NEW_ARS_URL in line


def test_a_doctype_with_an_entity_is_refused_without_expanding_it(pinned, capsys) -> None:
    """R22 / OWASP XXE: metadata with a DTD is refused with exit 2; the entity never reaches the report."""
    prolog = '<?xml version="1.0"?><!DOCTYPE md:EntityDescriptor [<!ENTITY x "EXPANDED-ENTITY-TEXT">]>'
    body = metadata([keys("idp").cert_pem], prolog=prolog).replace(IDP_SSO_URL, "&x;", 1)
    code, out = check(capsys, body)
    assert code == 2
    assert "DTD" in out and "EXPANDED-ENTITY-TEXT" not in out and "CHANGED" not in out


def test_a_second_certificate_during_a_rollover_that_is_also_pinned_is_ok(pinned, capsys, monkeypatch) -> None:
    """R22: two published signing certs, both pinned (ZGWID_DIGID_IDP_CERT_FILES lists two) → exit 0."""
    monkeypatch.setenv("ZGWID_DIGID_IDP_CERT_FILES", f"{pinned['idp.crt']},{pinned['idp-next.crt']}")
    code, out = check(capsys, metadata([keys("idp").cert_pem, keys("idp-next").cert_pem]))
    assert code == 0, out


def test_a_second_published_certificate_that_is_not_pinned_is_reported(pinned, capsys) -> None:
    """A rollover Logius announced in the metadata but we have not pinned yet → exit 1 naming the new cert."""
    code, out = check(capsys, metadata([keys("idp").cert_pem, keys("idp-next").cert_pem]))
    assert code == 1
    (line,) = [line for line in out.splitlines() if line.startswith("CHANGED: ")]
    assert fingerprint("idp-next") in line


def test_unreachable_metadata_exits_2(pinned, capsys) -> None:
    """A connection error is exit 2, never an exit 0 that would hide a broken check."""
    code, out = check(capsys, requests.exceptions.ConnectionError("down"))
    assert code == 2 and "ConnectionError" in out


def test_an_http_error_or_garbage_exits_2(pinned, capsys) -> None:
    """A 500 and a body that is not SAML metadata are exit 2."""
    assert check(capsys, "oops", status=500)[0] == 2
    assert check(capsys, "<html><body>maintenance</body></html>")[0] == 2


def test_a_plain_http_metadata_url_is_refused_with_the_real_digid(pinned, capsys, monkeypatch) -> None:
    """R22: only verified TLS; an http:// metadata URL is refused before any request."""
    monkeypatch.setenv("ZGWID_DIGID_IDP_METADATA_URL", "http://was-preprod1.digid.nl/saml/idp/metadata")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        assert main(["digid-metadata-check"]) == 2
        assert len(mock.calls) == 0
    assert "https://" in capsys.readouterr().out


def test_the_simulators_metadata_matches_the_development_configuration(tmp_path: Path) -> None:
    """In development the check reads <base_url>/demo/digid/metadata and finds the simulator's pins."""
    settings = Settings(base_url=BASE_URL, instance_path=str(tmp_path))
    app = Flask("digid-simulator-metadata")
    app.register_blueprint(
        create_simulator_blueprint(settings, clock=FixedClock(now_utc())), url_prefix=SIMULATOR_PREFIX
    )
    with requests.Session() as http:
        mount(http, BASE_URL + "/", app)
        result = run_check(settings, http=http)
    assert result.exit_code == 0, result.lines
    assert result.lines[0] == f"DigiD metadata: {BASE_URL}{SIMULATOR_PREFIX}/metadata"
