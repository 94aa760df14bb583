"""The §2.1 code confirmations in the production store (SQLite and PostgreSQL): one per session, leased
claims like registrations, purged a day after they are on the zaak; the in-memory store behaves alike."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from zgw_identificatie.domain.confirmation import CodeConfirmation, ConfirmationState
from zgw_identificatie.testing.clock import FixedClock
from zgw_identificatie.testing.store import InMemorySessionStore


def confirmation(clock: FixedClock, **changes: object) -> CodeConfirmation:
    c = CodeConfirmation(
        id="c1",
        session_id="s1",
        matches=True,
        behandelaar_id="local:sanne",
        behandelaar_name="Sanne de Vries",
        confirmed_at=clock.now(),
        state=ConfirmationState.PENDING,
        next_attempt_at=clock.now(),
    )
    return replace(c, **changes)  # type: ignore[arg-type]


def test_one_confirmation_per_session_the_first_one_counts(store) -> None:
    one_per_session(store)


def test_a_claimed_confirmation_is_leased_until_it_is_saved(store) -> None:
    leased(store)


def test_the_memory_store_behaves_alike() -> None:
    one_per_session(InMemorySessionStore())
    leased(InMemorySessionStore())


def one_per_session(any_store) -> None:
    clock = FixedClock()
    first = any_store.add_confirmation(confirmation(clock))
    second = any_store.add_confirmation(confirmation(clock, id="c2", matches=False))
    assert first.id == second.id == "c1" and second.matches is True
    assert any_store.confirmation_for_session("s1") == first


def leased(any_store) -> None:
    clock = FixedClock()
    any_store.add_confirmation(confirmation(clock))
    [claimed] = any_store.claim_due_confirmations(clock.now(), lease_seconds=60, limit=5)
    assert any_store.claim_due_confirmations(clock.now(), lease_seconds=60, limit=5) == []
    any_store.update_confirmation(replace(claimed, uncertain=True, next_attempt_at=clock.now()))
    [again] = any_store.claim_due_confirmations(clock.now(), lease_seconds=60, limit=5)
    assert again.uncertain
    any_store.update_confirmation(replace(again, state=ConfirmationState.DONE, status_url="https://z/statussen/1"))
    assert any_store.claim_due_confirmations(clock.now() + timedelta(hours=1), lease_seconds=60, limit=5) == []


def test_finished_confirmations_are_purged_after_a_day_pending_ones_stay(store) -> None:
    clock = FixedClock()
    store.add_confirmation(confirmation(clock, state=ConfirmationState.DONE))
    store.add_confirmation(confirmation(clock, id="c2", session_id="s2"))
    assert store.purge(clock.now() + timedelta(hours=1))["code_confirmations"] == 0
    assert store.purge(clock.now() + timedelta(days=2))["code_confirmations"] == 1
    assert store.confirmation_for_session("s1") is None and store.confirmation_for_session("s2") is not None
