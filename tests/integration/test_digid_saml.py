"""The DigiD service provider against the DigiD simulator: full SAML round trips with real signatures.

begin_login → POST the signed AuthnRequest to the simulator → the simulator's login form → SAMLart in
the redirect → complete_login resolves it over the (in-process) HTTP back channel.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from lxml import etree
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from saml_helpers import ACS_URL, BASE_URL, OTHER_BSN, VALID_BSN, SimulatorWorld, make_simulator_world

from zgw_identificatie.adapters.digid import sp_config_from_settings
from zgw_identificatie.adapters.digid.artifact import make_artifact
from zgw_identificatie.demo import DemoInProduction
from zgw_identificatie.demo.digid_simulator import SIMULATOR_PREFIX, create_simulator_blueprint
from zgw_identificatie.domain.assurance import AssuranceLevel
from zgw_identificatie.domain.errors import DigidCancelled, DigidFailed
from zgw_identificatie.settings import Settings
from zgw_identificatie.testing.clock import FixedClock


@pytest.fixture(scope="session")
def instance_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("instance")


@pytest.fixture
def world(instance_path: Path) -> SimulatorWorld:
    return make_simulator_world(instance_path)


def test_a_midden_login_returns_the_bsn_and_level(world: SimulatorWorld) -> None:
    """A Midden login through the simulator yields the typed BSN, Midden and the assertion's facts."""
    identity = world.login(required=AssuranceLevel.MIDDEN)
    assert identity.bsn.value == VALID_BSN
    assert identity.level is AssuranceLevel.MIDDEN
    assert identity.issuer == BASE_URL + SIMULATOR_PREFIX + "/metadata"
    assert identity.assertion_id.startswith("_")
    assert len(identity.assertion_sha256) == 64
    assert identity.authn_instant == world.clock.now()


def test_substantieel_is_accepted_when_midden_is_required(world: SimulatorWorld) -> None:
    """A higher level than required is fine (ordered check, not python3-saml's set semantics)."""
    identity = world.login(required=AssuranceLevel.MIDDEN, loa="substantieel")
    assert identity.level is AssuranceLevel.SUBSTANTIEEL


def test_a_level_below_the_required_one_is_refused(world: SimulatorWorld) -> None:
    """Basis returned for a Midden request fails, even though the assertion is validly signed."""
    with pytest.raises(DigidFailed, match="below the required level"):
        world.login(required=AssuranceLevel.MIDDEN, loa="basis")


def test_cancelling_at_the_simulator_raises_digid_cancelled(world: SimulatorWorld) -> None:
    """Annuleren gives Responder/AuthnFailed, which the SP turns into DigidCancelled."""
    artifact, _, request_id = world.artifact_for(action="annuleren")
    with pytest.raises(DigidCancelled):
        world.sp.complete_login(artifact=artifact, expected_request_id=request_id, min_level=AssuranceLevel.MIDDEN)


def test_the_simulator_compiles_its_login_page_once(world: SimulatorWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """A demo cost: the login page template was compiled from its source for every page shown."""
    env = world.browser.application.jinja_env
    compiled: list[str] = []
    real = env.from_string
    monkeypatch.setattr(env, "from_string", lambda source, *a, **kw: compiled.append(source) or real(source, *a, **kw))
    for _ in range(3):
        assert world.login().bsn.value == VALID_BSN
    assert len(compiled) == 1


def test_a_replayed_artifact_is_refused_without_a_second_resolve(world: SimulatorWorld) -> None:
    """The second use of the same SAMLart fails before any network call (one-time store)."""
    artifact, _, request_id = world.artifact_for()
    world.sp.complete_login(artifact=artifact, expected_request_id=request_id, min_level=AssuranceLevel.MIDDEN)
    calls = len(world.transport.calls)
    with pytest.raises(DigidFailed, match="replayed"):
        world.sp.complete_login(artifact=artifact, expected_request_id=request_id, min_level=AssuranceLevel.MIDDEN)
    assert len(world.transport.calls) == calls


def test_an_artifact_used_at_the_idp_is_refused_by_a_fresh_sp(world: SimulatorWorld, instance_path: Path) -> None:
    """A second SP instance (empty one-time store) gets Requester/RequestDenied: artifacts are single use."""
    artifact, _, request_id = world.artifact_for()
    world.sp.complete_login(artifact=artifact, expected_request_id=request_id, min_level=AssuranceLevel.MIDDEN)
    world.one_time.seen.clear()
    with pytest.raises(DigidFailed, match="RequestDenied"):
        world.sp.complete_login(artifact=artifact, expected_request_id=request_id, min_level=AssuranceLevel.MIDDEN)


def test_an_unknown_in_response_to_is_refused(world: SimulatorWorld) -> None:
    """A response for another AuthnRequest than the one stored for this browser fails."""
    artifact, _, _ = world.artifact_for()
    with pytest.raises(DigidFailed, match="InResponseTo"):
        world.sp.complete_login(
            artifact=artifact, expected_request_id="_someone-elses-request", min_level=AssuranceLevel.MIDDEN
        )


def test_a_missing_expected_request_id_is_refused(world: SimulatorWorld) -> None:
    """Without a stored AuthnRequest id (unsolicited response) nothing is resolved."""
    artifact, _, _ = world.artifact_for()
    with pytest.raises(DigidFailed):
        world.sp.complete_login(artifact=artifact, expected_request_id="", min_level=AssuranceLevel.MIDDEN)
    assert world.transport.calls == []


def test_an_artifact_resolved_after_its_lifetime_is_refused(world: SimulatorWorld) -> None:
    """After the simulator's artifact TTL the resolve is denied and the SP fails."""
    artifact, _, request_id = world.artifact_for()
    world.clock.advance(minutes=3)
    with pytest.raises(DigidFailed):
        world.sp.complete_login(artifact=artifact, expected_request_id=request_id, min_level=AssuranceLevel.MIDDEN)


def test_the_simulator_shows_an_accessible_dutch_login_form(world: SimulatorWorld) -> None:
    """The page is Dutch, labelled as the simulator, with the bsn field, the level select and both buttons."""
    _, page = world.start(AssuranceLevel.SUBSTANTIEEL)
    html = page.get_data(as_text=True)
    assert '<html lang="nl">' in html and html.count("<h1") == 1 and "<main>" in html
    assert "niet de echte DigiD" in html
    assert 'name="bsn"' in html and '<label for="bsn">Burgerservicenummer</label>' in html
    assert 'name="loa"' in html and '<option value="substantieel" selected>' in html
    assert ">Inloggen</button>" in html and ">Annuleren</button>" in html
    assert 'href="/static/app.css"' in html


def test_an_invalid_bsn_shows_the_form_again_with_a_dutch_error(world: SimulatorWorld) -> None:
    """A BSN failing the 11-proef is not accepted by the simulator; the form comes back."""
    _, page = world.start()
    again = world.submit(page.get_data(as_text=True), bsn="123456789")
    assert again.status_code == 422
    assert "geen geldig burgerservicenummer" in again.get_data(as_text=True)


def test_the_simulator_answers_an_unsigned_authn_request_with_a_plain_404(world: SimulatorWorld) -> None:
    """Like DigiD, a request whose signature does not verify gets a 404 and no SAML."""
    login, _ = world.start()
    xml = etree.fromstring(OneLogin_Saml2_Utils.b64decode(login.form_fields["SAMLRequest"]))
    signature = xml.find("{http://www.w3.org/2000/09/xmldsig#}Signature")
    xml.remove(signature)
    unsigned = OneLogin_Saml2_Utils.b64encode(etree.tostring(xml))
    assert world.browser.post(SIMULATOR_PREFIX + "/sso", data={"SAMLRequest": unsigned}).status_code == 404
    assert world.browser.post(SIMULATOR_PREFIX + "/sso", data={"SAMLRequest": "bm9wZQ=="}).status_code == 404


def test_the_simulator_answers_a_tampered_authn_request_with_a_404(world: SimulatorWorld) -> None:
    """Changing the requested level after signing breaks the signature: 404."""
    login, _ = world.start(AssuranceLevel.HOOG)
    xml = OneLogin_Saml2_Utils.b64decode(login.form_fields["SAMLRequest"]).decode()
    tampered = xml.replace(AssuranceLevel.HOOG.uri, AssuranceLevel.BASIS.uri)
    response = world.browser.post(
        SIMULATOR_PREFIX + "/sso", data={"SAMLRequest": OneLogin_Saml2_Utils.b64encode(tampered)}
    )
    assert response.status_code == 404


def test_the_authn_request_is_signed_and_shaped_for_digid(world: SimulatorWorld) -> None:
    """R2/R3: POST binding, RSA-SHA256, artifact ACS, ForceAuthn, minimum comparison, no NameIDPolicy."""
    login = world.sp.begin_login(min_level=AssuranceLevel.SUBSTANTIEEL, relay_state="abc")
    xml = OneLogin_Saml2_Utils.b64decode(login.form_fields["SAMLRequest"]).decode()
    assert login.form_fields["RelayState"] == "abc"
    assert f'AssertionConsumerServiceURL="{ACS_URL}"' in xml
    assert 'ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact"' in xml
    assert 'ForceAuthn="true"' in xml and 'Comparison="minimum"' in xml
    assert AssuranceLevel.SUBSTANTIEEL.uri in xml and "NameIDPolicy" not in xml
    assert "rsa-sha256" in xml and "xml-exc-c14n" in xml
    assert f'ID="{login.request_id}"' in xml
    assert OneLogin_Saml2_Utils.validate_sign(
        xml, cert=world.sp.config.sp_cert_pem, raise_exceptions=True, xpath="/samlp:AuthnRequest/ds:Signature"
    )


def test_a_relay_state_over_80_bytes_is_refused(world: SimulatorWorld) -> None:
    """SAML Bindings §3.6.3 limits RelayState to 80 bytes."""
    with pytest.raises(ValueError):
        world.sp.begin_login(min_level=AssuranceLevel.MIDDEN, relay_state="x" * 81)


def test_the_sp_metadata_is_signed_and_complete(world: SimulatorWorld) -> None:
    """R10: signed, AuthnRequestsSigned and WantAssertionsSigned, artifact ACS, no validUntil."""
    xml = world.sp.metadata_xml()
    assert 'AuthnRequestsSigned="true"' in xml and 'WantAssertionsSigned="true"' in xml
    assert f'Location="{ACS_URL}"' in xml and "HTTP-Artifact" in xml
    assert "validUntil" not in xml and "cacheDuration" not in xml
    assert "AttributeConsumingService" in xml and "Organization" in xml
    assert OneLogin_Saml2_Utils.validate_metadata_sign(xml, cert=world.sp.config.sp_cert_pem, raise_exceptions=True)


def test_simulator_keys_are_generated_once_with_private_files(world: SimulatorWorld, instance_path: Path) -> None:
    """The simulator's keys live in instance/digid-sim with 0600 keys and survive a restart."""
    folder = instance_path / "digid-sim"
    for name in ("idp.key", "sp.key"):
        assert (folder / name).stat().st_mode & 0o777 == 0o600
    before = hashlib.sha256((folder / "idp.crt").read_bytes()).hexdigest()
    sp_config_from_settings(world.settings)
    assert hashlib.sha256((folder / "idp.crt").read_bytes()).hexdigest() == before


def test_the_simulator_refuses_to_exist_in_production(instance_path: Path) -> None:
    """R28/§8.23: the blueprint factory raises DemoInProduction with ZGWID_ENV=production."""
    settings = Settings(env="production", base_url=BASE_URL, instance_path=str(instance_path))
    with pytest.raises(DemoInProduction):
        create_simulator_blueprint(settings, clock=FixedClock())


def test_an_artifact_from_another_idp_is_never_sent_to_the_simulator(world: SimulatorWorld) -> None:
    """A SAMLart whose SourceID is not the simulator's is refused before the back channel."""
    with pytest.raises(DigidFailed, match="another issuer"):
        world.sp.complete_login(
            artifact=make_artifact("https://evil.example/idp"),
            expected_request_id="_x",
            min_level=AssuranceLevel.MIDDEN,
        )
    assert world.transport.calls == []


def test_the_identity_carries_another_bsn_when_another_is_typed(world: SimulatorWorld) -> None:
    """The BSN comes from the signed assertion, not from anything cached in the SP."""
    assert world.login(bsn=OTHER_BSN).bsn.value == OTHER_BSN


def test_a_nameid_altered_after_signing_is_refused(world: SimulatorWorld) -> None:
    """Changing the BSN in the signed assertion on the back channel breaks its digest."""
    world.edit_resolve = lambda xml: xml.replace(f"s00000000:{VALID_BSN}", f"s00000000:{OTHER_BSN}")
    with pytest.raises(DigidFailed):
        world.login()


def test_an_audience_altered_after_signing_is_refused(world: SimulatorWorld) -> None:
    """Pointing the assertion at another service provider breaks the signature."""
    world.edit_resolve = lambda xml: xml.replace("<saml:Audience>" + BASE_URL, "<saml:Audience>https://other.example")
    with pytest.raises(DigidFailed):
        world.login()


def test_an_assertion_that_arrives_too_late_is_refused(world: SimulatorWorld) -> None:
    """An SP clock five minutes past the assertion's window (beyond the 120 s drift) refuses it."""
    artifact, _, request_id = world.artifact_for()
    world.sp_clock.advance(minutes=5)
    with pytest.raises(DigidFailed, match="expired"):
        world.sp.complete_login(artifact=artifact, expected_request_id=request_id, min_level=AssuranceLevel.MIDDEN)


def test_the_back_channel_message_never_reaches_the_log(
    world: SimulatorWorld, caplog: pytest.LogCaptureFixture
) -> None:
    """R25: neither the BSN nor the SAMLart nor XML appears in any log record, at any level."""
    caplog.set_level("DEBUG")
    artifact, _, request_id = world.artifact_for()
    world.sp.complete_login(artifact=artifact, expected_request_id=request_id, min_level=AssuranceLevel.MIDDEN)
    world.edit_resolve = lambda xml: xml.replace("s00000000:", "s00000001:")
    with pytest.raises(DigidFailed):
        world.login()
    text = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    assert VALID_BSN not in text and artifact not in text and "<saml" not in text
