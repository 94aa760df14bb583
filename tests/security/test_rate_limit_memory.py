"""The rate limiter: an exact moving window, memory bounded by one window's traffic, one storage hit per
limit per request, a true Retry-After, and the fall-back to memory while Redis is away."""

from __future__ import annotations

import hashlib
import secrets

import pytest
from limits import parse
from limits.errors import StorageError
from limits.strategies import MovingWindowRateLimiter

from demo_driver import API_KEY, csrf, demo_app
from zgw_identificatie.web.ratelimit import BoundedMemoryStorage, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


def limiter_with_clock() -> tuple[MovingWindowRateLimiter, BoundedMemoryStorage, Clock]:
    storage = BoundedMemoryStorage()
    clock = Clock()
    storage.now = clock
    return MovingWindowRateLimiter(storage), storage, clock


def test_a_moving_window_allows_exactly_n_in_any_span_of_the_period():
    """3/minute: hits at 0, 30 and 59 s; a fourth at 60 s is refused (the hit at 0 s is exactly a
    minute old and still counts, as in limits' own storage); at 60.5 s the hit at 0 s has left the
    window, so one more is allowed, and then none until 90 s."""
    limiter, _storage, clock = limiter_with_clock()
    three = parse("3/minute")
    for t in (0, 30, 59):
        clock.t = 1_800_000_000.0 + t
        assert limiter.hit(three, "ip:a")
    clock.t = 1_800_000_000.0 + 60
    assert not limiter.hit(three, "ip:a")
    clock.t = 1_800_000_000.0 + 60.5
    assert limiter.hit(three, "ip:a")
    assert not limiter.hit(three, "ip:a")
    assert limiter.hit(three, "ip:b")  # another key has its own budget
    reset, remaining = limiter.get_window_stats(three, "ip:a")
    assert remaining == 0 and reset == 1_800_000_000.0 + 30 + 60


def test_memory_stays_flat_over_many_distinct_keys():
    """A long-lived worker: every minute 1,000 new citizen links and addresses (10,000 in all). The
    storage holds the keys of the last minute only, not every key it ever saw."""
    limiter, storage, clock = limiter_with_clock()
    per_ip, per_link = parse("20/minute"), parse("20/minute")
    held = []
    for minute in range(10):
        for i in range(1000):
            clock.t += 0.06
            assert limiter.hit(per_ip, f"ip:{minute}-{i}")
            assert limiter.hit(per_link, f"link:{minute}-{i}")
        held.append(storage.held_keys())
    assert max(held) <= 2 * 1000 + 2, held
    clock.t += 61
    limiter.hit(per_ip, "ip:last")
    assert storage.held_keys() == 1


def test_the_apps_memory_limiter_drops_keys_whose_window_has_passed(tmp_path):
    """Through the app: citizen links opened from many addresses (each a per-IP and a per-link key),
    then a minute later the old keys are gone and the limits still hold for the new ones."""
    app = demo_app(tmp_path, rate_limit_citizen="2/minute")
    storage = app.extensions["zgwid_limiter"].storage
    assert isinstance(storage, BoundedMemoryStorage)
    clock = Clock()
    storage.now = clock

    def open_link(address: str, link: str) -> int:
        return app.test_client().get(f"/i/{link}", environ_base={"REMOTE_ADDR": address}).status_code

    for i in range(200):
        assert open_link(f"198.51.100.{i % 250}", secrets.token_urlsafe(12)) == 404
    before = storage.held_keys()
    assert before >= 200
    clock.t += 61
    link = secrets.token_urlsafe(12)
    assert [open_link("203.0.113.5", link) for _ in range(3)] == [404, 404, 429]
    assert storage.held_keys() <= 2


def test_when_redis_is_away_the_limits_hold_in_bounded_memory(tmp_path):
    """rate_limit_storage = redis://… but nothing listens: the fallback counts in this process, in the
    bounded storage too."""
    app = demo_app(tmp_path, rate_limit_storage="redis://127.0.0.1:1", rate_limit_citizen="3/minute")
    client = app.test_client()
    assert [client.get("/i/some-link").status_code for _ in range(4)] == [404, 404, 404, 429]
    fallback = app.extensions["zgwid_limiter"].fallback_storage
    assert isinstance(fallback, BoundedMemoryStorage) and fallback.held_keys() == 2


def counting_hits(app) -> list[str]:
    """Record every moving-window hit (``acquire_entry``) and read (``get_moving_window``) on the app's storage."""
    storage = app.extensions["zgwid_limiter"].storage
    calls: list[str] = []
    acquire, window = storage.acquire_entry, storage.get_moving_window

    def counted_acquire(key, limit, expiry, amount=1):
        calls.append("hit " + key)
        return acquire(key, limit, expiry, amount)

    def counted_window(key, limit, expiry):
        calls.append("read " + key)
        return window(key, limit, expiry)

    storage.acquire_entry, storage.get_moving_window = counted_acquire, counted_window
    return calls


def test_a_request_makes_one_storage_hit_per_limit_that_applies_and_nothing_else(tmp_path):
    """The work per request is the limits of its view, each counted once: no reads for headers, no
    other limits. The keys are the ones flask-limiter made (prefix, who, scope, limit), so counters in
    Redis carry over a deploy."""
    app = demo_app(
        tmp_path,
        rate_limit_api="50/minute",
        rate_limit_start="40/minute",
        rate_limit_citizen="30/minute",
        rate_limit_api_auth_failures="10/minute",
    )
    calls = counting_hits(app)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {API_KEY}"}

    def calls_of(method: str, path: str, **kwargs) -> list[str]:
        calls.clear()
        client.open(path, method=method, **kwargs)
        return sorted(calls)

    assert calls_of("POST", "/api/v1/sessions", json={"flow": "mutual"}, headers=auth) == [
        "hit LIMITER/zgwid/api:demo/api.create_session/40/1/minute",
        "hit LIMITER/zgwid/api:demo/api/50/1/minute",
    ]
    sid = client.post("/api/v1/sessions", json={"flow": "mutual"}, headers=auth).get_json()["id"]
    assert calls_of("GET", f"/api/v1/sessions/{sid}", headers=auth) == ["hit LIMITER/zgwid/api:demo/api/50/1/minute"]
    link = hashlib.sha256(sid.encode()).hexdigest()[:32]
    assert calls_of("GET", f"/i/{sid}") == [
        "hit LIMITER/zgwid/ip:127.0.0.1/citizen/30/1/minute",
        f"hit LIMITER/zgwid/link:{link}/link/30/1/minute",
    ]
    assert calls_of("GET", "/staff/login") == []  # POST only
    form = {"csrf_token": csrf(client.get("/staff/login").text), "username": "sanne", "password": "guess"}
    assert calls_of("POST", "/staff/login", data=form) == ["hit LIMITER/zgwid/ip:127.0.0.1/staff.login/30/1/minute"]
    assert calls_of("GET", "/health") == []
    assert calls_of("GET", "/api/v1/sessions/x", headers={"Authorization": "Bearer wrong"}) == [
        "hit LIMITER/api-auth-failure/ip:127.0.0.1/10/1/minute"
    ]


def test_retry_after_is_the_time_until_the_oldest_hit_leaves_the_window(tmp_path):
    """2/minute, hits at 0 and 20 s: at 30 s the page says 30 s; at 55 s the API (per client) says 5 s."""
    app = demo_app(tmp_path, rate_limit_citizen="2/minute", rate_limit_api="2/minute")
    storage = app.extensions["zgwid_limiter"].storage
    clock = Clock()
    storage.now = clock
    client = app.test_client()
    auth = {"Authorization": f"Bearer {API_KEY}"}
    start = clock.t
    for t in (0, 20):
        clock.t = start + t
        assert client.get(f"/i/{secrets.token_urlsafe(12)}").status_code == 404
        assert client.get("/api/v1/sessions/x", headers=auth).status_code == 404
    clock.t = start + 30
    page = client.get(f"/i/{secrets.token_urlsafe(12)}")
    assert page.status_code == 429 and page.headers["Retry-After"] == "30"
    clock.t = start + 55
    problem = client.get("/api/v1/sessions/x", headers=auth)
    assert problem.status_code == 429 and problem.mimetype == "application/problem+json"
    assert problem.headers["Retry-After"] == "5"
    clock.t = start + 60.5
    assert client.get("/api/v1/sessions/x", headers=auth).status_code == 404
    assert "Retry-After" not in client.get(f"/i/{secrets.token_urlsafe(12)}").headers


class FlakyStorage(BoundedMemoryStorage):
    """A storage that can be switched off, like a Redis server that goes away and comes back."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.pings = 0

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if self.down:
            raise StorageError(ConnectionError("Connection refused"))
        return super().acquire_entry(key, limit, expiry, amount)

    def check(self) -> bool:
        self.pings += 1
        return not self.down


def test_when_the_storage_goes_away_the_limits_hold_in_memory_until_it_is_back():
    """No request fails; the fallback counts; the storage is pinged after 1, 2, 4 … s (not on every
    request) and, once it answers, counting goes back to it."""
    primary, fallback = FlakyStorage(), BoundedMemoryStorage()
    limiter = RateLimiter(primary, fallback)
    clock = Clock()
    limiter.now = clock
    three = parse("3/minute")
    assert limiter.hit(three, "zgwid", "ip:a", "citizen")
    primary.down = True
    assert limiter.hit(three, "zgwid", "ip:a", "citizen")  # no error: counted in memory
    assert limiter.storage_dead and fallback.held_keys() == 1
    for i in range(50):  # many requests within the first second: no ping
        limiter.hit(three, "zgwid", f"ip:{i}", "citizen")
    assert primary.pings == 0
    for wait in (1.1, 2.1, 4.1):  # still down: one ping per back-off step
        clock.t += wait
        limiter.hit(three, "zgwid", "ip:b", "citizen")
        limiter.hit(three, "zgwid", "ip:b", "citizen")
    assert primary.pings == 3 and limiter.storage_dead
    assert not limiter.hit(three, "zgwid", "ip:b", "citizen")  # the fallback enforces the limit
    assert limiter.retry_after(three, "zgwid", "ip:b", "citizen") > 0
    primary.down = False
    clock.t += 8.1
    assert limiter.hit(three, "zgwid", "ip:a", "citizen")  # pinged, back: counted in the storage again
    assert not limiter.storage_dead and primary.pings == 4
    _reset, remaining = MovingWindowRateLimiter(primary).get_window_stats(three, "zgwid", "ip:a", "citizen")
    assert remaining == 1


def test_the_app_goes_back_to_redis_when_it_returns(tmp_path):
    """Through the app, against the Redis the shared-limit test uses: a dead connection falls back to
    memory without failing the request, and the next ping after the back-off counts in Redis again."""
    import redis

    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"Redis on 127.0.0.1:6379 is not reachable ({exc})")
    app = demo_app(tmp_path, rate_limit_storage="redis://127.0.0.1:6379", rate_limit_citizen="3/minute")
    limiter = app.extensions["zgwid_limiter"]
    clock = Clock()
    limiter.now = clock
    address = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    assert client.get("/i/a").status_code == 404  # counted in Redis
    connection = limiter.storage.storage  # the redis.Redis client the storage (and its Lua scripts) use
    real = connection.connection_pool
    connection.connection_pool = redis.ConnectionPool(host="127.0.0.1", port=1)  # Redis is away
    assert [client.get("/i/b").status_code for _ in range(4)] == [404, 404, 404, 429]  # memory: 3 of its own
    assert limiter.storage_dead and limiter.fallback_storage.held_keys() >= 1
    connection.connection_pool = real  # Redis is back
    clock.t += 1.1
    assert client.get("/i/c").status_code == 404  # pinged, and counted in Redis (its 2nd hit there)
    assert not limiter.storage_dead
    assert client.get("/i/d").status_code == 404
    assert client.get("/i/e").status_code == 429
