"""§8.5 / R6: the artifact back channel over a real TLS server on 127.0.0.1.

A throwaway PKI (test CA, an untrusted CA, a client CA) is generated with ``cryptography``; an
``http.server`` behind ``ssl.SSLContext(verify_mode=CERT_REQUIRED)`` answers the SOAP ArtifactResolve
with the validly signed fixture of ``saml_helpers``. The DigidServiceProvider is configured through
``sp_config_from_settings`` with no in-process transport mounted, so ``requests`` really does TLS.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lxml import etree
from saml_helpers import BASE_URL, IDP_ENTITY_ID, IDP_SSO_URL, VALID_BSN, Fixture, keys, now_utc

from zgw_identificatie.adapters.digid import DigidServiceProvider, sp_config_from_settings
from zgw_identificatie.adapters.digid.artifact import make_artifact
from zgw_identificatie.domain.assurance import AssuranceLevel
from zgw_identificatie.domain.errors import DigidFailed
from zgw_identificatie.domain.identity import DigidIdentity
from zgw_identificatie.settings import DigidSettings, Settings
from zgw_identificatie.testing.clock import FixedClock
from zgw_identificatie.testing.digid import MemoryOneTimeIds

ARS_PATH = "/saml/idp/resolve_artifact"
READ_TIMEOUT = 1.0
CONNECT_TIMEOUT = 1.0
TRICKLE_INTERVAL = 0.1  # well inside READ_TIMEOUT: no single read ever times out
CLIENT_SUBJECT = "zgwid test SP client (PKIoverheid stand-in)"


# -- a throwaway PKI ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    cert_file: Path
    key_file: Path
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _issue(
    folder: Path,
    name: str,
    common_name: str,
    *,
    issuer: Issued | None = None,
    ca: bool = False,
    dns: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
    usage: x509.ObjectIdentifier | None = None,
) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = datetime.now(UTC) - timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(IPv4Address(ip)) for ip in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    cert_file, key_file = folder / f"{name}.crt", folder / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Issued(cert_file=cert_file, key_file=key_file, cert=cert, key=key)


@dataclass(frozen=True)
class Pki:
    folder: Path
    ca: Issued  # stands in for the PKIoverheid private G1 root in ca_bundle_file
    server: Issued  # 127.0.0.1 and localhost, from ca
    untrusted_server: Issued  # 127.0.0.1, from a CA the SP does not trust
    wrong_host_server: Issued  # from ca, but for another host name
    client_ca: Issued  # what the server accepts client certificates from
    client: Issued  # the SP's TLS client certificate


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    server_auth = ExtendedKeyUsageOID.SERVER_AUTH
    ca = _issue(folder, "ca", "Test Staat der Nederlanden Private Root", ca=True)
    other_ca = _issue(folder, "other-ca", "Untrusted test CA", ca=True)
    client_ca = _issue(folder, "client-ca", "Test client CA", ca=True)
    return Pki(
        folder=folder,
        ca=ca,
        server=_issue(
            folder, "server", "127.0.0.1", issuer=ca, dns=("localhost",), ips=("127.0.0.1",), usage=server_auth
        ),
        untrusted_server=_issue(
            folder,
            "untrusted-server",
            "127.0.0.1",
            issuer=other_ca,
            dns=("localhost",),
            ips=("127.0.0.1",),
            usage=server_auth,
        ),
        wrong_host_server=_issue(
            folder, "wrong-host", "was-elsewhere.example", issuer=ca, dns=("was-elsewhere.example",), usage=server_auth
        ),
        client_ca=client_ca,
        client=_issue(folder, "client", CLIENT_SUBJECT, issuer=client_ca, usage=ExtendedKeyUsageOID.CLIENT_AUTH),
    )


# -- DigiD's artifact resolution service as a real HTTPS server -------------------------------------------


class _ArsHandler(BaseHTTPRequestHandler):
    server: ArsServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        peer = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
        self.server.requests.append({"path": self.path, "peer": peer, "body": body})
        if self.server.hang.is_set():
            self.server.release.wait(10)
            return
        if self.server.drop.is_set():
            self.close_connection = True
            return
        answer = self.server.answer(body)
        self.send_response(200)
        self.send_header("Content-Type", "text/xml; charset=utf-8")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        if self.server.trickle_bytes:
            self.wfile.flush()
            try:
                for i in range(min(self.server.trickle_bytes, len(answer))):
                    self.wfile.write(answer[i : i + 1])
                    self.wfile.flush()
                    self.server.trickled += 1
                    time.sleep(TRICKLE_INTERVAL)
                self.wfile.write(answer[self.server.trickle_bytes :])
                self.wfile.flush()
                self.server.trickle_done.set()
            except OSError:
                self.server.trickle_broken.set()  # the client closed the connection
            return
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ArsServer(ThreadingHTTPServer):
    """HTTPS on an ephemeral port of 127.0.0.1 that requires a client certificate from the client CA."""

    daemon_threads = True

    def __init__(self, cert: Issued, client_ca: Issued, answer: Callable[[bytes], bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _ArsHandler)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert.cert_file, cert.key_file)
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.load_verify_locations(client_ca.cert_file)
        self.answer = answer
        self.connections = 0
        self.handshake_errors: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.hang = threading.Event()
        self.drop = threading.Event()  # read the ArtifactResolve, then close without an answer
        self.release = threading.Event()
        self.trickle_bytes = 0  # > 0: send the headers, then this many body bytes one by one, then the rest
        self.trickled = 0
        self.trickle_done = threading.Event()
        self.trickle_broken = threading.Event()

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        self.connections += 1
        try:
            return self.context.wrap_socket(sock, server_side=True), address
        except OSError as exc:  # handshake refused: a missing or untrusted client certificate
            self.handshake_errors.append(type(exc).__name__ + ": " + str(exc))
            sock.close()
            raise

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}{ARS_PATH}"


@dataclass
class World:
    pki: Pki
    folder: Path
    clock: FixedClock = field(default_factory=lambda: FixedClock(now_utc()))
    fixture: Fixture | None = None
    servers: list[ArsServer] = field(default_factory=list)
    sessions: list[requests.Session] = field(default_factory=list)

    def answer(self, body: bytes) -> bytes:
        assert self.fixture is not None
        root = etree.fromstring(body)
        resolve_id = root.xpath("//samlp:ArtifactResolve/@ID", namespaces={"samlp": _SAMLP})[0]
        return self.fixture.envelope(str(resolve_id))

    def server(self, cert: Issued) -> ArsServer:
        server = ArsServer(cert, self.pki.client_ca, self.answer)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.servers.append(server)
        return server

    def sp(self, ars_url: str, *, client_cert: bool = True, exchange_timeout: float = 15.0) -> DigidServiceProvider:
        """The SP built from settings, as in production: CA bundle = the test CA, client cert from the client CA."""
        idp_cert = self.folder / "idp.crt"
        sp_cert, sp_key = self.folder / "sp.crt", self.folder / "sp.key"
        idp_cert.write_text(keys("idp").cert_pem)
        sp_cert.write_text(keys("sp").cert_pem)
        sp_key.write_text(keys("sp").key_pem)
        digid = DigidSettings(
            simulator=False,
            idp_entity_id=IDP_ENTITY_ID,
            idp_sso_url=IDP_SSO_URL,
            idp_ars_url=ars_url,
            idp_cert_files=[str(idp_cert)],
            sp_key_file=str(sp_key),
            sp_cert_file=str(sp_cert),
            tls_client_cert_file=str(self.pki.client.cert_file) if client_cert else "",
            tls_client_key_file=str(self.pki.client.key_file) if client_cert else "",
            ca_bundle_file=str(self.pki.ca.cert_file),
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            exchange_timeout=exchange_timeout,
        )
        config = sp_config_from_settings(Settings(base_url=BASE_URL, digid=digid))
        http = requests.Session()  # the plain HTTPAdapter: no in-process transport is mounted
        self.sessions.append(http)
        return DigidServiceProvider(config, one_time=MemoryOneTimeIds(), clock=self.clock, http=http)

    def login(self, sp: DigidServiceProvider) -> DigidIdentity:
        request_id = sp.begin_login(min_level=AssuranceLevel.MIDDEN, relay_state="r").request_id
        self.fixture = Fixture(now=self.clock.now(), request_id=request_id)
        return sp.complete_login(
            artifact=make_artifact(IDP_ENTITY_ID), expected_request_id=request_id, min_level=AssuranceLevel.MIDDEN
        )


_SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"


@pytest.fixture
def world(pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    w = World(pki=pki, folder=tmp_path)
    yield w
    for http in w.sessions:
        http.close()
    for server in w.servers:
        server.release.set()
        server.shutdown()
        server.server_close()


def _refused(world: World, sp: DigidServiceProvider, match: str) -> DigidFailed:
    with pytest.raises(DigidFailed, match=match) as info:
        world.login(sp)
    return info.value


def _eventually(check: Callable[[], object], seconds: float = 2.0) -> bool:
    """The server thread records a refused handshake just after the client has seen the alert."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# -- the tests ------------------------------------------------------------------------------------------------


def test_a_valid_login_over_mutual_tls_succeeds_and_the_server_saw_the_client_certificate(world: World) -> None:
    """R6: the SP verifies the server against the CA bundle and presents its client certificate."""
    server = world.server(world.pki.server)
    identity = world.login(world.sp(server.url))
    assert identity.bsn.value == VALID_BSN and identity.level is AssuranceLevel.MIDDEN
    (request,) = server.requests
    assert request["path"] == ARS_PATH
    assert request["peer"] is not None
    assert (("commonName", CLIENT_SUBJECT),) in request["peer"]["subject"]
    assert server.handshake_errors == []


def test_later_logins_reuse_the_mutual_tls_connection(world: World) -> None:
    """One SP keeps its back-channel connection: three logins, one TCP connection and one TLS handshake
    (each new handshake costs the SP a private-key operation and a certificate-chain check)."""
    server = world.server(world.pki.server)
    sp = world.sp(server.url)
    for i in range(3):
        request_id = sp.begin_login(min_level=AssuranceLevel.MIDDEN, relay_state="r").request_id
        world.fixture = Fixture(
            now=world.clock.now(), request_id=request_id, response_id=f"_r{i:040d}", assertion_id=f"_a{i:040d}"
        )
        identity = sp.complete_login(
            artifact=make_artifact(IDP_ENTITY_ID), expected_request_id=request_id, min_level=AssuranceLevel.MIDDEN
        )
        assert identity.bsn.value == VALID_BSN
    assert len(server.requests) == 3
    assert server.connections == 1


def test_a_server_certificate_from_an_untrusted_ca_is_refused_without_a_retry(world: World) -> None:
    """§8.5: a server whose chain does not end in the configured CA bundle gets no ArtifactResolve."""
    server = world.server(world.pki.untrusted_server)
    _refused(world, world.sp(server.url), "TLS")
    assert server.requests == []
    assert server.connections == 1


def test_a_server_certificate_for_another_host_name_is_refused(world: World) -> None:
    """§8.5: a certificate from the trusted CA but for another name than the ARS URL's host is refused."""
    server = world.server(world.pki.wrong_host_server)
    _refused(world, world.sp(server.url), "TLS")
    assert server.requests == []
    assert server.connections == 1


def test_an_sp_without_an_accepted_client_certificate_is_refused_by_the_server(world: World) -> None:
    """§8.5: with the TLS client cert unset the SP falls back to its self-signed SAML cert; the server refuses."""
    server = world.server(world.pki.server)
    sp = world.sp(server.url, client_cert=False)
    assert sp.config.tls_client_cert_file == str(world.folder / "sp.crt")
    _refused(world, sp, "TLS")
    assert server.requests == []
    assert server.connections == 1
    assert _eventually(lambda: server.handshake_errors), "the server did not refuse the handshake"


def test_a_server_that_never_answers_fails_within_the_read_timeout(world: World) -> None:
    """R6: an ARS that takes the request and then sleeps is DigidFailed after ~read_timeout, not retried."""
    server = world.server(world.pki.server)
    server.hang.set()
    sp = world.sp(server.url)
    started = time.monotonic()
    _refused(world, sp, "back channel")
    elapsed = time.monotonic() - started
    assert READ_TIMEOUT * 0.8 <= elapsed < READ_TIMEOUT + 1.5
    assert len(server.requests) == 1


def test_a_server_that_accepts_tcp_and_never_speaks_tls_fails_quickly(world: World) -> None:
    """R6: a listener that accepts the connection and then sleeps cannot hold the login beyond the time-outs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_sleep() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept_and_sleep, daemon=True)
    thread.start()
    try:
        sp = world.sp(f"https://127.0.0.1:{listener.getsockname()[1]}{ARS_PATH}")
        started = time.monotonic()
        _refused(world, sp, "back channel")
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()
    assert elapsed < CONNECT_TIMEOUT + READ_TIMEOUT + 1
    assert len(accepted) == 1


def test_a_server_that_drops_the_connection_after_the_request_gets_it_only_once(world: World) -> None:
    """R6: only connect errors are retried; an ArtifactResolve that reached the server is never sent twice."""
    server = world.server(world.pki.server)
    server.drop.set()
    _refused(world, world.sp(server.url), "connection lost")
    assert len(server.requests) == 1
    assert server.connections == 1


def test_a_refused_connection_is_retried_once_and_then_refused(world: World) -> None:
    """R6: nothing listens on the port → one retry, then DigidFailed (unreachable), quickly."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    _refused(world, world.sp(f"https://127.0.0.1:{port}{ARS_PATH}"), "unreachable")
    assert time.monotonic() - started < CONNECT_TIMEOUT


def test_a_trickling_artifact_response_ends_at_the_overall_deadline_and_the_connection_is_closed(world: World) -> None:
    """Issue 9 #6: a byte every 0.1 s never trips the per-read time-out. Without one deadline for the whole
    exchange the login would wait for all 60 trickled bytes and then succeed; with a 1 s deadline it is
    refused long before (fewer bytes read than trickled), and the SP closes the connection."""
    server = world.server(world.pki.server)
    server.trickle_bytes = 60
    _refused(world, world.sp(server.url, exchange_timeout=1.0), "deadline")
    assert 0 < server.trickled < server.trickle_bytes
    assert _eventually(server.trickle_broken.is_set, seconds=5.0), "the SP kept the trickling connection open"
    assert not server.trickle_done.is_set()
    assert len(server.requests) == 1


def test_a_slow_but_complete_artifact_response_within_the_deadline_is_accepted(world: World) -> None:
    """The deadline bounds the exchange, it does not refuse a slow answer that completes in time."""
    server = world.server(world.pki.server)
    server.trickle_bytes = 5
    identity = world.login(world.sp(server.url, exchange_timeout=10.0))
    assert identity.bsn.value == VALID_BSN
    assert server.trickle_done.is_set() and server.trickled == 5
