"""Two service processes (each its own app and store) race on one Idempotency-Key, on SQLite and PostgreSQL.

The store is gated so the race is certain, not likely: the first request holds the key and is inside the
create when the second asks; the second must wait for it and answer the same session, and exactly one
session (one link for the citizen) exists.
"""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa

from demo_driver import API_KEY, demo_app
from zgw_identificatie.adapters.sql_store import SqlSessionStore

AUTH = {"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": "9b1f6a1e-race"}


class GatedStore(SqlSessionStore):
    """Holds the first session insert until another process has seen the key in use."""

    def __init__(self, engine: sa.Engine, cipher: Any, seen_in_use: threading.Event) -> None:
        super().__init__(engine, cipher)
        self.seen_in_use = seen_in_use
        self.inserts = 0

    def add(self, session: Any, **kwargs: Any) -> None:
        self.inserts += 1
        assert self.seen_in_use.wait(10), "the other process never saw the key in use"
        super().add(session, **kwargs)

    def claim_idempotency_key(self, *args: Any, **kwargs: Any) -> Any:
        held = super().claim_idempotency_key(*args, **kwargs)
        if held is not None and held[1] is None:
            self.seen_in_use.set()
        return held


def test_two_processes_racing_on_one_key_make_one_session_and_both_get_it(store, tmp_path):
    seen_in_use = threading.Event()
    stores = [GatedStore(store.engine, store.cipher, seen_in_use) for _ in range(2)]
    apps = [demo_app(tmp_path / str(i), store=s) for i, s in enumerate(stores)]
    answers: list[Any] = [None, None]
    started = threading.Barrier(2)

    def post(i: int) -> None:
        started.wait()
        if i == 1:  # the second process asks once the first holds the key
            while not any(s.inserts for s in stores):
                threading.Event().wait(0.01)
        answers[i] = apps[i].test_client().post("/api/v1/sessions", json={"flow": "mutual"}, headers=AUTH)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [a.status_code for a in answers] == [201, 201], [a.get_json() for a in answers]
    assert answers[0].get_json()["id"] == answers[1].get_json()["id"]
    assert answers[1].headers.get("Idempotent-Replayed") == "true"
    assert [s.inserts for s in stores] == [1, 0]
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM sessions")).scalar_one() == 1
        assert conn.execute(sa.text("SELECT count(*) FROM idempotency_keys")).scalar_one() == 1
