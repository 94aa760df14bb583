"""The sealed proof: a PAdES signature with the municipality's seal, the DigiD assertion embedded.

``SealedProofRenderer`` wraps the reportlab renderer (ports.ProofRenderer): it renders the page,
embeds the signed ``saml:Assertion`` DigiD sent (``digid-assertion.xml``, an associated file with
relationship ``/Source``) and seals the whole with an invisible PAdES signature (``ETSI.CAdES.detached``,
SHA-256) made with the municipality's certificate, with an RFC 3161 timestamp when
``seal.tsa_url`` is set. Everything after the page (the embedded assertion, the signature field) is
inside the signed byte range, so any change afterwards breaks the seal in every PDF reader.

The seal certificate and key are PEM files (``seal.cert_file``, ``seal.key_file``): in production the
municipality's PKIoverheid organisation certificate (``seal.cert_file`` may hold the chain after the
certificate). Outside production, without files, a self-signed demo certificate is generated into
``<instance>/seal`` on first use (like the DigiD simulator's keys); it says so in its name.
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.x509.oid import NameOID

from ..domain.errors import RegistryUnavailable
from ..domain.proof import ProofData
from ..ports import ProofRenderer
from ..settings import ConfigError, Settings

if TYPE_CHECKING:
    from pyhanko.sign.timestamps import TimeStamper

# pyHanko (with aiohttp) and reportlab are imported when the first proof is made, not when the app starts:
# together about half a second of every web worker's start, and a web worker that leaves registrations to
# the worker process never makes a proof. The seal's key and certificate are still checked at start-up
# (with cryptography), so a wrong file stops the start with a clear message as before.

log = logging.getLogger(__name__)

ASSERTION_FILE = "digid-assertion.xml"
ASSERTION_MIME = "application/samlassertion+xml"
SEAL_FIELD = "Zegel"
SEAL_REASON = "Bewijs van identificatie met DigiD, vastgelegd door de gemeente"


@dataclass(frozen=True)
class SealFiles:
    key: Path
    cert: Path


def demo_seal_files(instance_path: str | os.PathLike[str], gemeente: str) -> SealFiles:
    """A self-signed seal certificate for the demo and tests, generated on first use (key 0600).

    Key and certificate are written to a private temporary folder that is renamed into place, so two
    processes starting at once never pair one's key with the other's certificate."""
    folder = Path(instance_path) / "seal"
    files = SealFiles(key=folder / "seal.key", cert=folder / "seal.crt")
    if files.key.is_file() and files.cert.is_file():
        return files
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".seal-", dir=folder.parent))
    key_pem, cert_pem = generate_seal_certificate(f"{gemeente} zegel (demo, geen PKIoverheid)")
    fd = os.open(tmp / "seal.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_pem)
    (tmp / "seal.crt").write_bytes(cert_pem)
    try:
        os.rename(tmp, folder)
    except OSError:  # another process was first (or an old, incomplete folder is in the way)
        shutil.rmtree(tmp, ignore_errors=True)
        if not (files.key.is_file() and files.cert.is_file()):
            raise ConfigError(f"{folder} exists but holds no seal.key and seal.crt; remove it") from None
    return files


def generate_seal_certificate(common_name: str, *, days: int = 3650) -> tuple[bytes, bytes]:
    """(key PEM, certificate PEM): self-signed RSA 2048 with the key usages of a seal (tests and demo)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
        ]
    )
    start = datetime.now(UTC) - timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


@functools.cache
def _loaded_key_signer_class() -> type:
    from pyhanko.sign import signers
    from pyhanko_certvalidator.util import get_pyca_cryptography_hash

    class _LoadedKeySigner(signers.SimpleSigner):
        """pyHanko's SimpleSigner parses the private key again for every signature (twice per PDF), and
        cryptography's RSA key check makes that ~100 ms each; this one signs with a key loaded once."""

        loaded_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None = None

        def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
            mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)
            try:
                algorithm = mechanism.signature_algo
            except ValueError:
                algorithm = mechanism["algorithm"].native
            key = self.loaded_key
            if algorithm == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPrivateKey):
                return key.sign(data, PKCS1v15(), get_pyca_cryptography_hash(digest_algorithm))
            if algorithm == "ecdsa" and isinstance(key, ec.EllipticCurvePrivateKey):
                return key.sign(data, ec.ECDSA(get_pyca_cryptography_hash(digest_algorithm)))
            return bytes(super().sign_raw(data, digest_algorithm))

    return _LoadedKeySigner


def _read_certificates(cert_pem: bytes) -> list[x509.Certificate]:
    """The certificate (and any chain after it), PEM or DER, as pyHanko's loader reads them."""
    try:
        return x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        try:
            return [x509.load_der_x509_certificate(cert_pem)]
        except ValueError:
            return []


def _read_private_key(key_pem: bytes, password: str) -> Any:
    secret = password.encode() if password else None
    try:
        return serialization.load_pem_private_key(key_pem, password=secret)
    except ValueError:
        return serialization.load_der_private_key(key_pem, password=secret)


class Sealer:
    """Embeds the assertion and seals; ``timestamper`` adds an RFC 3161 signature timestamp."""

    def __init__(self, key_pem: bytes, cert_pem: bytes, *, password: str = "", timestamper: TimeStamper | None = None):
        certs = _read_certificates(cert_pem)
        if not certs:
            raise ConfigError("ZGWID_SEAL_CERT_FILE holds no certificate")
        self._key = _read_private_key(key_pem, password)  # a wrong file or password raises here, at start-up
        self._certs_der = [c.public_bytes(serialization.Encoding.DER) for c in certs]
        self._signer: Any = None
        self._lock = threading.Lock()
        self.timestamper = timestamper

    @property
    def signer(self) -> Any:
        """pyHanko's signer, made (and pyHanko imported) for the first proof."""
        with self._lock:
            if self._signer is None:
                from asn1crypto import keys as asn1_keys
                from asn1crypto import x509 as asn1_x509
                from pyhanko_certvalidator.registry import SimpleCertificateStore

                certs = [asn1_x509.Certificate.load(der) for der in self._certs_der]
                key_der = self._key.private_bytes(
                    serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
                signer = _loaded_key_signer_class()(
                    signing_cert=certs[0],
                    signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
                    cert_registry=SimpleCertificateStore.from_certs(certs),
                )
                if isinstance(self._key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
                    signer.loaded_key = self._key
                self._signer = signer
            return self._signer

    def seal(self, pdf: bytes, *, assertion_xml: bytes | None, name: str, location: str = "") -> bytes:
        from pyhanko.pdf_utils import generic
        from pyhanko.pdf_utils.embed import EmbeddedFileObject, EmbeddedFileParams, FileSpec, embed_file
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
        from pyhanko.sign import fields, signers
        from pyhanko.sign.timestamps.common_utils import TimestampRequestError

        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
        if assertion_xml is not None:
            embed_file(
                writer,
                FileSpec(
                    file_spec_string=ASSERTION_FILE,
                    file_name=ASSERTION_FILE,
                    embedded_data=EmbeddedFileObject.from_file_data(
                        writer,
                        data=assertion_xml,
                        mime_type=ASSERTION_MIME,
                        params=EmbeddedFileParams(embed_size=True, embed_checksum=True),
                    ),
                    description="Het ondertekende DigiD-bericht (SAML-assertion), zoals ontvangen",
                    af_relationship=generic.NameObject("/Source"),
                ),
            )
        meta = signers.PdfSignatureMetadata(
            field_name=SEAL_FIELD,
            md_algorithm="sha256",
            subfilter=fields.SigSeedSubFilter.PADES,
            reason=SEAL_REASON,
            name=name,
            location=location or None,
        )
        out = io.BytesIO()
        try:
            outside_any_event_loop(
                lambda: signers.sign_pdf(writer, meta, signer=self.signer, timestamper=self.timestamper, output=out)
            )
        except TimestampRequestError as exc:
            # The TSA did not answer usefully: a transient failure, the registration retries later.
            raise RegistryUnavailable(f"timestamp authority: {type(exc).__name__}") from None
        return out.getvalue()


T = TypeVar("T")


def outside_any_event_loop(work: Callable[[], T]) -> T:
    """pyHanko's sync ``sign_pdf`` and ``validate_pdf_signature`` run ``asyncio.run``, which refuses to start
    in a thread whose event loop is running (an async server, or a test tool that keeps a loop open in the
    main thread). Then the work runs in a short-lived thread of its own; otherwise right here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return work()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="zgwid-seal") as pool:
        return pool.submit(work).result()


class SealedProofRenderer:
    """ports.ProofRenderer: the inner renderer's page, sealed with the assertion embedded."""

    def __init__(self, inner: ProofRenderer, sealer: Sealer, *, name: str = "", location: str = "") -> None:
        self.inner = inner
        self.sealer = sealer
        self.name = name
        self.location = location

    def render(self, proof: ProofData) -> bytes:
        pdf = self.inner.render(proof)
        assertion = proof.assertion_xml.encode("utf-8") if proof.assertion_xml is not None else None
        return self.sealer.seal(pdf, assertion_xml=assertion, name=self.name or proof.gemeente, location=self.location)


def build_sealer(settings: Settings, *, timestamper: TimeStamper | None = None) -> Sealer:
    """The Sealer from the settings (demo files outside production); ConfigError names the wrong setting."""
    seal = settings.seal
    if seal.cert_file or seal.key_file:
        if not (seal.cert_file and seal.key_file):
            raise ConfigError("ZGWID_SEAL_CERT_FILE and ZGWID_SEAL_KEY_FILE go together")
        files = SealFiles(key=Path(seal.key_file), cert=Path(seal.cert_file))
    elif settings.production:
        raise ConfigError("ZGWID_SEAL_CERT_FILE and ZGWID_SEAL_KEY_FILE are required in production")
    else:
        files = demo_seal_files(settings.instance_path, settings.gemeente_naam)
    try:
        key_pem, cert_pem = files.key.read_bytes(), files.cert.read_bytes()
    except OSError as exc:
        raise ConfigError(f"ZGWID_SEAL_KEY_FILE / ZGWID_SEAL_CERT_FILE: cannot read ({exc.strerror})") from None
    if timestamper is None and seal.tsa_url:
        from pyhanko.sign.timestamps.requests_client import RequestsHTTPTimeStamper

        timestamper = RequestsHTTPTimeStamper(seal.tsa_url, timeout=seal.tsa_timeout)
    try:
        return Sealer(key_pem, cert_pem, password=seal.key_password, timestamper=timestamper)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"ZGWID_SEAL_KEY_FILE: the key cannot be loaded ({type(exc).__name__})") from None


@functools.cache
def _reportlab_renderer() -> ProofRenderer:
    from .proof_pdf import ReportlabProofRenderer

    return ReportlabProofRenderer()


class _ReportlabOnFirstUse:
    """ports.ProofRenderer: the reportlab renderer, imported and made for the first proof."""

    def render(self, proof: ProofData) -> bytes:
        return _reportlab_renderer().render(proof)


def build_renderer(settings: Settings, *, inner: ProofRenderer | None = None) -> SealedProofRenderer:
    return SealedProofRenderer(inner or _ReportlabOnFirstUse(), build_sealer(settings), name=settings.gemeente_naam)


__all__ = [
    "ASSERTION_FILE",
    "SealedProofRenderer",
    "Sealer",
    "build_renderer",
    "build_sealer",
    "demo_seal_files",
    "generate_seal_certificate",
]
