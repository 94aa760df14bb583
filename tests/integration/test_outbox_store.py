"""The outbox, the list and the idempotency keys of the SQL store, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from zgw_identificatie.domain.sessions import RegistrationState, SessionReason, SessionState
from zgw_identificatie.testing.builders import a_session

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def created(**changes):
    return a_session(NOW, state=SessionState.CREATED, authenticated_at=None, level=None, **changes)


def test_every_change_of_state_reason_or_registration_writes_one_event_and_other_updates_none(store):
    s = created(client_id="api:zac")
    store.add(s)
    store.update(replace(s, purpose="changed"))  # not a state change: no event
    opened = replace(s, state=SessionState.OPENED, opened_at=NOW)
    store.update(opened)
    store.update(replace(opened, reason=SessionReason.CANCELLED))
    done = replace(opened, state=SessionState.AUTHENTICATED, reason=None)
    store.update(done)
    store.update(replace(done, registration_state=RegistrationState.PENDING))
    store.update(replace(done, registration_state=RegistrationState.DONE))
    events = store.list_events(session_id=s.id)
    assert [e.type for e in events] == [
        "session.created",
        "session.opened",
        "session.cancelled",
        "session.authenticated",
        "registration.pending",
        "registration.done",
    ]
    assert {e.client_id for e in events} == {"api:zac"} and {e.owner_id for e in events} == {"jdv"}


def test_deliveries_are_claimed_in_order_per_session_and_channel_and_a_failure_holds_the_next_back(store):
    a, b = created(), created()
    for s in (a, b):
        store.add(s)
        store.update(replace(s, state=SessionState.OPENED))
    assert store.fan_out_events(lambda e: ["nrc", "webhook:zac"], NOW, limit=100) == 4
    assert store.fan_out_events(lambda e: ["nrc"], NOW, limit=100) == 0  # each event once
    first = store.claim_due_deliveries(NOW, lease_seconds=60, limit=100)
    assert sorted((d.event.session_id, d.event.type, d.channel) for d in first) == sorted(
        (s.id, "session.created", ch) for s in (a, b) for ch in ("nrc", "webhook:zac")
    )
    assert store.claim_due_deliveries(NOW, lease_seconds=60, limit=100) == []  # leased
    for d in first:
        if d.event.session_id == a.id and d.channel == "nrc":
            store.finish_delivery(d.id, now=NOW, ok=False, error="HTTP 503", retry_at=NOW + timedelta(seconds=5))
        else:
            store.finish_delivery(d.id, now=NOW, ok=True)
    second = store.claim_due_deliveries(NOW, lease_seconds=60, limit=100)
    # a's nrc 'opened' waits behind a's failed 'created'; everything else moves on.
    assert sorted((d.event.session_id, d.channel) for d in second) == sorted(
        [(a.id, "webhook:zac"), (b.id, "nrc"), (b.id, "webhook:zac")]
    )
    assert {d.event.type for d in second} == {"session.opened"}
    later = store.claim_due_deliveries(NOW + timedelta(seconds=5), lease_seconds=60, limit=100)
    assert [(d.event.session_id, d.event.type, d.channel, d.attempts) for d in later] == [
        (a.id, "session.created", "nrc", 1)
    ]


def test_two_workers_never_claim_the_same_delivery(store):
    for _ in range(10):
        store.add(created())
    store.fan_out_events(lambda e: ["nrc"], NOW, limit=100)
    claimed: list[int] = []
    barrier = threading.Barrier(4)

    def claim() -> None:
        barrier.wait()
        claimed.extend(d.id for d in store.claim_due_deliveries(NOW, lease_seconds=60, limit=100))

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 10


def test_list_sessions_filters_and_pages_with_the_cursor(store):
    sessions = [created(client_id="api:zac", created_at=NOW + timedelta(seconds=i)) for i in range(5)]
    sessions.append(created(client_id="api:other"))
    for s in sessions:
        store.add(s)
    page1 = store.list_sessions(client_id="api:zac", limit=2)
    page2 = store.list_sessions(client_id="api:zac", limit=2, before=(page1[-1].created_at, page1[-1].id))
    page3 = store.list_sessions(client_id="api:zac", limit=2, before=(page2[-1].created_at, page2[-1].id))
    assert [s.id for s in page1 + page2 + page3] == [s.id for s in reversed(sessions[:5])]
    window = store.list_sessions(
        client_id="api:zac", created_after=NOW + timedelta(seconds=1), created_before=NOW + timedelta(seconds=3)
    )
    assert [s.id for s in window] == [sessions[2].id, sessions[1].id]


def test_an_idempotency_key_is_held_by_one_caller_and_released_when_its_create_fails(store):
    until = NOW + timedelta(minutes=15)
    assert store.claim_idempotency_key("api:zac", "k", "f1", now=NOW, expires_at=until) is None
    assert store.claim_idempotency_key("api:zac", "k", "f1", now=NOW, expires_at=until) == ("f1", None)
    assert store.claim_idempotency_key("api:other", "k", "f2", now=NOW, expires_at=until) is None  # per client
    store.settle_idempotency_key("api:zac", "k", None, NOW)
    assert store.claim_idempotency_key("api:zac", "k", "f3", now=NOW, expires_at=until) is None
    store.settle_idempotency_key("api:zac", "k", "sess-1", until)
    assert store.claim_idempotency_key("api:zac", "k", "f4", now=NOW, expires_at=until) == ("f3", "sess-1")
    assert store.claim_idempotency_key("api:zac", "k", "f5", now=until, expires_at=until + timedelta(1)) is None


def test_concurrent_fan_out_and_claiming_keep_each_sessions_events_in_order(store):
    sessions = [created() for _ in range(3)]
    for s in sessions:
        store.add(s)
    for _ in range(4):  # interleaved changes of the three sessions
        for i, s in enumerate(sessions):
            s = replace(s, state=SessionState.OPENED if s.state is SessionState.CREATED else SessionState.CREATED)
            sessions[i] = s
            store.update(s)
    barrier = threading.Barrier(4)

    def fan_out() -> None:
        barrier.wait()
        store.fan_out_events(lambda e: ["nrc"], NOW, limit=100)

    threads = [threading.Thread(target=fan_out) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    store.fan_out_events(lambda e: ["nrc"], NOW, limit=100)  # whatever a worker left for the next round
    sent: dict[str, list[int]] = {}
    while batch := store.claim_due_deliveries(NOW, lease_seconds=60, limit=100):
        for d in batch:
            sent.setdefault(d.event.session_id, []).append(d.event.id)
            store.finish_delivery(d.id, now=NOW, ok=True)
    assert sum(len(v) for v in sent.values()) == 15
    for s in sessions:
        ids = [e.id for e in store.list_events(session_id=s.id)]
        assert sent[s.id] == ids  # every event once, in the order it happened


def test_the_outbox_stats_count_waiting_events_and_pending_and_given_up_deliveries_by_channel(store):
    from zgw_identificatie.metrics import outbox_stats

    a, b = created(client_id="api:zac"), created()
    for s in (a, b):
        store.add(s)
    later = datetime.now(UTC) + timedelta(minutes=10)
    waiting, waiting_age, deliveries, lag = outbox_stats(store, later)
    assert (waiting, deliveries, lag) == (2, {}, 0.0) and 540 < waiting_age <= 660
    store.fan_out_events(lambda e: ["notificaties", "webhook:zac"] if e.client_id else ["notificaties"], NOW, limit=10)
    for d in store.claim_due_deliveries(NOW, lease_seconds=60, limit=10):
        if d.channel == "webhook:zac":
            store.finish_delivery(d.id, now=NOW, ok=False, error="HTTP 410", retry_at=None)  # given up
    waiting, waiting_age, deliveries, lag = outbox_stats(store, later)
    assert (waiting, waiting_age) == (0, 0.0) and 540 < lag <= 660
    assert deliveries == {("notificaties", "pending"): 2, ("webhook", "failed"): 1}


def test_a_purged_sessions_expiry_is_sent_after_the_events_of_sessions_in_progress(store):
    """A purge of a backlog writes one session.expired event per unfinished session; those wait until
    everything else that is due has gone, even when they became due first (migration 0009)."""
    old = created(expires_at=NOW - timedelta(minutes=1))
    store.add(old)
    store.fan_out_events(lambda e: ["nrc"], NOW - timedelta(minutes=5), limit=10)
    (first,) = store.claim_due_deliveries(NOW, lease_seconds=60, limit=10)
    store.finish_delivery(first.id, now=NOW, ok=True)  # its session.created went out while it was young
    store.purge(NOW)
    store.fan_out_events(lambda e: ["nrc"], NOW, limit=10)  # session.expired, due now
    live = created()
    store.add(live)
    store.fan_out_events(lambda e: ["nrc"], NOW + timedelta(seconds=30), limit=10)  # due half a minute later
    later = NOW + timedelta(minutes=1)
    (next_one,) = store.claim_due_deliveries(later, lease_seconds=60, limit=1)
    assert (next_one.event.session_id, next_one.event.type) == (live.id, "session.created")
    (then,) = store.claim_due_deliveries(later, lease_seconds=60, limit=1)
    assert (then.event.session_id, then.event.type) == (old.id, "session.expired")


def test_deliveries_handed_back_unsent_keep_their_attempts_and_are_due_when_asked(store):
    for _ in range(3):
        store.add(created())
    store.fan_out_events(lambda e: ["nrc"], NOW, limit=100)
    leased = store.claim_due_deliveries(NOW, lease_seconds=60, limit=100)
    sent, *handed_back = leased
    store.finish_delivery(sent.id, now=NOW, ok=True)
    store.defer_deliveries([d.id for d in leased], until=NOW + timedelta(seconds=30))  # the sent one stays done
    assert store.claim_due_deliveries(NOW + timedelta(seconds=29), lease_seconds=60, limit=100) == []
    again = store.claim_due_deliveries(NOW + timedelta(seconds=30), lease_seconds=60, limit=100)
    assert sorted(d.id for d in again) == sorted(d.id for d in handed_back)
    assert {d.attempts for d in again} == {0}


def test_the_worker_starts_no_send_that_could_outlast_the_batchs_lease_and_hands_the_rest_back(store):
    """A slow receiver (15 s an answer here): the sends that start within send_within_seconds go out; the rest
    is handed back at once, free for any worker, instead of being sent after the lease, when another worker
    may have claimed it already."""
    from types import SimpleNamespace

    from zgw_identificatie import outbox

    for _ in range(6):
        store.add(created())
    store.fan_out_events(lambda e: ["nrc"], NOW, limit=100)
    elapsed = [0.0]
    sent: list[int] = []

    class SlowReceiver:
        settings = SimpleNamespace(event_max_attempts=5, zgw=SimpleNamespace(notificaties_url=""), api_keys={})

        def send(self, delivery):
            sent.append(delivery.id)
            elapsed[0] += 15

    assert outbox.send_within_seconds() == 35  # a 60 s lease, two 10 s time-outs, 5 s to spare
    attempts = outbox.deliver_due(store, SlowReceiver(), now=lambda: NOW, clock=lambda: elapsed[0])  # type: ignore[arg-type]
    assert attempts == len(sent) == 3  # started at 0, 15 and 30 s; not at 45
    rest = store.claim_due_deliveries(NOW, lease_seconds=60, limit=100)  # another worker, at once
    assert len(rest) == 3 and not {d.id for d in rest} & set(sent) and {d.attempts for d in rest} == {0}


def test_a_worker_asked_to_stop_hands_back_the_rest_of_its_batch_at_once(store):
    from types import SimpleNamespace

    from zgw_identificatie import outbox

    for _ in range(4):
        store.add(created())
    store.fan_out_events(lambda e: ["nrc"], NOW, limit=100)
    sent: list[int] = []

    class Receiver:
        settings = SimpleNamespace(event_max_attempts=5, zgw=SimpleNamespace(notificaties_url=""), api_keys={})

        def send(self, delivery):
            sent.append(delivery.id)  # SIGTERM arrives during the first send

    attempts = outbox.deliver_due(store, Receiver(), now=lambda: NOW, stop=lambda: bool(sent))  # type: ignore[arg-type]
    assert attempts == len(sent) == 1
    rest = store.claim_due_deliveries(NOW, lease_seconds=60, limit=100)  # the next worker, at once
    assert len(rest) == 3 and {d.attempts for d in rest} == {0}


def test_given_up_deliveries_are_listed_per_channel_and_sent_again_when_the_operator_asks(store):
    for _ in range(3):
        store.add(created())
    store.fan_out_events(lambda e: ["nrc", "webhook:zac"], NOW, limit=100)
    for d in store.claim_due_deliveries(NOW, lease_seconds=60, limit=100):
        if d.channel == "webhook:zac":
            store.finish_delivery(d.id, now=NOW, ok=False, error="HTTP 404", retry_at=None)  # given up
        else:
            store.finish_delivery(d.id, now=NOW, ok=False, error="ReadTimeout", retry_at=NOW + timedelta(hours=1))
    rows = {(r.channel, r.state): (r.n, r.attempts, r.error) for r in store.unsent_deliveries()}
    assert rows == {("nrc", "pending"): (3, 1, "ReadTimeout"), ("webhook:zac", "failed"): (3, 1, "HTTP 404")}

    later = NOW + timedelta(hours=2)
    assert store.retry_given_up_deliveries(later, channel="notificaties") == 0  # no such given-up channel
    assert store.retry_given_up_deliveries(later, channel="webhook:zac") == 3
    again = store.claim_due_deliveries(later, lease_seconds=60, limit=100)
    assert sorted((d.channel, d.attempts) for d in again) == [("nrc", 1)] * 3 + [("webhook:zac", 0)] * 3
    assert store.retry_given_up_deliveries(later) == 0  # nothing given up any more
