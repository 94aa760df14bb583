"""Rate limits on the endpoints an attacker can use to guess or to flood (NCSC U/WA.05, OWASP ASVS 2.2.1).

Which limit, counted per what:

* starting a session: ``rate_limit_start`` per behandelaar (staff form) and per API client (API);
* the staff login form: ``rate_limit_citizen`` per client IP (password guessing);
* opening a citizen link, starting a DigiD login and the ACS: ``rate_limit_citizen`` per client IP
  (shared by the three), plus ``rate_limit_citizen`` per link on opening it and starting a login;
* every API call: ``rate_limit_api`` per API client (shared by all operations).

The client IP is ``request.remote_addr``; behind a proxy ``app.py`` applies ProxyFix with
``trusted_proxies`` hops, so a spoofed ``X-Forwarded-For`` is ignored. Counters live in memory per
process, or in Redis when ``rate_limit_storage`` is ``redis://…`` so that every instance shares them.
If Redis goes away, the limiter falls back to per-process memory instead of failing requests.

Every limit is a moving window (exactly N in any span of the period). In memory the counters live in
``BoundedMemoryStorage`` (``memory://`` is mapped to it): O(1) amortised work per hit, no timer
thread, and a key is dropped as soon as its window has passed, so a worker that lives for months and
sees a new citizen link every minute holds only the keys of the last period. (``limits``' own memory
storage kept every moving-window key for ever and walked all of them from a timer on every hit.)
In Redis every key carries its window as TTL.

A breach raises werkzeug's ``TooManyRequests``; the HTTPException handler in ``web/__init__.py``
turns it into the "Te veel pogingen" page or, under ``/api/``, a 429 problem+json. The limiter
adds ``Retry-After`` to both.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, current_app, g, request, session
from flask_limiter import Limiter
from limits import parse
from limits.storage import MovingWindowSupport, Storage
from limits.strategies import MovingWindowRateLimiter

if TYPE_CHECKING:
    from ..settings import Settings

KEY_PREFIX = "zgwid"
MEMORY_SCHEME = "zgwid-memory"


class BoundedMemoryStorage(Storage, MovingWindowSupport):
    """In-process rate-limit counters whose memory is bounded by the traffic of one window.

    Moving window: per key a deque of hit times (at most ``limit`` of them), oldest first. Expiry:
    per window length an ``OrderedDict`` of keys in order of their last hit, so the keys whose newest
    hit left the window are at its front and are dropped there; each hit does O(1) amortised work.
    Fixed-window counters (``incr``) are kept the same way. ``now`` is replaceable for tests."""

    STORAGE_SCHEME = [MEMORY_SCHEME]  # noqa: RUF012 - declared so by limits.Storage

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any) -> None:
        self.now: Callable[[], float] = time.time
        self._lock = threading.Lock()
        self._hits: dict[str, deque[float]] = {}
        self._hits_by_expiry: dict[float, OrderedDict[str, float]] = {}  # key -> last hit, oldest first
        self._counters: dict[str, list[float]] = {}  # key -> [count, expires at]
        self._counters_by_expiry: dict[float, OrderedDict[str, float]] = {}  # key -> expires at
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError

    def held_keys(self) -> int:
        """How many keys this process holds (the memory bound the tests watch)."""
        return len(self._hits) + len(self._counters)

    def _sweep(self, now: float) -> None:
        for expiry, order in self._hits_by_expiry.items():
            while order:
                key, last = next(iter(order.items()))
                if last >= now - expiry:
                    break
                order.popitem(last=False)
                self._hits.pop(key, None)
        for order in self._counters_by_expiry.values():
            while order:
                key, expires = next(iter(order.items()))
                if expires > now:
                    break
                order.popitem(last=False)
                self._counters.pop(key, None)

    def _window(self, key: str, expiry: float, now: float) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            return deque()
        while hits and hits[0] < now - expiry:  # as limits: a hit exactly one period ago still counts
            hits.popleft()
        return hits

    # --- moving window (the strategy every limit uses) ---------------------------------------

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        with self._lock:
            now = self.now()
            self._sweep(now)
            hits = self._window(key, expiry, now)
            if len(hits) + amount > limit:
                return False
            if key not in self._hits:
                self._hits[key] = hits
            hits.extend([now] * amount)
            order = self._hits_by_expiry.setdefault(float(expiry), OrderedDict())
            order[key] = now
            order.move_to_end(key)
            return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        with self._lock:
            now = self.now()
            hits = self._window(key, expiry, now)
            return (hits[0], len(hits)) if hits else (now, 0)

    # --- fixed window (not used by our limits; part of the storage interface) ----------------

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        with self._lock:
            now = self.now()
            self._sweep(now)
            counter = self._counters.get(key)
            if counter is None or counter[1] <= now:
                counter = self._counters[key] = [0, now + expiry]
                order = self._counters_by_expiry.setdefault(float(expiry), OrderedDict())
                order[key] = counter[1]
                order.move_to_end(key)
            counter[0] += amount
            return int(counter[0])

    def get(self, key: str) -> int:
        counter = self._counters.get(key)
        return int(counter[0]) if counter and counter[1] > self.now() else 0

    def get_expiry(self, key: str) -> float:
        counter = self._counters.get(key)
        return counter[1] if counter else self.now()

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        with self._lock:
            n = self.held_keys()
            self._hits.clear()
            self._hits_by_expiry.clear()
            self._counters.clear()
            self._counters_by_expiry.clear()
            return n

    def clear(self, key: str) -> None:
        with self._lock:
            self._hits.pop(key, None)
            self._counters.pop(key, None)
            for order in (*self._hits_by_expiry.values(), *self._counters_by_expiry.values()):
                order.pop(key, None)


def client_ip() -> str:
    """The client's address as ProxyFix left it (only ``trusted_proxies`` hops are believed)."""
    return "ip:" + (request.remote_addr or "unknown")


def staff_key() -> str:
    """The logged-in behandelaar; without one (the view will refuse anyway) the client IP."""
    user = session.get("staff")
    return f"staff:{user['id']}" if isinstance(user, dict) and user.get("id") else client_ip()


def api_key() -> str:
    """The API client authenticated by the blueprint's before_request; otherwise the client IP."""
    client = g.get("api_client")
    return str(client["id"]) if client else client_ip()


def link_key() -> str:
    """The citizen link (session id) in the URL: limits hammering one link from many addresses.

    Hashed, because flask-limiter logs the key on a breach and a link is a capability."""
    link = str((request.view_args or {}).get("session_id", ""))
    return "link:" + hashlib.sha256(link.encode()).hexdigest()[:32]


def init_app(app: Flask, settings: Settings) -> Limiter:
    @app.after_request  # registered before the limiter's own hook, so it runs after it
    def _retry_after_only_on_429(resp: Response) -> Response:
        if resp.status_code not in (429, 503):
            resp.headers.pop("Retry-After", None)
        return resp

    storage_uri = settings.rate_limit_storage
    if storage_uri.startswith("memory://"):
        storage_uri = MEMORY_SCHEME + storage_uri.removeprefix("memory")
    limiter = Limiter(
        client_ip,
        app=app,
        storage_uri=storage_uri,
        strategy="moving-window",
        key_prefix=KEY_PREFIX,
        headers_enabled=True,
        in_memory_fallback_enabled=True,
    )
    if getattr(limiter, "_fallback_limiter", None) is not None:
        # The fallback while Redis is away: the bounded storage too, not limits' MemoryStorage.
        limiter._fallback_storage = BoundedMemoryStorage()  # type: ignore[assignment]
        limiter._fallback_limiter = MovingWindowRateLimiter(limiter._fallback_storage)
    citizen_ip = limiter.shared_limit(settings.rate_limit_citizen, scope="citizen", key_func=client_ip)
    per_link = limiter.shared_limit(settings.rate_limit_citizen, scope="link", key_func=link_key)
    api_calls = limiter.shared_limit(settings.rate_limit_api, scope="api", key_func=api_key)
    plan: dict[str, list[Callable[[Any], Any]]] = {
        "staff.login": [limiter.limit(settings.rate_limit_citizen, key_func=client_ip, methods=["POST"])],
        "staff.create": [limiter.limit(settings.rate_limit_start, key_func=staff_key)],
        "staff.new_link": [limiter.limit(settings.rate_limit_start, key_func=staff_key, methods=["POST"])],
        "citizen.start": [citizen_ip, per_link],
        "citizen.login": [citizen_ip, per_link],
        "digid.acs": [citizen_ip],
        "api.create_session": [api_calls, limiter.limit(settings.rate_limit_start, key_func=api_key)],
        "api.get_session": [api_calls],
        "api.complete_session": [api_calls],
        "api.list_sessions": [api_calls],
        "api.withdraw_session": [api_calls],
        "api.openapi": [limiter.limit(settings.rate_limit_api, key_func=client_ip)],
    }
    # Every limit here is a decorator on its view, and there are no default limits: the limiter's own
    # before_request check resolves nothing on any route, at about a tenth of a request's CPU. The
    # decorators do the checking (and the fallback's recovery check) themselves.
    if limiter._check_request_limit in app.before_request_funcs.get(None, []):
        app.before_request_funcs[None].remove(limiter._check_request_limit)
    app.extensions["zgwid_limiter"] = limiter
    for endpoint, decorators in plan.items():
        view = app.view_functions[endpoint]
        for decorate in decorators:
            view = decorate(view)
        app.view_functions[endpoint] = view
    return limiter


def allow_failed_api_key() -> bool:
    """Count a request with a missing or wrong API key against its address; False past ``rate_limit_api_auth_failures``.

    The API's own limits are per client and need a valid key, so guessing keys is limited here."""
    limiter: Limiter = current_app.extensions["zgwid_limiter"]
    limit = parse(current_app.extensions["zgwid"].settings.rate_limit_api_auth_failures)
    return bool(limiter.limiter.hit(limit, "api-auth-failure", client_ip()))
