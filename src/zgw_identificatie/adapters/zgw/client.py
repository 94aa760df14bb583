"""HTTP clients for the ZGW APIs: one ape-pie ``APIClient`` per API root, errors mapped to the domain.

Status mapping (ZGW-CHEATSHEET §6): 4xx except 429 → ``RegistrationFailed`` with the problem+json
``invalidParams`` (never retried); time-outs, connection errors, 429 and 5xx → ``RegistryUnavailable``
(retried). Failures are logged here at DEBUG only: the caller logs one line per attempt with the
message. No message built here contains a BSN: URLs never hold one, and nine-digit numbers echoed
by a server are masked.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from ape_pie import APIClient
from ape_pie.exceptions import InvalidURLError
from requests.adapters import BaseAdapter

from ... import metrics, request_context
from ...domain.errors import RegistrationFailed, RegistryUnavailable
from ...settings import Settings
from .auth import ZgwJwtAuth

log = logging.getLogger(__name__)

CRS = "EPSG:4326"
#: Sent on every request to the ``zaken`` resource (a missing Accept-Crs gives 412, pitfall 3).
CRS_HEADERS = {"Accept-Crs": CRS, "Content-Crs": CRS}
MAX_PAGES = 50

#: Something that prepares the ``requests`` session of a client: mount an adapter (tests, demo), …
HttpSetup = Callable[[requests.Session], None]
Http = BaseAdapter | HttpSetup

_NINE_DIGITS = re.compile(r"\b\d{9}\b")


class ZgwRefused(RegistrationFailed):
    """A 4xx answer; ``status`` is the HTTP status code."""

    def __init__(self, message: str, invalid_params: list[dict[str, str]], *, status: int) -> None:
        super().__init__(message, invalid_params)
        self.status = status


def scrub(text: str) -> str:
    """Mask every standalone nine-digit number (a BSN, or an RSIN, which is harmless to hide)."""
    return _NINE_DIGITS.sub("*********", text)


@dataclass(frozen=True)
class ApiRoots:
    zaken: str
    documenten: str
    catalogi: str

    @classmethod
    def from_settings(cls, settings: Settings, roots: Mapping[str, str] | None = None) -> ApiRoots:
        given = dict(roots or {})
        return cls(
            zaken=_slash(given.get("zaken") or settings.zgw.zaken_url),
            documenten=_slash(given.get("documenten") or settings.zgw.documenten_url),
            catalogi=_slash(given.get("catalogi") or settings.zgw.catalogi_url),
        )


def _slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


class ZgwClient:
    """JSON calls on one ZGW API root, with the error mapping above."""

    def __init__(
        self,
        api: str,
        base_url: str,
        *,
        settings: Settings,
        auth: requests.auth.AuthBase,
        http: Http | None = None,
    ) -> None:
        self.api = api
        self.base_url = base_url
        self.session = APIClient(
            base_url,
            {
                "auth": auth,
                "timeout": settings.zgw.timeout,
                "headers": {"Accept": "application/json"},
            },
        )
        if isinstance(http, BaseAdapter):
            parts = urlsplit(base_url)
            self.session.mount(f"{parts.scheme}://{parts.netloc}/", http)
        elif http is not None:
            http(self.session)

    def url(self, path: str) -> str:
        return self.session.to_absolute_url(path)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        crs: bool = False,
    ) -> Any:
        headers = dict(CRS_HEADERS) if crs else {}
        request_id = request_context.current()
        if request_id:
            headers[request_context.HEADER] = request_id  # ties the zaaksysteem's logs to ours
        where = f"{method} {self.api} {_path_only(path)}"
        started = time.perf_counter()

        def observe(status: str) -> None:
            metrics.observe_zgw(self.api, method, path, status, time.perf_counter() - started)

        try:
            response = self.session.request(method, path, params=params, json=json, headers=headers)
        except InvalidURLError:
            raise RegistrationFailed(f"{where}: URL outside the configured API root {self.base_url}") from None
        except requests.Timeout:
            observe("timeout")
            log.debug("zgw %s: time-out", where)
            raise RegistryUnavailable(f"{where}: time-out") from None
        except requests.ConnectionError:
            observe("connection_error")
            log.debug("zgw %s: connection failed", where)
            raise RegistryUnavailable(f"{where}: connection failed") from None
        except requests.RequestException as exc:
            observe("error")
            log.debug("zgw %s: %s", where, type(exc).__name__)
            raise RegistryUnavailable(f"{where}: {type(exc).__name__}") from None
        status = response.status_code
        observe(str(status))
        log.debug("zgw %s → %s", where, status)
        if status >= 500 or status == 429:
            log.debug("zgw %s answered %s", where, status)
            raise RegistryUnavailable(f"{where} answered {status}")
        if status >= 400:
            raise _refusal(where, response)
        if status == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise RegistryUnavailable(f"{where} answered {status} without JSON") from None

    def get(self, path: str, params: Mapping[str, str] | None = None, *, crs: bool = False) -> Any:
        return self.request("GET", path, params=params, crs=crs)

    def post(self, path: str, body: Mapping[str, Any], *, crs: bool = False) -> dict[str, Any]:
        result = self.request("POST", path, json=body, crs=crs)
        if not isinstance(result, dict) or not isinstance(result.get("url"), str):
            raise RegistryUnavailable(f"POST {self.api} {_path_only(path)} answered without a url")
        return result

    def list_all(
        self, path: str, params: Mapping[str, str] | None = None, *, crs: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Every result of a paginated list, following ``next`` (never computing pages)."""
        page = self.get(path, params, crs=crs)
        for _ in range(MAX_PAGES):
            if isinstance(page, list):  # zaakinformatieobjecten: a plain array
                yield from page
                return
            yield from page.get("results", [])
            next_url = page.get("next")
            if not next_url:
                return
            page = self.get(next_url, crs=crs)
        raise RegistryUnavailable(f"GET {self.api} {_path_only(path)}: more than {MAX_PAGES} pages")


def _path_only(path: str) -> str:
    return urlsplit(path).path or path


def _refusal(where: str, response: requests.Response) -> ZgwRefused:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    code = title = ""
    params: list[dict[str, str]] = []
    if isinstance(body, dict):
        code = str(body.get("code") or "")
        title = str(body.get("title") or "")
        for item in body.get("invalidParams") or []:
            if isinstance(item, dict):
                params.append({k: scrub(str(item.get(k) or "")) for k in ("name", "code", "reason")})
    message = scrub(f"{where} answered {status}" + (f" {code}" if code else "") + (f": {title}" if title else ""))
    instance = body.get("instance") if isinstance(body, dict) else None
    log.debug("zgw %s (instance %s, %d invalid params)", message, instance, len(params))
    return ZgwRefused(message, params, status=status)


def build_clients(
    settings: Settings,
    *,
    http: Http | None = None,
    roots: Mapping[str, str] | None = None,
    user_id: str | None = None,
    user_representation: str | None = None,
) -> tuple[ZgwClient, ZgwClient, ZgwClient]:
    """(zaken, documenten, catalogi) clients sharing one per-request JWT auth."""
    api_roots = ApiRoots.from_settings(settings, roots)
    auth = ZgwJwtAuth(
        settings.zgw.client_id,
        settings.zgw.secret,
        user_id=user_id or settings.zgw.client_id,
        user_representation=user_representation or f"{settings.gemeente_naam} identificatieservice",
    )
    return (
        ZgwClient("zaken", api_roots.zaken, settings=settings, auth=auth, http=http),
        ZgwClient("documenten", api_roots.documenten, settings=settings, auth=auth, http=http),
        ZgwClient("catalogi", api_roots.catalogi, settings=settings, auth=auth, http=http),
    )
