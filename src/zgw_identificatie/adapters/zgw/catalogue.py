"""Resolve the configured catalogue identifiers to the URLs valid today (ZGW-CHEATSHEET §2, §5.1).

The service is configured with stable identifiers (catalogus URL or RSIN, zaaktype identificatie,
roltype omschrijvingGeneriek, informatieobjecttype omschrijving) because every new zaaktype version
gets new URLs (pitfall 7). Each missing or unpublished piece raises ``ConfigError`` naming the
setting to fix; an informatieobjecttype that is not linked to the zaaktype is refused here rather
than when the first document is linked (pitfall 6).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from ...settings import ConfigError, Settings
from .client import ZgwClient, ZgwRefused


@dataclass(frozen=True)
class CatalogueRefs:
    zaaktype_url: str
    roltype_url: str
    statustype_url: str
    informatieobjecttype_url: str
    catalogus_url: str = ""


def resolve_catalogue(settings: Settings, catalogi: ZgwClient, *, today: date) -> CatalogueRefs:
    """Look everything up; raises ConfigError (RegistryUnavailable when the API is unreachable)."""
    try:
        return _resolve(settings, catalogi, today)
    except ZgwRefused as exc:
        if exc.status in (401, 403):
            raise ConfigError(
                f"the Catalogi API refused our credentials ({exc}); check ZGWID_ZGW_CLIENT_ID and "
                "ZGWID_ZGW_SECRET "
                "and the Applicatie's catalogi.lezen autorisatie"
            ) from None
        raise ConfigError(f"the Catalogi API refused a lookup ({exc}); check ZGWID_ZGW_CATALOGI_URL") from None


def _resolve(settings: Settings, catalogi: ZgwClient, today: date) -> CatalogueRefs:
    zgw = settings.zgw
    day = today.isoformat()
    catalogus_url = _catalogus(settings, catalogi)

    zaaktypen = list(
        catalogi.list_all(
            "zaaktypen",
            {
                "catalogus": catalogus_url,
                "identificatie": zgw.zaaktype_identificatie,
                "datumGeldigheid": day,
                "status": "alles",
            },
        )
    )
    zaaktypen = [z for z in zaaktypen if z.get("identificatie") == zgw.zaaktype_identificatie]
    if not zaaktypen:
        raise ConfigError(
            f"ZGWID_ZGW_ZAAKTYPE_IDENTIFICATIE: no zaaktype {zgw.zaaktype_identificatie!r} valid on {day} "
            f"in catalogus {catalogus_url}"
        )
    published = [z for z in zaaktypen if z.get("concept") is False]
    if not published:
        raise ConfigError(
            f"ZGWID_ZGW_ZAAKTYPE_IDENTIFICATIE: zaaktype {zgw.zaaktype_identificatie!r} valid on {day} "
            "is not published (concept); publish it in the catalogus"
        )
    zaaktype = published[0]
    zaaktype_url = str(zaaktype["url"])

    roltypen = [
        r
        for r in catalogi.list_all(
            "roltypen", {"zaaktype": zaaktype_url, "omschrijvingGeneriek": zgw.roltype_omschrijving_generiek}
        )
        if r.get("omschrijvingGeneriek") == zgw.roltype_omschrijving_generiek and r.get("zaaktype") == zaaktype_url
    ]
    if not roltypen:
        raise ConfigError(
            f"ZGWID_ZGW_ROLTYPE_OMSCHRIJVING_GENERIEK: zaaktype {zgw.zaaktype_identificatie!r} has no "
            f"roltype with omschrijvingGeneriek {zgw.roltype_omschrijving_generiek!r}"
        )

    statustypen = [
        s for s in catalogi.list_all("statustypen", {"zaaktype": zaaktype_url}) if s.get("zaaktype") == zaaktype_url
    ]
    if not statustypen:
        raise ConfigError(
            f"ZGWID_ZGW_ZAAKTYPE_IDENTIFICATIE: zaaktype {zgw.zaaktype_identificatie!r} has no statustypen; "
            "add at least one"
        )
    first_status = min(statustypen, key=_volgnummer)

    iotypen = [
        i
        for i in catalogi.list_all(
            "informatieobjecttypen",
            {
                "catalogus": catalogus_url,
                "omschrijving": zgw.informatieobjecttype_omschrijving,
                "datumGeldigheid": day,
                "status": "alles",
            },
        )
        if i.get("omschrijving") == zgw.informatieobjecttype_omschrijving
    ]
    if not iotypen:
        raise ConfigError(
            f"ZGWID_ZGW_INFORMATIEOBJECTTYPE_OMSCHRIJVING: no informatieobjecttype "
            f"{zgw.informatieobjecttype_omschrijving!r} valid on {day} in catalogus {catalogus_url}"
        )
    published_io = [i for i in iotypen if i.get("concept") is False]
    if not published_io:
        raise ConfigError(
            f"ZGWID_ZGW_INFORMATIEOBJECTTYPE_OMSCHRIJVING: informatieobjecttype "
            f"{zgw.informatieobjecttype_omschrijving!r} is not published (concept); publish it"
        )
    linked = {
        str(rel.get("informatieobjecttype"))
        for rel in catalogi.list_all("zaaktype-informatieobjecttypen", {"zaaktype": zaaktype_url})
    }
    chosen = [i for i in published_io if i.get("url") in linked]
    if not chosen:
        raise ConfigError(
            f"ZGWID_ZGW_INFORMATIEOBJECTTYPE_OMSCHRIJVING: informatieobjecttype "
            f"{zgw.informatieobjecttype_omschrijving!r} is not linked to zaaktype "
            f"{zgw.zaaktype_identificatie!r} "
            "(add it under zaaktype-informatieobjecttypen)"
        )
    return CatalogueRefs(
        zaaktype_url=zaaktype_url,
        roltype_url=str(roltypen[0]["url"]),
        statustype_url=str(first_status["url"]),
        informatieobjecttype_url=str(chosen[0]["url"]),
        catalogus_url=catalogus_url,
    )


def _catalogus(settings: Settings, catalogi: ZgwClient) -> str:
    if settings.zgw.catalogus_url:
        try:
            found = catalogi.get(settings.zgw.catalogus_url)
        except ZgwRefused as exc:
            if exc.status == 404:
                raise ConfigError(f"ZGWID_ZGW_CATALOGUS_URL: {settings.zgw.catalogus_url} does not exist") from None
            raise
        if not isinstance(found, dict) or not found.get("url"):
            raise ConfigError(f"ZGWID_ZGW_CATALOGUS_URL: {settings.zgw.catalogus_url} is not a catalogus")
        return str(found["url"])
    found_list = [
        c for c in catalogi.list_all("catalogussen", {"rsin": settings.rsin}) if c.get("rsin") == settings.rsin
    ]
    if not found_list:
        raise ConfigError(
            f"ZGWID_RSIN: no catalogus with rsin {settings.rsin}; set ZGWID_ZGW_CATALOGUS_URL or the right RSIN"
        )
    if len(found_list) > 1:
        raise ConfigError(
            f"ZGWID_ZGW_CATALOGUS_URL: {len(found_list)} catalogi have rsin {settings.rsin}; name the one to use"
        )
    return str(found_list[0]["url"])


def _volgnummer(statustype: dict[str, Any]) -> int:
    try:
        return int(statustype.get("volgnummer") or 0)
    except (TypeError, ValueError):
        return 0
