"""The in-memory rate limiter: an exact moving window, and memory bounded by one window's traffic."""

from __future__ import annotations

import secrets

from limits import parse
from limits.strategies import MovingWindowRateLimiter

from demo_driver import demo_app
from zgw_identificatie.web.ratelimit import BoundedMemoryStorage


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
    fallback = app.extensions["zgwid_limiter"]._fallback_storage
    assert isinstance(fallback, BoundedMemoryStorage) and fallback.held_keys() == 2
