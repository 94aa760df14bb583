"""The attack catalogue of DIGID-SAML-NOTES §8 against the real DigidServiceProvider.

Every message is built from a validly signed DigiD-shaped fixture (test IdP key, real xmlsec
signatures) and then broken; a fake artifact resolution service serves it and records each call.
"""

from __future__ import annotations

import base64
import time
from dataclasses import replace
from pathlib import Path

import pytest
import requests
import responses
from saml_helpers import (
    IDP_ARS_URL,
    IDP_ENTITY_ID,
    OMIT,
    RSA_SHA1,
    SHA1,
    SP_ENTITY_ID,
    VALID_BSN,
    AttackHarness,
    Fixture,
    harness_config,
    keys,
    now_utc,
    resolve_id_of,
)
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from zgw_identificatie.adapters.digid import DigidServiceProvider
from zgw_identificatie.adapters.digid.artifact import make_artifact
from zgw_identificatie.adapters.digid.keys import KeyPair
from zgw_identificatie.adapters.digid.xmldsig import sign
from zgw_identificatie.domain.assurance import AssuranceLevel
from zgw_identificatie.domain.errors import DigidCancelled, DigidFailed
from zgw_identificatie.testing.clock import FixedClock
from zgw_identificatie.testing.digid import MemoryOneTimeIds

ACS = "https://zgwid.example/digid/acs"
STATUS = "urn:oasis:names:tc:SAML:2.0:status:"
DS = "http://www.w3.org/2000/09/xmldsig#"


@pytest.fixture
def h(tmp_path: Path) -> AttackHarness:
    return AttackHarness(config=harness_config(tmp_path), clock=FixedClock(now_utc()))


def status(top: str, sub: str | None = None) -> str:
    inner = f'<samlp:StatusCode Value="{STATUS}{sub}"/>' if sub else ""
    return f'<samlp:StatusCode Value="{STATUS}{top}">{inner}</samlp:StatusCode>'


def refused(h: AttackHarness, match: str | None = None, **changes: object) -> DigidFailed:
    with pytest.raises(DigidFailed, match=match) as info:
        h.run(**changes)  # type: ignore[arg-type]
    return info.value


# -- the fixture itself --------------------------------------------------------------------------------


def test_the_untouched_fixture_is_accepted(h: AttackHarness) -> None:
    """Sanity: the signed fixture logs in, so every refusal below is caused by its one change."""
    identity = h.run()
    assert identity.bsn.value == VALID_BSN and identity.level is AssuranceLevel.MIDDEN
    assert identity.assertion_id == "_assertion0000000000000000000000000000001"


def test_the_artifact_resolve_request_is_what_the_session_would_prepare(h: AttackHarness) -> None:
    """The request prepared at start-up and copied for each call has the method, URL, headers and body that
    ``Session.prepare_request`` gives, also once the session holds a cookie for DigiD's host, and with a
    session-wide auth (which gets the full preparation)."""
    body = b"<soap:Envelope>artifact resolve</soap:Envelope>"
    headers = {
        "Content-Type": h.config.soap_content_type,
        "SOAPAction": "http://www.oasis-open.org/committees/security",
    }

    def same() -> None:
        ours = h.sp._resolve_request(body)
        theirs = h.http.prepare_request(requests.Request("POST", IDP_ARS_URL, data=body, headers=headers))
        assert (ours.method, ours.url, ours.body) == (theirs.method, theirs.url, theirs.body)
        assert dict(ours.headers) == dict(theirs.headers) and ours.headers["Content-Length"] == str(len(body))

    same()
    h.http.cookies.set("lb", "node-2", domain="was-preprod1.digid.nl", path="/")
    h.http.cookies.set("elsewhere", "x", domain="example.org", path="/")
    same()
    assert h.sp._resolve_request(body).headers["Cookie"] == "lb=node-2"
    h.http.auth = ("user", "secret")
    same()


def test_the_back_channel_uses_mutual_tls_the_ca_bundle_and_timeouts(h: AttackHarness) -> None:
    """R6: client certificate, pinned CA bundle, (connect, read) timeouts, SOAP 1.1 text/xml."""
    h.run()
    (call,) = h.ars.calls
    assert call["cert"] == (h.config.tls_client_cert_file, h.config.tls_client_key_file)
    assert call["verify"] == h.config.ca_bundle_file
    assert call["timeout"] == (5.0, 10.0)
    assert call["request"].headers["Content-Type"] == "text/xml"
    assert call["request"].url == IDP_ARS_URL


def test_the_back_channel_takes_proxy_and_ca_bundle_from_the_environment_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As requests does by default (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE without a configured CA bundle),
    but read when the SP starts instead of on every resolve."""
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "https_proxy", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.gemeente.example:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "env-ca.pem"))
    h = AttackHarness(config=harness_config(tmp_path, ca_bundle_file=None), clock=FixedClock(now_utc()))
    looked_up: list[str] = []
    real = requests.sessions.get_environ_proxies
    monkeypatch.setattr(
        requests.sessions, "get_environ_proxies", lambda url, **kw: looked_up.append(url) or real(url, **kw)
    )
    h.run()
    h.run(response_id="_response2", assertion_id="_assertion2")
    assert len(h.ars.calls) == 2 and looked_up == []
    for call in h.ars.calls:
        assert call["proxies"]["https"] == "http://proxy.gemeente.example:3128"
        assert call["verify"] == str(tmp_path / "env-ca.pem")
        assert call["cert"] == (h.config.tls_client_cert_file, h.config.tls_client_key_file)


def test_the_artifact_resolve_is_signed_by_the_sp(h: AttackHarness) -> None:
    """R6: the ArtifactResolve carries an RSA-SHA256 signature that verifies with the SP certificate."""
    from onelogin.saml2.utils import OneLogin_Saml2_Utils

    h.run()
    body = h.ars.calls[0]["request"].body
    assert OneLogin_Saml2_Utils.validate_sign(
        body, cert=keys("sp").cert_pem, raise_exceptions=True, xpath="//samlp:ArtifactResolve/ds:Signature"
    )


# -- §8.1 forged or malformed artifacts ----------------------------------------------------------------

GOOD = base64.b64decode(make_artifact(IDP_ENTITY_ID))


@pytest.mark.parametrize(
    "artifact",
    [
        pytest.param(make_artifact("https://was.digid.nl/saml/idp/metadata"), id="source-id-of-another-entity"),
        pytest.param(base64.b64encode(b"\x00\x02" + GOOD[2:]).decode(), id="wrong-type-code"),
        pytest.param(base64.b64encode(GOOD[:-1]).decode(), id="43-bytes"),
        pytest.param(base64.b64encode(GOOD + b"\x00").decode(), id="45-bytes"),
        pytest.param("!!!not*base64!!!", id="not-base64"),
        pytest.param("A" * 10240, id="10-kilobytes"),
        pytest.param(make_artifact(IDP_ENTITY_ID, endpoint_index=1), id="unknown-endpoint-index"),
        pytest.param("", id="empty"),
        pytest.param(make_artifact(IDP_ENTITY_ID) + "\n", id="trailing-newline"),
    ],
)
def test_a_malformed_or_foreign_artifact_is_refused_without_any_network_call(h: AttackHarness, artifact: str) -> None:
    """R5: SAMLart is validated before the back channel is used."""
    with pytest.raises(DigidFailed):
        h.run(artifact=artifact)
    assert h.ars.calls == []


def test_a_forged_artifact_that_digid_does_not_know_is_refused(h: AttackHarness) -> None:
    """A well-formed random artifact gets Requester/RequestDenied on the ArtifactResponse."""
    refused(h, "RequestDenied", artifact_status=status("Requester", "RequestDenied"), with_response=False)
    assert len(h.ars.calls) == 1


# -- §8.2 replay -----------------------------------------------------------------------------------------


def test_the_same_response_under_a_new_artifact_is_refused_as_a_replay(h: AttackHarness) -> None:
    """Response and Assertion IDs are single use (R12), even when the artifact differs."""
    h.run()
    request_id = h.fixture.request_id  # type: ignore[union-attr]
    with pytest.raises(DigidFailed, match="replayed"):
        h.sp.complete_login(
            artifact=make_artifact(IDP_ENTITY_ID), expected_request_id=request_id, min_level=AssuranceLevel.MIDDEN
        )


def test_a_new_response_repeating_an_assertion_id_is_refused(h: AttackHarness) -> None:
    """A second Response carrying an already used Assertion ID fails."""
    h.run()
    refused(h, "Assertion ID replayed", response_id="_another-response-id-0000000000000000000001")


# -- §8.4 back-channel integrity ---------------------------------------------------------------------


def test_an_unsigned_artifact_response_is_refused(h: AttackHarness) -> None:
    """R7: the ArtifactResponse signature is required (m-p3s does not check it; we do)."""
    refused(h, "signature", sign_artifact_response=False)


def test_an_artifact_response_signed_with_an_attacker_key_and_embedded_cert_is_refused(h: AttackHarness) -> None:
    """Only the pinned certificate counts; a certificate in KeyInfo is ignored."""
    refused(h, "signature invalid", artifact_key=keys("attacker"))


def test_an_artifact_response_changed_after_signing_is_refused(h: AttackHarness) -> None:
    """One changed character inside the signed ArtifactResponse breaks its digest."""
    refused(
        h,
        "signature invalid",
        edit_signed_artifact_response=lambda x: x.replace(
            "_response00000000000000000000000000000001", "_response00000000000000000000000000000002"
        ),
    )


def test_an_artifact_response_for_another_resolve_is_refused(h: AttackHarness) -> None:
    """ArtifactResponse InResponseTo must equal our ArtifactResolve ID."""
    refused(h, "InResponseTo", artifact_response_irt="_another-resolve")


def test_an_artifact_response_without_in_response_to_is_refused(h: AttackHarness) -> None:
    """A missing ArtifactResponse InResponseTo is refused, not skipped."""
    refused(h, "InResponseTo", artifact_response_irt=OMIT)


@pytest.mark.parametrize("issuer", [OMIT, "https://evil.example/idp", IDP_ENTITY_ID + "x", IDP_ENTITY_ID[:-1]])
def test_an_artifact_response_from_another_issuer_is_refused(h: AttackHarness, issuer: object) -> None:
    """The ArtifactResponse Issuer must be DigiD's entityID exactly."""
    refused(h, "Issuer", artifact_response_issuer=issuer)


def test_a_soap_fault_is_refused(h: AttackHarness) -> None:
    """A SOAP Fault, with HTTP 200 or 500, is a generic failure."""
    fault = (
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault>'
        b"<faultcode>soap:Server</faultcode><faultstring>x</faultstring></soap:Fault></soap:Body>"
        b"</soap:Envelope>"
    )
    h.handler = lambda request: (200, fault)
    refused(h, "SOAP fault")
    h.handler = lambda request: (500, fault)
    refused(h, "HTTP 500")


def test_an_http_500_is_refused(h: AttackHarness) -> None:
    """A server error on the back channel becomes DigidFailed, never an exception of its own."""
    h.handler = lambda request: (500, b"Internal Server Error")
    refused(h, "HTTP 500")


def test_a_read_timeout_is_refused_without_a_retry(h: AttackHarness) -> None:
    """R6: a read time-out is not retried (the artifact may already be consumed)."""

    def slow(request: requests.PreparedRequest) -> tuple[int, bytes]:
        raise requests.exceptions.ReadTimeout("slow")

    h.handler = slow
    refused(h, "ReadTimeout")
    assert len(h.ars.calls) == 1


def test_a_connection_error_is_retried_once_and_then_refused(h: AttackHarness) -> None:
    """R6: at most one retry, only on connect errors (requests' shape of a refused connection)."""

    def down(request: requests.PreparedRequest) -> tuple[int, bytes]:
        refused_connection = NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
        raise requests.exceptions.ConnectionError(MaxRetryError(None, IDP_ARS_URL, refused_connection))  # type: ignore[arg-type]

    h.handler = down
    refused(h, "unreachable")
    assert len(h.ars.calls) == 2


def test_a_connection_dropped_after_sending_is_not_retried(h: AttackHarness) -> None:
    """R6: the ArtifactResolve already left (requests' shape of 'Connection aborted'), so no second one."""

    def dropped(request: requests.PreparedRequest) -> tuple[int, bytes]:
        raise requests.exceptions.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError()))

    h.handler = dropped
    refused(h, "connection lost")
    assert len(h.ars.calls) == 1


def test_a_tls_error_is_refused_at_once(h: AttackHarness) -> None:
    """An untrusted or mismatched server certificate (SSLError) is not retried."""

    def bad_cert(request: requests.PreparedRequest) -> tuple[int, bytes]:
        raise requests.exceptions.SSLError("certificate verify failed")

    h.handler = bad_cert
    refused(h, "TLS")
    assert len(h.ars.calls) == 1


def test_success_without_a_response_is_digids_expired_artifact_and_is_refused(h: AttackHarness) -> None:
    """R7: an ArtifactResponse with Success but no samlp:Response fails cleanly."""
    refused(h, "expired", with_response=False)


@pytest.mark.parametrize("sub", [None, "RequestDenied"])
def test_an_artifact_response_status_other_than_success_is_refused(h: AttackHarness, sub: str | None) -> None:
    """R7: the top-level ArtifactResponse status must be Success."""
    refused(h, "artifact response status", artifact_status=status("Requester", sub))


def test_an_oversized_back_channel_answer_is_refused(h: AttackHarness) -> None:
    """R6 / §8.17: a 5 MB body is cut off at the size limit."""
    h.handler = lambda request: (200, b"<a>" + b"x" * 5_000_000 + b"</a>")
    refused(h, "too large")


def test_a_timeout_through_responses_is_a_generic_failure(tmp_path: Path) -> None:
    """With the ordinary HTTPAdapter (mocked by responses) a time-out is DigidFailed as well."""
    sp = DigidServiceProvider(harness_config(tmp_path), one_time=MemoryOneTimeIds(), clock=FixedClock(now_utc()))
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, IDP_ARS_URL, body=requests.exceptions.ReadTimeout("slow"))
        request_id = sp.begin_login(min_level=AssuranceLevel.MIDDEN, relay_state="r").request_id
        with pytest.raises(DigidFailed):
            sp.complete_login(
                artifact=make_artifact(IDP_ENTITY_ID), expected_request_id=request_id, min_level=AssuranceLevel.MIDDEN
            )
        assert len(mock.calls) == 1


def test_a_valid_answer_through_responses_logs_in(tmp_path: Path) -> None:
    """The same fixture served by responses through requests' real HTTPAdapter is accepted."""
    clock = FixedClock(now_utc())
    sp = DigidServiceProvider(harness_config(tmp_path), one_time=MemoryOneTimeIds(), clock=clock)
    request_id = sp.begin_login(min_level=AssuranceLevel.MIDDEN, relay_state="r").request_id
    fixture = Fixture(now=clock.now(), request_id=request_id)
    with responses.RequestsMock() as mock:
        mock.add_callback(
            responses.POST, IDP_ARS_URL, callback=lambda req: (200, {}, fixture.envelope(resolve_id_of(req)))
        )
        identity = sp.complete_login(
            artifact=make_artifact(IDP_ENTITY_ID), expected_request_id=request_id, min_level=AssuranceLevel.MIDDEN
        )
    assert identity.bsn.value == VALID_BSN


# -- §8.6–8.9 assertion signature --------------------------------------------------------------------


def test_an_assertion_whose_signature_was_stripped_is_refused(h: AttackHarness) -> None:
    """§8.6: with the outer envelope validly re-signed, an unsigned assertion still fails."""
    refused(h, sign_assertion=False)


def test_a_signed_response_around_an_unsigned_assertion_is_refused(h: AttackHarness) -> None:
    """§8.7: wantAssertionsSigned; a signature on the inner Response does not replace it."""
    refused(h, sign_assertion=False, sign_response=True)


def test_a_validly_signed_inner_response_around_a_signed_assertion_is_accepted(h: AttackHarness) -> None:
    """Issue 9 #7: should DigiD sign the Response too, a signature by a pinned certificate is no attack."""
    assert h.run(sign_response=True).bsn.value == VALID_BSN


def _signed_by(xml: str, pair: KeyPair) -> str:
    text = sign(xml, pair.key_pem, pair.cert_pem).decode("utf-8")
    return text.split("?>", 1)[1] if text.startswith("<?xml") else text


def test_an_inner_response_signed_with_an_attacker_key_is_refused(h: AttackHarness) -> None:
    """Only pinned certificates verify the inner Response, as everything else (the assertion stays valid)."""
    refused(
        h,
        "inner Response signature: signature invalid",
        edit_response=lambda xml: _signed_by(xml, keys("attacker")),
    )


def test_an_inner_response_changed_after_signing_is_refused(h: AttackHarness) -> None:
    """A valid-looking signature over other content (here an added Consent attribute) does not verify."""
    refused(
        h,
        "inner Response signature",
        sign_response=True,
        edit_response=lambda xml: xml.replace(' Version="2.0"', ' Version="2.0" Consent="urn:x"', 1),
    )


def test_an_inner_response_with_two_signatures_is_refused(h: AttackHarness) -> None:
    """Exactly one enveloped signature on the Response."""

    def twice(xml: str) -> str:
        issuer_end = xml.index("</saml:Issuer>") + len("</saml:Issuer>")
        sig_start = xml.index("<ds:Signature")
        sig = xml[sig_start : xml.index("</ds:Signature>", sig_start) + len("</ds:Signature>")]
        return xml[:issuer_end] + sig + xml[issuer_end:]

    refused(h, "inner Response signature", sign_response=True, edit_response=twice)


def test_an_assertion_signed_with_an_attacker_key_and_embedded_cert_is_refused(h: AttackHarness) -> None:
    """§8.8: only pinned certificates verify the assertion."""
    refused(h, "assertion: signature invalid", assertion_key=keys("attacker"))


def test_an_assertion_signed_with_the_next_pinned_certificate_is_accepted(tmp_path: Path) -> None:
    """R22: during a Logius rollover both pinned certificates are accepted."""
    config = harness_config(tmp_path, idp_certs=(keys("idp-next").cert_pem, keys("idp").cert_pem))
    h = AttackHarness(config=config, clock=FixedClock(now_utc()))
    assert h.run(assertion_key=keys("idp-next")).bsn.value == VALID_BSN


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (f"s00000000:{VALID_BSN}", "s00000000:999990019"),
        (AssuranceLevel.MIDDEN.uri, AssuranceLevel.HOOG.uri),
        (f"<saml:Audience>{SP_ENTITY_ID}", "<saml:Audience>https://other.example"),
    ],
    ids=["nameid", "level", "audience"],
)
def test_content_changed_after_signing_is_refused(h: AttackHarness, old: str, new: str) -> None:
    """§8.9: any change inside the signed assertion breaks its digest."""
    refused(h, "signature invalid", edit_assertion=lambda x: x.replace(old, new))


# -- §8.10 XML signature wrapping -----------------------------------------------------------------------


def evil_assertion(h: AttackHarness, assertion_id: str = "_evil") -> str:
    assert h.fixture is not None
    return replace(h.fixture, name_id="s00000000:999990019", assertion_id=assertion_id).assertion_xml()


def test_xsw_an_unsigned_evil_assertion_before_the_signed_one_is_refused(h: AttackHarness) -> None:
    """§8.10a: exactly one assertion may exist in the response."""
    refused(
        h,
        "exactly one assertion",
        edit_response=lambda x: x.replace(
            "<saml:Assertion ",
            evil_assertion(h).replace("<saml:Assertion ", "<saml:Assertion ", 1) + "<saml:Assertion ",
            1,
        ),
    )


def test_xsw_an_unsigned_evil_assertion_after_the_signed_one_is_refused(h: AttackHarness) -> None:
    """§8.10a: a second assertion after the signed one is refused too."""
    refused(
        h,
        "exactly one assertion",
        edit_response=lambda x: x.replace("</samlp:Response>", evil_assertion(h) + "</samlp:Response>"),
    )


def test_xsw_the_signed_assertion_moved_into_extensions_is_refused(h: AttackHarness) -> None:
    """§8.10b: an evil assertion reusing the signed ID, the original hidden in samlp:Extensions."""

    def wrap(xml: str) -> str:
        start = xml.index("<saml:Assertion ")
        end = xml.index("</samlp:Response>")
        signed = xml[start:end]
        head = xml[:start].replace("<samlp:Status>", f"<samlp:Extensions>{signed}</samlp:Extensions><samlp:Status>")
        return head + evil_assertion(h, "_assertion0000000000000000000000000000001") + xml[end:]

    refused(h, edit_response=wrap)


def test_xsw_the_signed_assertion_nested_in_advice_is_refused(h: AttackHarness) -> None:
    """§8.10c: the signed assertion inside saml:Advice of an evil one."""

    def wrap(xml: str) -> str:
        start = xml.index("<saml:Assertion ")
        end = xml.index("</samlp:Response>")
        evil = evil_assertion(h).replace(
            "<saml:AuthnStatement", f"<saml:Advice>{xml[start:end]}</saml:Advice><saml:AuthnStatement"
        )
        return xml[:start] + evil + xml[end:]

    refused(h, edit_response=wrap)


def test_xsw_the_signed_assertion_inside_a_signature_object_is_refused(h: AttackHarness) -> None:
    """§8.10d: the signed assertion moved into ds:Signature/ds:Object of an evil assertion."""

    def wrap(xml: str) -> str:
        start = xml.index("<saml:Assertion ")
        end = xml.index("</samlp:Response>")
        signed = xml[start:end]
        sig_start = signed.index("<ds:Signature")
        evil = evil_assertion(h).replace(
            "</saml:Issuer>",
            "</saml:Issuer>"
            + signed[sig_start:].split("</ds:Signature>")[0]
            + f"<ds:Object>{signed}</ds:Object></ds:Signature>",
            1,
        )
        return xml[:start] + evil + xml[end:]

    refused(h, edit_response=wrap)


def test_xsw_a_second_response_in_the_signed_artifact_response_is_refused(h: AttackHarness) -> None:
    """§8.10e: exactly one samlp:Response, even when the IdP signature covers both."""

    def twice(xml: str) -> str:
        assert h.fixture is not None
        other = replace(
            h.fixture, edit_response=None, response_id="_second", assertion_id="_second-assertion"
        ).response_xml()
        return xml + other

    refused(h, "more than one Response", edit_response=twice)


def test_xsw_duplicate_id_attributes_are_refused(h: AttackHarness) -> None:
    """§8.10f: an element elsewhere carrying the assertion's ID is refused."""
    refused(
        h,
        edit_response=lambda x: x.replace(
            "<samlp:Status>",
            '<samlp:Extensions><x:evil xmlns:x="urn:evil" '
            'ID="_assertion0000000000000000000000000000001"/></samlp:Extensions><samlp:Status>',
        ),
    )


def test_xsw_a_reference_to_another_element_is_refused(h: AttackHarness) -> None:
    """§8.10g: the assertion's Reference URI must be the assertion's own ID."""
    refused(
        h,
        "reference",
        edit_assertion=lambda x: x.replace(
            'URI="#_assertion0000000000000000000000000000001"', 'URI="#_response00000000000000000000000000000001"'
        ),
    )


# -- §8.11 comment injection ----------------------------------------------------------------------------


def test_a_comment_inside_the_nameid_yields_the_full_value(h: AttackHarness) -> None:
    """CVE-2017-11427 shape: the comment is dropped and the full BSN returned, never a truncated one."""
    identity = h.run(edit_assertion=lambda x: x.replace("s00000000:12345", "s00000000:12345<!---->"))
    assert identity.bsn.value == VALID_BSN


def test_a_comment_never_resolves_to_a_valid_truncated_bsn(h: AttackHarness) -> None:
    """Signed 999990019 + comment + suffix: the whole text is read, which is no valid BSN, so it fails."""
    refused(
        h,
        "NameID",
        name_id="s00000000:999990019123",
        edit_assertion=lambda x: x.replace("s00000000:999990019123", "s00000000:999990019<!---->123"),
    )


# -- §8.12 time ---------------------------------------------------------------------------------------------


def test_an_assertion_past_its_not_on_or_after_beyond_drift_is_refused(h: AttackHarness) -> None:
    """Conditions NotOnOrAfter more than 120 s ago fails."""
    now = h.clock.now()
    from datetime import timedelta

    refused(h, "expired", not_on_or_after=now - timedelta(seconds=121), issue_instant=now - timedelta(minutes=4))


def test_an_assertion_exactly_at_the_drift_boundary_is_accepted(h: AttackHarness) -> None:
    """NotOnOrAfter exactly 120 s ago and NotBefore exactly 120 s ahead are still accepted."""
    from datetime import timedelta

    now = h.clock.now()
    h.run(not_on_or_after=now - timedelta(seconds=120))
    h.run(not_before=now + timedelta(seconds=120), assertion_id="_boundary2", response_id="_boundary2r")


def test_an_assertion_not_yet_valid_beyond_drift_is_refused(h: AttackHarness) -> None:
    """Conditions NotBefore more than 120 s in the future fails."""
    from datetime import timedelta

    refused(h, "not yet valid", not_before=h.clock.now() + timedelta(seconds=121))


def test_a_passed_subject_confirmation_is_refused(h: AttackHarness) -> None:
    """SubjectConfirmationData NotOnOrAfter in the past beyond drift fails."""
    from datetime import timedelta

    refused(h, scd_not_on_or_after=h.clock.now() - timedelta(seconds=121))


def test_an_assertion_issued_ten_minutes_ago_is_refused_even_inside_its_window(h: AttackHarness) -> None:
    """§8.12 SHOULD: maximum assertion age (300 s + drift)."""
    from datetime import timedelta

    refused(h, "too old", issue_instant=h.clock.now() - timedelta(minutes=10))


def test_an_assertion_issued_in_the_future_is_refused(h: AttackHarness) -> None:
    """An IssueInstant beyond the drift ahead of our clock fails."""
    from datetime import timedelta

    refused(h, "future", issue_instant=h.clock.now() + timedelta(minutes=5))


# -- §8.13–8.15 audience, recipient, destination, in-response-to, issuer -------------------------------


@pytest.mark.parametrize(
    "audience", ["https://other.example/digid/metadata", SP_ENTITY_ID + "x", SP_ENTITY_ID[:-1], "https://zgwid.example"]
)
def test_a_wrong_audience_is_refused(h: AttackHarness, audience: str) -> None:
    """§8.13: the Audience must be our entityID exactly."""
    refused(h, audience=audience)


@pytest.mark.parametrize("recipient", [ACS + "evil", "https://evil.example/digid/acs", ACS[:-1], OMIT, ""])
def test_a_wrong_recipient_is_refused(h: AttackHarness, recipient: object) -> None:
    """§8.13: Recipient exactly the ACS URL (python3-saml's substring check accepts ACS + "evil")."""
    refused(h, recipient=recipient)


@pytest.mark.parametrize("destination", [ACS + "x", "", "https://evil.example/digid/acs", ACS + "?x=1"])
def test_a_wrong_destination_is_refused(h: AttackHarness, destination: str) -> None:
    """§8.13: Destination, when present, exactly the ACS URL (python3-saml checks only a prefix)."""
    refused(h, "Destination", destination=destination)


def test_a_response_without_destination_is_accepted(h: AttackHarness) -> None:
    """Destination is optional on a Response received over the artifact binding."""
    assert h.run(destination=OMIT).bsn.value == VALID_BSN


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("response_irt", "_another-request"),
        ("response_irt", OMIT),
        ("scd_irt", "_another-request"),
        ("scd_irt", OMIT),
    ],
)
def test_a_wrong_or_missing_in_response_to_is_refused(h: AttackHarness, field: str, value: object) -> None:
    """§8.14: Response and SubjectConfirmationData InResponseTo must both equal our AuthnRequest ID."""
    refused(h, "InResponseTo|python3-saml", **{field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("response_issuer", "https://evil.example"),
        ("response_issuer", IDP_ENTITY_ID + "/"),
        ("assertion_issuer", "https://evil.example"),
        ("assertion_issuer", OMIT),
        ("response_issuer", OMIT),
    ],
)
def test_a_wrong_or_missing_issuer_is_refused(h: AttackHarness, field: str, value: object) -> None:
    """§8.15: Issuer of Response and Assertion must be DigiD's entityID."""
    refused(h, **{field: value})


# -- §8.16 algorithms and transforms ----------------------------------------------------------------------


def test_an_assertion_signed_with_rsa_sha1_is_refused(h: AttackHarness) -> None:
    """§8.16: SHA-1 signatures and digests are refused (rejectDeprecatedAlgorithm plus our own check)."""
    refused(h, "not allowed", sign_algorithm=RSA_SHA1, digest_algorithm=SHA1)


def test_an_artifact_response_signed_with_rsa_sha1_is_refused(h: AttackHarness) -> None:
    """§8.16: the outer signature is held to RSA-SHA256/SHA-256 as well."""
    refused(h, "not allowed", outer_sign_algorithm=RSA_SHA1, outer_digest_algorithm=SHA1)


def test_a_dsa_signature_method_is_refused(h: AttackHarness) -> None:
    """§8.16: a DSA-SHA1 SignatureMethod never reaches xmlsec."""
    refused(
        h,
        "not allowed",
        edit_assertion=lambda x: x.replace(
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", "http://www.w3.org/2000/09/xmldsig#dsa-sha1"
        ),
    )


XSLT_BOMB = (
    '<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116">'
    '<xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform" version="1.0">'
    '<xsl:template match="/"><xsl:call-template name="b"><xsl:with-param name="n" select="20"/>'
    '</xsl:call-template></xsl:template><xsl:template name="b"><xsl:param name="n"/><xsl:choose>'
    '<xsl:when test="$n &gt; 0"><xsl:call-template name="b"><xsl:with-param name="n" select="$n - 1"/>'
    '</xsl:call-template><xsl:call-template name="b"><xsl:with-param name="n" select="$n - 1"/>'
    "</xsl:call-template></xsl:when><xsl:otherwise><x/></xsl:otherwise></xsl:choose></xsl:template>"
    "</xsl:stylesheet></ds:Transform>"
)
XPATH = (
    '<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116">'
    "<ds:XPath>count(//. | //@* | //namespace::*)</ds:XPath></ds:Transform>"
)
XPATH2 = (
    '<ds:Transform Algorithm="http://www.w3.org/2002/06/xmldsig-filter2">'
    '<dsf:XPath xmlns:dsf="http://www.w3.org/2002/06/xmldsig-filter2" Filter="union">//.</dsf:XPath>'
    "</ds:Transform>"
)
EXTRA_C14N = '<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'


@pytest.mark.parametrize("transform", [XSLT_BOMB, XPATH, XPATH2], ids=["xslt", "xpath", "xpath2"])
def test_a_forbidden_transform_on_the_artifact_response_is_refused_fast(h: AttackHarness, transform: str) -> None:
    """§8.16 / p3s #447: an XSLT (2^20-node bomb), XPath or XPath-Filter 2.0 transform never reaches xmlsec."""
    started = time.perf_counter()
    refused(h, "transform not allowed", edit_signed_artifact_response=lambda x: x.replace(EXTRA_C14N, transform, 1))
    assert time.perf_counter() - started < 0.1


def test_a_third_transform_is_refused(h: AttackHarness) -> None:
    """§8.16: more than the enveloped and exclusive-C14N transforms is refused."""
    refused(
        h,
        "too many transforms",
        edit_signed_artifact_response=lambda x: x.replace("</ds:Transforms>", EXTRA_C14N + "</ds:Transforms>", 1),
    )


@pytest.mark.parametrize("transform", [XSLT_BOMB, XPATH], ids=["xslt", "xpath"])
def test_a_forbidden_transform_on_the_assertion_is_refused(h: AttackHarness, transform: str) -> None:
    """The same restriction holds for the assertion signature, before python3-saml sees it."""
    refused(h, "transform not allowed", edit_assertion=lambda x: x.replace(EXTRA_C14N, transform, 1))


# -- §8.17 parser attacks -------------------------------------------------------------------------------

ENV = '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>{}</soap:Body></soap:Envelope>'
PARSER_ATTACKS = {
    "xxe-file": '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + ENV.format("&x;"),
    "xxe-http": '<!DOCTYPE r [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]>' + ENV.format("&x;"),
    "parameter-entity": '<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]>' + ENV.format(""),
    "billion-laughs": '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
    + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
    + "]>"
    + ENV.format("&j;"),
    "quadratic": '<!DOCTYPE r [<!ENTITY a "' + "x" * 50_000 + '">]>' + ENV.format("&a;" * 10_000),
    "deep-nesting": ENV.format("<a>" * 10_000 + "</a>" * 10_000),
    "not-xml": "this is not XML",
    "empty": "",
    "wrong-root": "<html><body>hello</body></html>",
    "two-bodies": ENV.format("<x/>").replace("</soap:Envelope>", "<soap:Body/></soap:Envelope>"),
}


@pytest.mark.parametrize("body", PARSER_ATTACKS.values(), ids=PARSER_ATTACKS.keys())
def test_hostile_xml_on_the_back_channel_is_refused_quickly(h: AttackHarness, body: str) -> None:
    """§8.17: DTDs, entities, deep nesting and garbage give DigidFailed fast, never a crash or a fetch."""
    h.handler = lambda request: (200, body.encode())
    started = time.perf_counter()
    refused(h)
    assert time.perf_counter() - started < 1.0


# -- §8.18 status codes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("message", [None, "Authentication cancelled"])
def test_authn_failed_is_a_cancel(h: AttackHarness, message: str | None) -> None:
    """§8.18 / R17: Responder/AuthnFailed, with or without StatusMessage, raises DigidCancelled."""
    with pytest.raises(DigidCancelled):
        h.run(status=status("Responder", "AuthnFailed"), status_message=message, with_assertion=False)


@pytest.mark.parametrize(
    ("top", "sub"),
    [
        ("Responder", "NoAuthnContext"),
        ("Requester", "RequestDenied"),
        ("Responder", "RequestDenied"),
        ("Requester", "NoSupportedIDP"),
        ("Requester", "RequestUnsupported"),
        ("Responder", "NoAvailableIDP"),
        ("Requester", "AuthnFailed"),
        ("Responder", None),
        ("VersionMismatch", None),
        ("Unknown", "Whatever"),
    ],
)
def test_every_other_status_is_a_generic_failure(h: AttackHarness, top: str, sub: str | None) -> None:
    """§8.18 / R18: anything but Responder/AuthnFailed is DigidFailed."""
    refused(h, "status", status=status(top, sub), with_assertion=False)


def test_a_cancel_for_another_request_is_a_failure_not_a_cancel(h: AttackHarness) -> None:
    """The InResponseTo check runs before the status is interpreted."""
    refused(h, "InResponseTo", status=status("Responder", "AuthnFailed"), with_assertion=False, response_irt="_other")


def test_success_without_an_assertion_is_refused(h: AttackHarness) -> None:
    """§8.18: Success but no Assertion is a generic failure."""
    refused(h, "assertion", with_assertion=False)


# -- §8.19 level of assurance ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("returned", "required"),
    [
        (AssuranceLevel.BASIS.uri, AssuranceLevel.MIDDEN),
        (AssuranceLevel.MIDDEN.uri, AssuranceLevel.SUBSTANTIEEL),
        (AssuranceLevel.SUBSTANTIEEL.uri, AssuranceLevel.HOOG),
        ("http://eidas.europa.eu/LoA/substantial", AssuranceLevel.BASIS),
        ("urn:oasis:names:tc:SAML:2.0:ac:classes:Password", AssuranceLevel.BASIS),
        (None, AssuranceLevel.BASIS),
    ],
)
def test_a_lower_unknown_or_missing_level_is_refused(
    h: AttackHarness, returned: str | None, required: AssuranceLevel
) -> None:
    """§8.19 / R4: ordered check; unknown and missing AuthnContextClassRef are refused."""
    refused(h, required=required, level_uri=returned)


def test_two_authn_statements_are_refused(h: AttackHarness) -> None:
    """§8.19: exactly one AuthnStatement."""

    def twice(xml: str) -> str:
        start = xml.index("<saml:AuthnStatement")
        end = xml.index("</saml:Assertion>")
        return xml[:end] + xml[start:end].replace(AssuranceLevel.MIDDEN.uri, AssuranceLevel.HOOG.uri) + xml[end:]

    refused(h, edit_unsigned_assertion=twice)


@pytest.mark.parametrize("level", [AssuranceLevel.SUBSTANTIEEL, AssuranceLevel.HOOG])
def test_a_higher_level_than_required_is_accepted(h: AttackHarness, level: AssuranceLevel) -> None:
    """§8.19: Substantieel (or Hoog) for Midden is fine."""
    assert h.run(level_uri=level.uri).level is level


# -- §8.20 NameID and BSN ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name_id",
    [
        f"s00000001:{VALID_BSN}",
        VALID_BSN,
        "s00000000:12345678",
        "s00000000:123456789",
        f"s00000000:{VALID_BSN}:extra",
        "",
        f"s00000000: {VALID_BSN}",
        f"S00000000:{VALID_BSN}",
        "s00000000:000000000",
        "s00000000:１２３４５６７８２",
        OMIT,
    ],
)
def test_a_nameid_that_is_not_exactly_a_bsn_is_refused(h: AttackHarness, name_id: object) -> None:
    """§8.20 / R9: only s00000000: + nine ASCII digits passing the 11-proef."""
    refused(h, name_id=name_id)


def test_an_encrypted_id_is_refused(h: AttackHarness) -> None:
    """§8.20: EncryptedID instead of NameID is refused."""
    refused(
        h,
        edit_unsigned_assertion=lambda x: x.replace(
            f"<saml:NameID>s00000000:{VALID_BSN}</saml:NameID>",
            '<saml:EncryptedID><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#">'
            "<xenc:CipherData><xenc:CipherValue>AAAA</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>"
            "</saml:EncryptedID>",
        ),
    )


@pytest.mark.parametrize(
    "name_id", [f" s00000000:{VALID_BSN}", f"s00000000:{VALID_BSN}\n", f"\n\ts00000000:{VALID_BSN} "]
)
def test_surrounding_whitespace_in_the_nameid_is_trimmed(h: AttackHarness, name_id: str) -> None:
    """R9 policy: surrounding whitespace is stripped, nothing else is forgiven."""
    assert h.run(name_id=name_id).bsn.value == VALID_BSN


def test_a_nameid_with_a_child_element_is_refused(h: AttackHarness) -> None:
    """Mixed content in NameID is never flattened into a BSN."""
    refused(
        h,
        "NameID|python3-saml",
        edit_unsigned_assertion=lambda x: x.replace("s00000000:12345", 's00000000:12345<x:b xmlns:x="urn:x">6</x:b>'),
    )


def test_the_assertion_hash_covers_the_signed_assertion(h: AttackHarness) -> None:
    """assertion_sha256 is the SHA-256 of the exclusive canonical signed assertion, stable across calls."""
    import hashlib

    from lxml import etree

    identity = h.run()
    assert h.fixture is not None
    signed = etree.fromstring(h.fixture.signed_assertion().encode())
    assert (
        identity.assertion_sha256
        == hashlib.sha256(etree.tostring(signed, method="c14n", exclusive=True, with_comments=False)).hexdigest()
    )
