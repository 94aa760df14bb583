"""Shared helpers for the DigiD SAML tests: session keys, the simulator round trip, a signed fixture.

Imported explicitly (no conftest edits): ``tests/security/conftest.py`` puts this folder on sys.path.
Keys are generated once per test session with ``cryptography``; every signature is real.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from flask import Flask
from lxml import etree
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from zgw_identificatie.adapters.digid import DigidServiceProvider, SpConfig, sp_config_from_settings
from zgw_identificatie.adapters.digid.artifact import make_artifact, saml_time, soap_envelope
from zgw_identificatie.adapters.digid.keys import KeyPair, generate_key_pair
from zgw_identificatie.adapters.digid.xmldsig import sign
from zgw_identificatie.demo.digid_simulator import SIMULATOR_PREFIX, create_simulator_blueprint
from zgw_identificatie.demo.wsgi_transport import mount
from zgw_identificatie.domain.assurance import AssuranceLevel
from zgw_identificatie.domain.identity import DigidIdentity
from zgw_identificatie.settings import Settings
from zgw_identificatie.testing.clock import FixedClock
from zgw_identificatie.testing.digid import MemoryOneTimeIds

BASE_URL = "https://zgwid.example"
ACS_URL = BASE_URL + "/digid/acs"
SP_ENTITY_ID = BASE_URL + "/digid/metadata"
IDP_ENTITY_ID = "https://was-preprod1.digid.nl/saml/idp/metadata"
IDP_SSO_URL = "https://preprod1.digid.nl/saml/idp/request_authentication"
IDP_ARS_URL = "https://was-preprod1.digid.nl/saml/idp/resolve_artifact"
VALID_BSN = "123456782"
OTHER_BSN = "999990019"


def now_utc() -> datetime:
    """Real time, whole seconds: python3-saml checks time windows against the real clock."""
    return datetime.now(UTC).replace(microsecond=0)


@functools.cache
def keys(role: str) -> KeyPair:
    """One RSA 2048 key pair per role ("idp", "sp", "attacker", "idp-next") per test session."""
    return generate_key_pair(f"test {role}")


# -- the simulator round trip --------------------------------------------------------------------------


@dataclass
class SimulatorWorld:
    settings: Settings
    clock: FixedClock
    one_time: MemoryOneTimeIds
    sp: DigidServiceProvider
    browser: Any  # Flask test client
    transport: Any
    sp_clock: FixedClock
    edit_resolve: Callable[[str], str] | None = None  # a man in the middle on the back channel

    def start(self, level: AssuranceLevel = AssuranceLevel.MIDDEN, relay_state: str = "flow-1"):
        """begin_login and POST its form to the simulator's SSO; returns (login request, page response)."""
        login = self.sp.begin_login(min_level=level, relay_state=relay_state)
        path = urlsplit(login.url).path
        page = self.browser.post(path, data=login.form_fields, follow_redirects=True)  # 303 to the login page
        return login, page

    def submit(self, page_html: str, *, bsn: str = VALID_BSN, loa: str = "", action: str = "inloggen"):
        key = re.search(r'name="login" value="([^"]+)"', page_html)
        assert key, "login page without the pending login key"
        data = {"login": key.group(1), "bsn": bsn, "action": action}
        if loa:
            data["loa"] = loa
        return self.browser.post(SIMULATOR_PREFIX + "/login", data=data)

    def artifact_for(
        self,
        *,
        level: AssuranceLevel = AssuranceLevel.MIDDEN,
        loa: str = "",
        bsn: str = VALID_BSN,
        action: str = "inloggen",
    ) -> tuple[str, str, str]:
        """A whole front channel; returns (SAMLart, RelayState, AuthnRequest id)."""
        login, page = self.start(level)
        assert page.status_code == 200
        redirect = self.submit(page.get_data(as_text=True), bsn=bsn, loa=loa, action=action)
        assert redirect.status_code == 302
        location = redirect.headers["Location"]
        assert location.startswith(ACS_URL + "?")
        query = parse_qs(urlsplit(location).query)
        return query["SAMLart"][0], query["RelayState"][0], login.request_id

    def login(
        self, *, required: AssuranceLevel = AssuranceLevel.MIDDEN, loa: str = "", bsn: str = VALID_BSN
    ) -> DigidIdentity:
        artifact, _, request_id = self.artifact_for(level=required, loa=loa, bsn=bsn)
        return self.sp.complete_login(artifact=artifact, expected_request_id=request_id, min_level=required)


def make_simulator_world(instance_path: Path) -> SimulatorWorld:
    settings = Settings(base_url=BASE_URL, instance_path=str(instance_path))
    clock = FixedClock(now_utc())
    sp_clock = FixedClock(clock.now())
    app = Flask("digid-simulator-test")
    app.register_blueprint(create_simulator_blueprint(settings, clock=clock), url_prefix=SIMULATOR_PREFIX)
    http = requests.Session()
    holder: list[SimulatorWorld] = []

    def back_channel(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        edit = holder[0].edit_resolve
        if edit is None:
            return app(environ, start_response)
        from werkzeug.wrappers import Response

        inner = Response.from_app(app, environ)
        edited = Response(edit(inner.get_data(as_text=True)), status=inner.status_code, content_type=inner.content_type)
        return edited(environ, start_response)

    transport = mount(http, BASE_URL + "/", back_channel)
    one_time = MemoryOneTimeIds()
    sp = DigidServiceProvider(sp_config_from_settings(settings), one_time=one_time, clock=sp_clock, http=http)
    world = SimulatorWorld(
        settings=settings,
        clock=clock,
        one_time=one_time,
        sp=sp,
        browser=app.test_client(),
        transport=transport,
        sp_clock=sp_clock,
    )
    holder.append(world)
    return world


# -- a signed DigiD-shaped fixture with knobs, for the attack catalogue -----------------------------------

NS = 'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"'
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
OMIT = object()


def _attr(name: str, value: Any) -> str:
    if value is OMIT or value is None:
        return ""
    return f' {name}="{value}"'


@dataclass
class Fixture:
    """Every value of the DigiD-shaped message; change one field to build an attack."""

    now: datetime
    request_id: str = ""
    name_id: str = f"s00000000:{VALID_BSN}"
    level_uri: Any = AssuranceLevel.MIDDEN.uri  # None: no AuthnStatement
    assertion_id: str = "_assertion0000000000000000000000000000001"
    response_id: str = "_response00000000000000000000000000000001"
    artifact_response_id: str = "_artresp000000000000000000000000000000001"
    assertion_issuer: Any = IDP_ENTITY_ID
    response_issuer: Any = IDP_ENTITY_ID
    artifact_response_issuer: Any = IDP_ENTITY_ID
    audience: str = SP_ENTITY_ID
    recipient: Any = ACS_URL
    destination: Any = ACS_URL
    response_irt: Any = None  # None: request_id
    scd_irt: Any = None  # None: request_id
    artifact_response_irt: Any = None  # None: the ArtifactResolve's ID
    issue_instant: datetime | None = None
    not_before: datetime | None = None
    not_on_or_after: datetime | None = None
    scd_not_on_or_after: datetime | None = None
    status: str = '<samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>'
    status_message: str | None = None
    artifact_status: str = '<samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>'
    with_assertion: bool = True
    with_response: bool = True
    assertion_key: KeyPair | None = None  # None: idp; sign_assertion=False: unsigned
    sign_assertion: bool = True
    sign_response: bool = False
    artifact_key: KeyPair | None = None
    sign_artifact_response: bool = True
    sign_algorithm: str = RSA_SHA256
    digest_algorithm: str = SHA256
    outer_sign_algorithm: str = RSA_SHA256
    outer_digest_algorithm: str = SHA256
    edit_unsigned_assertion: Callable[[str], str] | None = None  # before the assertion is signed
    edit_assertion: Callable[[str], str] | None = None  # on the signed assertion
    edit_response: Callable[[str], str] | None = None  # on the response holding the signed assertion
    edit_signed_artifact_response: Callable[[str], str] | None = None
    edit_envelope: Callable[[str], str] | None = None

    def assertion_xml(self) -> str:
        issued = self.issue_instant or self.now
        nb = self.not_before or self.now - timedelta(minutes=2)
        nooa = self.not_on_or_after or self.now + timedelta(minutes=2)
        scd_nooa = self.scd_not_on_or_after or self.now + timedelta(minutes=2)
        issuer = "" if self.assertion_issuer is OMIT else f"<saml:Issuer>{self.assertion_issuer}</saml:Issuer>"
        scd_irt = self.request_id if self.scd_irt is None else self.scd_irt
        authn = (
            ""
            if self.level_uri is None
            else (
                f'<saml:AuthnStatement AuthnInstant="{saml_time(issued)}" SessionIndex="_s1">'
                '<saml:SubjectLocality Address="127.0.0.1"/>'
                f"<saml:AuthnContext><saml:AuthnContextClassRef>{self.level_uri}</saml:AuthnContextClassRef>"
                "</saml:AuthnContext></saml:AuthnStatement>"
            )
        )
        name_id = "" if self.name_id is OMIT else f"<saml:NameID>{self.name_id}</saml:NameID>"
        return (
            f'<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{self.assertion_id}" '
            f'Version="2.0" IssueInstant="{saml_time(issued)}">{issuer}'
            f"<saml:Subject>{name_id}"
            '<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">'
            f"<saml:SubjectConfirmationData{_attr('InResponseTo', scd_irt)}{_attr('Recipient', self.recipient)}"
            f' NotOnOrAfter="{saml_time(scd_nooa)}"/></saml:SubjectConfirmation></saml:Subject>'
            f'<saml:Conditions NotBefore="{saml_time(nb)}" NotOnOrAfter="{saml_time(nooa)}">'
            f"<saml:AudienceRestriction><saml:Audience>{self.audience}</saml:Audience></saml:AudienceRestriction>"
            f"</saml:Conditions>{authn}</saml:Assertion>"
        )

    def signed_assertion(self) -> str:
        xml = self.assertion_xml()
        if self.edit_unsigned_assertion:
            xml = self.edit_unsigned_assertion(xml)
        if self.sign_assertion:
            pair = self.assertion_key or keys("idp")
            xml = _sign(xml, pair, self.sign_algorithm, self.digest_algorithm)
        return self.edit_assertion(xml) if self.edit_assertion else xml

    def response_xml(self) -> str:
        irt = self.request_id if self.response_irt is None else self.response_irt
        issuer = "" if self.response_issuer is OMIT else f"<saml:Issuer>{self.response_issuer}</saml:Issuer>"
        message = f"<samlp:StatusMessage>{self.status_message}</samlp:StatusMessage>" if self.status_message else ""
        assertion = self.signed_assertion() if self.with_assertion else ""
        xml = (
            f'<samlp:Response {NS} ID="{self.response_id}" Version="2.0" IssueInstant="{saml_time(self.now)}"'
            f"{_attr('Destination', self.destination)}{_attr('InResponseTo', irt)}>{issuer}"
            f"<samlp:Status>{self.status}{message}</samlp:Status>{assertion}</samlp:Response>"
        )
        if self.sign_response:
            xml = _sign(xml, keys("idp"), RSA_SHA256, SHA256)
        return self.edit_response(xml) if self.edit_response else xml

    def envelope(self, resolve_id: str) -> bytes:
        irt = resolve_id if self.artifact_response_irt is None else self.artifact_response_irt
        issuer = (
            ""
            if self.artifact_response_issuer is OMIT
            else f"<saml:Issuer>{self.artifact_response_issuer}</saml:Issuer>"
        )
        inner = self.response_xml() if self.with_response else ""
        xml = (
            f'<samlp:ArtifactResponse {NS} ID="{self.artifact_response_id}" Version="2.0" '
            f'IssueInstant="{saml_time(self.now)}"{_attr("InResponseTo", irt)}>{issuer}'
            f"<samlp:Status>{self.artifact_status}</samlp:Status>{inner}</samlp:ArtifactResponse>"
        )
        if self.sign_artifact_response:
            xml = _sign(xml, self.artifact_key or keys("idp"), self.outer_sign_algorithm, self.outer_digest_algorithm)
        if self.edit_signed_artifact_response:
            xml = self.edit_signed_artifact_response(xml)
        text = soap_envelope(xml).decode("utf-8")
        if self.edit_envelope:
            text = self.edit_envelope(text)
        return text.encode("utf-8")


def _sign(xml: str, pair: KeyPair, sign_algorithm: str, digest_algorithm: str) -> str:
    from onelogin.saml2.utils import OneLogin_Saml2_Utils

    if sign_algorithm == RSA_SHA256 and digest_algorithm == SHA256:
        out = sign(xml, pair.key_pem, pair.cert_pem)
    else:
        out = OneLogin_Saml2_Utils.add_sign(
            xml, pair.key_pem, pair.cert_pem, sign_algorithm=sign_algorithm, digest_algorithm=digest_algorithm
        )
    text = out.decode("utf-8") if isinstance(out, bytes) else out
    return text.split("?>", 1)[1] if text.startswith("<?xml") else text


class FakeArs(BaseAdapter):
    """DigiD's artifact resolution service as a requests adapter; records every call and its TLS options."""

    def __init__(self, handler: Callable[[requests.PreparedRequest], tuple[int, bytes]]) -> None:
        super().__init__()
        self.handler = handler
        self.calls: list[dict[str, Any]] = []

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        self.calls.append({"request": request, "timeout": timeout, "verify": verify, "cert": cert, "proxies": proxies})
        status, body = self.handler(request)
        response = requests.Response()
        response.status_code = status
        response.headers = CaseInsensitiveDict({"Content-Type": "text/xml"})
        import io

        response.raw = io.BytesIO(body)
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


def resolve_id_of(request: requests.PreparedRequest) -> str:
    body = request.body if isinstance(request.body, bytes) else str(request.body).encode()
    root = etree.fromstring(body)
    found = root.xpath("//samlp:ArtifactResolve/@ID", namespaces={"samlp": "urn:oasis:names:tc:SAML:2.0:protocol"})
    return str(found[0])


@dataclass
class AttackHarness:
    """The real DigidServiceProvider against a FakeArs that serves a Fixture (pinned IdP key: keys("idp"))."""

    config: SpConfig
    clock: FixedClock
    one_time: MemoryOneTimeIds = field(default_factory=MemoryOneTimeIds)
    fixture: Fixture | None = None
    handler: Callable[[requests.PreparedRequest], tuple[int, bytes]] | None = None

    def __post_init__(self) -> None:
        self.http = requests.Session()
        self.ars = FakeArs(self._handle)
        self.http.mount("https://was-preprod1.digid.nl/", self.ars)
        self.sp = DigidServiceProvider(self.config, one_time=self.one_time, clock=self.clock, http=self.http)

    def _handle(self, request: requests.PreparedRequest) -> tuple[int, bytes]:
        if self.handler is not None:
            return self.handler(request)
        assert self.fixture is not None
        return 200, self.fixture.envelope(resolve_id_of(request))

    def begin(self, level: AssuranceLevel = AssuranceLevel.MIDDEN) -> str:
        return self.sp.begin_login(min_level=level, relay_state="r").request_id

    def fixture_for(self, request_id: str, **changes: Any) -> Fixture:
        self.fixture = replace(Fixture(now=self.clock.now(), request_id=request_id), **changes)
        return self.fixture

    def run(
        self,
        *,
        required: AssuranceLevel = AssuranceLevel.MIDDEN,
        artifact: str | None = None,
        expected_request_id: str | None = None,
        **changes: Any,
    ) -> DigidIdentity:
        """Serve a fixture with ``changes`` and complete a login against it."""
        request_id = self.begin(required)
        self.fixture_for(request_id, **changes)
        return self.sp.complete_login(
            artifact=make_artifact(IDP_ENTITY_ID) if artifact is None else artifact,
            expected_request_id=request_id if expected_request_id is None else expected_request_id,
            min_level=required,
        )


def harness_config(tmp: Path, **changes: Any) -> SpConfig:
    cert_file = tmp / "tls-client.crt"
    key_file = tmp / "tls-client.key"
    if not cert_file.exists():
        cert_file.write_text(keys("sp").cert_pem)
        key_file.write_text(keys("sp").key_pem)
    base = SpConfig(
        sp_entity_id=SP_ENTITY_ID,
        acs_url=ACS_URL,
        idp_entity_id=IDP_ENTITY_ID,
        idp_sso_url=IDP_SSO_URL,
        idp_ars_url=IDP_ARS_URL,
        idp_certs=(keys("idp").cert_pem,),
        sp_key_pem=keys("sp").key_pem,
        sp_cert_pem=keys("sp").cert_pem,
        tls_client_cert_file=str(cert_file),
        tls_client_key_file=str(key_file),
        ca_bundle_file=str(tmp / "pkio-ca.pem"),
    )
    return replace(base, **changes)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
