"""Recording fakes of ports.ZaakRegistry and ports.ProofRenderer for unit tests.

``FakeZaakRegistry`` keeps zaken, rollen, statussen, documents and links in memory and records
every call as ``(method, kwargs)``. ``fail(method, error, times=…, after_write=…)`` makes the next
calls of a method raise; with ``after_write=True`` the resource is created first and then the
answer is "lost", which is exactly the case the ``find_*`` methods exist for.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ..domain.bsn import Bsn
from ..domain.errors import ZaakNotFound
from ..domain.proof import ProofData
from ..ports import ZaakRef

BASE = "https://zaken.fake"


@dataclass
class _Failure:
    error: Exception
    after_write: bool


@dataclass
class FakeZaakRegistry:
    zaken: dict[str, dict[str, Any]] = field(default_factory=dict)
    rollen: dict[str, dict[str, Any]] = field(default_factory=dict)
    statussen: dict[str, dict[str, Any]] = field(default_factory=dict)
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _failures: dict[str, deque[_Failure]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    acting: tuple[str, str] | None = None  # the behandelaar of the running registration, if any

    @contextmanager
    def acting_for(self, user_id: str, user_representation: str) -> Iterator[None]:
        before, self.acting = self.acting, (user_id, user_representation)
        try:
            yield
        finally:
            self.acting = before

    # -- configuration -------------------------------------------------------------------------

    def fail(self, method: str, error: Exception, *, times: int = 1, after_write: bool = False) -> None:
        """The next ``times`` calls of ``method`` raise ``error`` (after creating, with ``after_write``)."""
        queue = self._failures.setdefault(method, deque())
        queue.extend(_Failure(error, after_write) for _ in range(times))

    def add_existing_zaak(self, identificatie: str) -> ZaakRef:
        url = self._url("zaken")
        self.zaken[url] = {"url": url, "identificatie": identificatie, "kenmerken": [], "startdatum": None}
        return ZaakRef(url=url, identificatie=identificatie)

    def called(self, method: str) -> list[dict[str, Any]]:
        return [kwargs for name, kwargs in self.calls if name == method]

    # -- helpers -------------------------------------------------------------------------------

    def _url(self, kind: str) -> str:
        return f"{BASE}/{kind}/{next(self._ids)}"

    def _enter(self, method: str, **kwargs: Any) -> _Failure | None:
        self.calls.append((method, kwargs))
        queue = self._failures.get(method)
        if queue:
            failure = queue.popleft()
            if not failure.after_write:
                raise failure.error
            return failure
        return None

    @staticmethod
    def _leave(failure: _Failure | None) -> None:
        if failure is not None:
            raise failure.error

    # -- ports.ZaakRegistry --------------------------------------------------------------------

    def create_zaak(self, *, marker: str, startdatum: date, omschrijving: str, toelichting: str) -> ZaakRef:
        failure = self._enter("create_zaak", marker=marker, startdatum=startdatum, omschrijving=omschrijving)
        url = self._url("zaken")
        identificatie = f"ZAAK-{startdatum.year}-{len(self.zaken) + 1:010d}"
        self.zaken[url] = {
            "url": url,
            "identificatie": identificatie,
            "kenmerken": [marker],
            "startdatum": startdatum,
            "omschrijving": omschrijving,
            "toelichting": toelichting,
        }
        self._leave(failure)
        return ZaakRef(url=url, identificatie=identificatie)

    def find_zaak_by_marker(self, *, marker: str, startdatum: date) -> ZaakRef | None:
        self._leave(self._enter("find_zaak_by_marker", marker=marker, startdatum=startdatum))
        for zaak in self.zaken.values():
            if marker in zaak["kenmerken"] and zaak["startdatum"] == startdatum:
                return ZaakRef(url=zaak["url"], identificatie=zaak["identificatie"])
        return None

    def find_zaak(self, identificatie: str) -> ZaakRef:
        self._leave(self._enter("find_zaak", identificatie=identificatie))
        for zaak in self.zaken.values():
            if zaak["identificatie"] == identificatie:
                return ZaakRef(url=zaak["url"], identificatie=identificatie)
        raise ZaakNotFound(f"no zaak {identificatie}")

    def zaken_with_identificatie(self, identificatie: str) -> list[ZaakRef]:
        self._leave(self._enter("zaken_with_identificatie", identificatie=identificatie))
        return [
            ZaakRef(
                url=z["url"],
                identificatie=identificatie,
                bronorganisatie=z.get("bronorganisatie", "002220647"),
                einddatum=z.get("einddatum"),
            )
            for z in self.zaken.values()
            if z["identificatie"] == identificatie
        ]

    def add_citizen_rol(self, *, zaak_url: str, bsn: Bsn, toelichting: str, existing: bool = False) -> str:
        failure = self._enter("add_citizen_rol", zaak_url=zaak_url, bsn=bsn, existing=existing)
        url = self._url("rollen")
        self.rollen[url] = {
            "url": url,
            "zaak": zaak_url,
            "bsn": bsn,
            "toelichting": toelichting,
            "generiek": "belanghebbende" if existing else "initiator",
        }
        self._leave(failure)
        return url

    def find_citizen_rol(self, *, zaak_url: str, bsn: Bsn, existing: bool = False) -> str | None:
        self._leave(self._enter("find_citizen_rol", zaak_url=zaak_url, bsn=bsn, existing=existing))
        return next((r["url"] for r in self.rollen.values() if r["zaak"] == zaak_url and r["bsn"] == bsn), None)

    def set_first_status(self, *, zaak_url: str, when: datetime, toelichting: str) -> str:
        failure = self._enter("set_first_status", zaak_url=zaak_url, when=when)
        url = self._url("statussen")
        self.statussen[url] = {"url": url, "zaak": zaak_url, "when": when, "toelichting": toelichting}
        self._leave(failure)
        return url

    def find_status(self, *, zaak_url: str) -> str | None:
        self._leave(self._enter("find_status", zaak_url=zaak_url))
        return next((s["url"] for s in self.statussen.values() if s["zaak"] == zaak_url), None)

    def add_status(self, *, zaak_url: str, statustype_omschrijving: str, when: datetime, toelichting: str) -> str:
        failure = self._enter("add_status", zaak_url=zaak_url, statustype=statustype_omschrijving, when=when)
        url = self._url("statussen")
        self.statussen[url] = {
            "url": url,
            "zaak": zaak_url,
            "when": when,
            "toelichting": toelichting,
            "statustype": statustype_omschrijving,
        }
        self._leave(failure)
        return url

    def find_status_of_type(self, *, zaak_url: str, statustype_omschrijving: str) -> str | None:
        self._leave(self._enter("find_status_of_type", zaak_url=zaak_url, statustype=statustype_omschrijving))
        return next(
            (
                s["url"]
                for s in self.statussen.values()
                if s["zaak"] == zaak_url and s.get("statustype") == statustype_omschrijving
            ),
            None,
        )

    def upload_document(
        self,
        *,
        marker: str,
        titel: str,
        bestandsnaam: str,
        inhoud: bytes,
        creatiedatum: date,
        beschrijving: str,
    ) -> str:
        failure = self._enter("upload_document", marker=marker, titel=titel, bestandsnaam=bestandsnaam)
        url = self._url("documenten")
        self.documents[url] = {
            "url": url,
            "marker": marker,
            "titel": titel,
            "bestandsnaam": bestandsnaam,
            "inhoud": inhoud,
            "creatiedatum": creatiedatum,
            "beschrijving": beschrijving,
        }
        self._leave(failure)
        return url

    def find_document(self, *, marker: str) -> str | None:
        self._leave(self._enter("find_document", marker=marker))
        return next((d["url"] for d in self.documents.values() if d["marker"] == marker), None)

    def link_document(self, *, zaak_url: str, document_url: str, titel: str) -> str:
        failure = self._enter("link_document", zaak_url=zaak_url, document_url=document_url)
        url = self._url("zaakinformatieobjecten")
        self.links[url] = {"url": url, "zaak": zaak_url, "informatieobject": document_url, "titel": titel}
        self._leave(failure)
        return url

    def find_link(self, *, zaak_url: str, document_url: str) -> str | None:
        self._leave(self._enter("find_link", zaak_url=zaak_url, document_url=document_url))
        return next(
            (
                lk["url"]
                for lk in self.links.values()
                if lk["zaak"] == zaak_url and lk["informatieobject"] == document_url
            ),
            None,
        )


@dataclass
class FakeProofRenderer:
    """Records the proofs it rendered; returns a tiny fake PDF naming the zaak."""

    rendered: list[ProofData] = field(default_factory=list)
    error: Exception | None = None

    def render(self, proof: ProofData) -> bytes:
        if self.error is not None:
            raise self.error
        self.rendered.append(proof)
        return b"%PDF-1.4\n% fake proof " + proof.zaak_identificatie.encode() + b"\n%%EOF\n"
