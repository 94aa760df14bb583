"""flows/confirmation.py with the recording fakes: when the status is set, when it waits, when it gives up."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from zgw_identificatie.domain.confirmation import ConfirmationState
from zgw_identificatie.domain.errors import RegistrationFailed, RegistryUnavailable
from zgw_identificatie.domain.registration import Registration
from zgw_identificatie.domain.sessions import Flow, RegistrationState, SessionState
from zgw_identificatie.flows.confirmation import (
    ConfirmationConflict,
    ConfirmationNotApplicable,
    ConfirmationTooEarly,
    confirm,
    process_due_confirmations,
)
from zgw_identificatie.settings import Settings
from zgw_identificatie.testing.builders import a_session
from zgw_identificatie.testing.clock import FixedClock
from zgw_identificatie.testing.store import InMemorySessionStore
from zgw_identificatie.testing.zgw import FakeZaakRegistry

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


class World:
    def __init__(self, *, registered: bool = True, **session: object) -> None:
        self.clock = FixedClock(NOW)
        self.store = InMemorySessionStore()
        self.registry = FakeZaakRegistry()
        self.settings = Settings()
        self.session = a_session(NOW, citizen_code="123456", **session)
        self.store.add(self.session)
        self.zaak = self.registry.add_existing_zaak("ZAAK-2026-0000000001")
        if registered:
            self.register()

    def register(self) -> None:
        self.store.add_registration(
            Registration(
                id="r-" + self.session.id,
                session_id=self.session.id,
                proof=None,
                existing_zaak=None,
                state=RegistrationState.DONE,
                created_at=NOW,
                updated_at=NOW,
                next_attempt_at=NOW,
                zaak_url=self.zaak.url,
                zaak_identificatie=self.zaak.identificatie,
            )
        )

    def confirm(self, matches: bool = True):  # type: ignore[no-untyped-def]
        return confirm(
            self.session,
            matches=matches,
            actor_id="local:jdv",
            actor_name="Jan de Vries",
            store=self.store,
            clock=self.clock,
        )

    def work(self) -> int:
        return process_due_confirmations(
            store=self.store, registry_factory=lambda: self.registry, clock=self.clock, settings=self.settings
        )

    def stored(self):  # type: ignore[no-untyped-def]
        return self.store.confirmation_for_session(self.session.id)


def test_code_klopt_becomes_one_status_of_the_configured_type_naming_the_behandelaar() -> None:
    w = World()
    _, new = w.confirm(True)
    assert new and w.work() == 1
    [status] = w.registry.called("add_status")
    assert status["statustype"] == "Identiteit vastgesteld" and status["zaak_url"] == w.zaak.url
    toelichting = next(s["toelichting"] for s in w.registry.statussen.values())
    assert "Jan de Vries (local:jdv)" in toelichting and "Code klopt:" in toelichting
    assert w.stored().state is ConfirmationState.DONE
    assert w.work() == 0 and len(w.registry.called("add_status")) == 1


def test_code_klopt_niet_uses_the_other_statustype() -> None:
    w = World()
    w.confirm(False)
    w.work()
    assert w.registry.called("add_status")[0]["statustype"] == "Identiteit niet vastgesteld"


def test_the_confirmation_waits_for_the_zaak_without_counting_attempts() -> None:
    w = World(registered=False)
    w.confirm(True)
    w.work()
    assert w.registry.called("add_status") == [] and w.stored().attempts == 0
    assert w.stored().state is ConfirmationState.PENDING
    w.register()
    w.clock.advance(seconds=5)
    w.work()
    assert len(w.registry.called("add_status")) == 1


def test_an_outage_is_retried_and_a_lost_answer_is_found_not_repeated() -> None:
    w = World()
    w.confirm(True)
    w.registry.fail("add_status", RegistryUnavailable("time-out"), after_write=True)
    w.work()
    assert w.stored().uncertain and w.stored().attempts == 1
    w.clock.advance(seconds=5)
    w.work()
    assert len(w.registry.called("add_status")) == 1 and len(w.registry.statussen) == 1
    assert w.stored().state is ConfirmationState.DONE


def test_a_refusal_fails_the_confirmation_with_the_reason() -> None:
    w = World()
    w.confirm(True)
    w.registry.fail("add_status", RegistrationFailed("the zaaktype has no statustype 'Identiteit vastgesteld'"))
    w.work()
    assert w.stored().state is ConfirmationState.FAILED and "statustype" in (w.stored().error or "")


def test_an_empty_statustype_setting_keeps_the_answer_in_the_audit_only() -> None:
    w = World()
    w.settings.zgw.statustype_code_klopt = ""
    w.confirm(True)
    w.work()
    assert w.registry.called("add_status") == [] and w.stored().state is ConfirmationState.DONE
    assert [e.event for e in w.store.list_audit(session_id=w.session.id)] == [
        "code-confirmation-on-zaak",
        "code-confirmed",
    ]


def test_the_same_answer_twice_is_one_confirmation_the_other_answer_is_refused() -> None:
    w = World()
    first, new = w.confirm(True)
    again, new_again = w.confirm(True)
    assert new and not new_again and first.id == again.id
    with pytest.raises(ConfirmationConflict):
        w.confirm(False)
    assert sum(e.event == "code-confirmed" for e in w.store.list_audit()) == 1


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"flow": Flow.KNOWN_CITIZEN}, ConfirmationNotApplicable),
        ({"flow": Flow.MUTUAL}, ConfirmationNotApplicable),
        ({"state": SessionState.OPENED}, ConfirmationTooEarly),
    ],
)
def test_only_a_logged_in_new_citizen_session_can_be_confirmed(changes: dict[str, object], error: type) -> None:
    w = World()
    w.session = replace(w.session, **changes)  # type: ignore[arg-type]
    with pytest.raises(error):
        w.confirm(True)
    assert w.stored() is None


def test_a_zaak_that_never_comes_gives_up_after_a_day() -> None:
    w = World(registered=False)
    w.confirm(True)
    w.clock.advance(days=1, seconds=1)
    w.work()
    assert w.stored().state is ConfirmationState.FAILED


def test_nothing_claimed_twice_while_leased() -> None:
    w = World()
    w.confirm(True)
    claimed = w.store.claim_due_confirmations(w.clock.now(), lease_seconds=60, limit=5)
    assert len(claimed) == 1 and w.work() == 0


def test_confirmations_are_claimed_one_at_a_time_so_a_slow_zaaksysteem_never_outlasts_a_lease() -> None:
    """Each confirmation is leased (LEASE_SECONDS, 120 s) when its turn comes, not with a batch of up to 20 claimed
    before the first call: two ZGW calls can take 20 s each against a zaaksysteem that hangs, so a batch's last
    ones would be worked on after their lease ran out, when another worker may have claimed them and set a
    second status. Here another worker looks while the first call is under way: the rest are free for it."""
    w = World()
    first, zaak = w.session, w.zaak
    for n in (2, 3):  # two more sessions, each with its own zaak
        w.session = a_session(NOW, citizen_code="123456")
        w.store.add(w.session)
        w.zaak = w.registry.add_existing_zaak(f"ZAAK-2026-000000000{n}")
        w.register()
        w.confirm(True)
    w.session, w.zaak = first, zaak
    w.confirm(True)
    seen_by_another_worker: list[int] = []
    registry = w.registry
    real_add_status = registry.add_status

    def slow_add_status(**kwargs):  # type: ignore[no-untyped-def]
        if not seen_by_another_worker:
            free = w.store.claim_due_confirmations(w.clock.now(), lease_seconds=120, limit=20)
            seen_by_another_worker.append(len(free))
            for c in free:  # that worker hands them back at once (it was only looking): saving ends a lease
                w.store.update_confirmation(c)
        return real_add_status(**kwargs)

    registry.add_status = slow_add_status  # type: ignore[method-assign]
    assert w.work() == 3
    assert seen_by_another_worker == [2]
    assert len({status["zaak"] for status in registry.statussen.values()}) == len(registry.statussen) == 3
