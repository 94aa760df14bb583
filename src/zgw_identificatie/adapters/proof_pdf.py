"""The proof PDF: ``ReportlabProofRenderer.render(ProofData) -> bytes``, one A4 page, no I/O.

Accessibility, as far as open-source reportlab goes: document language ``nl-NL`` in the catalog
(``/Lang``), title/author/subject in the document information, the title shown by viewers
(``DisplayDocTitle``), real text in the standard Helvetica font (extractable, searchable), one
column drawn in reading order (heading, introduction, label/value rows top to bottom). reportlab
cannot write a structure tree, so the PDF is not tagged (no ``/StructTreeRoot``); we do not claim
``/MarkInfo``.
"""

from __future__ import annotations

import io
from datetime import datetime
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from ..domain.dates import DUTCH_MONTHS
from ..domain.proof import ProofData
from ..domain.sessions import Flow

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
LANG = "nl-NL"
TITLE = "Bewijs van identificatie met DigiD"
FLOW_LABELS = {
    Flow.NEW_CITIZEN: "§2.1 Inwoner nog niet bekend bij de gemeente (nieuwe controlecode)",
    Flow.KNOWN_CITIZEN: "§2.2 Inwoner bekend bij de gemeente (controle met afgeleide code)",
    Flow.MUTUAL: "§2.3 Wederzijdse zekerheid (medewerker en inwoner)",
}


def flow_label(flow: Flow) -> str:
    return FLOW_LABELS.get(flow, flow.value)


def dutch_datetime(moment: datetime) -> str:
    local = moment.astimezone(AMSTERDAM)
    zone = local.tzname() or "Europe/Amsterdam"
    day = f"{local.day} {DUTCH_MONTHS[local.month - 1]} {local.year}"
    return f"{day}, {local:%H:%M:%S} uur ({zone}, Europe/Amsterdam)"


def code_check_label(code_check: bool | None) -> str:
    if code_check is None:
        return "Geen vergelijking in deze werkwijze"
    return "De codes komen overeen" if code_check else "De codes komen NIET overeen"


class ReportlabProofRenderer:
    """ports.ProofRenderer with reportlab."""

    def __init__(self, *, author: str | None = None) -> None:
        self.author = author

    def render(self, proof: ProofData) -> bytes:
        buffer = io.BytesIO()
        doc = SimpleDocTemplate(
            buffer,
            pagesize=A4,
            leftMargin=20 * mm,
            rightMargin=20 * mm,
            topMargin=20 * mm,
            bottomMargin=20 * mm,
            title=f"{TITLE} – {proof.zaak_identificatie}" if proof.zaak_identificatie else TITLE,
            author=self.author or proof.gemeente,
            subject=f"Identificatie met DigiD tijdens videogesprek, {proof.gemeente}",
            creator="zgw-identificatie",
            keywords=["DigiD", "identificatie", "videogesprek", proof.zaak_identificatie],
            lang=LANG,
            displayDocTitle=1,
        )
        doc.build(self._story(proof))
        return buffer.getvalue()

    def _story(self, proof: ProofData) -> list[object]:
        styles = getSampleStyleSheet()
        heading = ParagraphStyle("Kop", parent=styles["Title"], alignment=TA_LEFT, fontSize=18, leading=22)
        body = ParagraphStyle("Tekst", parent=styles["BodyText"], fontSize=10.5, leading=14)
        label = ParagraphStyle("Label", parent=body, fontName="Helvetica-Bold")
        mono = ParagraphStyle("Code", parent=body, fontName="Courier", fontSize=8, leading=11)

        def text(value: str, style: ParagraphStyle = body) -> Paragraph:
            return Paragraph(escape(value), style)

        rows = [
            ("Gemeente", text(proof.gemeente)),
            ("Werkwijze", text(flow_label(proof.flow))),
            ("Zaak", text(proof.zaak_identificatie or "(nog niet bekend)")),
            ("Datum en tijd", text(dutch_datetime(proof.identified_at))),
            ("DigiD-niveau bereikt", text(proof.level.label)),
            ("BSN", text(proof.bsn.value)),
            ("Assertion-ID", text(proof.assertion_id, mono)),
            ("Uitgever (issuer)", text(proof.issuer, mono)),
            ("SHA-256 van de ondertekende assertion", text(proof.assertion_sha256, mono)),
            ("Controlecode", text(proof.controlecode or "(geen)")),
            ("Uitkomst codecontrole", text(code_check_label(proof.code_check))),
            ("Behandelaar", text(proof.behandelaar or "(niet bekend)")),
            ("Behandelaar-ID", text(proof.behandelaar_id or "(niet bekend)", mono)),
            ("Sessie-ID", text(proof.session_id, mono)),
            ("Gemeentecode (CBS)", text(proof.gemeentecode or "(niet vastgelegd)")),
            ("RSIN van de gemeente", text(proof.rsin or "(niet vastgelegd)")),
            ("Versie van de dienst", text(proof.service_version or "(niet vastgelegd)")),
        ]
        table = Table(
            [[Paragraph(escape(name), label), value] for name, value in rows],
            colWidths=[55 * mm, 115 * mm],
            hAlign="LEFT",
        )
        table.setStyle(
            TableStyle(
                [
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LINEBELOW", (0, 0), (-1, -1), 0.5, colors.HexColor("#b0b0b0")),
                    ("TOPPADDING", (0, 0), (-1, -1), 4),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
                ]
            )
        )
        intro = (
            f"{proof.gemeente} verklaart dat de inwoner hieronder tijdens een videogesprek is ingelogd met "
            "DigiD. DigiD heeft het burgerservicenummer (BSN) en het bereikte betrouwbaarheidsniveau in een "
            "ondertekend bericht (SAML-assertion) aan de gemeente doorgegeven."
        )
        footer = (
            "De vingerafdruk (SHA-256) maakt het mogelijk later vast te stellen dat dit bewijs hoort bij het "
            "ondertekende DigiD-bericht. Dit document bevat een BSN: bewaar het vertrouwelijk."
        )
        if proof.assertion_xml is not None:
            footer += (
                " Het ondertekende DigiD-bericht zit als bijlage (digid-assertion.xml) in dit document; de "
                "gemeente heeft het document verzegeld. Controleer het met 'zgw-identificatie verify-proof'."
            )
        return [
            Paragraph(escape(TITLE), heading),
            text(intro),
            Spacer(1, 6 * mm),
            table,
            Spacer(1, 6 * mm),
            text(footer),
        ]
