"""DigiD SAML service provider: the IdentityProvider port on python3-saml 1.16.0 + our artifact code.

Flow (DIGID-SAML-NOTES §1): signed AuthnRequest over HTTP-POST → DigiD → ``?SAMLart=`` at our ACS →
signed ArtifactResolve over mutual TLS → signed ArtifactResponse → inner Response validated by
python3-saml in strict mode plus our own checks (R5–R9, R12). See docs/decisions/0001.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from lxml import etree
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from urllib3.exceptions import ConnectTimeoutError

from ...domain.assurance import AssuranceLevel
from ...domain.errors import DigidCancelled, DigidFailed
from ...domain.identity import DigidIdentity
from ...ports import Clock, LoginRequest, OneTimeIds
from . import checks, schema_cache, xpath_cache
from .artifact import (
    ArtifactRejected,
    build_artifact_resolve,
    new_id,
    parse_artifact,
    saml_time,
    soap_body_child,
)
from .config import BINDING_ARTIFACT, SpConfig, onelogin_settings
from .metadata import build_sp_metadata
from .xmldsig import (
    NS_SAML,
    NS_SAMLP,
    XmlRejected,
    canonical_sha256,
    q,
    sign,
    signing_key,
    verify_enveloped,
    xpath,
)

schema_cache.install()  # python3-saml's XSD compiled once per thread instead of on every ACS
xpath_cache.install()  # and its XPath queries (some 36 per ACS) likewise

log = logging.getLogger(__name__)

MAX_RELAY_STATE_BYTES = 80  # SAML Bindings §3.4.3 / §3.6.3
SOAP_ACTION = "http://www.oasis-open.org/committees/security"


class DigidServiceProvider:
    """Implements ports.IdentityProvider for DigiD (and for the simulator, which speaks the same SAML)."""

    def __init__(
        self, config: SpConfig, *, one_time: OneTimeIds, clock: Clock, http: requests.Session | None = None
    ) -> None:
        self.config = config
        self._one_time = one_time
        self._clock = clock
        self._http = http or requests.Session()
        self._tls_client_cert: tuple[str, str] | None = None
        if config.tls_client_cert_file and config.tls_client_key_file:
            self._tls_client_cert = (config.tls_client_cert_file, config.tls_client_key_file)
        # What requests would read from the environment on every call (proxies and no_proxy, REQUESTS_CA_BUNDLE)
        # and the session's defaults, for the one ARS URL: read once here (about 0.1 ms per call otherwise).
        self._send_settings = self._http.merge_environment_settings(
            config.idp_ars_url, {}, True, config.ca_bundle_file or True, self._tls_client_cert
        )
        # Likewise the ArtifactResolve request without its body: URL, the session's and our headers, netrc
        # auth and hooks prepared once (about 0.2 ms per call otherwise); see _resolve_request.
        self._resolve_headers = {"Content-Type": config.soap_content_type, "SOAPAction": SOAP_ACTION}
        self._resolve_template = self._http.prepare_request(
            requests.Request("POST", config.idp_ars_url, headers=self._resolve_headers)
        )
        self._resolve_template.headers.pop("Cookie", None)  # the session's cookies are taken at each call
        acs = urlsplit(config.acs_url)
        self._request_data: dict[str, object] = {
            "https": "on" if acs.scheme == "https" else "off",
            "http_host": acs.netloc,
            "script_name": acs.path,
            "get_data": {},
            "post_data": {},
        }
        self._saml_settings = {
            level: OneLogin_Saml2_Settings(onelogin_settings(config, level.uri), sp_validation_only=False)
            for level in AssuranceLevel
        }
        signing_key(config.sp_key_pem, config.sp_cert_pem)  # parsed once here, not for every signed message

    # -- front channel -------------------------------------------------------------------------------

    def begin_login(self, *, min_level: AssuranceLevel, relay_state: str) -> LoginRequest:
        """A signed AuthnRequest for the HTTP-POST binding (R1–R3): artifact ACS, ForceAuthn, minimum LoA."""
        if len(relay_state.encode("utf-8")) > MAX_RELAY_STATE_BYTES:
            raise ValueError("RelayState longer than 80 bytes (SAML Bindings §3.6.3)")
        request_id = new_id()
        root = etree.Element(q(NS_SAMLP, "AuthnRequest"), nsmap={"samlp": NS_SAMLP, "saml": NS_SAML})
        root.set("ID", request_id)
        root.set("Version", "2.0")
        root.set("IssueInstant", saml_time(self._clock.now()))
        root.set("Destination", self.config.idp_sso_url)
        root.set("ForceAuthn", "true")
        root.set("AssertionConsumerServiceURL", self.config.acs_url)
        root.set("ProtocolBinding", BINDING_ARTIFACT)
        etree.SubElement(root, q(NS_SAML, "Issuer")).text = self.config.sp_entity_id
        context = etree.SubElement(root, q(NS_SAMLP, "RequestedAuthnContext"), Comparison="minimum")
        etree.SubElement(context, q(NS_SAML, "AuthnContextClassRef")).text = min_level.uri
        signed = sign(root, self.config.sp_key_pem, self.config.sp_cert_pem)
        log.info("digid authn request created", extra={"saml_request_id": request_id, "loa": min_level.name})
        return LoginRequest(
            request_id=request_id,
            url=self.config.idp_sso_url,
            form_fields={"SAMLRequest": base64.b64encode(signed).decode("ascii"), "RelayState": relay_state},
        )

    def metadata_xml(self) -> str:
        return build_sp_metadata(self.config)

    # -- back channel --------------------------------------------------------------------------------

    def complete_login(self, *, artifact: str, expected_request_id: str, min_level: AssuranceLevel) -> DigidIdentity:
        """Resolve the artifact and validate everything; raises DigidCancelled or DigidFailed, nothing else."""
        try:
            identity = self._complete(artifact, expected_request_id, min_level)
        except DigidCancelled:
            log.info("digid login cancelled", extra={"saml_request_id": expected_request_id})
            raise
        except DigidFailed as exc:
            log.warning("digid login refused: %s", exc.reason, extra={"saml_request_id": expected_request_id})
            raise
        except Exception as exc:
            log.warning(
                "digid login refused: unexpected %s", type(exc).__name__, extra={"saml_request_id": expected_request_id}
            )
            raise DigidFailed(f"unexpected {type(exc).__name__}") from None
        log.info("digid login accepted", extra={"saml_request_id": expected_request_id, "loa": identity.level.name})
        return identity

    def _complete(self, artifact: str, expected_request_id: str, min_level: AssuranceLevel) -> DigidIdentity:
        config = self.config
        try:
            parse_artifact(artifact, idp_entity_id=config.idp_entity_id, endpoint_indexes=config.ars_endpoint_indexes)
        except ArtifactRejected as exc:
            raise DigidFailed(str(exc)) from None
        if not expected_request_id:
            raise DigidFailed("no AuthnRequest id to compare with")
        now = self._clock.now()
        artifact_key = hashlib.sha256(artifact.encode("ascii")).hexdigest()
        if not self._one_time.use_once(
            "digid-artifact", artifact_key, now + timedelta(seconds=config.artifact_ttl_seconds)
        ):
            raise DigidFailed("artifact replayed")

        resolve_id = new_id()
        body = build_artifact_resolve(
            request_id=resolve_id,
            issue_instant=now,
            destination=config.idp_ars_url,
            issuer=config.sp_entity_id,
            artifact=artifact,
            key_pem=config.sp_key_pem,
            cert_pem=config.sp_cert_pem,
        )
        data = self._post(body)
        try:
            artifact_response = soap_body_child(data)
            response = self._check_artifact_response(artifact_response, resolve_id)
        except XmlRejected as exc:
            raise DigidFailed(f"artifact response: {exc}") from None
        return self._check_response(artifact_response, response, expected_request_id, min_level)

    def _post(self, body: bytes) -> bytes:
        """R6 with one overall deadline (``exchange_timeout``) for connect, send and reading the whole answer.

        Per-socket time-outs bound each read, not the sum: an ArtifactResponse that trickles in a byte every
        few seconds would otherwise hold the citizen's request until the web worker is killed (a bare 500,
        nothing recorded). The exchange runs in a helper thread; the caller waits for it until the deadline
        and then gives up with DigidFailed (the web layer shows Logius' sentence and records the failure).
        The helper stops reading at its next chunk and closes the connection."""
        deadline = time.monotonic() + self.config.exchange_timeout
        outcome: dict[str, Any] = {}
        finished = threading.Event()
        abandoned = threading.Event()

        def exchange() -> None:
            try:
                outcome["data"] = self._exchange(body, deadline, abandoned)
            except BaseException as exc:  # handed to the caller below
                outcome["error"] = exc
            finally:
                finished.set()

        threading.Thread(target=exchange, name="digid-artifact-resolve", daemon=True).start()
        if not finished.wait(max(0.0, deadline - time.monotonic())):
            abandoned.set()
            raise DigidFailed(f"back channel deadline of {self.config.exchange_timeout:g} s exceeded")
        if "error" in outcome:
            raise outcome["error"]
        return bytes(outcome["data"])

    def _exchange(self, body: bytes, deadline: float, abandoned: threading.Event) -> bytes:
        """SOAP 1.1 over mutual TLS, verified against the CA bundle, time-outs within the deadline, size limit,
        one retry on connect."""
        config = self.config
        for attempt in (1, 2):
            left = max(0.01, deadline - time.monotonic())
            try:
                # Session.post without re-reading the environment (settings from __init__); one session, so
                # the (mutual TLS) connection is reused from login to login.
                request = self._resolve_request(body)
                response = self._http.send(
                    request,
                    timeout=(min(config.connect_timeout, left), min(config.read_timeout, left)),
                    allow_redirects=False,
                    **self._send_settings,
                )
                break
            except requests.exceptions.SSLError:
                raise DigidFailed("back channel TLS error") from None
            except requests.exceptions.ConnectionError as exc:
                if not _request_never_left(exc):
                    raise DigidFailed("back channel connection lost") from None
                if attempt == 2 or abandoned.is_set():
                    raise DigidFailed("back channel unreachable") from None
            except requests.exceptions.RequestException as exc:
                raise DigidFailed(f"back channel {type(exc).__name__}") from None
        try:
            if response.status_code != 200:
                raise DigidFailed(f"back channel HTTP {response.status_code}")
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > config.max_response_bytes:
                raise DigidFailed("artifact response too large")
            chunks: list[bytes] = []
            size = 0
            while True:
                if abandoned.is_set() or time.monotonic() > deadline:
                    raise DigidFailed("back channel deadline exceeded")
                chunk = _read_some(response)
                if not chunk:
                    return b"".join(chunks)
                size += len(chunk)
                if size > config.max_response_bytes:
                    raise DigidFailed("artifact response too large")
                chunks.append(chunk)
        except requests.exceptions.RequestException as exc:
            raise DigidFailed(f"back channel {type(exc).__name__}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:  # raw reads raise urllib3's own errors
            raise DigidFailed(f"back channel {type(exc).__name__}") from None
        finally:
            response.close()

    def _resolve_request(self, body: bytes) -> requests.PreparedRequest:
        """What ``Session.prepare_request`` makes of the ArtifactResolve POST, from the request prepared at
        start-up: a copy with this body (and its Content-Length) and the session's cookies as they are now.
        A session-wide ``auth`` (which may sign the body) gets the full preparation."""
        if self._http.auth is not None:
            return self._http.prepare_request(
                requests.Request("POST", self.config.idp_ars_url, data=body, headers=self._resolve_headers)
            )
        request = self._resolve_template.copy()
        request.prepare_body(body, None)
        if self._http.cookies:
            request.prepare_cookies(self._http.cookies)
        return request

    def _check_artifact_response(self, artifact_response: etree._Element, resolve_id: str) -> etree._Element:
        """R7 (SAML core §3.5.2, Bindings §3.6.5): our InResponseTo, DigiD's Issuer, a valid signature by a
        pinned certificate, Success, and exactly one samlp:Response (none: DigiD's expired artifact)."""
        if artifact_response.tag != q(NS_SAMLP, "ArtifactResponse"):
            raise XmlRejected("not an ArtifactResponse")
        if artifact_response.get("Version") != "2.0":
            raise XmlRejected("wrong SAML version")
        checks.check_equal(artifact_response.get("InResponseTo"), resolve_id, "ArtifactResponse InResponseTo")
        checks.check_issuer(artifact_response, self.config.idp_entity_id, "ArtifactResponse")
        verify_enveloped(artifact_response, self.config.idp_certs)
        top, sub = checks.status_codes(artifact_response)
        if top != checks.SUCCESS:
            raise DigidFailed(f"artifact response status {checks._short(top)}/{checks._short(sub)}")
        responses = artifact_response.findall(q(NS_SAMLP, "Response"))
        document = artifact_response.getroottree().getroot()
        if not responses:
            raise DigidFailed("artifact response without a Response (artifact expired)")
        if len(responses) != 1 or len(xpath(document, "//samlp:Response")) != 1:
            raise DigidFailed("more than one Response")
        return responses[0]

    def _check_response(
        self,
        artifact_response: etree._Element,
        response: etree._Element,
        expected_request_id: str,
        min_level: AssuranceLevel,
    ) -> DigidIdentity:
        config = self.config
        checks.check_equal(response.get("InResponseTo"), expected_request_id, "Response InResponseTo")
        destination = response.get("Destination")
        if destination is not None:
            checks.check_equal(destination, config.acs_url, "Response Destination")
        checks.check_issuer(response, config.idp_entity_id, "Response")
        checks.check_response_status(response)

        document = artifact_response.getroottree().getroot()
        assertion = checks.single_assertion(document, response)
        checks.check_inner_response_signature(response, config.idp_certs)
        try:
            verify_enveloped(assertion, config.idp_certs)
        except XmlRejected as exc:
            raise DigidFailed(f"assertion: {exc}") from None

        self._library_validation(response, expected_request_id, min_level, assertion.get("ID") or "")

        now = self._clock.now()
        drift = timedelta(seconds=config.clock_drift_seconds)
        checks.check_issuer(assertion, config.idp_entity_id, "Assertion")
        if assertion.get("Version") != "2.0":
            raise DigidFailed("Assertion version")
        checks.check_issue_instant(assertion, now, drift, timedelta(seconds=config.max_assertion_age_seconds))
        conditions_end = checks.check_conditions(assertion, sp_entity_id=config.sp_entity_id, now=now, drift=drift)
        confirmation_end = checks.check_subject_confirmation(
            assertion, expected_request_id=expected_request_id, acs_url=config.acs_url, now=now, drift=drift
        )
        bsn = checks.read_bsn(assertion)
        level, authn_instant = checks.read_authn(assertion, min_level)

        keep_until = max(conditions_end, confirmation_end, now) + drift + timedelta(minutes=5)
        response_id = response.get("ID") or ""
        assertion_id = assertion.get("ID") or ""
        replayed = self._one_time.use_once_each(
            (("digid-response", response_id), ("digid-assertion", assertion_id)), keep_until
        )
        if replayed == "digid-response":
            raise DigidFailed("Response ID replayed")
        if replayed is not None:
            raise DigidFailed("Assertion ID replayed")
        return DigidIdentity(
            bsn=bsn,
            level=level,
            assertion_id=assertion_id,
            issuer=config.idp_entity_id,
            assertion_sha256=canonical_sha256(assertion),
            authn_instant=authn_instant,
            assertion_xml=etree.tostring(assertion, encoding="unicode"),
        )

    def _library_validation(
        self, response: etree._Element, expected_request_id: str, min_level: AssuranceLevel, assertion_id: str
    ) -> None:
        """python3-saml's strict validation (schema, signature, conditions; notes §4) on the inner Response."""
        encoded = base64.b64encode(etree.tostring(response)).decode("ascii")
        try:
            library_response = OneLogin_Saml2_Response(self._saml_settings[min_level], encoded)
            library_response.is_valid(self._request_data, expected_request_id, raise_exceptions=True)
            library_assertion_id = library_response.get_assertion_id()
        except Exception as exc:
            code = getattr(exc, "code", "")
            raise DigidFailed(f"python3-saml: {type(exc).__name__} {code}".strip()) from None
        if library_assertion_id != assertion_id:
            raise DigidFailed("python3-saml read another assertion")


def _read_some(response: requests.Response) -> bytes:
    """What the socket has now (at most 64 KiB, one read): a trickle is seen byte by byte, so the deadline is
    checked between reads instead of after a 64 KiB buffer has filled."""
    raw = response.raw
    if isinstance(raw, urllib3.response.BaseHTTPResponse):
        return bytes(raw.read1(65536, decode_content=True))
    return bytes(raw.read(65536))  # an in-process transport (demo, tests): a BytesIO


def _request_never_left(exc: requests.exceptions.ConnectionError) -> bool:
    """R6 "one retry, only on connect errors": refused, DNS or connect time-out, before the ArtifactResolve
    was sent. A connection dropped after sending is not retried (DigiD may have consumed the artifact)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    cause = exc.args[0] if exc.args else None
    return isinstance(getattr(cause, "reason", None), ConnectTimeoutError)  # NewConnectionError is one too
