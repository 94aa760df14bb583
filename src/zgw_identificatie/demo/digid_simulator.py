"""DigiD simulator: a development stand-in that speaks DigiD's SAML (R28), never the real DigiD.

It checks the signed AuthnRequest (HTTP-POST binding) against the SP certificate and answers a bad
one with a plain 404, as DigiD does; shows a login page where a tester types a BSN and picks a level
(also one lower than requested, to see the refusal); redirects back with a type 0x0004 SAMLart; and
answers the signed SOAP ArtifactResolve with a signed ArtifactResponse holding an unsigned Response
with a signed Assertion shaped like DigiD's (DIGID-SAML-NOTES §2.3, §2.4). Pending logins and
artifacts are single use, with a short TTL, and live in the service's database (table
``demo_digid_state``, encrypted), so the SSO, the login form and the back channel may each land on
another worker process or replica; without a SQL store (unit tests) they live in memory.

Mounted by the app at ``/demo/digid`` (see ``SIMULATOR_PREFIX``); refuses to exist in production.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import threading
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, url_for
from jinja2 import Environment, Template
from lxml import etree

from ..adapters.digid.artifact import make_artifact, new_id, saml_time, soap_body_child, soap_envelope
from ..adapters.digid.config import ACS_PATH, BINDING_ARTIFACT, SIMULATOR_PREFIX, simulator_idp_entity_id
from ..adapters.digid.keys import read_pem, simulator_key_files
from ..adapters.digid.xmldsig import (
    NS_SAML,
    NS_SAMLP,
    XmlRejected,
    parse_xml,
    q,
    sign,
    text_of,
    verify_enveloped,
)
from ..domain.assurance import AssuranceLevel
from ..domain.bsn import passes_elfproef
from ..domain.errors import InvalidLevel
from ..ports import Clock
from ..settings import Settings
from . import refuse_in_production

__all__ = ["SIMULATOR_PREFIX", "DigidMessages", "create_simulator_blueprint"]

STATUS = "urn:oasis:names:tc:SAML:2.0:status:"
ARTIFACT_TTL = timedelta(minutes=2)
PENDING_TTL = timedelta(minutes=15)
REQUEST_TIME_TOLERANCE = timedelta(minutes=2)  # libsaml max_issue_instant_offset (notes §2.1)
TEST_BSNS = ("999993653", "999990019", "111222333")


@dataclass(frozen=True)
class PendingLogin:
    request_id: str
    acs_url: str
    relay_state: str
    requested: AssuranceLevel
    force_authn: bool
    expires_at: datetime


@dataclass(frozen=True)
class IssuedArtifact:
    login: PendingLogin
    bsn: str | None  # None: cancelled
    level: AssuranceLevel
    expires_at: datetime


class SimulatorState(Protocol):
    """Where the simulator keeps pending logins and issued artifacts: single use, with an expiry."""

    def put(self, kind: str, key: str, value: dict[str, Any], expires_at: datetime, now: datetime) -> None: ...
    def get(self, kind: str, key: str, now: datetime) -> dict[str, Any] | None: ...
    def take(self, kind: str, key: str, now: datetime) -> dict[str, Any] | None:
        """Atomically remove and return an unexpired entry; None when absent, taken or expired."""
        ...


class MemorySimulatorState:
    """One process only (unit tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], tuple[dict[str, Any], datetime]] = {}

    def _purge(self, now: datetime) -> None:
        for k in [k for k, (_, exp) in self._items.items() if exp <= now]:
            del self._items[k]

    def put(self, kind: str, key: str, value: dict[str, Any], expires_at: datetime, now: datetime) -> None:
        with self._lock:
            self._purge(now)
            self._items[(kind, key)] = (value, expires_at)

    def get(self, kind: str, key: str, now: datetime) -> dict[str, Any] | None:
        with self._lock:
            self._purge(now)
            item = self._items.get((kind, key))
            return item[0] if item else None

    def take(self, kind: str, key: str, now: datetime) -> dict[str, Any] | None:
        with self._lock:
            self._purge(now)
            item = self._items.pop((kind, key), None)
            return item[0] if item else None


class SqlSimulatorState:
    """Shared by every process and replica on the same database; values encrypted (an artifact holds a BSN)."""

    def __init__(self, engine: Any, cipher: Any) -> None:
        self.engine = engine
        self.cipher = cipher

    def put(self, kind: str, key: str, value: dict[str, Any], expires_at: datetime, now: datetime) -> None:
        from ..adapters.sql_store import demo_digid_state as t

        blob = self.cipher.encrypt(json.dumps(value).encode())
        with self.engine.begin() as conn:
            conn.execute(t.delete().where(t.c.expires_at <= now))
            conn.execute(t.insert().values(kind=kind, key=key, value_enc=blob, expires_at=expires_at))

    def get(self, kind: str, key: str, now: datetime) -> dict[str, Any] | None:
        from ..adapters.sql_store import demo_digid_state as t

        with self.engine.connect() as conn:
            row = conn.execute(t.select().where(t.c.kind == kind, t.c.key == key[:100], t.c.expires_at > now)).first()
        return json.loads(self.cipher.decrypt(row.value_enc)) if row else None

    def take(self, kind: str, key: str, now: datetime) -> dict[str, Any] | None:
        from ..adapters.sql_store import demo_digid_state as t

        where = (t.c.kind == kind, t.c.key == key[:100])
        with self.engine.begin() as conn:
            row = conn.execute(t.select().where(*where)).first()
            if row is None or conn.execute(t.delete().where(*where)).rowcount != 1:
                return None  # another process took it first
        if row.expires_at <= now:
            return None
        return json.loads(self.cipher.decrypt(row.value_enc))


def purge_expired(store: Any, now: datetime) -> int:
    """Erase expired simulator entries (an artifact nobody resolved still holds an encrypted BSN)."""
    engine = getattr(store, "engine", None)
    if engine is None:
        return 0
    from ..adapters.sql_store import demo_digid_state as t

    with engine.begin() as conn:
        return int(conn.execute(t.delete().where(t.c.expires_at <= now)).rowcount)


def state_for(store: Any) -> SimulatorState:
    """The store's database when it has one (the app), else memory."""
    if store is not None and getattr(store, "engine", None) is not None and getattr(store, "cipher", None):
        return SqlSimulatorState(store.engine, store.cipher)
    return MemorySimulatorState()


def _login_to_dict(login: PendingLogin) -> dict[str, Any]:
    return {
        "request_id": login.request_id,
        "acs_url": login.acs_url,
        "relay_state": login.relay_state,
        "requested": login.requested.name,
        "force_authn": login.force_authn,
        "expires_at": login.expires_at.isoformat(),
    }


def _login_from_dict(data: dict[str, Any]) -> PendingLogin:
    return PendingLogin(
        request_id=data["request_id"],
        acs_url=data["acs_url"],
        relay_state=data["relay_state"],
        requested=AssuranceLevel[data["requested"]],
        force_authn=bool(data["force_authn"]),
        expires_at=datetime.fromisoformat(data["expires_at"]),
    )


class DigidMessages:
    """Builds DigiD-shaped SAML messages, signed with the simulator's IdP key."""

    def __init__(self, *, idp_entity_id: str, sp_entity_id: str, key_pem: str, cert_pem: str) -> None:
        self.idp_entity_id = idp_entity_id
        self.sp_entity_id = sp_entity_id
        self._key = key_pem
        self._cert = cert_pem

    def _issuer(self, parent: etree._Element) -> None:
        etree.SubElement(parent, q(NS_SAML, "Issuer")).text = self.idp_entity_id

    @staticmethod
    def _status(parent: etree._Element, top: str, sub: str | None = None, message: str | None = None) -> None:
        status = etree.SubElement(parent, q(NS_SAMLP, "Status"))
        code = etree.SubElement(status, q(NS_SAMLP, "StatusCode"), Value=STATUS + top)
        if sub:
            etree.SubElement(code, q(NS_SAMLP, "StatusCode"), Value=STATUS + sub)
        if message:
            etree.SubElement(status, q(NS_SAMLP, "StatusMessage")).text = message

    def assertion(
        self,
        *,
        now: datetime,
        in_response_to: str,
        acs_url: str,
        bsn: str,
        level: AssuranceLevel,
        address: str = "127.0.0.1",
    ) -> etree._Element:
        """A signed Assertion like DigiD's (notes §2.4): NameID s00000000:<bsn>, bearer confirmation
        (+2 min), Conditions ±2 min with our Audience, AuthnStatement with the level's class ref."""
        nsmap = {"saml": NS_SAML}
        assertion = etree.Element(
            q(NS_SAML, "Assertion"), nsmap=nsmap, ID=new_id(), Version="2.0", IssueInstant=saml_time(now)
        )
        self._issuer(assertion)
        subject = etree.SubElement(assertion, q(NS_SAML, "Subject"))
        etree.SubElement(subject, q(NS_SAML, "NameID")).text = f"s00000000:{bsn}"
        confirmation = etree.SubElement(
            subject, q(NS_SAML, "SubjectConfirmation"), Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"
        )
        etree.SubElement(
            confirmation,
            q(NS_SAML, "SubjectConfirmationData"),
            InResponseTo=in_response_to,
            Recipient=acs_url,
            NotOnOrAfter=saml_time(now + timedelta(minutes=2)),
        )
        conditions = etree.SubElement(
            assertion,
            q(NS_SAML, "Conditions"),
            NotBefore=saml_time(now - timedelta(minutes=2)),
            NotOnOrAfter=saml_time(now + timedelta(minutes=2)),
        )
        restriction = etree.SubElement(conditions, q(NS_SAML, "AudienceRestriction"))
        etree.SubElement(restriction, q(NS_SAML, "Audience")).text = self.sp_entity_id
        statement = etree.SubElement(
            assertion, q(NS_SAML, "AuthnStatement"), AuthnInstant=saml_time(now), SessionIndex=new_id()
        )
        etree.SubElement(statement, q(NS_SAML, "SubjectLocality"), Address=address)
        context = etree.SubElement(statement, q(NS_SAML, "AuthnContext"))
        etree.SubElement(context, q(NS_SAML, "AuthnContextClassRef")).text = level.uri
        return etree.fromstring(sign(assertion, self._key, self._cert))

    def response(
        self,
        *,
        now: datetime,
        in_response_to: str,
        acs_url: str,
        assertion: etree._Element | None,
        status: tuple[str, str | None] = ("Success", None),
        status_message: str | None = None,
    ) -> etree._Element:
        """The inner samlp:Response; DigiD does not sign it (notes §2.3)."""
        response = etree.Element(
            q(NS_SAMLP, "Response"),
            nsmap={"samlp": NS_SAMLP, "saml": NS_SAML},
            ID=new_id(),
            Version="2.0",
            IssueInstant=saml_time(now),
            Destination=acs_url,
            InResponseTo=in_response_to,
        )
        self._issuer(response)
        self._status(response, status[0], status[1], status_message)
        if assertion is not None:
            response.append(assertion)
        return response

    def artifact_response(
        self,
        *,
        now: datetime,
        in_response_to: str,
        response: etree._Element | None,
        status: tuple[str, str | None] = ("Success", None),
    ) -> bytes:
        """A signed ArtifactResponse in a SOAP 1.1 envelope (libsaml signs every SOAP response)."""
        root = etree.Element(
            q(NS_SAMLP, "ArtifactResponse"),
            nsmap={"samlp": NS_SAMLP, "saml": NS_SAML},
            ID=new_id(),
            Version="2.0",
            IssueInstant=saml_time(now),
            InResponseTo=in_response_to,
        )
        self._issuer(root)
        self._status(root, status[0], status[1])
        if response is not None:
            root.append(response)
        return soap_envelope(sign(root, self._key, self._cert).decode("utf-8"))


class _Simulator:
    def __init__(self, settings: Settings, clock: Clock, state: SimulatorState | None = None) -> None:
        files = simulator_key_files(settings.instance_path)
        base = settings.base_url.rstrip("/")
        self.clock = clock
        self.sp_entity_id = settings.sp_entity_id
        self.acs_url = base + ACS_PATH
        self.sso_url = base + SIMULATOR_PREFIX + "/sso"
        self.ars_url = base + SIMULATOR_PREFIX + "/resolve"
        self.idp_entity_id = simulator_idp_entity_id(base)
        self.sp_cert = read_pem(files.sp_cert)
        self.idp_cert = read_pem(files.idp_cert)
        self.messages = DigidMessages(
            idp_entity_id=self.idp_entity_id,
            sp_entity_id=self.sp_entity_id,
            key_pem=read_pem(files.idp_key),
            cert_pem=self.idp_cert,
        )
        self.state: SimulatorState = state or MemorySimulatorState()

    def read_authn_request(self, encoded: str, relay_state: str) -> PendingLogin | None:
        """DigiD's validate_authn_request: a bad signature, issuer, destination or ACS gives None (→ 404)."""
        try:
            root = parse_xml(base64.b64decode(encoded, validate=True))
            if root.tag != q(NS_SAMLP, "AuthnRequest"):
                return None
            issuers = root.findall(q(NS_SAML, "Issuer"))
            if len(issuers) != 1 or text_of(issuers[0]) != self.sp_entity_id:
                return None
            verify_enveloped(root, [self.sp_cert])
        except (XmlRejected, binascii.Error, ValueError):
            return None
        now = self.clock.now()
        try:
            issued = datetime.fromisoformat(root.get("IssueInstant") or "")
        except ValueError:
            return None
        if (
            root.get("Destination") != self.sso_url
            or root.get("AssertionConsumerServiceURL") != self.acs_url
            or root.get("ProtocolBinding") != BINDING_ARTIFACT
            or root.get("IsPassive") == "true"
            or abs(issued - now) > REQUEST_TIME_TOLERANCE
            or len(relay_state.encode()) > 80
        ):
            return None
        requested = AssuranceLevel.MIDDEN
        refs = root.findall(f"{q(NS_SAMLP, 'RequestedAuthnContext')}/{q(NS_SAML, 'AuthnContextClassRef')}")
        if refs:
            try:
                requested = AssuranceLevel.from_uri(text_of(refs[0]) or "")
            except InvalidLevel:
                return None
        return PendingLogin(
            request_id=root.get("ID") or "",
            acs_url=self.acs_url,
            relay_state=relay_state,
            requested=requested,
            force_authn=root.get("ForceAuthn") == "true",
            expires_at=now + PENDING_TTL,
        )

    def add_pending(self, login: PendingLogin) -> str:
        key = secrets.token_urlsafe(24)
        self.state.put("login", key, _login_to_dict(login), login.expires_at, self.clock.now())
        return key

    def get_pending(self, key: str) -> PendingLogin | None:
        data = self.state.get("login", key, self.clock.now()) if key else None
        return _login_from_dict(data) if data else None

    def issue(self, key: str, *, bsn: str | None, level: AssuranceLevel) -> tuple[PendingLogin, str] | None:
        now = self.clock.now()
        data = self.state.take("login", key, now) if key else None
        if data is None:
            return None
        login = _login_from_dict(data)
        artifact = make_artifact(self.idp_entity_id)
        issued = {"login": data, "bsn": bsn, "level": level.name}
        self.state.put("artifact", hashlib.sha256(artifact.encode()).hexdigest(), issued, now + ARTIFACT_TTL, now)
        return login, artifact

    def take(self, artifact: str) -> IssuedArtifact | None:
        now = self.clock.now()
        if not artifact:
            return None
        data = self.state.take("artifact", hashlib.sha256(artifact.encode()).hexdigest(), now)
        if data is None:
            return None
        return IssuedArtifact(
            login=_login_from_dict(data["login"]),
            bsn=data["bsn"],
            level=AssuranceLevel[data["level"]],
            expires_at=now + ARTIFACT_TTL,
        )

    def resolve(self, body: bytes) -> bytes | None:
        """Answer an ArtifactResolve; None (→ 404) when its signature or issuer is wrong (notes §2.3)."""
        try:
            resolve = soap_body_child(body)
            if resolve.tag != q(NS_SAMLP, "ArtifactResolve"):
                return None
            issuers = resolve.findall(q(NS_SAML, "Issuer"))
            if len(issuers) != 1 or text_of(issuers[0]) != self.sp_entity_id:
                return None
            verify_enveloped(resolve, [self.sp_cert])
            artifacts = resolve.findall(q(NS_SAMLP, "Artifact"))
            artifact = text_of(artifacts[0]) if len(artifacts) == 1 else None
        except XmlRejected:
            return None
        now = self.clock.now()
        resolve_id = resolve.get("ID") or ""
        issued = self.take((artifact or "").strip())
        if issued is None:
            return self.messages.artifact_response(
                now=now, in_response_to=resolve_id, response=None, status=("Requester", "RequestDenied")
            )
        login = issued.login
        if issued.bsn is None:
            response = self.messages.response(
                now=now,
                in_response_to=login.request_id,
                acs_url=login.acs_url,
                assertion=None,
                status=("Responder", "AuthnFailed"),
                status_message="Authentication cancelled",
            )
        else:
            assertion = self.messages.assertion(
                now=now, in_response_to=login.request_id, acs_url=login.acs_url, bsn=issued.bsn, level=issued.level
            )
            response = self.messages.response(
                now=now, in_response_to=login.request_id, acs_url=login.acs_url, assertion=assertion
            )
        return self.messages.artifact_response(now=now, in_response_to=resolve_id, response=response)

    def metadata(self) -> str:
        cert = "".join(line for line in self.idp_cert.strip().splitlines() if "-----" not in line)
        return (
            f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
            f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{self.idp_entity_id}">'
            '<md:IDPSSODescriptor WantAuthnRequestsSigned="true" '
            'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
            f'<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}'
            "</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
            '<md:ArtifactResolutionService Binding="urn:oasis:names:tc:SAML:2.0:bindings:SOAP" '
            f'Location="{self.ars_url}" index="0"/>'
            '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
            f'Location="{self.sso_url}"/>'
            "</md:IDPSSODescriptor></md:EntityDescriptor>"
        )


def _simulator_page(title: str, main: str) -> str:
    """A page of the simulator (Jinja source): its title (before the simulator's name) and its ``<main>``."""
    return (
        '<!doctype html>\n<html lang="nl">\n<head>\n  <meta charset="utf-8">\n'
        '  <meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '  <meta name="robots" content="noindex">\n'
        f"  <title>{title}DigiD-simulator (niet de echte DigiD)</title>\n"
        '  <link rel="stylesheet" href="/static/app.css">\n</head>\n<body>\n  <main>\n'
        f"{main}  </main>\n</body>\n</html>\n"
    )


LOGIN_PAGE = _simulator_page(
    "",
    """    <h1>DigiD-simulator</h1>
    <p role="note"><strong>Dit is niet de echte DigiD.</strong> Deze simulator is alleen voor ontwikkeling
      en demonstratie. Gebruik hier nooit uw echte gegevens.</p>
    <p>Gevraagd betrouwbaarheidsniveau: <strong>{{ requested }}</strong> (minimaal).
      {% if force_authn %}Er wordt altijd opnieuw ingelogd.{% endif %}</p>
    {% if error %}<p role="alert" id="bsn-fout">{{ error }}</p>{% endif %}
    <form method="post" action="{{ action }}">
      <input type="hidden" name="login" value="{{ login }}">
      <p>
        <label for="bsn">Burgerservicenummer</label>
        <input type="text" id="bsn" name="bsn" value="{{ bsn }}" inputmode="numeric" autocomplete="off"
               maxlength="20" list="test-bsns"{% if error %} aria-invalid="true" aria-describedby="bsn-fout"{% endif %}>
        <datalist id="test-bsns">{% for b in test_bsns %}<option value="{{ b }}">{% endfor %}</datalist>
      </p>
      <p>
        <label for="loa">Betrouwbaarheidsniveau</label>
        <select id="loa" name="loa">
          {% for level in levels -%}
          <option value="{{ level.name.lower() }}"{{ " selected" if level == selected else "" }}>
            {{- level.label -}}
          </option>
          {% endfor %}
        </select>
      </p>
      <p>
        <button type="submit" name="action" value="inloggen">Inloggen</button>
        <button type="submit" name="action" value="annuleren">Annuleren</button>
      </p>
    </form>
    <p>Testnummers die de 11-proef doorstaan: {{ test_bsns | join(", ") }}.</p>
""",
)


GONE_PAGE = _simulator_page(
    "Inlogpoging afgerond of verlopen - ",
    """    <h1>Deze inlogpoging is afgerond of verlopen</h1>
    <p role="note"><strong>Dit is niet de echte DigiD.</strong> Deze simulator is alleen voor ontwikkeling
      en demonstratie.</p>
    <p>U kunt deze pagina niet opnieuw gebruiken: u bent al ingelogd of hebt geannuleerd, of de inlogpoging
      duurde te lang.</p>
    <p>Was u klaar met inloggen? Gebruik dan de knop <strong>Vooruit</strong> van uw browser om terug te gaan
      naar de pagina van uw gemeente. Wilt u opnieuw inloggen? Open dan de link die u van uw gemeente kreeg en
      kies daar opnieuw voor inloggen met DigiD.</p>
""",
)


def create_simulator_blueprint(settings: Settings, *, clock: Clock, store: Any = None) -> Blueprint:
    """The simulator's routes; mount at ``url_prefix=SIMULATOR_PREFIX`` ("/demo/digid"). With the app's SQL
    ``store`` its state is shared by every process and replica on that database."""
    refuse_in_production(settings)
    sim = _Simulator(settings, clock, state_for(store))
    bp = Blueprint("digid_simulator", __name__)
    compiled: weakref.WeakKeyDictionary[Environment, dict[str, Template]] = weakref.WeakKeyDictionary()

    def template(source: str) -> Template:
        """A page compiled once per app (``render_template_string`` compiled it again for every page)."""
        env = current_app.jinja_env
        templates = compiled.setdefault(env, {})
        found = templates.get(source)
        if found is None:
            found = templates[source] = env.from_string(source)
        return found

    def gone() -> Response:
        """A pending login that is used (the back button after logging in, a second click) or expired: still a
        404 without SAML, like DigiD, but a page that says what happened and what to do, not "not found"."""
        response = Response(render_template(template(GONE_PAGE)), status=404, mimetype="text/html")
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    def page(
        login_key: str,
        login: PendingLogin,
        *,
        bsn: str = "",
        selected: AssuranceLevel | None = None,
        error: str | None = None,
        status: int = 200,
    ) -> Response:
        html = render_template(
            template(LOGIN_PAGE),
            login=login_key,
            requested=login.requested.label,
            force_authn=login.force_authn,
            levels=list(AssuranceLevel),
            selected=selected or login.requested,
            bsn=bsn,
            error=error,
            test_bsns=TEST_BSNS,
            action=url_for(".login"),
        )
        response = Response(html, status=status, mimetype="text/html")
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @bp.post("/sso")
    def sso() -> Response:
        """Like DigiD: the posted AuthnRequest is answered with a redirect to the login page (POST-redirect-GET),
        so the browser's back button never asks to post the form again."""
        login = sim.read_authn_request(request.form.get("SAMLRequest", ""), request.form.get("RelayState", ""))
        if login is None:
            abort(404)
        return redirect(url_for(".login_page", login=sim.add_pending(login)), code=303)  # type: ignore[return-value]

    @bp.get("/inloggen")
    def login_page() -> Response:
        key = request.args.get("login", "")
        pending = sim.get_pending(key)
        if pending is None:
            return gone()
        return page(key, pending)

    @bp.post("/login")
    def login() -> Response:
        key = request.form.get("login", "")
        pending = sim.get_pending(key)
        if pending is None:
            return gone()
        try:
            level = AssuranceLevel.from_name(request.form.get("loa", ""))
        except InvalidLevel:
            level = pending.requested
        if request.form.get("action") == "annuleren":
            issued = sim.issue(key, bsn=None, level=level)
        else:
            bsn = request.form.get("bsn", "").strip()
            if not passes_elfproef(bsn):
                return page(
                    key,
                    pending,
                    bsn=request.form.get("bsn", "")[:20],
                    selected=level,
                    status=422,
                    error="Dit is geen geldig burgerservicenummer. Vul 9 cijfers in die de 11-proef doorstaan.",
                )
            issued = sim.issue(key, bsn=bsn, level=level)
        if issued is None:  # taken by a second click between the two reads
            return gone()
        done, artifact = issued
        query = urlencode({"SAMLart": artifact, "RelayState": done.relay_state})
        response = redirect(f"{done.acs_url}?{query}", code=302)
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response  # type: ignore[return-value]

    @bp.post("/resolve")
    def resolve() -> Response:
        answer = sim.resolve(request.get_data(cache=False)[:1_000_001])
        if answer is None:
            abort(404)
        return Response(answer, status=200, content_type="text/xml; charset=utf-8")

    @bp.get("/metadata")
    def metadata() -> Response:
        return Response(sim.metadata(), status=200, content_type="application/samlmetadata+xml")

    return bp
