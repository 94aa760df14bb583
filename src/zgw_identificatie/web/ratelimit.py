"""Rate limits on the endpoints an attacker can use to guess or to flood (NCSC U/WA.05, OWASP ASVS 2.2.1).

Which limit, counted per what:

* starting a session: ``rate_limit_start`` per behandelaar (staff form) and per API client (API);
* the staff login form: ``rate_limit_citizen`` per client IP (password guessing);
* opening a citizen link, starting a DigiD login and the ACS: ``rate_limit_citizen`` per client IP
  (shared by the three), plus ``rate_limit_citizen`` per link on opening it and starting a login;
* every API call: ``rate_limit_api`` per API client (shared by all operations);
* API requests with a missing or wrong key: ``rate_limit_api_auth_failures`` per client IP.

The client IP is ``request.remote_addr``; behind a proxy ``app.py`` applies ProxyFix with
``trusted_proxies`` hops, so a spoofed ``X-Forwarded-For`` is ignored. Counters live in memory per
process, or in Redis when ``rate_limit_storage`` is ``redis://…`` so that every instance shares them.
If Redis goes away, the limiter falls back to per-process memory instead of failing requests, and
goes back to Redis once it answers a ping again (tried after 1, 2, 4 … 32 s, then from 1 s again).

Every limit is a moving window (exactly N in any span of the period), counted by the ``limits``
library's ``MovingWindowRateLimiter``. The limits are parsed once, at start-up, and each limited view
is wrapped once: a request computes its key and makes one ``hit`` per limit that applies to it, and
nothing else (no limit resolution, no per-request bookkeeping, no ``X-RateLimit-*`` headers). In memory
the counters live in ``BoundedMemoryStorage`` (``memory://`` is mapped to it): O(1) amortised work per
hit, no timer thread, and a key is dropped as soon as its window has passed, so a worker that lives for
months and sees a new citizen link every minute holds only the keys of the last period. (``limits``'
own memory storage kept every moving-window key for ever and walked all of them from a timer on every
hit.) In Redis every key carries its window as TTL. The keys are ``LIMITER/zgwid/<who>/<scope>/<limit>``,
as flask-limiter (used before) made them, so instances old and new count together during a deploy.

A breach is logged (``zgw_identificatie.web.ratelimit``, INFO: limit, key and scope; a security event)
and raises werkzeug's ``TooManyRequests`` with ``retry_after`` set to the whole seconds until the
oldest counted hit leaves the window; the HTTPException handler in ``web/__init__.py`` turns it into
the "Te veel pogingen" page or, under ``/api/``, a 429 problem+json, both with that ``Retry-After``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app, g, request, session
from limits import RateLimitItem, parse
from limits.storage import MovingWindowSupport, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from werkzeug.exceptions import TooManyRequests

if TYPE_CHECKING:
    from ..settings import Settings

log = logging.getLogger(__name__)

KEY_PREFIX = "zgwid"
MEMORY_SCHEME = "zgwid-memory"
MAX_BACKEND_CHECKS = 5  # after pings at 1, 2, 4, 8, 16, 32 s the back-off starts again from 1 s


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

    Hashed, because the key is logged on a breach and a link is a capability."""
    link = str((request.view_args or {}).get("session_id", ""))
    return "link:" + hashlib.sha256(link.encode()).hexdigest()[:32]


class RateLimiter:
    """The moving-window strategy over the configured storage, with the in-memory fallback for Redis.

    ``hit`` counts one request against a limit and says whether it was within it. If the storage raises
    (Redis away), the limiter logs it once, counts in ``fallback_storage`` (a ``BoundedMemoryStorage``
    per process) from then on, and pings the storage again after 1, 2, 4, 8, 16 and 32 s, then from 1 s
    again, until it answers; then it counts in the storage again. Without a fallback (``memory://``) an
    error is raised. ``now`` (the back-off clock) is replaceable for tests."""

    def __init__(
        self,
        storage: Storage,
        fallback: BoundedMemoryStorage | None = None,
        *,
        auth_failures: RateLimitItem | None = None,
    ) -> None:
        self.storage = storage
        self.auth_failures = auth_failures or parse("10/minute")  # wrong API keys per address
        self.fallback_storage = fallback
        self._primary = MovingWindowRateLimiter(storage)
        self._fallback = MovingWindowRateLimiter(fallback) if fallback is not None else None
        self.storage_dead = False
        self.now: Callable[[], float] = time.monotonic
        self._checks = 0  # how many times the storage has been pinged since it went away
        self._last_check = 0.0

    def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        if self.storage_dead and self._fallback is not None and not self._storage_is_back():
            return self._fallback.hit(item, *identifiers)
        try:
            return self._primary.hit(item, *identifiers)
        except Exception as exc:
            if self._fallback is None:
                raise
            if not self.storage_dead:
                log.warning("rate limit storage unreachable (%s); counting in this process's memory", exc)
                self.storage_dead = True
                self._checks, self._last_check = 0, self.now()
            return self._fallback.hit(item, *identifiers)

    def retry_after(self, item: RateLimitItem, *identifiers: str) -> int:
        """Whole seconds until the oldest counted hit leaves the window (at least 1). Only on a breach."""
        strategy = self._fallback if self.storage_dead and self._fallback is not None else self._primary
        try:
            reset, _remaining = strategy.get_window_stats(item, *identifiers)
        except Exception:
            return item.get_expiry()
        clock = getattr(strategy.storage, "now", time.time)  # BoundedMemoryStorage's (replaceable) clock
        return max(1, math.ceil(reset - clock()))

    def _storage_is_back(self) -> bool:
        if self._checks > MAX_BACKEND_CHECKS:
            self._checks = 0
        now = self.now()
        if now - self._last_check <= 2**self._checks:
            return False
        self._last_check = now
        self._checks += 1
        try:
            back = bool(self.storage.check())
        except Exception:
            back = False
        if back:
            log.info("rate limit storage reachable again; counting there")
            self.storage_dead = False
            self._checks = 0
        return back


@dataclass(frozen=True)
class Rule:
    """One limit on a view: parsed once at start-up. ``scope`` is the shared scope or the endpoint."""

    item: RateLimitItem
    key: Callable[[], str]
    scope: str
    methods: frozenset[str] | None = None  # None: every method


def limited(limiter: RateLimiter, view: Callable[..., Any], rules: list[Rule]) -> Callable[..., Any]:
    """``view`` behind ``rules``: one ``hit`` per rule that applies to the request's method, in the order
    flask-limiter used (by the limit's period, the listed order otherwise); the first breach stops."""
    ordered = tuple(sorted(rules, key=lambda rule: rule.item))

    @functools.wraps(view)
    def limited_view(*args: Any, **kwargs: Any) -> Any:
        for rule in ordered:
            if rule.methods is not None and request.method not in rule.methods:
                continue
            key = rule.key()
            if not limiter.hit(rule.item, KEY_PREFIX, key, rule.scope):
                log.info("ratelimit %s (%s) exceeded at endpoint: %s", rule.item, key, rule.scope)
                raise TooManyRequests(retry_after=limiter.retry_after(rule.item, KEY_PREFIX, key, rule.scope))
        return view(*args, **kwargs)

    return limited_view


def make_storage(uri: str) -> tuple[Storage, BoundedMemoryStorage | None]:
    """The counters' storage for ``rate_limit_storage``, and the in-memory fallback for a remote one."""
    if uri.startswith("memory://"):
        return BoundedMemoryStorage(), None
    storage = storage_from_string(uri, wrap_exceptions=True)
    if not isinstance(storage, Storage):
        raise ValueError(f"rate_limit_storage {uri.split(':', 1)[0]}: is an asyncio storage")
    return storage, BoundedMemoryStorage()


def init_app(app: Flask, settings: Settings) -> RateLimiter:
    storage, fallback = make_storage(settings.rate_limit_storage)
    limiter = RateLimiter(storage, fallback, auth_failures=parse(settings.rate_limit_api_auth_failures))
    start, citizen, api = (
        parse(settings.rate_limit_start),
        parse(settings.rate_limit_citizen),
        parse(settings.rate_limit_api),
    )
    post = frozenset({"POST"})
    citizen_ip = Rule(citizen, client_ip, "citizen")  # shared: one budget per address over the three
    per_link = Rule(citizen, link_key, "link")
    api_calls = Rule(api, api_key, "api")
    plan: dict[str, list[Rule]] = {
        "staff.login": [Rule(citizen, client_ip, "staff.login", post)],
        "staff.create": [Rule(start, staff_key, "staff.create")],
        "staff.new_link": [Rule(start, staff_key, "staff.new_link", post)],
        "citizen.start": [citizen_ip, per_link],
        "citizen.login": [citizen_ip, per_link],
        "digid.acs": [citizen_ip],
        "api.create_session": [api_calls, Rule(start, api_key, "api.create_session")],
        "api.get_session": [api_calls],
        "api.complete_session": [api_calls],
        "api.list_sessions": [api_calls],
        "api.withdraw_session": [api_calls],
        "api.openapi": [Rule(api, client_ip, "api.openapi")],
    }
    for endpoint, rules in plan.items():
        app.view_functions[endpoint] = limited(limiter, app.view_functions[endpoint], rules)
    app.extensions["zgwid_limiter"] = limiter
    return limiter


AUTH_FAILURE_SCOPE = "api-auth-failure"


def allow_failed_api_key() -> bool:
    """Count a request with a missing or wrong API key against its address; False past ``rate_limit_api_auth_failures``.

    The API's own limits are per client and need a valid key, so guessing keys is limited here."""
    limiter: RateLimiter = current_app.extensions["zgwid_limiter"]
    return limiter.hit(limiter.auth_failures, AUTH_FAILURE_SCOPE, client_ip())


def failed_api_key_retry_after() -> int:
    """After ``allow_failed_api_key`` said no: the seconds until this address may try again."""
    limiter: RateLimiter = current_app.extensions["zgwid_limiter"]
    return limiter.retry_after(limiter.auth_failures, AUTH_FAILURE_SCOPE, client_ip())
