"""The proof PDF (adapters/proof_pdf.py), read back with pypdf."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from pypdf import PdfReader

from zgw_identificatie.adapters.proof_pdf import ReportlabProofRenderer
from zgw_identificatie.domain.assurance import AssuranceLevel
from zgw_identificatie.domain.bsn import Bsn
from zgw_identificatie.domain.proof import ProofData
from zgw_identificatie.domain.sessions import Flow


def proof(**changes: object) -> ProofData:
    values: dict[str, object] = {
        "gemeente": "Gemeente Voorbeeld",
        "flow": Flow.KNOWN_CITIZEN,
        "zaak_identificatie": "ZAAK-2026-0000000042",
        "identified_at": datetime(2026, 11, 29, 14, 3, 11, tzinfo=UTC),
        "level": AssuranceLevel.SUBSTANTIEEL,
        "bsn": Bsn("111222333"),
        "assertion_id": "_5f0c8e3a-assertion",
        "issuer": "https://was-preprod1.digid.nl/saml/idp/metadata",
        "assertion_sha256": "0123456789abcdef" * 4,
        "controlecode": "K7Q2MX",
        "code_check": True,
        "behandelaar": "Jan de Vries",
        "session_id": "s-1",
    }
    values.update(changes)
    return ProofData(**values)  # type: ignore[arg-type]


def read(pdf: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(pdf))
    return reader, "\n".join(page.extract_text() for page in reader.pages)


def test_the_pdf_is_one_a4_page() -> None:
    """One page of 595 × 842 points."""
    reader, _ = read(ReportlabProofRenderer().render(proof()))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)


def test_the_text_states_code_zaak_level_bsn_and_assertion() -> None:
    """Everything the proof must state can be read back as text."""
    _, text = read(ReportlabProofRenderer().render(proof()))
    for expected in [
        "Gemeente Voorbeeld",
        "ZAAK-2026-0000000042",
        "Substantieel",
        "111222333",
        "K7Q2MX",
        "_5f0c8e3a-assertion",
        "https://was-preprod1.digid.nl/saml/idp/metadata",
        "0123456789abcdef" * 4,
        "Jan de Vries",
        "De codes komen overeen",
        "§2.2",
    ]:
        assert expected in text, expected


def test_the_time_is_shown_in_dutch_in_europe_amsterdam() -> None:
    """14:03:11 UTC on 29 November is 15:03:11 in Amsterdam (CET)."""
    _, text = read(ReportlabProofRenderer().render(proof()))
    assert "29 november 2026, 15:03:11 uur" in text
    assert "Europe/Amsterdam" in text


@pytest.mark.parametrize(
    ("flow", "code_check", "label", "outcome"),
    [
        (Flow.NEW_CITIZEN, None, "§2.1", "Geen vergelijking in deze werkwijze"),
        (Flow.KNOWN_CITIZEN, False, "§2.2", "De codes komen NIET overeen"),
        (Flow.MUTUAL, None, "§2.3", "Geen vergelijking in deze werkwijze"),
    ],
)
def test_each_flow_has_its_dutch_name_and_code_check_outcome(
    flow: Flow, code_check: bool | None, label: str, outcome: str
) -> None:
    """The flow is named as in the guide and the code check outcome is explicit."""
    _, text = read(ReportlabProofRenderer().render(proof(flow=flow, code_check=code_check)))
    assert label in text
    assert outcome in text


def test_the_metadata_has_title_author_subject_and_dutch_language() -> None:
    """Title, author, subject in the info dictionary and /Lang nl-NL in the catalog."""
    reader, _ = read(ReportlabProofRenderer().render(proof()))
    meta = reader.metadata
    assert meta is not None
    assert meta.title is not None and "ZAAK-2026-0000000042" in meta.title
    assert meta.title.startswith("Bewijs van identificatie met DigiD")
    assert meta.author == "Gemeente Voorbeeld"
    assert meta.subject is not None and "videogesprek" in meta.subject
    assert reader.trailer["/Root"]["/Lang"] == "nl-NL"


def test_a_missing_behandelaar_and_code_are_stated_as_such() -> None:
    """Unknown values are written out, not left blank."""
    _, text = read(ReportlabProofRenderer().render(proof(behandelaar=None, controlecode=None)))
    assert "(niet bekend)" in text
    assert "(geen)" in text


def test_markup_characters_in_values_are_printed_literally() -> None:
    """A name with & and < does not break the layout or vanish."""
    _, text = read(ReportlabProofRenderer().render(proof(behandelaar="A & B <team>")))
    assert "A & B <team>" in text
