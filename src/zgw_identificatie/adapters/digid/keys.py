"""Key material: loading PEM files and generating the simulator's throwaway key pairs.

The simulator (development only, R28) needs an IdP and an SP key pair; they are generated on first
start with ``cryptography`` (self-signed RSA 2048, SHA-256) into ``<instance>/digid-sim`` with the
private keys readable by the owner only. Production keys are PKIoverheid files (R21) and are only read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class KeyPair:
    key_pem: str
    cert_pem: str


def generate_key_pair(common_name: str, *, days: int = 3650, now: datetime | None = None) -> KeyPair:
    """A self-signed RSA 2048 certificate and its key, PEM encoded (tests and the simulator only)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = (now or datetime.now(UTC)) - timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    return KeyPair(key_pem=key_pem, cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"))


def read_pem(path: str | os.PathLike[str]) -> str:
    return Path(path).read_text(encoding="ascii")


@dataclass(frozen=True)
class SimulatorKeyFiles:
    idp_key: Path
    idp_cert: Path
    sp_key: Path
    sp_cert: Path


def simulator_key_files(instance_path: str | os.PathLike[str]) -> SimulatorKeyFiles:
    """The simulator's key files, generated on first use (keys 0600)."""
    folder = Path(instance_path) / "digid-sim"
    files = SimulatorKeyFiles(
        idp_key=folder / "idp.key", idp_cert=folder / "idp.crt", sp_key=folder / "sp.key", sp_cert=folder / "sp.crt"
    )
    for role, key_file, cert_file in (("idp", files.idp_key, files.idp_cert), ("sp", files.sp_key, files.sp_cert)):
        if key_file.is_file() and cert_file.is_file():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        pair = generate_key_pair(f"DigiD simulator {role} (not the real DigiD)")
        _write_private(key_file, pair.key_pem)
        cert_file.write_text(pair.cert_pem, encoding="ascii")
    return files


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(text)
    os.replace(tmp, path)
