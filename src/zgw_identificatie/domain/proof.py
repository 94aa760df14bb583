"""ProofData: exactly what the proof PDF states, nothing more."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .assurance import AssuranceLevel
from .bsn import Bsn
from .sessions import Flow


@dataclass(frozen=True)
class ProofData:
    gemeente: str
    flow: Flow
    zaak_identificatie: str
    identified_at: datetime  # aware; rendered in Europe/Amsterdam
    level: AssuranceLevel
    bsn: Bsn = field(repr=False)
    assertion_id: str
    issuer: str
    assertion_sha256: str
    controlecode: str | None
    code_check: bool | None  # True: equal, False: different, None: no comparison in this flow
    behandelaar: str | None
    session_id: str
    behandelaar_id: str | None = None  # the behandelaar's id (staff login, or given by a trusted API client)
    gemeentecode: str = ""
    rsin: str = ""
    service_version: str = ""
    # The signed saml:Assertion as DigiD sent it (embedded in the sealed PDF); it holds the BSN too.
    assertion_xml: str | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, object]:
        """JSON-safe form (for the encrypted registration payload)."""
        return {
            "gemeente": self.gemeente,
            "flow": self.flow.value,
            "zaak_identificatie": self.zaak_identificatie,
            "identified_at": self.identified_at.isoformat(),
            "level": self.level.name,
            "bsn": self.bsn.value,
            "assertion_id": self.assertion_id,
            "issuer": self.issuer,
            "assertion_sha256": self.assertion_sha256,
            "controlecode": self.controlecode,
            "code_check": self.code_check,
            "behandelaar": self.behandelaar,
            "session_id": self.session_id,
            "behandelaar_id": self.behandelaar_id,
            "gemeentecode": self.gemeentecode,
            "rsin": self.rsin,
            "service_version": self.service_version,
            "assertion_xml": self.assertion_xml,
        }

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> ProofData:
        return cls(
            gemeente=str(d["gemeente"]),
            flow=Flow(str(d["flow"])),
            zaak_identificatie=str(d["zaak_identificatie"]),
            identified_at=datetime.fromisoformat(str(d["identified_at"])),
            level=AssuranceLevel[str(d["level"])],
            bsn=Bsn(str(d["bsn"])),
            assertion_id=str(d["assertion_id"]),
            issuer=str(d["issuer"]),
            assertion_sha256=str(d["assertion_sha256"]),
            controlecode=None if d.get("controlecode") is None else str(d["controlecode"]),
            code_check=None if d.get("code_check") is None else bool(d["code_check"]),
            behandelaar=None if d.get("behandelaar") is None else str(d["behandelaar"]),
            session_id=str(d["session_id"]),
            behandelaar_id=None if d.get("behandelaar_id") is None else str(d["behandelaar_id"]),
            gemeentecode=str(d.get("gemeentecode") or ""),
            rsin=str(d.get("rsin") or ""),
            service_version=str(d.get("service_version") or ""),
            assertion_xml=None if d.get("assertion_xml") is None else str(d["assertion_xml"]),
        )
