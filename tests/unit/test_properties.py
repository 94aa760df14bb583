"""Properties of the pure core (hypothesis): BSN parsing, the §2.2 code derivation, the session states."""

from __future__ import annotations

import string
from datetime import timedelta

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from zgw_identificatie.domain.assurance import AssuranceLevel
from zgw_identificatie.domain.bsn import Bsn
from zgw_identificatie.domain.codes import CODE_DIGITS, derive_code
from zgw_identificatie.domain.errors import InvalidBsn, InvalidTransition, SessionAlreadyUsed, SessionExpired
from zgw_identificatie.domain.sessions import Flow, IdentificationSession, SessionState, new_session_id
from zgw_identificatie.testing.clock import FixedClock

WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)
nine_digits = st.text(alphabet=string.digits, min_size=9, max_size=9)


def elfproef(digits: str) -> bool:
    """The definition, written independently of domain/bsn.py."""
    return sum(int(d) * w for d, w in zip(digits, WEIGHTS, strict=True)) % 11 == 0 and digits != "0" * 9


@st.composite
def valid_bsns(draw: st.DrawFn) -> str:
    """Eight random digits and the ninth that makes the 11-proef hold (skipping the impossible ones)."""
    head = draw(st.text(alphabet=string.digits, min_size=8, max_size=8))
    partial = sum(int(d) * w for d, w in zip(head, WEIGHTS[:8], strict=True))
    last = partial % 11
    assume(last <= 9 and head + str(last) != "0" * 9)
    return head + str(last)


# -- BSN ---------------------------------------------------------------------------------------------------


@given(nine_digits)
def test_a_nine_digit_string_is_a_bsn_exactly_when_the_elfproef_holds(digits):
    if elfproef(digits):
        assert Bsn.parse(digits).value == digits
    else:
        try:
            Bsn.parse(digits)
        except InvalidBsn:
            return
        raise AssertionError(f"{digits} passed without the 11-proef")


@given(valid_bsns(), st.text(alphabet=" \t\n\r", max_size=3), st.text(alphabet=" \t\n\r", max_size=3))
def test_valid_bsns_parse_with_surrounding_whitespace(bsn, before, after):
    assert Bsn.parse(before + bsn + after).value == bsn


@given(st.one_of(st.text(), st.binary(), st.integers(), st.none(), st.floats(), st.lists(st.text())))
@settings(max_examples=500)
def test_anything_else_raises_invalid_bsn_and_never_another_exception(raw):
    """Unicode digits, signs, spaces inside, other lengths, other types: InvalidBsn or a valid parse."""
    try:
        bsn = Bsn.parse(raw)
    except InvalidBsn:
        return
    text = raw.strip()
    assert isinstance(raw, str) and len(text) == 9 and text.isascii() and elfproef(text) and bsn.value == text


@given(valid_bsns())
def test_a_bsn_never_shows_itself(bsn):
    value = Bsn.parse(bsn)
    assert bsn not in repr(value) and bsn not in str(value) and bsn not in f"{value}"


# -- §2.2 code derivation ----------------------------------------------------------------------------------

keys = st.binary(min_size=1, max_size=64)
gemeentecodes = st.text(alphabet=string.digits, min_size=4, max_size=4)
session_ids = st.text(min_size=1, max_size=40)


@given(keys, gemeentecodes, session_ids, valid_bsns())
def test_a_derived_code_is_always_six_ascii_digits_and_deterministic(key, gemeente, sid, bsn):
    code = derive_code(key, gemeentecode=gemeente, session_id=sid, bsn=Bsn(bsn))
    assert len(code) == CODE_DIGITS and code.isascii() and code.isdigit()
    assert derive_code(key, gemeentecode=gemeente, session_id=sid, bsn=Bsn(bsn)) == code


@given(keys, gemeentecodes, session_ids, valid_bsns(), valid_bsns())
@settings(max_examples=300)
def test_different_bsns_give_different_codes(key, gemeente, sid, a, b):
    """A collision has probability 10^-6 per pair; 300 pairs hitting one is a one-in-3000 event."""
    assume(a != b)
    code_a = derive_code(key, gemeentecode=gemeente, session_id=sid, bsn=Bsn(a))
    assert code_a != derive_code(key, gemeentecode=gemeente, session_id=sid, bsn=Bsn(b))


def test_codes_of_many_bsns_are_spread_over_the_code_space():
    """Distribution: 5000 BSNs in one session → (nearly) 5000 distinct codes (birthday bound ≈ 12 pairs)."""
    valid = []
    for head in (f"{n:08d}" for n in range(10_000_000, 10_060_000, 7)):
        last = sum(int(d) * w for d, w in zip(head, WEIGHTS[:8], strict=True)) % 11
        if last <= 9:
            valid.append(Bsn(head + str(last)))
        if len(valid) == 5000:
            break
    codes = {derive_code(b"k" * 32, gemeentecode="0363", session_id="s", bsn=b) for b in valid}
    assert len(codes) >= 4950


@given(keys, keys, session_ids, session_ids, valid_bsns())
def test_the_code_depends_on_the_key_and_the_session(k1, k2, s1, s2, bsn):
    assume(k1 != k2 and s1 != s2)
    base = derive_code(k1, gemeentecode="0363", session_id=s1, bsn=Bsn(bsn))
    others = {
        derive_code(k2, gemeentecode="0363", session_id=s1, bsn=Bsn(bsn)),
        derive_code(k1, gemeentecode="0363", session_id=s2, bsn=Bsn(bsn)),
    }
    assert base not in others or len(others) == 1  # both colliding at once: one in 10^12


# -- the session state machine -----------------------------------------------------------------------------

USABLE = (SessionState.CREATED, SessionState.OPENED)


class SessionMachine(RuleBasedStateMachine):
    """Random sequences of open / authenticate / fail / complete / expire on one session."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FixedClock()
        now = self.clock.now()
        self.s = IdentificationSession(
            id=new_session_id(),
            flow=Flow.MUTUAL,
            state=SessionState.CREATED,
            created_at=now,
            expires_at=now + timedelta(minutes=15),
            owner_id="o",
            owner_name="O",
            gemeente="G",
            min_level=AssuranceLevel.MIDDEN,
        )
        self.ever_used = False  # authenticated, completed or failed at some point
        self.ever_expired = False

    def _try(self, step):  # type: ignore[no-untyped-def]
        before = self.s
        try:
            self.s = step()
        except (SessionAlreadyUsed, SessionExpired, InvalidTransition) as exc:
            assert self.s is before
            return exc
        return None

    @rule()
    def open(self) -> None:
        exc = self._try(lambda: self.s.opened(self.clock.now()))
        if self.ever_used or self.ever_expired:
            assert exc is not None, "a used or expired link opened again"

    @rule(level=st.sampled_from(list(AssuranceLevel)))
    def authenticate(self, level: AssuranceLevel) -> None:
        exc = self._try(lambda: self.s.authenticated(self.clock.now(), level=level))
        if self.ever_used or self.ever_expired:
            assert exc is not None, "a used or expired link authenticated again"
        else:
            assert exc is None
            self.ever_used = True

    @rule()
    def fail(self) -> None:
        exc = self._try(self.s.failed)
        if exc is None:
            self.ever_used = True

    @rule()
    def complete(self) -> None:
        was = self.s.state
        exc = self._try(self.s.completed)
        # Completing is allowed after a login, and completing again is a no-op (idempotent).
        assert (exc is None) == (was in (SessionState.AUTHENTICATED, SessionState.COMPLETED))
        if exc is None:
            assert self.s.state is SessionState.COMPLETED and self.s.bsn is None

    @precondition(lambda self: not self.ever_expired)
    @rule(minutes=st.integers(min_value=0, max_value=20))
    def let_time_pass(self, minutes: int) -> None:
        self.clock.advance(minutes=minutes)
        if self.s.is_expired(self.clock.now()):
            self.ever_expired = True

    @invariant()
    def the_state_is_valid(self) -> None:
        assert self.s.state in SessionState
        if self.s.state in (SessionState.FAILED, SessionState.COMPLETED):
            assert self.s.bsn is None
        if self.s.state in (SessionState.AUTHENTICATED, SessionState.COMPLETED):
            assert self.s.authenticated_at is not None and self.s.level is not None

    @invariant()
    def a_used_or_expired_link_is_never_usable(self) -> None:
        usable = True
        try:
            self.s.ensure_usable_link(self.clock.now())
        except (SessionAlreadyUsed, SessionExpired):
            usable = False
        if self.ever_used or self.ever_expired:
            assert not usable
        else:
            assert usable and self.s.state in USABLE


SessionMachine.TestCase.settings = settings(
    max_examples=200, stateful_step_count=20, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_the_session_state_machine = SessionMachine.TestCase
