"""``ZgwHttpRegistry``: ports.ZaakRegistry on the Zaken, Documenten and Catalogi APIs.

Every write carries the registration's marker so a retry can find what an earlier, unanswered
attempt created: the zaak as a kenmerk ``{bron: "zgw-identificatie", kenmerk: <marker>}``, the
document as its ``identificatie``. The BSN only travels in the body of POST /rollen; lookups by BSN
filter the rollen of one zaak locally, so it never appears in a URL (ZGW-CHEATSHEET §3 Z3).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ...domain.bsn import Bsn
from ...domain.errors import RegistrationFailed, RegistryUnavailable, ZaakNotFound
from ...ports import ZaakRef
from ...settings import ConfigError, Settings
from .auth import acting_as
from .catalogue import CatalogueRefs, resolve_catalogue
from .client import Http, ZgwRefused, build_clients

log = logging.getLogger(__name__)

KENMERK_BRON = "zgw-identificatie"
DOCUMENT_PREFIX = "ZGWID-"
CATALOGUE_TTL_SECONDS = 15 * 60
_SAFE_MARKER = re.compile(r"^[A-Za-z0-9_-]{1,34}$")


def marker_key(marker: str) -> str:
    """The marker as stored (≤34 characters, so ``ZGWID-<key>`` fits the 40 of an identificatie)."""
    if _SAFE_MARKER.match(marker):
        return marker
    return hashlib.sha256(marker.encode()).hexdigest()[:32]


def document_identificatie(marker: str) -> str:
    return DOCUMENT_PREFIX + marker_key(marker)


class ZgwHttpRegistry:
    """The zaaksysteem through HTTP. ``refs=None`` resolves the catalogue on first use (cached 15 min)."""

    def __init__(
        self,
        settings: Settings,
        refs: CatalogueRefs | None = None,
        *,
        http: Http | None = None,
        roots: Mapping[str, str] | None = None,
        today: Any = None,
    ) -> None:
        self.settings = settings
        self.zaken, self.documenten, self.catalogi = build_clients(settings, http=http, roots=roots)
        self._fixed_refs = refs
        self._refs: CatalogueRefs | None = refs
        self._refs_at = 0.0
        self._today = today or (lambda: datetime.now(UTC).date())
        self._lock = threading.Lock()
        self._zaaktype_of: dict[str, str] = {}
        self._statustypen: dict[tuple[str, str], str] = {}

    @contextmanager
    def acting_for(self, user_id: str, user_representation: str) -> Iterator[None]:
        """Requests in this block carry the behandelaar in the JWT (``user_id``, ``user_representation``)."""
        with acting_as(user_id, user_representation):
            yield

    # -- catalogue ---------------------------------------------------------------------------------

    @property
    def refs(self) -> CatalogueRefs:
        if self._fixed_refs is not None:
            return self._fixed_refs
        with self._lock:
            if self._refs is None or time.monotonic() - self._refs_at > CATALOGUE_TTL_SECONDS:
                self._refs = resolve_catalogue(self.settings, self.catalogi, today=self._today())
                self._refs_at = time.monotonic()
            return self._refs

    # -- zaak --------------------------------------------------------------------------------------

    def create_zaak(self, *, marker: str, startdatum: date, omschrijving: str, toelichting: str) -> ZaakRef:
        body = {
            "bronorganisatie": self.settings.rsin,
            "verantwoordelijkeOrganisatie": self.settings.rsin,
            "zaaktype": self.refs.zaaktype_url,
            "startdatum": startdatum.isoformat(),
            "omschrijving": omschrijving[:80],
            "toelichting": toelichting[:1000],
            "kenmerken": [{"bron": KENMERK_BRON, "kenmerk": marker_key(marker)}],
        }
        zaak = self.zaken.post("zaken", body, crs=True)
        log.info("zaak created: %s", zaak.get("identificatie"))
        return self._zaak_ref(zaak)

    def find_zaak_by_marker(self, *, marker: str, startdatum: date) -> ZaakRef | None:
        wanted = {"bron": KENMERK_BRON, "kenmerk": marker_key(marker)}
        params = {
            "bronorganisatie": self.settings.rsin,
            "zaaktype": self.refs.zaaktype_url,
            "startdatum": startdatum.isoformat(),
        }
        for zaak in self.zaken.list_all("zaken", params, crs=True):
            for kenmerk in zaak.get("kenmerken") or []:
                if (
                    isinstance(kenmerk, dict)
                    and kenmerk.get("bron") == wanted["bron"]
                    and kenmerk.get("kenmerk") == wanted["kenmerk"]
                ):
                    return self._zaak_ref(zaak)
        return None

    def find_zaak(self, identificatie: str) -> ZaakRef:
        params = {"identificatie": identificatie, "bronorganisatie": self.settings.rsin}
        for zaak in self.zaken.list_all("zaken", params, crs=True):
            if zaak.get("identificatie") == identificatie:
                return self._zaak_ref(zaak)
        raise ZaakNotFound(f"no zaak with identificatie {identificatie!r} for this bronorganisatie")

    def zaken_with_identificatie(self, identificatie: str) -> list[ZaakRef]:
        found = self.zaken.list_all("zaken", {"identificatie": identificatie}, crs=True)
        return [self._zaak_ref(zaak) for zaak in found if zaak.get("identificatie") == identificatie]

    def _zaak_ref(self, zaak: dict[str, Any]) -> ZaakRef:
        url = str(zaak["url"])
        if zaak.get("zaaktype"):
            self._zaaktype_of[url] = str(zaak["zaaktype"])
        einddatum = None
        if zaak.get("einddatum"):
            try:
                einddatum = date.fromisoformat(str(zaak["einddatum"]))
            except ValueError:
                einddatum = date.min  # unreadable, but set: treat as closed
        return ZaakRef(
            url=url,
            identificatie=str(zaak.get("identificatie") or ""),
            bronorganisatie=str(zaak.get("bronorganisatie") or ""),
            einddatum=einddatum,
        )

    # -- rol ---------------------------------------------------------------------------------------

    def add_citizen_rol(self, *, zaak_url: str, bsn: Bsn, toelichting: str, existing: bool = False) -> str:
        generiek = (
            self.settings.zgw.roltype_existing_zaak if existing else self.settings.zgw.roltype_omschrijving_generiek
        )
        body = {
            "zaak": zaak_url,
            "betrokkeneType": "natuurlijk_persoon",
            "roltype": self._roltype_for(zaak_url, generiek),
            "roltoelichting": toelichting[:1000],
            "betrokkeneIdentificatie": {"inpBsn": bsn.value},
        }
        rol = self.zaken.post("rollen", body)
        return str(rol["url"])

    def find_citizen_rol(self, *, zaak_url: str, bsn: Bsn, existing: bool = False) -> str | None:
        params = {"zaak": zaak_url, "betrokkeneType": "natuurlijk_persoon"}
        if not existing:
            params["omschrijvingGeneriek"] = self.settings.zgw.roltype_omschrijving_generiek
        for rol in self.zaken.list_all("rollen", params):
            ident = rol.get("betrokkeneIdentificatie") or {}
            if isinstance(ident, dict) and ident.get("inpBsn") == bsn.value:
                return str(rol["url"])
        return None

    def _roltype_for(self, zaak_url: str, generiek: str) -> str:
        """The roltype with ``generiek`` as omschrijvingGeneriek in the zaaktype (version) of the zaak."""
        refs = self.refs
        zaaktype = self._zaaktype_of.get(zaak_url)
        if zaaktype is None:
            zaak = self.zaken.get(zaak_url, crs=True)
            zaaktype = str((zaak or {}).get("zaaktype") or "")
            self._zaaktype_of[zaak_url] = zaaktype
        if (
            not zaaktype or zaaktype == refs.zaaktype_url
        ) and generiek == self.settings.zgw.roltype_omschrijving_generiek:
            return refs.roltype_url
        zaaktype = zaaktype or refs.zaaktype_url
        for roltype in self.catalogi.list_all("roltypen", {"zaaktype": zaaktype, "omschrijvingGeneriek": generiek}):
            if roltype.get("omschrijvingGeneriek") == generiek:
                return str(roltype["url"])
        raise RegistrationFailed(
            f"the zaaktype of the existing zaak has no roltype with omschrijvingGeneriek {generiek!r}",
            [
                {
                    "name": "roltype",
                    "code": "no-roltype",
                    "reason": f"zaaktype {zaaktype} has no {generiek} roltype",
                }
            ],
        )

    # -- status ------------------------------------------------------------------------------------

    def set_first_status(self, *, zaak_url: str, when: datetime, toelichting: str) -> str:
        body = {
            "zaak": zaak_url,
            "statustype": self.refs.statustype_url,
            "datumStatusGezet": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "statustoelichting": toelichting[:1000],
        }
        return str(self.zaken.post("statussen", body)["url"])

    def find_status(self, *, zaak_url: str) -> str | None:
        for status in self.zaken.list_all("statussen", {"zaak": zaak_url}):
            return str(status["url"])
        return None

    # -- §2.1 code confirmation: a later status of a configured statustype ------------------------

    def find_status_of_type(self, *, zaak_url: str, statustype_omschrijving: str) -> str | None:
        statustype = self._statustype_for(zaak_url, statustype_omschrijving)
        for status in self.zaken.list_all("statussen", {"zaak": zaak_url}):
            if status.get("statustype") == statustype:
                return str(status["url"])
        return None

    def add_status(self, *, zaak_url: str, statustype_omschrijving: str, when: datetime, toelichting: str) -> str:
        """The zaak's current status is the one with the latest datumStatusGezet, and (zaak, datumStatusGezet) is
        unique: the new one is set at least a second after the latest; not in the future (refused by Open Zaak)."""
        statustype = self._statustype_for(zaak_url, statustype_omschrijving)
        latest = max(
            (_parse_time(s.get("datumStatusGezet")) for s in self.zaken.list_all("statussen", {"zaak": zaak_url})),
            default=None,
        )
        moment = when.astimezone(UTC).replace(microsecond=0)
        if latest is not None and moment <= latest:
            moment = latest + timedelta(seconds=1)
            if moment > datetime.now(UTC):
                raise RegistryUnavailable("the zaak's latest status is a second old at most; set this one later")
        body = {
            "zaak": zaak_url,
            "statustype": statustype,
            "datumStatusGezet": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "statustoelichting": toelichting[:1000],
        }
        return str(self.zaken.post("statussen", body)["url"])

    def _statustype_for(self, zaak_url: str, omschrijving: str) -> str:
        """The statustype with this omschrijving in the zaaktype (version) of the zaak, like ``_roltype_for``."""
        zaaktype = self._zaaktype_of.get(zaak_url)
        if zaaktype is None:
            zaak = self.zaken.get(zaak_url, crs=True)
            zaaktype = str((zaak or {}).get("zaaktype") or "") or self.refs.zaaktype_url
            self._zaaktype_of[zaak_url] = zaaktype
        key = (zaaktype, omschrijving)
        if key not in self._statustypen:
            for statustype in self.catalogi.list_all("statustypen", {"zaaktype": zaaktype}):
                if statustype.get("omschrijving") == omschrijving and statustype.get("zaaktype") == zaaktype:
                    self._statustypen[key] = str(statustype["url"])
                    break
            else:
                raise RegistrationFailed(
                    f"the zaaktype has no statustype {omschrijving!r} (ZGWID_ZGW_STATUSTYPE_CODE_KLOPT / _NIET)",
                    [
                        {
                            "name": "statustype",
                            "code": "no-statustype",
                            "reason": f"zaaktype {zaaktype} has no {omschrijving}",
                        }
                    ],
                )
        return self._statustypen[key]

    # -- document ----------------------------------------------------------------------------------

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
        zgw = self.settings.zgw
        body = {
            "identificatie": document_identificatie(marker),
            "bronorganisatie": self.settings.rsin,
            "creatiedatum": creatiedatum.isoformat(),
            "titel": titel[:200],
            "auteur": self.settings.gemeente_naam[:200],
            "taal": zgw.taal,
            "formaat": "application/pdf",
            "bestandsnaam": bestandsnaam[:255],
            "inhoud": base64.b64encode(inhoud).decode("ascii"),
            "bestandsomvang": len(inhoud),
            "status": "definitief",
            "vertrouwelijkheidaanduiding": zgw.vertrouwelijkheidaanduiding,
            "informatieobjecttype": self.refs.informatieobjecttype_url,
            "indicatieGebruiksrecht": False,
            "beschrijving": beschrijving[:1000],
            "integriteit": {
                "algoritme": "sha_256",
                "waarde": hashlib.sha256(inhoud).hexdigest(),
                "datum": creatiedatum.isoformat(),
            },
        }
        document = self.documenten.post("enkelvoudiginformatieobjecten", body)
        log.info("document created: %s", document.get("identificatie"))
        return str(document["url"])

    def find_document(self, *, marker: str) -> str | None:
        identificatie = document_identificatie(marker)
        params = {"identificatie": identificatie, "bronorganisatie": self.settings.rsin}
        for document in self.documenten.list_all("enkelvoudiginformatieobjecten", params):
            if document.get("identificatie") == identificatie:
                return str(document["url"])
        return None

    # -- link --------------------------------------------------------------------------------------

    def link_document(self, *, zaak_url: str, document_url: str, titel: str) -> str:
        body = {"zaak": zaak_url, "informatieobject": document_url, "titel": titel[:200]}
        return str(self.zaken.post("zaakinformatieobjecten", body)["url"])

    def find_link(self, *, zaak_url: str, document_url: str) -> str | None:
        for link in self.zaken.list_all("zaakinformatieobjecten", {"zaak": zaak_url, "informatieobject": document_url}):
            if link.get("informatieobject") == document_url:
                return str(link["url"])
        return None


#: A read on each API proves the credentials and the read scope; the write scopes (zaken.aanmaken,
#: zaken.bijwerken, documenten.aanmaken) can only be proven by a write, which check-config never makes.
_PROBES = (
    ("zaken", "zaken", "zaken.lezen", "ZGWID_ZGW_ZAKEN_URL"),
    ("documenten", "enkelvoudiginformatieobjecten", "documenten.lezen", "ZGWID_ZGW_DOCUMENTEN_URL"),
)


def check_access(registry: ZgwHttpRegistry) -> list[str]:
    """``check-config``: resolve the catalogue (Catalogi API, catalogi.lezen), then read the Zaken and the
    Documenten API once each. Returns what was resolved, one line each; raises ConfigError naming the API,
    the scope that is missing (401/403) or the setting to fix (404), RegistryUnavailable when unreachable."""
    settings = registry.settings
    refs = registry.refs
    lines = [
        f"client_id:             {settings.zgw.client_id}",
        f"catalogus:             {refs.catalogus_url}",
        f"zaaktype:              {refs.zaaktype_url}",
        f"roltype (initiator):   {refs.roltype_url}",
        f"statustype (first):    {refs.statustype_url}",
        f"informatieobjecttype:  {refs.informatieobjecttype_url}",
    ]
    probe_id = DOCUMENT_PREFIX + "check-config"
    for api, resource, scope, setting_name in _PROBES:
        client = registry.zaken if api == "zaken" else registry.documenten
        params = {"identificatie": probe_id, "bronorganisatie": settings.rsin}
        try:
            client.get(resource, params, crs=api == "zaken")
        except ZgwRefused as exc:
            if exc.status in (401, 403):
                raise ConfigError(
                    f"the {api.capitalize()} API refused a read ({exc}): the Applicatie of client_id "
                    f"{settings.zgw.client_id!r} lacks the scope {scope} (for zaaktype "
                    f"{settings.zgw.zaaktype_identificatie!r}), or ZGWID_ZGW_SECRET is not its secret"
                ) from None
            raise ConfigError(f"the {api.capitalize()} API refused a read ({exc}); check {setting_name}") from None
        lines.append(f"{api + ' API:':<22} {client.base_url} (read with {scope}: ok)")
    lines.append(
        "not provable by a read: zaken.aanmaken, zaken.bijwerken, documenten.aanmaken (a missing one fails the "
        "first registration, which can then be resumed)"
    )
    return lines


def _parse_time(value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def build_registry(
    settings: Settings,
    *,
    http: Http | None = None,
    roots: Mapping[str, str] | None = None,
    resolve_now: bool = True,
    today: date | None = None,
) -> ZgwHttpRegistry:
    """A registry on the configured API roots (``roots`` overrides them, e.g. the sandbox's).

    With ``resolve_now`` the catalogue is resolved immediately (ConfigError names the wrong setting;
    RegistryUnavailable when the Catalogi API cannot be reached); otherwise on first use.
    """
    today_fn = (lambda: today) if today is not None else None
    registry = ZgwHttpRegistry(settings, None, http=http, roots=roots, today=today_fn)
    if resolve_now:
        _ = registry.refs
    return registry


__all__ = [
    "RegistryUnavailable",
    "ZgwHttpRegistry",
    "build_registry",
    "check_access",
    "document_identificatie",
    "marker_key",
]
