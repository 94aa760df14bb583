"""The sealed proof PDF and ``verify-proof``: real PAdES seals (pyHanko), real DigiD-shaped XML signatures.

A proof that verifies, and one failure per way of cheating: a changed byte, a swapped embedded
assertion (after and before sealing), an assertion signed by another key, a BSN / level / time in the
text that the assertion does not state, a seal by an untrusted certificate. The timestamp path runs
against a local RFC 3161 stand-in: pyHanko's ``DummyTimeStamper`` behind an HTTP server on port 0.
"""

from __future__ import annotations

import functools
import io
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from asn1crypto import tsp
from pyhanko.keys import load_cert_from_pemder, load_private_key_from_pemder
from pyhanko.pdf_utils.embed import EmbeddedFileObject, FileSpec, embed_file
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko.sign.timestamps.requests_client import RequestsHTTPTimeStamper
from pypdf import PdfReader
from saml_helpers import OTHER_BSN, VALID_BSN, Fixture, keys, make_simulator_world

from zgw_identificatie.adapters.digid.keys import read_pem, simulator_key_files
from zgw_identificatie.adapters.digid.xmldsig import canonical_sha256, parse_xml
from zgw_identificatie.adapters.proof_pdf import ReportlabProofRenderer
from zgw_identificatie.adapters.proof_seal import (
    ASSERTION_FILE,
    SealedProofRenderer,
    Sealer,
    build_renderer,
    generate_seal_certificate,
)
from zgw_identificatie.adapters.proof_verify import verify_proof
from zgw_identificatie.cli import main
from zgw_identificatie.domain.assurance import AssuranceLevel
from zgw_identificatie.domain.errors import RegistryUnavailable
from zgw_identificatie.domain.proof import ProofData
from zgw_identificatie.flows.registration_hook import proof_for
from zgw_identificatie.settings import ConfigError, Settings
from zgw_identificatie.testing.builders import a_proof, a_session

NOW = datetime.now(UTC).replace(microsecond=0)


@functools.cache
def seal_pair(name: str = "Gemeente Voorbeeld zegel (test)") -> tuple[bytes, bytes]:
    return generate_seal_certificate(name)


def renderer(timestamper: object = None) -> SealedProofRenderer:
    key, cert = seal_pair()
    return SealedProofRenderer(ReportlabProofRenderer(), Sealer(key, cert, timestamper=timestamper))  # type: ignore[arg-type]


def signed_assertion(fixture: Fixture | None = None) -> str:
    return (fixture or Fixture(now=NOW)).signed_assertion()


def proof_with(assertion_xml: str, **changes: object) -> ProofData:
    """The proof a login with this assertion produces; ``changes`` make the page say something else."""
    root = parse_xml(assertion_xml)
    values: dict[str, object] = {
        "bsn": VALID_BSN,
        "level": AssuranceLevel.MIDDEN,
        "assertion_id": root.get("ID"),
        "assertion_sha256": canonical_sha256(root),
        "assertion_xml": assertion_xml,
        "zaak_identificatie": "ZAAK-2026-0000000042",
        "behandelaar_id": "local:jdv",
        "gemeentecode": "9999",
        "rsin": "002220647",
        "service_version": "zgw-identificatie 0.1.0",
    }
    values.update(changes)
    return a_proof(NOW + timedelta(seconds=3), **values)


def idp_certs() -> list[str]:
    return [keys("idp").cert_pem]


def sealed(**changes: object) -> bytes:
    return renderer().render(proof_with(signed_assertion(), **changes))


# -- a sealed proof verifies ---------------------------------------------------------------------------


def test_sealing_and_verifying_work_inside_a_running_event_loop() -> None:
    """pyHanko's sync API calls asyncio.run, which refuses to run where a loop is running (an async server,
    or Playwright's sync API that keeps one open in the main thread for the rest of a test run)."""
    import asyncio
    import threading

    results: list[object] = []

    async def inside_a_loop() -> bool:
        pdf = sealed()
        return verify_proof(pdf, digid_certs=idp_certs(), seal_certs=[seal_pair()[1]]).ok

    def in_a_thread_with_its_own_loop() -> None:  # this test's own loop, whatever the main thread runs
        try:
            results.append(asyncio.run(inside_a_loop()))
        except Exception as exc:
            results.append(exc)

    thread = threading.Thread(target=in_a_thread_with_its_own_loop)
    thread.start()
    thread.join(timeout=60)
    assert results == [True], results


def test_a_sealed_proof_verifies() -> None:
    """Seal intact over the whole file, DigiD's signature valid, the page agrees with the assertion."""
    verdict = verify_proof(sealed(), digid_certs=idp_certs(), seal_certs=[seal_pair()[1]])
    assert verdict.ok, verdict.reason
    assert verdict.text().startswith("GELDIG")
    assert VALID_BSN not in verdict.text()  # the verdict names checks, never the BSN


def test_the_assertion_is_embedded_exactly_and_the_page_states_the_new_facts() -> None:
    """digid-assertion.xml holds the assertion byte for byte; behandelaar id, session, gemeentecode, RSIN, version."""
    assertion = signed_assertion()
    pdf = renderer().render(proof_with(assertion))
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.attachments[ASSERTION_FILE] == [assertion.encode("utf-8")]
    text = reader.pages[0].extract_text()
    for expected in ("local:jdv", "sess-test", "9999", "002220647", "zgw-identificatie 0.1.0"):
        assert expected in text, expected


def test_the_seal_keeps_the_accessibility_facts_of_the_readme() -> None:
    """Language nl-NL, the title shown, one page; still not tagged (no structure tree) as the README says."""
    reader = PdfReader(io.BytesIO(sealed()))
    root = reader.trailer["/Root"]
    assert root["/Lang"] == "nl-NL"
    assert root["/ViewerPreferences"]["/DisplayDocTitle"]
    assert "/StructTreeRoot" not in root and "/MarkInfo" not in root
    assert reader.metadata is not None and reader.metadata.title.startswith("Bewijs van identificatie met DigiD")
    assert len(reader.pages) == 1


def test_a_seal_pinned_to_another_certificate_fails() -> None:
    """--seal-cert names the municipality's certificate: a seal made with another key is not trusted."""
    verdict = verify_proof(sealed(), digid_certs=idp_certs(), seal_certs=[seal_pair("Iemand anders")[1]])
    assert not verdict.ok
    assert "niet vertrouwd" in verdict.reason


# -- each way of cheating fails with its own reason ---------------------------------------------------


def test_one_changed_byte_breaks_the_seal() -> None:
    """One byte of the page content changed after sealing (a digit of the zaaknummer): the seal is broken."""
    pdf = sealed()
    at = pdf.index(b"ZAAK-2026-0000000042") + len("ZAAK-2026-000000004")
    changed = pdf[:at] + b"3" + pdf[at + 1 :]
    assert len(changed) == len(pdf) and changed != pdf
    verdict = verify_proof(changed, digid_certs=idp_certs())
    assert not verdict.ok
    assert "zegel is verbroken" in verdict.reason


def test_an_assertion_swapped_after_sealing_is_seen() -> None:
    """Another (genuine) assertion embedded in an update after the seal: the seal no longer covers the file."""
    pdf = sealed()
    other = signed_assertion(Fixture(now=NOW, name_id=f"s00000000:{OTHER_BSN}", assertion_id="_other0000000000001"))
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    embed_file(
        writer,
        FileSpec(
            file_spec_string=ASSERTION_FILE,
            embedded_data=EmbeddedFileObject.from_file_data(writer, data=other.encode()),
        ),
    )
    out = io.BytesIO()
    writer.write(out)
    verdict = verify_proof(out.getvalue(), digid_certs=idp_certs())
    assert not verdict.ok
    assert "na het verzegelen aangevuld of veranderd" in verdict.reason


def test_a_proof_sealed_with_another_assertion_inside_fails_on_the_fingerprint() -> None:
    """The page of one login, the (genuine) assertion of another login embedded, then sealed."""
    page_for = proof_with(signed_assertion())
    other = signed_assertion(Fixture(now=NOW, assertion_id="_other0000000000002"))
    pdf = renderer().render(ProofData(**{**page_for.__dict__, "assertion_xml": other}))
    verdict = verify_proof(pdf, digid_certs=idp_certs())
    assert not verdict.ok
    assert "vingerafdruk" in verdict.reason


def test_an_assertion_signed_by_another_key_fails() -> None:
    """Well-formed, signed, consistent with the page, but not by DigiD's key."""
    forged = signed_assertion(Fixture(now=NOW, assertion_key=keys("attacker")))
    pdf = renderer().render(proof_with(forged))
    verdict = verify_proof(pdf, digid_certs=idp_certs())
    assert not verdict.ok
    assert "handtekening op het DigiD-bericht" in verdict.reason
    assert verify_proof(pdf, digid_certs=[keys("attacker").cert_pem]).ok  # the same file, the attacker's cert


def test_a_bsn_in_the_text_that_differs_from_the_assertion_fails() -> None:
    """The page says OTHER_BSN, DigiD's assertion says VALID_BSN; the reason does not print either."""
    verdict = verify_proof(sealed(bsn=OTHER_BSN), digid_certs=idp_certs())
    assert not verdict.ok
    assert "BSN in het bewijs verschilt" in verdict.reason
    assert OTHER_BSN not in verdict.text() and VALID_BSN not in verdict.text()


def test_a_level_in_the_text_that_differs_from_the_assertion_fails() -> None:
    verdict = verify_proof(sealed(level=AssuranceLevel.SUBSTANTIEEL), digid_certs=idp_certs())
    assert not verdict.ok
    assert "DigiD-niveau" in verdict.reason


def test_a_time_in_the_text_far_from_the_assertion_fails() -> None:
    proof = proof_with(signed_assertion())
    for moment in (NOW - timedelta(minutes=5), NOW + timedelta(hours=1)):
        pdf = renderer().render(ProofData(**{**proof.__dict__, "identified_at": moment}))
        verdict = verify_proof(pdf, digid_certs=idp_certs())
        assert not verdict.ok
        assert "tijd in het bewijs" in verdict.reason


def test_an_unsealed_pdf_and_a_pdf_without_assertion_fail() -> None:
    plain = ReportlabProofRenderer().render(proof_with(signed_assertion()))
    assert "geen zegel" in verify_proof(plain, digid_certs=idp_certs()).reason
    without = renderer().render(ProofData(**{**proof_with(signed_assertion()).__dict__, "assertion_xml": None}))
    assert "digid-assertion.xml" in verify_proof(without, digid_certs=idp_certs()).reason
    assert "geen leesbare PDF" in verify_proof(b"not a pdf", digid_certs=idp_certs()).reason


# -- the command line --------------------------------------------------------------------------------------


def test_the_command_exits_0_for_a_good_proof_and_1_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, bad, cert, seal = (tmp_path / n for n in ("good.pdf", "bad.pdf", "digid.crt", "seal.crt"))
    good.write_bytes(sealed())
    bad.write_bytes(sealed(bsn=OTHER_BSN))
    cert.write_text(keys("idp").cert_pem)
    seal.write_bytes(seal_pair()[1])
    assert main(["verify-proof", str(good), "--digid-cert", str(cert), "--seal-cert", str(seal)]) == 0
    assert capsys.readouterr().out.startswith("GELDIG")
    assert main(["verify-proof", str(bad), "--digid-cert", str(cert)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("ONGELDIG: het BSN in het bewijs verschilt")


# -- the assertion flows from the ACS into the sealed proof ------------------------------------------------


def test_a_simulator_login_yields_a_proof_that_verifies(tmp_path: Path) -> None:
    """The whole chain: SAML round trip → DigidIdentity.assertion_xml → ProofData → sealed PDF → verified
    with the simulator's IdP certificate; the demo seal certificate is generated into the instance folder."""
    world = make_simulator_world(tmp_path)
    identity = world.login()
    assert identity.assertion_xml is not None and "ds:Signature" in identity.assertion_xml
    settings = Settings(instance_path=str(tmp_path))
    session = a_session(world.clock.now())
    proof = proof_for(session, identity, settings)
    assert proof.assertion_xml == identity.assertion_xml
    assert ProofData.from_dict(proof.to_dict()).assertion_xml == identity.assertion_xml  # the encrypted payload
    pdf = build_renderer(settings).render(proof)
    assert (tmp_path / "seal" / "seal.crt").is_file()
    assert (tmp_path / "seal" / "seal.key").stat().st_mode & 0o077 == 0
    digid_cert = read_pem(simulator_key_files(tmp_path).idp_cert)
    verdict = verify_proof(pdf, digid_certs=[digid_cert], seal_certs=[(tmp_path / "seal" / "seal.crt").read_bytes()])
    assert verdict.ok, verdict.reason
    assert not verify_proof(pdf, digid_certs=idp_certs()).ok  # another DigiD certificate


def test_production_requires_a_seal_certificate(tmp_path: Path) -> None:
    settings = Settings(instance_path=str(tmp_path), env="production")
    with pytest.raises(ConfigError, match="ZGWID_SEAL_CERT_FILE"):
        build_renderer(settings)


def test_seal_files_from_the_settings_are_used(tmp_path: Path) -> None:
    key, cert = seal_pair("Gemeente Elders zegel")
    (tmp_path / "k.pem").write_bytes(key)
    (tmp_path / "c.pem").write_bytes(cert)
    settings = Settings(instance_path=str(tmp_path))
    settings.seal.key_file, settings.seal.cert_file = str(tmp_path / "k.pem"), str(tmp_path / "c.pem")
    pdf = build_renderer(settings).render(proof_with(signed_assertion()))
    assert verify_proof(pdf, digid_certs=idp_certs(), seal_certs=[cert]).ok
    assert not (tmp_path / "seal").exists()


def test_a_seal_file_that_cannot_be_used_stops_the_start_with_the_setting_named(tmp_path: Path) -> None:
    """Checked when the app is built (with cryptography), although pyHanko is only loaded for the first proof."""
    from cryptography.hazmat.primitives import serialization

    key, cert = seal_pair("Gemeente Elders zegel")
    locked = serialization.load_pem_private_key(key, password=None).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"juist-wachtwoord"),
    )
    cases = {
        "key garbage": (b"geen sleutel", cert, "", "the key cannot be loaded"),
        "cert garbage": (key, b"geen certificaat", "", "holds no certificate"),
        "wrong password": (locked, cert, "fout-wachtwoord", "the key cannot be loaded"),
    }
    for key_bytes, cert_bytes, password, message in cases.values():
        (tmp_path / "k.pem").write_bytes(key_bytes)
        (tmp_path / "c.pem").write_bytes(cert_bytes)
        settings = Settings(instance_path=str(tmp_path))
        settings.seal.key_file, settings.seal.cert_file = str(tmp_path / "k.pem"), str(tmp_path / "c.pem")
        settings.seal.key_password = password
        with pytest.raises(ConfigError, match=message):
            build_renderer(settings)
    # A key with its password, and the certificate as DER: both accepted, and the proof verifies.
    from cryptography import x509

    (tmp_path / "k.pem").write_bytes(locked)
    (tmp_path / "c.pem").write_bytes(x509.load_pem_x509_certificate(cert).public_bytes(serialization.Encoding.DER))
    settings.seal.key_password = "juist-wachtwoord"
    pdf = build_renderer(settings).render(proof_with(signed_assertion()))
    assert verify_proof(pdf, digid_certs=idp_certs(), seal_certs=[cert]).ok


def test_building_the_app_loads_neither_pyhanko_nor_reportlab(tmp_path: Path) -> None:
    """About half a second of every web worker's start; the first proof loads them."""
    import subprocess
    import sys

    script = (
        "import sys\nfrom zgw_identificatie.adapters.proof_seal import build_renderer\n"
        "from zgw_identificatie.settings import Settings\n"
        f"build_renderer(Settings(instance_path={str(tmp_path)!r}))\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pyhanko', 'reportlab', 'aiohttp'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


# -- the trusted timestamp, against a local TSA ------------------------------------------------------------


class _Tsa(BaseHTTPRequestHandler):
    stamper: DummyTimeStamper
    requests_seen: list[int]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        assert self.headers["Content-Type"] == "application/timestamp-query"
        answer = self.stamper.request_tsa_response(tsp.TimeStampReq.load(body)).dump()
        self.requests_seen.append(len(body))
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def tsa(tmp_path: Path) -> Iterator[tuple[str, bytes, list[int]]]:
    """An RFC 3161 TSA on an ephemeral port: (URL, its certificate PEM, request sizes seen)."""
    key, cert = generate_seal_certificate("Test-tijdstempeldienst")
    (tmp_path / "tsa.key").write_bytes(key)
    (tmp_path / "tsa.crt").write_bytes(cert)
    seen: list[int] = []
    handler = type(
        "Tsa",
        (_Tsa,),
        {
            "stamper": DummyTimeStamper(
                tsa_cert=load_cert_from_pemder(str(tmp_path / "tsa.crt")),
                tsa_key=load_private_key_from_pemder(str(tmp_path / "tsa.key"), passphrase=None),
            ),
            "requests_seen": seen,
        },
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/tsa", cert, seen
    finally:
        server.shutdown()
        server.server_close()


def test_the_seal_carries_a_trusted_timestamp_from_the_configured_tsa(tsa: tuple[str, bytes, list[int]]) -> None:
    url, tsa_cert, seen = tsa
    pdf = renderer(RequestsHTTPTimeStamper(url, timeout=5)).render(proof_with(signed_assertion()))
    assert len(seen) >= 1  # the TSA was asked
    verdict = verify_proof(pdf, digid_certs=idp_certs(), seal_certs=[seal_pair()[1]], tsa_certs=[tsa_cert])
    assert verdict.ok, verdict.reason
    assert any("vertrouwd tijdstempel (RFC 3161)" in fact for fact in verdict.facts)
    unpinned = verify_proof(pdf, digid_certs=idp_certs(), seal_certs=[seal_pair()[1]])
    assert unpinned.ok, unpinned.reason
    assert any("--tsa-cert" in fact for fact in unpinned.facts)  # says the TSA was not pinned
    wrong_tsa = generate_seal_certificate("Andere tijdstempeldienst")[1]
    verdict = verify_proof(pdf, digid_certs=idp_certs(), seal_certs=[seal_pair()[1]], tsa_certs=[wrong_tsa])
    assert not verdict.ok and "tijdstempel" in verdict.reason


def test_the_tsa_url_setting_reaches_the_sealer(tsa: tuple[str, bytes, list[int]], tmp_path: Path) -> None:
    url, _cert, seen = tsa
    settings = Settings(instance_path=str(tmp_path))
    settings.seal.tsa_url = url
    build_renderer(settings).render(proof_with(signed_assertion()))
    assert len(seen) >= 1


def test_an_unreachable_tsa_is_a_transient_failure(tmp_path: Path) -> None:
    """The registration retries later (RegistryUnavailable), it does not store an unstamped proof."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    sealer = renderer(RequestsHTTPTimeStamper(f"http://127.0.0.1:{port}/tsa", timeout=2))
    with pytest.raises(RegistryUnavailable, match="timestamp authority"):
        sealer.render(proof_with(signed_assertion()))
