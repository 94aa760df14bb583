"""Haal Centraal BRP Personen bevragen v2: naam, geboortedatum and adres for one BSN (optional lookup).

One call: ``POST {brp.url}`` with ``type: RaadpleegMetBurgerservicenummer``. The BSN travels only in the
JSON body — never in the URL, a header or a log line (the API uses POST for exactly this reason). Only
the fields the behandelaar's page shows are asked for (data minimisation, AVG art. 5(1)(c)). The
gateway's protocollering headers (x-doelbinding, x-verwerking, x-gebruiker) and the API key come from
settings. Every failure is reported as "unavailable"; the caller never sees an exception.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

import requests

from ..domain.bsn import Bsn
from ..domain.dates import DUTCH_MONTHS
from ..settings import BrpSettings

log = logging.getLogger(__name__)

QUERY_TYPE = "RaadpleegMetBurgerservicenummer"
FIELDS = (
    "naam.volledigeNaam",
    "geboorte.datum",
    "adressering.adresregel1",
    "adressering.adresregel2",
    "adressering.adresregel3",
    "adressering.land",
)


@dataclass(frozen=True)
class BrpPersoon:
    naam: str | None
    geboortedatum: str | None
    adresregels: tuple[str, ...]


@dataclass(frozen=True)
class BrpResult:
    """``found`` with a persoon, ``not-found`` (no person for this BSN) or ``unavailable``."""

    status: str
    persoon: BrpPersoon | None = None

    @property
    def found(self) -> bool:
        return self.status == "found"


UNAVAILABLE = BrpResult("unavailable")


class HaalCentraalBrp:
    def __init__(self, settings: BrpSettings, *, http: requests.Session | None = None) -> None:
        self.settings = settings
        self.http = http or requests.Session()

    def request_body(self, bsn: Bsn | str) -> dict[str, Any]:
        value = bsn.value if isinstance(bsn, Bsn) else str(bsn)
        return {"type": QUERY_TYPE, "fields": list(FIELDS), "burgerservicenummer": [value]}

    def headers(self, gebruiker: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if self.settings.api_key:
            headers["X-API-KEY"] = self.settings.api_key
        if self.settings.doelbinding:
            headers["x-doelbinding"] = self.settings.doelbinding
        if self.settings.verwerking:
            headers["x-verwerking"] = self.settings.verwerking
        user = gebruiker or self.settings.gebruiker
        if user:
            headers["x-gebruiker"] = user
        return headers

    def lookup(self, bsn: Bsn | str, *, gebruiker: str | None = None) -> BrpResult:
        """The person behind ``bsn``; never raises."""
        try:
            resp = self.http.post(
                self.settings.url,
                json=self.request_body(bsn),
                headers=self.headers(gebruiker),
                timeout=self.settings.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            log.warning("BRP lookup failed: %s", type(exc).__name__)
            return UNAVAILABLE
        if resp.status_code != 200:
            log.warning("BRP lookup failed: HTTP %s", resp.status_code)
            return UNAVAILABLE
        try:
            body = resp.json()
            personen = body.get("personen") or []
            if not isinstance(personen, list):
                raise TypeError("personen is not a list")
            if not personen:
                return BrpResult("not-found")
            return BrpResult("found", _persoon(personen[0]))
        except (ValueError, TypeError, AttributeError) as exc:
            log.warning("BRP answer not understood: %s", type(exc).__name__)
            return UNAVAILABLE


def _persoon(data: dict[str, Any]) -> BrpPersoon:
    naam = (data.get("naam") or {}).get("volledigeNaam")
    adressering = data.get("adressering") or {}
    regels = [adressering.get(k) for k in ("adresregel1", "adresregel2", "adresregel3")]
    land = (adressering.get("land") or {}).get("omschrijving")
    if land:  # only given for an address abroad
        regels.append(land)
    return BrpPersoon(
        naam=str(naam) if naam else None,
        geboortedatum=format_datum((data.get("geboorte") or {}).get("datum")),
        adresregels=tuple(str(r) for r in regels if r),
    )


def format_datum(datum: Any) -> str | None:
    """The API's polymorphic date as Dutch text: ``langFormaat`` when given, else built from its parts."""
    if not isinstance(datum, dict):
        return None
    if datum.get("langFormaat"):
        return str(datum["langFormaat"])
    kind = datum.get("type")
    if kind == "Datum" and datum.get("datum"):
        d = date.fromisoformat(str(datum["datum"]))
        return f"{d.day} {DUTCH_MONTHS[d.month - 1]} {d.year}"
    if kind == "JaarMaandDatum" and datum.get("jaar") and datum.get("maand"):
        return f"{DUTCH_MONTHS[int(datum['maand']) - 1]} {datum['jaar']}"
    if kind == "JaarDatum" and datum.get("jaar"):
        return str(datum["jaar"])
    if kind == "DatumOnbekend":
        return "onbekend"
    return None
