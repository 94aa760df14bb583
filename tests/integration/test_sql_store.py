"""The production store on SQLite and on a real PostgreSQL server: same behaviour on both."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import sqlalchemy as sa

from zgw_identificatie.adapters.sql_store import metadata, registrations, sessions
from zgw_identificatie.domain.assurance import AssuranceLevel
from zgw_identificatie.domain.audit import AuditEvent
from zgw_identificatie.domain.bsn import Bsn
from zgw_identificatie.domain.proof import ProofData
from zgw_identificatie.domain.registration import Registration
from zgw_identificatie.domain.sessions import Flow, IdentificationSession, RegistrationState, SessionState
from zgw_identificatie.ports import LoginFlow
from zgw_identificatie.testing.builders import a_proof
from zgw_identificatie.testing.clock import FixedClock

BSN = "999993653"


def make_session(clock, **kw) -> IdentificationSession:
    now = clock.now()
    base = dict(
        id="s-" + str(abs(hash((now, tuple(kw.items())))))[:20],
        flow=Flow.MUTUAL,
        state=SessionState.CREATED,
        created_at=now,
        expires_at=now + timedelta(minutes=15),
        owner_id="local:a",
        owner_name="Sanne",
        gemeente="Gemeente Voorbeeld",
        min_level=AssuranceLevel.MIDDEN,
    )
    base.update(kw)
    return IdentificationSession(**base)


def proof(clock) -> ProofData:
    return a_proof(clock.now(), bsn=BSN, session_id="s1")


def test_the_migrations_create_exactly_the_tables_the_store_uses(store):
    """Alembic's schema and the SQLAlchemy tables agree, column for column."""
    inspector = sa.inspect(store.engine)
    for table in metadata.sorted_tables:
        assert {c["name"] for c in inspector.get_columns(table.name)} == {c.name for c in table.columns}


def test_a_session_round_trips_with_its_bsn_encrypted_at_rest(store):
    """The BSN comes back as a Bsn but the database column holds ciphertext only."""
    clock = FixedClock()
    s = make_session(clock, id="s1", bsn=Bsn(BSN), level=AssuranceLevel.HOOG, state=SessionState.AUTHENTICATED)
    store.add(s)
    assert store.get("s1") == s
    with store.engine.connect() as conn:
        raw = conn.execute(sa.select(sessions.c.bsn_enc)).scalar_one()
    assert BSN.encode() not in raw


def test_delete_is_a_hard_delete_of_the_session_and_its_login_flows(store):
    """After delete no row is left that names the session."""
    clock = FixedClock()
    store.add(make_session(clock, id="s2", bsn=Bsn(BSN)))
    store.add_login_flow(LoginFlow("f1", "s2", "_req", "rs", clock.now(), clock.now() + timedelta(minutes=5)))
    assert store.delete("s2") is True
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM sessions")).scalar_one() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM login_flows")).scalar_one() == 0
    assert store.delete("s2") is False


def test_a_login_flow_can_be_taken_once_and_not_after_it_expired(store):
    """take_login_flow is single use (R12)."""
    clock = FixedClock()
    store.add_login_flow(LoginFlow("f1", "s", "_r", "rs", clock.now(), clock.now() + timedelta(minutes=5)))
    store.add_login_flow(LoginFlow("f2", "s", "_r", "rs", clock.now(), clock.now() + timedelta(minutes=5)))
    assert store.take_login_flow("f1", clock.now()).request_id == "_r"
    assert store.take_login_flow("f1", clock.now()) is None
    assert store.take_login_flow("f2", clock.now() + timedelta(minutes=6)) is None
    assert store.take_login_flow("nope", clock.now()) is None


def test_a_login_flow_is_taken_with_its_session_once(store):
    """take_login_flow_with_session: the same single use, and the session as ``get`` reads it (None: gone)."""
    clock = FixedClock()
    s = make_session(clock, id="s3", bsn=Bsn(BSN), state=SessionState.OPENED, opened_at=clock.now(), register=True)
    store.add(s)
    flow = LoginFlow("f1", "s3", "_r", "rs", clock.now(), clock.now() + timedelta(minutes=5))
    store.add_login_flow(flow)
    store.add_login_flow(LoginFlow("f2", "gone", "_r", "rs", clock.now(), clock.now() + timedelta(minutes=5)))
    store.add_login_flow(LoginFlow("f3", "s3", "_r", "rs", clock.now(), clock.now() + timedelta(minutes=5)))
    assert store.take_login_flow_with_session("f1", clock.now()) == (flow, s)
    assert store.take_login_flow_with_session("f1", clock.now()) is None
    assert store.take_login_flow_with_session("f2", clock.now())[1] is None
    assert store.take_login_flow_with_session("f3", clock.now() + timedelta(minutes=6)) is None
    assert store.take_login_flow("f3", clock.now()) is not None  # the expired attempt consumed nothing
    assert store.take_login_flow_with_session("nope", clock.now()) is None


def test_one_time_ids_are_accepted_once(store):
    """Replay store: the second use of the same id is refused."""
    clock = FixedClock()
    until = clock.now() + timedelta(minutes=5)
    assert store.use_once("assertion", "_abc", until) is True
    assert store.use_once("assertion", "_abc", until) is False
    assert store.use_once("response", "_abc", until) is True


def test_one_time_ids_used_in_turn_stop_at_the_first_replay(store):
    """use_once_each: use_once of each id in order until one was seen before; its kind is returned and the ids
    after it are not recorded (the ACS's Response and Assertion IDs, in one statement on PostgreSQL)."""
    until = FixedClock().now() + timedelta(minutes=5)
    assert store.use_once_each([("response", "_r1"), ("assertion", "_a1")], until) is None
    assert store.use_once_each([("response", "_r1"), ("assertion", "_a2")], until) == "response"
    assert store.use_once("assertion", "_a2", until) is True  # not recorded after the replayed Response ID
    assert store.use_once_each([("response", "_r2"), ("assertion", "_a1")], until) == "assertion"
    assert store.use_once("response", "_r2", until) is False  # recorded, as use_once did before the replay
    assert store.use_once_each([("response", "_r1"), ("assertion", "_a1")], until) == "response"
    assert store.use_once_each([("twice", "_d"), ("twice", "_d")], until) == "twice"
    assert store.use_once_each([], until) is None


def test_purge_erases_expired_sessions_flows_and_ids_but_keeps_live_ones(store):
    """Expiry by time; audit events stay."""
    clock = FixedClock()
    store.add(make_session(clock, id="old", expires_at=clock.now() + timedelta(minutes=1), bsn=Bsn(BSN)))
    store.add(make_session(clock, id="new", expires_at=clock.now() + timedelta(minutes=30)))
    store.use_once("artifact", "x", clock.now() + timedelta(minutes=1))
    store.add_audit(AuditEvent(clock.now(), "a", "mutual", "old", "created", "ok"))
    counts = store.purge(clock.now() + timedelta(minutes=2))
    assert counts["sessions"] == 1 and counts["one_time_ids"] == 1
    assert store.get("old") is None and store.get("new") is not None
    assert len(store.list_audit()) == 1


def test_registrations_keep_their_payload_encrypted_and_lose_it_when_done(store):
    """The proof (with BSN) is ciphertext in the table and gone once the registration is done."""
    clock = FixedClock()
    reg = Registration(
        id="r1",
        session_id="s1",
        proof=proof(clock),
        existing_zaak=None,
        state=RegistrationState.PENDING,
        created_at=clock.now(),
        updated_at=clock.now(),
        next_attempt_at=clock.now(),
    )
    store.add_registration(reg)
    with store.engine.connect() as conn:
        raw = conn.execute(sa.select(registrations.c.payload_enc)).scalar_one()
    assert BSN.encode() not in raw
    assert store.get_registration("r1").proof.bsn.value == BSN
    store.update_registration(replace(reg, state=RegistrationState.DONE, zaak_url="http://z/1"))
    done = store.get_registration("r1")
    assert done.proof is None and done.zaak_url == "http://z/1"
    assert store.registration_for_session("s1").id == "r1"


def test_due_registrations_are_leased_to_one_worker_at_a_time(store):
    """Two claims at the same moment never return the same registration."""
    clock = FixedClock()
    for i in range(3):
        store.add_registration(
            Registration(
                id=f"r{i}",
                session_id="s",
                proof=proof(clock),
                existing_zaak=None,
                state=RegistrationState.PENDING,
                created_at=clock.now(),
                updated_at=clock.now(),
                next_attempt_at=clock.now(),
            )
        )
    first = store.claim_due_registrations(clock.now(), lease_seconds=60, limit=2)
    second = store.claim_due_registrations(clock.now(), lease_seconds=60, limit=10)
    assert len(first) == 2 and len(second) == 1
    assert {r.id for r in first}.isdisjoint({r.id for r in second})
    assert store.claim_due_registrations(clock.now() + timedelta(seconds=61), lease_seconds=60, limit=10)


def test_a_failed_registration_is_reopened_once_with_its_urls_and_its_behandelaar(store):
    """Issue 9: reopen is a conditional update: a second (racing) reopen gets None; URLs and user stay."""
    import threading

    clock = FixedClock()
    reg = Registration(
        id="r-failed",
        session_id="s1",
        proof=proof(clock),
        existing_zaak=None,
        state=RegistrationState.FAILED,
        created_at=clock.now(),
        updated_at=clock.now(),
        next_attempt_at=clock.now(),
        attempts=3,
        zaak_url="http://z/1",
        zaak_identificatie="ZAAK-1",
        uncertain_step="rol",
        error="rol: 403",
        invalid_params=(("x", "y", "z"),),
        user_id="local:a",
        user_representation="Sanne",
    )
    store.add_registration(reg)
    clock.advance(minutes=5)
    barrier = threading.Barrier(4)
    won: list[Registration | None] = []

    def reopen() -> None:
        barrier.wait()
        won.append(store.reopen_registration("r-failed", clock.now()))

    threads = [threading.Thread(target=reopen) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reopened = [r for r in won if r is not None]
    assert len(reopened) == 1
    (r,) = reopened
    assert r.state is RegistrationState.PENDING and r.attempts == 0 and r.error is None and r.invalid_params == ()
    assert (r.zaak_url, r.zaak_identificatie, r.uncertain_step) == ("http://z/1", "ZAAK-1", "rol")
    assert (r.user_id, r.user_representation) == ("local:a", "Sanne")
    assert r.proof is not None and r.proof.bsn.value == BSN
    assert [c.id for c in store.claim_due_registrations(clock.now(), lease_seconds=60, limit=5)] == ["r-failed"]


def test_a_failed_registration_without_its_proof_is_not_reopened(store):
    clock = FixedClock()
    reg = Registration(
        id="r-erased",
        session_id="s1",
        proof=None,
        existing_zaak=None,
        state=RegistrationState.FAILED,
        created_at=clock.now(),
        updated_at=clock.now(),
        next_attempt_at=clock.now(),
    )
    store.add_registration(reg)
    assert store.reopen_registration("r-erased", clock.now()) is None
    assert store.get_registration("r-erased").state is RegistrationState.FAILED


def test_sessions_are_listed_per_owner_newest_first(store):
    """A behandelaar's overview shows only their own sessions."""
    clock = FixedClock()
    store.add(make_session(clock, id="a1"))
    clock.advance(minutes=1)
    store.add(make_session(clock, id="a2"))
    store.add(make_session(clock, id="b1", owner_id="local:b"))
    assert [s.id for s in store.list_for_owner("local:a")] == ["a2", "a1"]


def test_rotating_keys_re_encrypts_with_the_newest_key(store):
    """After adding a key in front and rotating, the new key alone reads the data."""
    from zgw_identificatie.adapters.crypto import DataCipher, generate_key

    clock = FixedClock()
    store.add(make_session(clock, id="k1", bsn=Bsn(BSN)))
    new_key = generate_key()
    store.cipher = DataCipher([new_key, *store.cipher.keys])
    assert store.rotate_keys() == 1
    store.cipher = DataCipher([new_key])
    assert store.get("k1").bsn.value == BSN
