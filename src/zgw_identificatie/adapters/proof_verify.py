"""Check a sealed proof PDF: ``verify_proof(pdf, digid_certs=…) -> Verdict`` (also ``zgw-identificatie verify-proof``).

In this order, stopping at the first failure (the reason names the check, never a BSN):

1. the seal: exactly one PDF signature, cryptographically intact and valid, covering the whole file
   (nothing added after sealing); with ``seal_certs`` its certificate must chain to one of them;
   a signature timestamp, when present, must be intact and valid too;
2. the embedded ``digid-assertion.xml`` is a ``saml:Assertion`` whose enveloped signature verifies against
   one of ``digid_certs`` (the same restricted XML-DSig check as at login, adapters/digid/xmldsig.py);
3. the page text agrees with the assertion: the SHA-256 fingerprint (exclusive C14N of the assertion),
   the assertion ID, the BSN (the NameID), the level (AuthnContextClassRef) and the time (within
   ``TIME_BEFORE`` / ``TIME_AFTER`` of the assertion's IssueInstant: the proof states when the service
   accepted the login, which is after DigiD issued the assertion and before it became too old).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from ..domain.assurance import AssuranceLevel
from ..domain.dates import DUTCH_MONTHS
from ..domain.errors import DigidFailed
from .digid import checks
from .digid.xmldsig import NS_SAML, XmlRejected, canonical_sha256, parse_xml, q, verify_enveloped
from .proof_seal import ASSERTION_FILE

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
TIME_BEFORE = timedelta(minutes=2)  # clock drift: the proof's time may be a little before IssueInstant
TIME_AFTER = timedelta(minutes=10)  # maximum assertion age plus drift, with room


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str  # "" when ok
    facts: tuple[str, ...] = field(default=())  # what was checked, for the auditor (no BSN)

    def text(self) -> str:
        head = "GELDIG: het bewijs is echt en compleet." if self.ok else f"ONGELDIG: {self.reason}"
        return "\n".join([head, *(f"  - {fact}" for fact in self.facts)])


class _Fail(Exception):
    pass


def verify_proof(
    pdf: bytes,
    *,
    digid_certs: Sequence[str],
    seal_certs: Sequence[bytes] = (),
    tsa_certs: Sequence[bytes] = (),
) -> Verdict:
    """The verdict on one proof PDF; ``digid_certs`` are PEM texts of DigiD's signing certificate(s),
    ``seal_certs`` / ``tsa_certs`` PEM/DER trust anchors for the seal and its timestamp (optional)."""
    facts: list[str] = []
    try:
        reader = _read_pdf(pdf)
        _check_seal(reader, seal_certs, tsa_certs, facts)
        assertion_xml = _embedded_assertion(reader)
        assertion = _check_assertion(assertion_xml, digid_certs, facts)
        _check_text(pdf, assertion, facts)
    except _Fail as exc:
        return Verdict(False, str(exc), tuple(facts))
    return Verdict(True, "", tuple(facts))


def _read_pdf(pdf: bytes):
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        _ = reader.root
    except Exception as exc:
        raise _Fail(f"dit is geen leesbare PDF ({type(exc).__name__})") from None
    return reader


def _certs(data: Sequence[bytes]) -> list[object]:
    from pyhanko.keys import load_certs_from_pemder_data

    out: list[object] = []
    for blob in data:
        out.extend(load_certs_from_pemder_data(blob))
    return out


def _check_seal(reader, seal_certs: Sequence[bytes], tsa_certs: Sequence[bytes], facts: list[str]) -> None:
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    from .proof_seal import outside_any_event_loop

    try:
        signatures = reader.embedded_signatures
    except Exception as exc:
        raise _Fail(f"de handtekeningen in de PDF zijn onleesbaar ({type(exc).__name__})") from None
    if not signatures:
        raise _Fail("de PDF heeft geen zegel (geen handtekening)")
    if len(signatures) != 1:
        raise _Fail(f"de PDF heeft {len(signatures)} handtekeningen; een bewijs heeft precies één zegel")
    sig = signatures[0]
    try:
        signer = sig.signer_cert
    except Exception:
        raise _Fail("het zegel is beschadigd: de handtekening is onleesbaar") from None
    anchors = _certs(seal_certs) or [signer]
    context = ValidationContext(trust_roots=anchors, allow_fetching=False, revocation_mode="soft-fail")
    ts_anchors = _certs(tsa_certs)
    ts_context = (
        ValidationContext(trust_roots=ts_anchors, allow_fetching=False, revocation_mode="soft-fail")
        if ts_anchors
        else None
    )
    try:
        status = outside_any_event_loop(
            lambda: validate_pdf_signature(sig, context, ts_validation_context=ts_context or context)
        )
    except Exception as exc:
        raise _Fail(
            f"het zegel is beschadigd: de handtekening kan niet worden gecontroleerd ({type(exc).__name__})"
        ) from None
    if not status.intact:
        raise _Fail("het zegel is verbroken: het document is na het verzegelen veranderd")
    if not status.valid:
        raise _Fail("het zegel is ongeldig: de handtekening klopt niet bij het certificaat")
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        raise _Fail("het document is na het verzegelen aangevuld of veranderd (het zegel dekt niet het hele bestand)")
    subject = signer.subject.human_friendly
    if seal_certs and not status.trusted:
        raise _Fail(f"het zegel is gezet met een certificaat dat niet vertrouwd wordt ({subject})")
    facts.append(f"zegel intact, dekt het hele bestand; gezet door: {subject}")
    facts.append(f"SHA-256 van het zegelcertificaat: {signer.sha256.hex()}")
    if not seal_certs:
        facts.append("LET OP: het zegelcertificaat is niet vergeleken met een vertrouwd certificaat (geef --seal-cert)")
    ts = status.timestamp_validity
    if ts is not None:
        if not (ts.intact and ts.valid):
            raise _Fail("het tijdstempel van het zegel is ongeldig")
        if ts_anchors and not ts.trusted:
            raise _Fail("het tijdstempel komt niet van een vertrouwde tijdstempeldienst")
        when = ts.timestamp.astimezone(AMSTERDAM).isoformat(timespec="seconds")
        note = "" if ts_anchors else " (tijdstempeldienst niet vergeleken met een vertrouwd certificaat: --tsa-cert)"
        facts.append(f"vertrouwd tijdstempel (RFC 3161): {when}{note}")
    else:
        facts.append("geen tijdstempel van een tijdstempeldienst; het tijdstip van het zegel is dat van de gemeente")


def _embedded_assertion(reader) -> bytes:
    try:
        names = reader.root["/Names"]["/EmbeddedFiles"]["/Names"]
    except (KeyError, TypeError):
        raise _Fail("de PDF bevat geen DigiD-bericht (bijlage digid-assertion.xml ontbreekt)") from None
    found: list[bytes] = []
    for i in range(0, len(names) - 1, 2):
        if str(names[i]) != ASSERTION_FILE:
            continue
        try:
            found.append(names[i + 1].get_object()["/EF"]["/F"].get_object().data)
        except Exception:
            raise _Fail("de bijlage digid-assertion.xml is onleesbaar") from None
    if len(found) != 1:
        raise _Fail("de PDF bevat geen DigiD-bericht (bijlage digid-assertion.xml ontbreekt of staat er dubbel in)")
    return found[0]


@dataclass(frozen=True)
class _Assertion:
    id: str
    sha256: str
    bsn: str
    level: AssuranceLevel
    issued: datetime


def _check_assertion(xml: bytes, digid_certs: Sequence[str], facts: list[str]) -> _Assertion:
    if not digid_certs:
        raise _Fail("geen DigiD-certificaat opgegeven om het DigiD-bericht te controleren (--digid-cert)")
    try:
        root = parse_xml(xml)
    except XmlRejected as exc:
        raise _Fail(f"het DigiD-bericht in de PDF is geen geldige XML ({exc})") from None
    if root.tag != q(NS_SAML, "Assertion"):
        raise _Fail("de bijlage is geen SAML-assertion")
    try:
        verify_enveloped(root, list(digid_certs))
    except XmlRejected as exc:
        raise _Fail(f"de handtekening op het DigiD-bericht is niet van DigiD of klopt niet ({exc})") from None
    try:
        bsn = checks.read_bsn(root).value
        level, _instant = checks.read_authn(root, AssuranceLevel.BASIS)
        issued = checks.parse_saml_time(root.get("IssueInstant"), "IssueInstant")
    except DigidFailed as exc:
        raise _Fail(f"het DigiD-bericht is onvolledig ({exc})") from None
    found = _Assertion(id=root.get("ID") or "", sha256=canonical_sha256(root), bsn=bsn, level=level, issued=issued)
    facts.append(f"DigiD-bericht {found.id} ondertekend door DigiD (certificaat gecontroleerd), niveau {level.label}")
    return found


def _page_text(pdf: bytes) -> str:
    from pypdf import PdfReader

    try:
        return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    except Exception as exc:
        raise _Fail(f"de tekst van het bewijs is onleesbaar ({type(exc).__name__})") from None


def _after(text: str, label: str) -> str:
    match = re.search(rf"(?m)^{re.escape(label)}\s*(.+)$", text)
    if match is None:
        raise _Fail(f"het bewijs vermeldt geen '{label}'")
    return match.group(1).strip()


def _check_text(pdf: bytes, assertion: _Assertion, facts: list[str]) -> None:
    text = _page_text(pdf)
    fingerprints = set(re.findall(r"\b[0-9a-f]{64}\b", text))
    if fingerprints != {assertion.sha256}:
        raise _Fail("de vingerafdruk (SHA-256) in het bewijs hoort niet bij het ingesloten DigiD-bericht")
    if _after(text, "Assertion-ID") != assertion.id:
        raise _Fail("het Assertion-ID in het bewijs verschilt van dat in het DigiD-bericht")
    bsns = re.findall(r"(?m)^BSN\s*(\S+)\s*$", text)
    if not bsns or any(value != assertion.bsn for value in bsns):
        raise _Fail("het BSN in het bewijs verschilt van het BSN in het DigiD-bericht")
    if _after(text, "DigiD-niveau bereikt") != assertion.level.label:
        raise _Fail("het DigiD-niveau in het bewijs verschilt van het niveau in het DigiD-bericht")
    stated = _parse_dutch_time(_after(text, "Datum en tijd"))
    if not assertion.issued - TIME_BEFORE <= stated <= assertion.issued + TIME_AFTER:
        raise _Fail("de tijd in het bewijs past niet bij het tijdstip van het DigiD-bericht")
    facts.append("vingerafdruk, Assertion-ID, BSN, niveau en tijd in het bewijs kloppen met het DigiD-bericht")


def _parse_dutch_time(value: str) -> datetime:
    """``29 november 2026, 15:03:11 uur (CET, Europe/Amsterdam)`` (adapters/proof_pdf.dutch_datetime)."""
    match = re.match(r"(\d{1,2}) ([a-z]+) (\d{4}), (\d{2}):(\d{2}):(\d{2}) uur \((\w+)", value)
    if match is None or match.group(2) not in DUTCH_MONTHS:
        raise _Fail("de tijd in het bewijs is onleesbaar")
    day, month, year = int(match.group(1)), DUTCH_MONTHS.index(match.group(2)) + 1, int(match.group(3))
    hour, minute, second, zone = int(match.group(4)), int(match.group(5)), int(match.group(6)), match.group(7)
    local = datetime(year, month, day, hour, minute, second, tzinfo=AMSTERDAM)
    if zone == "CET" and local.utcoffset() != timedelta(hours=1):  # the autumn hour that happens twice
        local = local.replace(fold=1)
    return local


def read_certificates(paths: Sequence[str]) -> list[str]:
    """PEM texts of DigiD certificate files (for the CLI)."""
    from pathlib import Path

    return [Path(p).read_text(encoding="ascii") for p in paths]


__all__ = ["TIME_AFTER", "TIME_BEFORE", "Verdict", "read_certificates", "verify_proof"]
