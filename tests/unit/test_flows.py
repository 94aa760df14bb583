"""The three flows as plain functions on fakes: what each one stores, derives, registers and erases."""

from __future__ import annotations

import pytest

from zgw_identificatie.domain.assurance import AssuranceLevel
from zgw_identificatie.domain.bsn import Bsn
from zgw_identificatie.domain.codes import derive_code
from zgw_identificatie.domain.errors import (
    InvalidBsn,
    LevelTooLow,
    NotOwner,
    SessionAlreadyUsed,
    SessionExpired,
    SessionNotFound,
)
from zgw_identificatie.domain.sessions import Flow, RegistrationState, SessionState
from zgw_identificatie.flows import common, known_citizen, mutual, new_citizen
from zgw_identificatie.flows.registration import process_due
from zgw_identificatie.testing.clock import FixedClock
from zgw_identificatie.testing.digid import FakeIdentityProvider
from zgw_identificatie.testing.store import InMemorySessionStore
from zgw_identificatie.testing.zgw import FakeProofRenderer, FakeZaakRegistry

BSN = "999993653"
OTHER = "999990019"


@pytest.fixture
def env(settings):
    return {"store": InMemorySessionStore(), "clock": FixedClock(), "settings": settings}


def owner(**kw):
    return {"owner_id": "local:sanne", "owner_name": "Sanne", **kw}


def test_known_citizen_keeps_only_the_derived_code_never_the_bsn(env):
    """§2.2: the stored session has the HMAC code and no BSN anywhere."""
    s = known_citizen.start(BSN, **owner(), **env)
    stored = env["store"].get(s.id)
    assert stored.bsn is None and BSN not in repr(stored.__dict__)
    expected = derive_code(
        env["settings"].code_key.encode(), gemeentecode=env["settings"].gemeentecode, session_id=s.id, bsn=Bsn(BSN)
    )
    assert stored.expected_code == expected


def test_known_citizen_refuses_an_invalid_bsn_before_storing_anything(env):
    """InvalidBsn and an empty store."""
    with pytest.raises(InvalidBsn):
        known_citizen.start("123456789", **owner(), **env)
    assert env["store"].sessions == {}


@pytest.mark.parametrize(("digid_bsn", "match"), [(BSN, True), (OTHER, False)])
def test_known_citizen_compares_the_code_from_the_digid_bsn(env, digid_bsn, match):
    """Equal codes iff the DigiD BSN is the one the behandelaar entered."""
    s = known_citizen.start(BSN, **owner(), **env)
    idp = FakeIdentityProvider()
    done = known_citizen.citizen_authenticated(s, idp.login_as(digid_bsn), **env)
    assert done.code_match is match and done.state is SessionState.AUTHENTICATED
    assert (done.citizen_code == done.expected_code) is match
    event = env["store"].audit[-1]
    assert (
        event.outcome == ("code-match" if match else "code-mismatch") and event.bsn_hash and BSN not in event.bsn_hash
    )


def test_a_lower_level_than_required_is_refused_by_the_flow_too(env):
    """Defence in depth: the flow never accepts Basis for a Midden session."""
    s = mutual.start(**owner(), **env)
    idp = FakeIdentityProvider()
    with pytest.raises(LevelTooLow):
        mutual.citizen_authenticated(s, idp.login_as(BSN, AssuranceLevel.BASIS), **env)
    assert env["store"].get(s.id).bsn is None


def test_a_requested_level_can_raise_but_never_lower_the_configured_minimum(env):
    """Asking for Basis when Midden is configured still gives Midden; Hoog gives Hoog."""
    assert mutual.start(min_level=AssuranceLevel.BASIS, **owner(), **env).min_level is AssuranceLevel.MIDDEN
    assert mutual.start(min_level=AssuranceLevel.HOOG, **owner(), **env).min_level is AssuranceLevel.HOOG


def test_new_citizen_draws_a_random_code_and_queues_a_registration_for_a_new_zaak(env):
    """§2.1: six-digit code, registration pending with the proof (BSN) and no existing zaak."""
    s = new_citizen.start(**owner(), **env)
    done = new_citizen.citizen_authenticated(s, FakeIdentityProvider().login_as(BSN), **env)
    assert len(done.citizen_code) == 6 and done.registration_state is RegistrationState.PENDING
    reg = env["store"].registration_for_session(s.id)
    assert reg.existing_zaak is None and reg.proof.bsn.value == BSN and reg.proof.controlecode == done.citizen_code


def test_the_worker_turns_a_new_citizen_registration_into_one_zaak_with_rol_status_document_and_link(env):
    """process_due runs the steps; the session learns the zaak; the BSN payload is erased."""
    s = new_citizen.start(**owner(), **env)
    new_citizen.citizen_authenticated(s, FakeIdentityProvider().login_as(BSN), **env)
    registry = FakeZaakRegistry()
    assert process_due(registry=registry, renderer=FakeProofRenderer(), limit=5, **env) == 1
    for method in ("create_zaak", "add_citizen_rol", "set_first_status", "upload_document", "link_document"):
        assert len(registry.called(method)) == 1, method
    session = env["store"].get(s.id)
    assert session.registration_state is RegistrationState.DONE and session.zaak_identificatie
    assert env["store"].registration_for_session(s.id).proof is None


def test_known_citizen_can_attach_its_proof_to_an_existing_zaak(env):
    """With a zaak identificatie the proof goes to that zaak; no new zaak is made."""
    registry = FakeZaakRegistry()
    existing = registry.add_existing_zaak("ZAAK-2026-0000000042")
    s = known_citizen.start(BSN, register=True, zaak_identificatie="ZAAK-2026-0000000042", **owner(), **env)
    known_citizen.citizen_authenticated(s, FakeIdentityProvider().login_as(BSN), **env)
    process_due(registry=registry, renderer=FakeProofRenderer(), limit=5, **env)
    assert registry.called("create_zaak") == []
    assert registry.called("link_document")[0]["zaak_url"] == existing.url


@pytest.mark.parametrize("zaak", [None, "ZAAK-2026-0000000042"])
def test_a_failed_code_check_records_nothing_in_the_zaaksysteem_and_says_so(env, zaak):
    """Issue 9 #4: a §2.2 mismatch is no proof: no zaak, rol or document (no stranger's BSN on the zaak);
    the registration is "skipped" with its reason, and the audit log names the mismatch."""
    registry = FakeZaakRegistry()
    registry.add_existing_zaak("ZAAK-2026-0000000042")
    s = known_citizen.start(BSN, register=True, zaak_identificatie=zaak, **owner(), **env)
    done = known_citizen.citizen_authenticated(s, FakeIdentityProvider().login_as(OTHER), **env)
    assert done.code_match is False
    assert process_due(registry=registry, renderer=FakeProofRenderer(), limit=5, **env) == 0
    assert [name for name, _ in registry.calls] == []
    assert env["store"].registration_for_session(s.id) is None
    stored = env["store"].get(s.id)
    assert stored.registration_state is RegistrationState.SKIPPED
    assert "control codes differ" in stored.registration_error
    events = [(e.event, e.outcome) for e in env["store"].audit if e.session_id == s.id]
    assert ("digid-login", "code-mismatch") in events and ("registration-skipped", "code-mismatch") in events


def test_a_matching_code_check_is_recorded_as_proof(env):
    s = known_citizen.start(BSN, register=True, **owner(), **env)
    known_citizen.citizen_authenticated(s, FakeIdentityProvider().login_as(BSN), **env)
    registry = FakeZaakRegistry()
    assert process_due(registry=registry, renderer=FakeProofRenderer(), limit=5, **env) == 1
    assert registry.called("upload_document")[0]["titel"] == "Bewijs van identificatie met DigiD"
    assert env["store"].get(s.id).registration_state is RegistrationState.DONE


def test_mutual_stores_the_bsn_and_complete_erases_the_record_and_leaves_an_audit_hash(env):
    """§2.3: BSN on the record after login; Voltooien erases everything personal at once (a tombstone
    without BSN stays until expiry, like every flow); completing twice is a no-op; audit keeps a keyed hash."""
    s = mutual.start(**owner(), **env)
    mutual.citizen_authenticated(s, FakeIdentityProvider().login_as(BSN), **env)
    assert env["store"].get(s.id).bsn == Bsn(BSN)
    mutual.complete(s.id, owner_id="local:sanne", **env)
    tombstone = env["store"].get(s.id)
    assert tombstone.bsn is None and tombstone.state.value == "completed" and tombstone.ended_at is not None
    assert BSN not in repr(tombstone)
    erased = env["store"].audit[-1]
    assert erased.event == "erased" and erased.bsn_hash and len(erased.bsn_hash) == 64
    mutual.complete(s.id, owner_id="local:sanne", **env)
    assert env["store"].audit[-1] is erased  # idempotent: nothing happens twice


def test_only_the_owner_may_complete_or_read_a_session(env):
    """Another behandelaar gets NotOwner; an unknown id SessionNotFound."""
    s = mutual.start(**owner(), **env)
    with pytest.raises(NotOwner):
        mutual.complete(s.id, owner_id="local:ahmed", **env)
    with pytest.raises(SessionNotFound):
        common.load_for_owner("nope", "local:sanne", store=env["store"], clock=env["clock"])


def test_links_expire_after_the_configured_minutes_and_are_single_use(env):
    """open_link works, then SessionAlreadyUsed after login, SessionExpired after 15 minutes."""
    s = new_citizen.start(**owner(), **env)
    t = known_citizen.start(BSN, **owner(), **env)
    assert common.open_link(s.id, store=env["store"], clock=env["clock"]).state is SessionState.OPENED
    new_citizen.citizen_authenticated(env["store"].get(s.id), FakeIdentityProvider().login_as(BSN), **env)
    with pytest.raises(SessionAlreadyUsed):
        common.open_link(s.id, store=env["store"], clock=env["clock"])
    env["clock"].advance(minutes=15)
    with pytest.raises(SessionExpired):
        common.open_link(t.id, store=env["store"], clock=env["clock"])


def test_every_flow_records_who_started_it(env):
    """session-created audit events name the behandelaar and the flow."""
    for start in (
        lambda: new_citizen.start(**owner(), **env),
        lambda: mutual.start(**owner(), **env),
        lambda: known_citizen.start(BSN, **owner(), **env),
    ):
        start()
    flows = {(e.flow, e.actor) for e in env["store"].audit if e.event == "session-created"}
    assert flows == {(f.value, "local:sanne") for f in Flow}


def test_when_the_database_goes_away_mid_pass_only_the_registration_at_hand_waits_for_its_lease(env):
    """The worker claims one registration at a time: the others stay in the database, claimable by the next pass
    (or another worker) at once, instead of leased to this one for LEASE_SECONDS (300 s) with a whole batch."""
    for _ in range(3):
        s = new_citizen.start(**owner(), **env)
        new_citizen.citizen_authenticated(s, FakeIdentityProvider().login_as(BSN), **env)
    store = env["store"]

    class DatabaseGone(Exception):
        pass

    class Outage(FakeZaakRegistry):
        def create_zaak(self, *args, **kwargs):
            store.get_registration = _gone  # the store fails from here on, like a restarting database
            raise DatabaseGone

    def _gone(*_args, **_kwargs):
        raise DatabaseGone

    with pytest.raises(DatabaseGone):
        process_due(registry=Outage(), renderer=FakeProofRenderer(), limit=5, **env)
    del store.get_registration  # the database is back
    registry = FakeZaakRegistry()
    assert process_due(registry=registry, renderer=FakeProofRenderer(), limit=5, **env) == 2  # not leased
    assert len(registry.called("create_zaak")) == 2


def test_a_worker_asked_to_stop_finishes_the_registration_at_hand_and_claims_no_other(env):
    """SIGTERM at a deploy: the registration at hand is finished, the others stay unclaimed for the next worker
    (before, the whole pass ran on, up to 20 registrations, past the orchestrator's grace period)."""
    for _ in range(3):
        s = new_citizen.start(**owner(), **env)
        new_citizen.citizen_authenticated(s, FakeIdentityProvider().login_as(BSN), **env)
    asked: list[bool] = []

    class Deploy(FakeZaakRegistry):
        def create_zaak(self, *args, **kwargs):
            asked.append(True)  # SIGTERM arrives while the first registration runs
            return super().create_zaak(*args, **kwargs)

    registry = Deploy()
    ran = process_due(registry=registry, renderer=FakeProofRenderer(), limit=5, stop=lambda: bool(asked), **env)
    assert ran == 1 and len(registry.called("create_zaak")) == 1
    assert process_due(registry=FakeZaakRegistry(), renderer=FakeProofRenderer(), limit=5, **env) == 2  # not leased
