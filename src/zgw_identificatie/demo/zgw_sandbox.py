"""ZGW sandbox for the embedded demo: an in-memory Catalogi, Zaken and Documenten API.

Only the endpoints the service calls, answering like the recorded Open Zaak 1.30 exchanges in
``shared/fixtures/openzaak-smoke``: status codes, body shapes, problem+json errors with
``invalidParams``, 412 without ``Accept-Crs`` on zaken, the JWT check (403 like fixture 18),
generated ``ZAAK-<year>-<10 digits>``, at most one initiator rol, ``{count, next, previous,
results}`` pagination (``zaakinformatieobjecten``: a plain array). Pre-filled with one catalogus,
zaaktype ``VIDEO-ID`` (published), roltypen initiator, behandelaar and belanghebbende, five statustypen
(two for the §2.1 code confirmation) and the
informatieobjecttype "Bewijs identificatie" linked to the zaaktype.

Mount ``create_sandbox_blueprint(settings)`` at ``url_prefix="/sandbox"``; ``/sandbox/`` is a
read-only backoffice page. Faults for tests: ``blueprint.sandbox.faults.add(...)``; time-outs and
dropped connections need ``SandboxTransport`` (an in-process transport raises them client-side
after the sandbox processed — or refused — the request). Refuses to run with ``ZGWID_ENV=production``.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import os
import re
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt
import requests
from flask import Blueprint, Response, abort, jsonify, render_template, request, url_for

from ..domain.bsn import passes_elfproef
from ..ports import Clock
from ..settings import Settings
from . import refuse_in_production
from .wsgi_transport import WSGITransport

PREFIX = "/sandbox"
API_PATHS = {"zaken": "zaken/api/v1/", "documenten": "documenten/api/v1/", "catalogi": "catalogi/api/v1/"}
API_VERSIONS = {"zaken": "1.5.1", "documenten": "1.4.2", "catalogi": "1.3.1"}
FAULT_HEADER = "X-Sandbox-Fault"
JWT_EXPIRY = 3600
REQUIRED = "Dit veld is verplicht."


def sandbox_api_roots(base_url: str) -> dict[str, str]:
    """API roots of the sandbox mounted at ``/sandbox`` under ``base_url``."""
    base = base_url.rstrip("/") + PREFIX + "/"
    return {api: base + path for api, path in API_PATHS.items()}


# --- faults ---------------------------------------------------------------------------------------


@dataclass
class Fault:
    path: str  # substring of the request path, e.g. "/rollen"
    kind: str  # "503", "timeout" or "drop"
    method: str = "POST"
    times: int = 1
    processed: bool = True  # timeout/drop: the sandbox did the work before the answer was lost
    sleep: float = 0.0  # seconds to wait before answering (for clients on a real socket)


class FaultQueue:
    """Faults for the next matching calls; thread-safe."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(
        self,
        path: str,
        kind: str,
        *,
        method: str = "POST",
        times: int = 1,
        processed: bool = True,
        sleep: float = 0.0,
    ) -> Fault:
        if kind not in ("503", "timeout", "drop"):
            raise ValueError("kind must be 503, timeout or drop")
        fault = Fault(path, kind, method.upper(), times, processed, sleep)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method == method and fault.path in path:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def __len__(self) -> int:
        return len(self._faults)


class SandboxTransport(WSGITransport):
    """WSGITransport that turns the sandbox's fault marker into a client-side time-out or lost connection."""

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        response = super().send(request, stream, timeout, verify, cert, proxies)
        fault = response.headers.get(FAULT_HEADER)
        if fault == "timeout":
            raise requests.ReadTimeout("sandbox: read timed out", request=request)
        if fault == "drop":
            raise requests.ConnectionError("sandbox: connection dropped", request=request)
        return response


def sandbox_http(app: Callable[..., Any], base_url: str) -> Callable[[requests.Session], SandboxTransport]:
    """An ``http`` hook for ``build_registry``: route ``<base_url>/sandbox/`` to ``app`` in-process."""
    prefix = base_url.rstrip("/") + PREFIX + "/"

    def setup(session: requests.Session) -> SandboxTransport:
        transport = SandboxTransport(app)
        session.mount(prefix, transport)
        return transport

    return setup


# --- the fake zaaksysteem -------------------------------------------------------------------------


class _Problem(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str = "",
        invalid: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(code)
        self.status, self.code, self.title, self.detail, self.invalid = status, code, title, detail, invalid


def _invalid(*params: tuple[str, str, str]) -> _Problem:
    return _Problem(
        400,
        "invalid",
        "Ongeldige invoer.",
        "Ongeldige invoer.",
        [{"name": n, "code": c, "reason": r} for n, c, r in params],
    )


class _SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class ZgwSandbox:
    """State and behaviour; the blueprint is a thin shell around ``handle``."""

    client_id: str
    secret: str
    rsin: str
    clock: Clock = field(default_factory=_SystemClock)
    page_size: int = 100
    faults: FaultQueue = field(default_factory=FaultQueue)
    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # kind → key → resource
    blobs: dict[str, bytes] = field(default_factory=dict)
    requests_seen: list[tuple[str, str]] = field(default_factory=list)  # (method, path?query), no bodies
    _counters: dict[str, int] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    #: A JSON file that keeps the state across restarts and shares it between processes (demo); None: memory.
    state_file: str | None = None
    _state_mtime: tuple[int, int, int] | None = None  # (inode, mtime_ns, size) of the file last read or written

    def __post_init__(self) -> None:
        if self.state_file is None:
            self._seed()
            return
        with self.synced(write=False):
            if self._state_mtime is None:  # no file yet: the first process seeds the catalogue and writes it
                self._seed()
                self._save()

    # -- persistence (demo): one JSON file, an exclusive lock, reloaded when another process wrote it --

    @contextmanager
    def synced(self, *, write: bool) -> Iterator[None]:
        """Hold the state: in memory under a lock; with ``state_file`` also under a file lock, reloading what
        another process wrote and saving after a write."""
        if self.state_file is None:
            with self._lock:
                yield
            return
        path = Path(self.state_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(str(path) + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if path.is_file() and _stamp(path) != self._state_mtime:
                    self._load(path)
                yield
                if write:
                    self._save()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _load(self, path: Path) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        self.resources = data["resources"]
        self.blobs = {k: base64.b64decode(v) for k, v in data["blobs"].items()}
        self._counters = data["counters"]
        self._state_mtime = _stamp(path)

    def _save(self) -> None:
        assert self.state_file is not None
        path = Path(self.state_file)
        data = {
            "resources": self.resources,
            "blobs": {k: base64.b64encode(v).decode("ascii") for k, v in self.blobs.items()},
            "counters": self._counters,
        }
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)
        self._state_mtime = _stamp(path)

    # -- URLs: resources hold keys ("zaken/api/v1/zaken/<uuid>"), answers hold absolute URLs --

    def _abs(self, base: str, value: Any) -> Any:
        if isinstance(value, str) and value.startswith(("zaken/api/", "documenten/api/", "catalogi/api/")):
            return base + value
        if isinstance(value, list):
            return [self._abs(base, v) for v in value]
        if isinstance(value, dict):
            return {k: self._abs(base, v) for k, v in value.items()}
        return value

    @staticmethod
    def _key(base: str, url: Any) -> str | None:
        if not isinstance(url, str) or not url.startswith(base):
            return None
        return url[len(base) :]

    def _find(self, kind: str, key: str | None) -> dict[str, Any] | None:
        return self.resources.get(kind, {}).get(key or "")

    def _new_key(self, api: str, kind: str) -> str:
        return f"{API_PATHS[api]}{kind}/{uuid.uuid4()}"

    def _put(self, kind: str, resource: dict[str, Any]) -> dict[str, Any]:
        self.resources.setdefault(kind, {})[resource["url"]] = resource
        return resource

    def _seed(self) -> None:
        cat = "catalogi/api/v1/"
        catalogus = cat + "catalogussen/" + str(uuid.uuid4())
        zaaktype = cat + "zaaktypen/" + str(uuid.uuid4())
        iot = cat + "informatieobjecttypen/" + str(uuid.uuid4())
        roltypen = [cat + "roltypen/" + str(uuid.uuid4()) for _ in range(3)]
        statustypen = [cat + "statustypen/" + str(uuid.uuid4()) for _ in range(5)]
        self._put(
            "catalogussen",
            {
                "url": catalogus,
                "domein": "VIDEO",
                "rsin": self.rsin,
                "contactpersoonBeheerNaam": "Demo",
                "zaaktypen": [zaaktype],
                "informatieobjecttypen": [iot],
                "besluittypen": [],
                "naam": "Sandbox-catalogus",
                "versie": "1",
                "begindatumVersie": "2026-01-01",
            },
        )
        self._put(
            "zaaktypen",
            {
                "url": zaaktype,
                "identificatie": "VIDEO-ID",
                "omschrijving": "Identificatie tijdens videogesprek",
                "omschrijvingGeneriek": "Identificatie",
                "vertrouwelijkheidaanduiding": "zaakvertrouwelijk",
                "doel": "Vastleggen van een identificatie met DigiD",
                "aanleiding": "Videogesprek",
                "indicatieInternOfExtern": "extern",
                "handelingInitiator": "Identificeren",
                "onderwerp": "Identificatie",
                "handelingBehandelaar": "Vastleggen",
                "doorlooptijd": "P1D",
                "opschortingEnAanhoudingMogelijk": False,
                "verlengingMogelijk": False,
                "trefwoorden": [],
                "publicatieIndicatie": False,
                "verantwoordingsrelatie": [],
                "productenOfDiensten": [],
                "referentieproces": {"naam": "Demo", "link": ""},
                "concept": False,
                "verantwoordelijke": "Publiekszaken",
                "beginGeldigheid": "2026-01-01",
                "eindeGeldigheid": None,
                "versiedatum": "2026-01-01",
                "catalogus": catalogus,
                "statustypen": statustypen,
                "resultaattypen": [],
                "eigenschappen": [],
                "informatieobjecttypen": [iot],
                "roltypen": roltypen,
                "besluittypen": [],
                "deelzaaktypen": [],
                "gerelateerdeZaaktypen": [],
                "zaakobjecttypen": [],
            },
        )
        for url, (omschrijving, generiek) in zip(
            roltypen,
            [("Initiator", "initiator"), ("Behandelaar", "behandelaar"), ("Belanghebbende", "belanghebbende")],
            strict=True,
        ):
            self._put(
                "roltypen",
                {
                    "url": url,
                    "zaaktype": zaaktype,
                    "zaaktypeIdentificatie": "VIDEO-ID",
                    "omschrijving": omschrijving,
                    "omschrijvingGeneriek": generiek,
                    "catalogus": catalogus,
                    "beginGeldigheid": None,
                    "eindeGeldigheid": None,
                    "beginObject": None,
                    "eindeObject": None,
                },
            )
        for n, (url, omschrijving) in enumerate(
            zip(
                statustypen,
                # The §2.1 code confirmation's two (zgw.statustype_code_klopt / _niet) sit before the end status.
                [
                    "Ontvangen",
                    "Identificatie vastgelegd",
                    "Identiteit vastgesteld",
                    "Identiteit niet vastgesteld",
                    "Afgerond",
                ],
                strict=True,
            ),
            start=1,
        ):
            self._put(
                "statustypen",
                {
                    "url": url,
                    "omschrijving": omschrijving,
                    "omschrijvingGeneriek": "",
                    "statustekst": "",
                    "zaaktype": zaaktype,
                    "zaaktypeIdentificatie": "VIDEO-ID",
                    "volgnummer": n,
                    "isEindstatus": n == len(statustypen),
                    "informeren": False,
                    "doorlooptijd": None,
                    "toelichting": None,
                    "checklistitemStatustype": [],
                    "catalogus": catalogus,
                    "eigenschappen": [],
                    "zaakobjecttypen": [],
                    "beginGeldigheid": None,
                    "eindeGeldigheid": None,
                    "beginObject": None,
                    "eindeObject": None,
                },
            )
        self._put(
            "informatieobjecttypen",
            {
                "url": iot,
                "catalogus": catalogus,
                "omschrijving": "Bewijs identificatie",
                "vertrouwelijkheidaanduiding": "vertrouwelijk",
                "beginGeldigheid": "2026-01-01",
                "eindeGeldigheid": None,
                "concept": False,
                "besluittypen": [],
                "informatieobjectcategorie": "Bewijs",
                "trefwoord": [],
                "omschrijvingGeneriek": {},
                "zaaktypen": [zaaktype],
            },
        )
        self._put(
            "zaaktype-informatieobjecttypen",
            {
                "url": cat + "zaaktype-informatieobjecttypen/" + str(uuid.uuid4()),
                "zaaktype": zaaktype,
                "informatieobjecttype": iot,
                "volgnummer": 1,
                "richting": "intern",
                "statustype": None,
                "catalogus": catalogus,
            },
        )

    # -- convenience for tests and the demo ----------------------------------------------------

    def all(self, kind: str) -> list[dict[str, Any]]:
        return list(self.resources.get(kind, {}).values())

    def add_zaak(self, identificatie: str | None = None, *, startdatum: date | None = None) -> dict[str, Any]:
        """A zaak of the sandbox's zaaktype made outside the service (for 'attach to an existing zaak')."""
        with self.synced(write=True):
            zaaktype = self.all("zaaktypen")[0]["url"]
            return self._create_zaak(
                {
                    "bronorganisatie": self.rsin,
                    "verantwoordelijkeOrganisatie": self.rsin,
                    "zaaktype": zaaktype,
                    "startdatum": (startdatum or self.clock.now().date()).isoformat(),
                    "omschrijving": "Aanvraag paspoort",
                    "identificatie": identificatie,
                }
            )

    # -- request handling --------------------------------------------------------------------------

    def handle(self, api: str, path: str, base: str) -> Response:
        method = request.method
        query = request.query_string.decode("latin-1")
        self.requests_seen.append((method, f"/{api}/api/v1/{path}" + (f"?{query}" if query else "")))
        fault = self.faults.take(method, f"/{api}/api/v1/{path}")
        if fault and fault.sleep:
            time.sleep(fault.sleep)
        try:
            if fault and fault.kind == "503":
                raise _Problem(
                    503,
                    "service_unavailable",
                    "Service tijdelijk niet beschikbaar.",
                    "De service is tijdelijk niet beschikbaar (sandbox-fout).",
                )
            if fault and not fault.processed:
                return self._faulted(Response(status=504), fault)
            self._check_jwt()
            with self.synced(write=method == "POST"):
                status, body, headers = self._dispatch(api, path, method, base)
        except _Problem as problem:
            status, body, headers = problem.status, self._problem_body(problem, base), {}
        if api == "zaken" and (path == "zaken" or path.startswith("zaken/")):
            headers["Content-Crs"] = "EPSG:4326"
        response = jsonify(self._abs(base, body))
        response.status_code = status
        response.headers["API-version"] = API_VERSIONS[api]
        for name, value in headers.items():
            response.headers[name] = value
        return self._faulted(response, fault) if fault else response

    @staticmethod
    def _faulted(response: Response, fault: Fault) -> Response:
        if fault.kind in ("timeout", "drop"):
            response.headers[FAULT_HEADER] = fault.kind
        return response

    def _problem_body(self, problem: _Problem, base: str) -> dict[str, Any]:
        kinds = {
            400: "ValidationError",
            403: "PermissionDenied",
            404: "NotFound",
            406: "NotAcceptable",
            412: "PreconditionFailed",
            503: "ServiceUnavailable",
        }
        root = base.split(PREFIX + "/")[0]
        body: dict[str, Any] = {
            "type": f"{root}/ref/fouten/{kinds.get(problem.status, 'APIException')}/",
            "code": problem.code,
            "title": problem.title,
            "status": problem.status,
            "detail": problem.detail or problem.title,
            "instance": f"urn:uuid:{uuid.uuid4()}",
        }
        if problem.invalid is not None:
            body["invalidParams"] = problem.invalid
        return body

    def _check_jwt(self) -> None:
        """Open Zaak's JWTAuth order (ZGW-CHEATSHEET §8): client_id → secret → signature → iat → age."""

        def denied(code: str, detail: str) -> _Problem:
            return _Problem(403, code, "Je hebt geen toestemming om deze actie uit te voeren.", detail)

        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise _Problem(401, "not_authenticated", "Authenticatiegegevens zijn niet opgegeven.")
        token = header[len("Bearer ") :]
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise denied("invalid-jwt", "JWT kon niet gelezen worden") from None
        client_id = unverified.get("client_id")
        if not client_id:
            raise denied("missing-client-identifier", "Client identifier ontbreekt")
        if client_id != self.client_id:
            raise denied("invalid-client-identifier", "Client identifier bestaat niet")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
                claims = jwt.decode(
                    token,
                    self.secret,
                    algorithms=["HS256"],
                    options={"verify_exp": True, "verify_iat": False},
                )
        except jwt.ExpiredSignatureError:
            raise denied("jwt-expired", "Het JWT is verlopen") from None
        except jwt.PyJWTError:
            raise denied("invalid-jwt-signature", "Client credentials zijn niet geldig") from None
        if "iat" not in claims:
            raise denied("jwt-missing-iat-claim", "De iat-claim ontbreekt")
        if time.time() - float(claims["iat"]) >= JWT_EXPIRY:
            raise denied("jwt-expired", "Het JWT is verlopen")

    def _dispatch(self, api: str, path: str, method: str, base: str) -> tuple[int, Any, dict[str, str]]:
        parts = [p for p in path.split("/") if p]
        if not parts:
            raise _Problem(404, "not_found", "Niet gevonden.")
        kind = parts[0]
        if api == "zaken" and kind == "zaken":
            self._check_crs(method)
        allowed = {
            "catalogi": {
                "catalogussen",
                "zaaktypen",
                "roltypen",
                "statustypen",
                "informatieobjecttypen",
                "zaaktype-informatieobjecttypen",
            },
            "zaken": {"zaken", "rollen", "statussen", "zaakinformatieobjecten"},
            "documenten": {"enkelvoudiginformatieobjecten"},
        }[api]
        if kind not in allowed:
            raise _Problem(404, "not_found", "Niet gevonden.")
        if len(parts) == 1:
            if method == "GET":
                return 200, self._list(api, kind, base), {}
            if method == "POST" and api != "catalogi":
                body = request.get_json(silent=True)
                if not isinstance(body, dict):
                    raise _invalid(("nonFieldErrors", "parse_error", "Ongeldige JSON."))
                created = self._create(api, kind, body, base)
                return 201, created, {"Location": base + created["url"]}
            raise _Problem(405, "method_not_allowed", f'Methode "{method}" niet toegestaan.')
        key = f"{API_PATHS[api]}{kind}/{parts[1]}"
        found = self._find(kind, key)
        if found is None or method != "GET":
            raise _Problem(404, "not_found", "Niet gevonden.")
        if len(parts) == 3 and parts[2] == "download" and kind == "enkelvoudiginformatieobjecten":
            raise _Download(self.blobs[key])
        if len(parts) > 2:
            raise _Problem(404, "not_found", "Niet gevonden.")
        return 200, self._view(kind, found), {}

    @staticmethod
    def _check_crs(method: str) -> None:
        for name in ("Accept-Crs",) + (("Content-Crs",) if method in ("POST", "PUT", "PATCH") else ()):
            value = request.headers.get(name)
            if value is None:
                raise _Problem(412, "precondition_failed", "Precondition failed", f"'{name}' header ontbreekt")
            if value != "EPSG:4326":
                raise _Problem(406, "not_acceptable", "CRS niet ondersteund", f"CRS '{value}' is niet ondersteund")

    def _view(self, kind: str, resource: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in resource.items() if not k.startswith("_")}
        if kind == "zaken":
            key = resource["url"]
            view["rollen"] = [r["url"] for r in self.all("rollen") if r["zaak"] == key]
            view["zaakinformatieobjecten"] = [z["url"] for z in self.all("zaakinformatieobjecten") if z["zaak"] == key]
            statussen = sorted(
                (s for s in self.all("statussen") if s["zaak"] == key), key=lambda s: s["datumStatusGezet"]
            )
            view["status"] = statussen[-1]["url"] if statussen else None
        return view

    # -- lists -------------------------------------------------------------------------------------

    def _list(self, api: str, kind: str, base: str) -> Any:
        args = request.args
        items = self.all(kind)

        def by_url(name: str, field_name: str | None = None) -> None:
            nonlocal items
            if name in args:
                items = [i for i in items if i.get(field_name or name) == self._key(base, args[name])]

        def by_value(name: str, field_name: str | None = None) -> None:
            nonlocal items
            if name in args:
                items = [i for i in items if str(i.get(field_name or name)) == args[name]]

        if kind in ("zaaktypen", "informatieobjecttypen"):
            by_url("catalogus")
            status = args.get("status", "definitief")
            if status == "definitief":
                items = [i for i in items if not i.get("concept")]
            elif status == "concept":
                items = [i for i in items if i.get("concept")]
            if "datumGeldigheid" in args:
                day = args["datumGeldigheid"]
                items = [
                    i
                    for i in items
                    if (i.get("beginGeldigheid") or "0000") <= day
                    and (i.get("eindeGeldigheid") is None or day <= i["eindeGeldigheid"])
                ]
        if kind == "zaaktypen":
            by_value("identificatie")
        if kind == "informatieobjecttypen":
            by_value("omschrijving")
        if kind == "catalogussen":
            by_value("rsin")
        if kind in ("roltypen", "statustypen", "zaaktype-informatieobjecttypen"):
            by_url("zaaktype")
        if kind == "roltypen":
            by_value("omschrijvingGeneriek")
        if kind == "zaaktype-informatieobjecttypen":
            by_url("informatieobjecttype")
        if kind == "zaken":
            for name in ("identificatie", "bronorganisatie", "startdatum"):
                by_value(name)
            by_url("zaaktype")
            if "kenmerk" in args:  # OZ extra, bron:kenmerk
                items = [
                    z
                    for z in items
                    if any(f"{k['bron']}:{k['kenmerk']}" == args["kenmerk"] for k in z.get("kenmerken", []))
                ]
        if kind in ("rollen", "statussen", "zaakinformatieobjecten"):
            by_url("zaak")
        if kind == "rollen":
            by_value("betrokkeneType")
            by_value("omschrijvingGeneriek")
            by_url("roltype")
        if kind == "zaakinformatieobjecten":
            by_url("informatieobject")
        if kind == "enkelvoudiginformatieobjecten":
            by_value("identificatie")
            by_value("bronorganisatie")
        views = [self._view(kind, i) for i in items]
        if kind == "zaakinformatieobjecten":
            return views
        return self._page(views, base)

    def _page(self, items: list[dict[str, Any]], base: str) -> dict[str, Any]:
        try:
            page = int(request.args.get("page", "1"))
        except ValueError:
            raise _Problem(404, "not_found", "Ongeldige pagina.") from None
        pages = max(1, -(-len(items) // self.page_size))
        if page < 1 or page > pages:
            raise _Problem(404, "not_found", "Ongeldige pagina.")

        def link(n: int) -> str:
            query = {k: v for k, v in request.args.items() if k != "page"}
            if n > 1:
                query["page"] = str(n)
            url = request.base_url
            return url + ("?" + urlencode(query) if query else "")

        start = (page - 1) * self.page_size
        return {
            "count": len(items),
            "next": link(page + 1) if page < pages else None,
            "previous": link(page - 1) if page > 1 else None,
            "results": items[start : start + self.page_size],
        }

    # -- creates -----------------------------------------------------------------------------------

    def _create(self, api: str, kind: str, body: dict[str, Any], base: str) -> dict[str, Any]:
        body = {k: (self._key(base, v) or v) if isinstance(v, str) else v for k, v in body.items()}
        if kind == "zaken":
            return self._create_zaak(body, base)
        if kind == "rollen":
            return self._create_rol(body)
        if kind == "statussen":
            return self._create_status(body)
        if kind == "zaakinformatieobjecten":
            return self._create_link(body)
        if kind == "enkelvoudiginformatieobjecten":
            return self._create_document(body, base)
        raise _Problem(405, "method_not_allowed", "Methode niet toegestaan.")

    @staticmethod
    def _required(body: dict[str, Any], *names: str) -> None:
        missing = [(n, "required", REQUIRED) for n in names if body.get(n) in (None, "")]
        if missing:
            raise _invalid(*missing)

    def _ref(self, kind: str, body: dict[str, Any], name: str) -> dict[str, Any]:
        found = self._find(kind, body.get(name))
        if found is None:
            raise _invalid((name, "bad-url", "De URL is ongeldig of verwijst niet naar een bestaand object."))
        return found

    def _next_number(self, prefix: str, year: int) -> str:
        counter = f"{prefix}-{year}"
        self._counters[counter] = self._counters.get(counter, 0) + 1
        return f"{prefix}-{year}-{self._counters[counter]:010d}"

    def _create_zaak(self, body: dict[str, Any], base: str = "") -> dict[str, Any]:
        self._required(body, "bronorganisatie", "zaaktype", "verantwoordelijkeOrganisatie", "startdatum")
        for name in ("bronorganisatie", "verantwoordelijkeOrganisatie"):
            if not passes_elfproef(str(body[name])):
                raise _invalid(
                    (
                        name,
                        "invalid",
                        "Onjuist RSIN formaat, moet 9 cijfers lang zijn en de elfproef doorstaan.",
                    )
                )
        zaaktype = self._ref("zaaktypen", body, "zaaktype")
        if zaaktype.get("concept"):
            raise _invalid(("zaaktype", "not-published", "Het zaaktype is nog niet gepubliceerd."))
        try:
            startdatum = date.fromisoformat(str(body["startdatum"]))
        except ValueError:
            raise _invalid(("startdatum", "invalid", "Datum heeft het verkeerde formaat.")) from None
        if len(str(body.get("omschrijving") or "")) > 80:
            raise _invalid(("omschrijving", "max_length", "Zorg ervoor dat dit veld niet meer dan 80 tekens bevat."))
        kenmerken = body.get("kenmerken") or []
        for n, k in enumerate(kenmerken):
            if not isinstance(k, dict) or not k.get("kenmerk") or not k.get("bron"):
                raise _invalid((f"kenmerken.{n}.kenmerk", "required", REQUIRED))
            if len(k["kenmerk"]) > 40 or len(k["bron"]) > 40:
                raise _invalid((f"kenmerken.{n}.kenmerk", "max_length", "Niet meer dan 40 tekens."))
        identificatie = body.get("identificatie")
        if identificatie:
            if any(
                z["identificatie"] == identificatie and z["bronorganisatie"] == body["bronorganisatie"]
                for z in self.all("zaken")
            ):
                raise _invalid(("identificatie", "identificatie-niet-uniek", "Deze identificatie bestaat al."))
        else:
            identificatie = self._next_number("ZAAK", startdatum.year)
        key = self._new_key("zaken", "zaken")
        now = self.clock.now()
        return self._put(
            "zaken",
            {
                "url": key,
                "uuid": key.rsplit("/", 1)[1],
                "identificatie": identificatie,
                "bronorganisatie": body["bronorganisatie"],
                "omschrijving": body.get("omschrijving") or "",
                "toelichting": body.get("toelichting") or "",
                "zaaktype": zaaktype["url"],
                "registratiedatum": now.date().isoformat(),
                "verantwoordelijkeOrganisatie": body["verantwoordelijkeOrganisatie"],
                "startdatum": startdatum.isoformat(),
                "einddatum": None,
                "einddatumGepland": None,
                "uiterlijkeEinddatumAfdoening": (startdatum + timedelta(days=1)).isoformat(),
                "publicatiedatum": None,
                "laatstGemuteerd": now.isoformat().replace("+00:00", "Z"),
                "laatstGeopend": None,
                "communicatiekanaal": "",
                "communicatiekanaalNaam": "",
                "productenOfDiensten": [],
                "vertrouwelijkheidaanduiding": body.get("vertrouwelijkheidaanduiding")
                or zaaktype["vertrouwelijkheidaanduiding"],
                "betalingsindicatie": "",
                "betalingsindicatieWeergave": "",
                "laatsteBetaaldatum": None,
                "zaakgeometrie": None,
                "verlenging": None,
                "opschorting": {"indicatie": False, "eerdereOpschorting": False, "reden": ""},
                "selectielijstklasse": "",
                "hoofdzaak": None,
                "deelzaken": [],
                "relevanteAndereZaken": [],
                "gerelateerdeZaken": [],
                "eigenschappen": [],
                "rollen": [],
                "status": None,
                "zaakinformatieobjecten": [],
                "zaakobjecten": [],
                "kenmerken": [{"kenmerk": k["kenmerk"], "bron": k["bron"]} for k in kenmerken],
                "archiefnominatie": None,
                "archiefstatus": "nog_te_archiveren",
                "archiefactiedatum": None,
                "resultaat": None,
                "opdrachtgevendeOrganisatie": "",
                "processobjectaard": "",
                "startdatumBewaartermijn": None,
                "processobject": {
                    "datumkenmerk": "",
                    "identificatie": "",
                    "objecttype": "",
                    "registratie": "",
                },
            },
        )

    def _create_rol(self, body: dict[str, Any]) -> dict[str, Any]:
        self._required(body, "zaak", "betrokkeneType", "roltype")
        zaak = self._ref("zaken", body, "zaak")
        roltype = self._ref("roltypen", body, "roltype")
        if roltype["zaaktype"] != zaak["zaaktype"]:
            raise _invalid(
                (
                    "nonFieldErrors",
                    "zaaktype-mismatch",
                    "De referentie hoort niet bij het zaaktype van de zaak.",
                )
            )
        ident = body.get("betrokkeneIdentificatie")
        if not body.get("betrokkene") and not ident:
            raise _invalid(
                (
                    "nonFieldErrors",
                    "invalid-betrokkene",
                    "betrokkene of betrokkeneIdentificatie moet opgegeven worden.",
                )
            )
        ident = dict(ident or {})
        bsn = ident.get("inpBsn", "")
        if bsn and not passes_elfproef(str(bsn)):
            raise _invalid(("betrokkeneIdentificatie.inpBsn", "invalid", "Onjuist BSN formaat."))
        if roltype["omschrijvingGeneriek"] in ("initiator", "zaakcoordinator") and any(
            r["zaak"] == zaak["url"] and r["omschrijvingGeneriek"] == roltype["omschrijvingGeneriek"]
            for r in self.all("rollen")
        ):
            raise _invalid(
                (
                    "nonFieldErrors",
                    "max-occurences",
                    f"Er is al een rol met omschrijvingGeneriek {roltype['omschrijvingGeneriek']}.",
                )
            )
        key = self._new_key("zaken", "rollen")
        person = {
            "inpBsn": "",
            "anpIdentificatie": "",
            "inpA_nummer": "",
            "geslachtsnaam": "",
            "voorvoegselGeslachtsnaam": "",
            "voorletters": "",
            "voornamen": "",
            "geslachtsaanduiding": "",
            "geboortedatum": "",
            "verblijfsadres": None,
            "subVerblijfBuitenland": None,
        }
        person.update(ident)
        return self._put(
            "rollen",
            {
                "url": key,
                "uuid": key.rsplit("/", 1)[1],
                "zaak": zaak["url"],
                "betrokkene": body.get("betrokkene") or "",
                "betrokkeneType": body["betrokkeneType"],
                "afwijkendeNaamBetrokkene": "",
                "roltype": roltype["url"],
                "omschrijving": roltype["omschrijving"],
                "omschrijvingGeneriek": roltype["omschrijvingGeneriek"],
                "roltoelichting": body.get("roltoelichting") or "",
                "registratiedatum": self.clock.now().isoformat().replace("+00:00", "Z"),
                "indicatieMachtiging": "",
                "contactpersoonRol": {"emailadres": "", "functie": "", "telefoonnummer": "", "naam": ""},
                "statussen": [],
                "beginGeldigheid": None,
                "eindeGeldigheid": None,
                "betrokkeneIdentificatie": person,
                "authenticatieContext": body.get("authenticatieContext"),
            },
        )

    def _create_status(self, body: dict[str, Any]) -> dict[str, Any]:
        self._required(body, "zaak", "statustype", "datumStatusGezet")
        zaak = self._ref("zaken", body, "zaak")
        statustype = self._ref("statustypen", body, "statustype")
        if statustype["zaaktype"] != zaak["zaaktype"]:
            raise _invalid(
                (
                    "nonFieldErrors",
                    "zaaktype-mismatch",
                    "De referentie hoort niet bij het zaaktype van de zaak.",
                )
            )
        try:
            when = datetime.fromisoformat(str(body["datumStatusGezet"]).replace("Z", "+00:00"))
        except ValueError:
            raise _invalid(("datumStatusGezet", "invalid", "Datetime heeft een ongeldig formaat.")) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if when > self.clock.now():
            raise _invalid(("datumStatusGezet", "date-in-future", "Deze datum mag niet in de toekomst zijn."))
        if any(
            s["zaak"] == zaak["url"] and s["datumStatusGezet"] == body["datumStatusGezet"]
            for s in self.all("statussen")
        ):
            raise _invalid(("nonFieldErrors", "unique", "De velden zaak, datumStatusGezet moeten uniek zijn."))
        key = self._new_key("zaken", "statussen")
        for other in self.all("statussen"):
            if other["zaak"] == zaak["url"]:
                other["indicatieLaatstGezetteStatus"] = False
        return self._put(
            "statussen",
            {
                "url": key,
                "uuid": key.rsplit("/", 1)[1],
                "zaak": zaak["url"],
                "statustype": statustype["url"],
                "datumStatusGezet": body["datumStatusGezet"],
                "statustoelichting": body.get("statustoelichting") or "",
                "indicatieLaatstGezetteStatus": True,
                "gezetdoor": None,
                "zaakinformatieobjecten": [],
            },
        )

    def _create_document(self, body: dict[str, Any], base: str) -> dict[str, Any]:
        self._required(body, "bronorganisatie", "creatiedatum", "titel", "auteur", "taal", "informatieobjecttype")
        if not passes_elfproef(str(body["bronorganisatie"])):
            raise _invalid(("bronorganisatie", "invalid", "Onjuist RSIN formaat."))
        if len(str(body["taal"])) != 3:
            raise _invalid(("taal", "min_length", "Zorg ervoor dat dit veld precies 3 tekens bevat."))
        iot = self._ref("informatieobjecttypen", body, "informatieobjecttype")
        if iot.get("concept"):
            raise _invalid(("informatieobjecttype", "not-published", "Het informatieobjecttype is niet gepubliceerd."))
        identificatie = body.get("identificatie")
        if identificatie and any(
            d["identificatie"] == identificatie and d["bronorganisatie"] == body["bronorganisatie"]
            for d in self.all("enkelvoudiginformatieobjecten")
        ):
            raise _invalid(("identificatie", "identificatie-niet-uniek", "Deze identificatie bestaat al."))
        content = b""
        if body.get("inhoud") is not None:
            try:
                content = base64.b64decode(str(body["inhoud"]), validate=True)
            except (binascii.Error, ValueError):
                raise _invalid(("inhoud", "invalid", "Ongeldige base64.")) from None
        if body.get("bestandsomvang") is not None and body["bestandsomvang"] != len(content):
            raise _invalid(("bestandsomvang", "file-size", "Bestandsomvang komt niet overeen met de inhoud."))
        creatiedatum = date.fromisoformat(str(body["creatiedatum"]))
        identificatie = identificatie or self._next_number("DOCUMENT", creatiedatum.year)
        key = self._new_key("documenten", "enkelvoudiginformatieobjecten")
        self.blobs[key] = content
        return self._put(
            "enkelvoudiginformatieobjecten",
            {
                "url": key,
                "identificatie": identificatie,
                "bronorganisatie": body["bronorganisatie"],
                "creatiedatum": creatiedatum.isoformat(),
                "titel": body["titel"],
                "vertrouwelijkheidaanduiding": body.get("vertrouwelijkheidaanduiding")
                or iot["vertrouwelijkheidaanduiding"],
                "auteur": body["auteur"],
                "status": body.get("status") or "",
                "formaat": body.get("formaat") or "",
                "taal": body["taal"],
                "versie": 1,
                "beginRegistratie": self.clock.now().isoformat().replace("+00:00", "Z"),
                "bestandsnaam": body.get("bestandsnaam") or "",
                "inhoud": key + "/download?versie=1",
                "bestandsomvang": len(content),
                "link": body.get("link") or "",
                "beschrijving": body.get("beschrijving") or "",
                "ontvangstdatum": None,
                "verzenddatum": None,
                "indicatieGebruiksrecht": body.get("indicatieGebruiksrecht"),
                "verschijningsvorm": "",
                "ondertekening": None,
                "integriteit": body.get("integriteit"),
                "informatieobjecttype": iot["url"],
                "locked": False,
                "bestandsdelen": [],
                "trefwoorden": body.get("trefwoorden") or [],
            },
        )

    def _create_link(self, body: dict[str, Any]) -> dict[str, Any]:
        self._required(body, "zaak", "informatieobject")
        zaak = self._ref("zaken", body, "zaak")
        document = self._ref("enkelvoudiginformatieobjecten", body, "informatieobject")
        if not any(
            r["zaaktype"] == zaak["zaaktype"] and r["informatieobjecttype"] == document["informatieobjecttype"]
            for r in self.all("zaaktype-informatieobjecttypen")
        ):
            raise _invalid(
                (
                    "nonFieldErrors",
                    "missing-zaaktype-informatieobjecttype-relation",
                    "Het informatieobjecttype hoort niet bij het zaaktype van de zaak.",
                )
            )
        if any(
            z["zaak"] == zaak["url"] and z["informatieobject"] == document["url"]
            for z in self.all("zaakinformatieobjecten")
        ):
            raise _invalid(("nonFieldErrors", "unique", "De velden zaak, informatieobject moeten uniek zijn."))
        key = self._new_key("zaken", "zaakinformatieobjecten")
        return self._put(
            "zaakinformatieobjecten",
            {
                "url": key,
                "uuid": key.rsplit("/", 1)[1],
                "informatieobject": document["url"],
                "zaak": zaak["url"],
                "aardRelatieWeergave": "Hoort bij, omgekeerd: kent",
                "titel": body.get("titel") or "",
                "beschrijving": body.get("beschrijving") or "",
                "registratiedatum": self.clock.now().isoformat().replace("+00:00", "Z"),
                "vernietigingsdatum": None,
                "status": None,
            },
        )

    # -- the backoffice page -------------------------------------------------------------------

    def overview(self) -> list[dict[str, Any]]:
        with self.synced(write=False):
            documents = {d["url"]: d for d in self.all("enkelvoudiginformatieobjecten")}
            zaken = sorted(self.all("zaken"), key=lambda z: z["identificatie"], reverse=True)
            rows = []
            for zaak in zaken:
                links = [z for z in self.all("zaakinformatieobjecten") if z["zaak"] == zaak["url"]]
                rows.append(
                    {
                        "zaak": zaak,
                        "rollen": [r for r in self.all("rollen") if r["zaak"] == zaak["url"]],
                        "statussen": [s for s in self.all("statussen") if s["zaak"] == zaak["url"]],
                        "documenten": [
                            {
                                **documents[lk["informatieobject"]],
                                "uuid": lk["informatieobject"].rsplit("/", 1)[1],
                            }
                            for lk in links
                            if lk["informatieobject"] in documents
                        ],
                    }
                )
            return rows


class _Download(Exception):
    def __init__(self, content: bytes) -> None:
        super().__init__("download")
        self.content = content


class SandboxBlueprint(Blueprint):
    sandbox: ZgwSandbox


def create_sandbox_blueprint(
    settings: Settings, *, clock: Clock | None = None, page_size: int = 100, state_file: str | None = None
) -> SandboxBlueprint:
    """The sandbox as a Flask blueprint; mount it with ``url_prefix="/sandbox"``.

    Templates live in ``demo/templates/sandbox/`` (the blueprint's template folder). The state is
    ``blueprint.sandbox`` (resources, ``faults``, ``add_zaak``).
    """
    refuse_in_production(settings)
    sandbox = ZgwSandbox(
        client_id=settings.zgw.client_id,
        secret=settings.zgw.secret,
        rsin=settings.rsin,
        clock=clock or _SystemClock(),
        page_size=page_size,
        state_file=state_file if state_file is not None else (settings.zgw.sandbox_state_file or None),
    )
    bp = SandboxBlueprint("sandbox", __name__, template_folder="templates")
    bp.sandbox = sandbox

    def base() -> str:
        return url_for("sandbox.index", _external=True)

    @bp.get("/")
    def index() -> str:
        return render_template(
            "sandbox/index.html",
            rows=sandbox.overview(),
            roots=sandbox_api_roots(request.host_url.rstrip("/") + request.script_root),
        )

    @bp.get("/documenten/<uuid:doc_id>.pdf")
    def document_pdf(doc_id: uuid.UUID) -> Response:
        key = f"documenten/api/v1/enkelvoudiginformatieobjecten/{doc_id}"
        with sandbox.synced(write=False):
            document = sandbox._find("enkelvoudiginformatieobjecten", key)
            content = sandbox.blobs.get(key, b"")
        if document is None:
            abort(404)
        return Response(
            content,
            mimetype=document.get("formaat") or "application/octet-stream",
            headers={"Content-Disposition": f'inline; filename="{_safe(document["bestandsnaam"])}"'},
        )

    @bp.route("/<any(zaken, documenten, catalogi):api>/api/v1/", defaults={"path": ""}, methods=["GET", "POST"])
    @bp.route("/<any(zaken, documenten, catalogi):api>/api/v1/<path:path>", methods=["GET", "POST"])
    def api(api: str, path: str) -> Response:
        try:
            return sandbox.handle(api, path, base())
        except _Download as download:
            return Response(
                download.content,
                mimetype="application/octet-stream",
                headers={"Content-Disposition": f'attachment; filename="{uuid.uuid4()}.bin"'},
            )

    return bp


def _stamp(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "document.pdf"
