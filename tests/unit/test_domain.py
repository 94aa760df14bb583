"""The pure core: BSN, levels, controlecodes, the session state machine."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest

from zgw_identificatie.domain.assurance import AssuranceLevel
from zgw_identificatie.domain.bsn import Bsn, passes_elfproef
from zgw_identificatie.domain.codes import codes_equal, derive_code, group, hotp_truncate, random_code
from zgw_identificatie.domain.errors import InvalidBsn, InvalidLevel, SessionAlreadyUsed, SessionExpired
from zgw_identificatie.domain.sessions import Flow, IdentificationSession, SessionState, new_session_id
from zgw_identificatie.testing.clock import FixedClock

DOMAIN = Path(__file__).resolve().parents[2] / "src" / "zgw_identificatie" / "domain"


def test_the_domain_imports_only_the_standard_library_and_itself():
    """domain/ is pure: no flask, requests, sqlalchemy, onelogin or reportlab."""
    import sys

    for path in DOMAIN.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                continue
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module] if isinstance(node, ast.ImportFrom) else [])
            )
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top == "__future__", f"{path.name} imports {name}"


@pytest.mark.parametrize("value", ["111222333", "999993653", "999990019", "123456782"])
def test_valid_bsns_pass_the_elfproef(value):
    """Known valid test numbers parse."""
    assert Bsn.parse(value).value == value


@pytest.mark.parametrize(
    "value", ["000000000", "123456789", "12345678", "1234567890", "12345678a", "", "１２３４５６７８２"]
)
def test_invalid_bsns_are_refused(value):
    """Wrong checksum, length, non-ASCII digits and all zeros are refused."""
    with pytest.raises(InvalidBsn):
        Bsn.parse(value)


def test_surrounding_whitespace_is_ignored_but_nothing_else():
    """A pasted BSN with spaces around it is fine; spaces inside are not."""
    assert Bsn.parse(" 111222333\n").value == "111222333"
    with pytest.raises(InvalidBsn):
        Bsn.parse("111 222 333")


def test_a_bsn_never_shows_itself_in_repr_or_str():
    """Logging or formatting a Bsn masks it."""
    bsn = Bsn("111222333")
    assert "111222333" not in repr(bsn) and "111222333" not in str(bsn) and f"{bsn}".endswith("33")


def test_elfproef_weights_match_the_definition():
    """9..2 and -1: 111222333 → 9+8+7+12+10+8+9+6-3 = 66."""
    assert passes_elfproef("111222333") and not passes_elfproef("111222334")


def test_levels_are_ordered_and_higher_satisfies_lower():
    """Basis < Midden < Substantieel < Hoog; a higher level is fine, a lower is not."""
    assert AssuranceLevel.BASIS < AssuranceLevel.MIDDEN < AssuranceLevel.SUBSTANTIEEL < AssuranceLevel.HOOG
    assert AssuranceLevel.SUBSTANTIEEL.satisfies(AssuranceLevel.MIDDEN)
    assert not AssuranceLevel.BASIS.satisfies(AssuranceLevel.MIDDEN)


def test_level_uris_round_trip_and_unknown_uris_are_refused():
    """Each legacy DigiD URI maps back to its level."""
    for level in AssuranceLevel:
        assert AssuranceLevel.from_uri(level.uri) is level
    with pytest.raises(InvalidLevel):
        AssuranceLevel.from_uri("urn:oasis:names:tc:SAML:2.0:ac:classes:Password")
    with pytest.raises(InvalidLevel):
        AssuranceLevel.from_name("middel")


def test_derived_code_depends_on_every_input_and_has_six_digits():
    """Same inputs → same code; another BSN, session or gemeente → (almost always) another code."""
    key = b"k" * 32
    a = derive_code(key, gemeentecode="0363", session_id="s1", bsn=Bsn("111222333"))
    assert a == derive_code(key, gemeentecode="0363", session_id="s1", bsn=Bsn("111222333"))
    assert len(a) == 6 and a.isdigit()
    others = {
        derive_code(key, gemeentecode="0363", session_id="s1", bsn=Bsn("999993653")),
        derive_code(key, gemeentecode="0363", session_id="s2", bsn=Bsn("111222333")),
        derive_code(key, gemeentecode="0599", session_id="s1", bsn=Bsn("111222333")),
        derive_code(b"x" * 32, gemeentecode="0363", session_id="s1", bsn=Bsn("111222333")),
    }
    assert a not in others


def test_length_prefixing_keeps_field_boundaries_apart():
    """('03631', 's') and ('0363', '1s') are different messages."""
    key = b"k" * 32
    bsn = Bsn("111222333")
    assert derive_code(key, gemeentecode="03631", session_id="s", bsn=bsn) != derive_code(
        key, gemeentecode="0363", session_id="1s", bsn=bsn
    )


def test_hotp_truncation_matches_rfc4226_appendix_d():
    """RFC 4226 test vector: HMAC-SHA1 of counter 0 with the ASCII key → 755224."""
    import hashlib
    import hmac

    digest = hmac.new(b"12345678901234567890", (0).to_bytes(8, "big"), hashlib.sha1).digest()
    assert hotp_truncate(digest) == "755224"


def test_random_codes_are_six_digits_and_vary():
    """secrets-based six-digit codes, zero-padded."""
    codes = {random_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes) and len(codes) > 150


def test_codes_compare_in_constant_time_helpers_and_group_for_display():
    """Equal and unequal codes; display grouping."""
    assert codes_equal("123456", "123456") and not codes_equal("123456", "123457")
    assert group("358974") == "358 974"


def _session(clock: FixedClock, **kw) -> IdentificationSession:
    now = clock.now()
    return IdentificationSession(
        id=new_session_id(),
        flow=Flow.KNOWN_CITIZEN,
        state=SessionState.CREATED,
        created_at=now,
        expires_at=now + timedelta(minutes=15),
        owner_id="o",
        owner_name="O",
        gemeente="G",
        min_level=AssuranceLevel.MIDDEN,
        **kw,
    )


def test_a_link_works_until_it_expires_or_is_used():
    """Created/opened and unexpired → usable; expired → SessionExpired; authenticated → SessionAlreadyUsed."""
    clock = FixedClock()
    s = _session(clock)
    opened = s.opened(clock.now())
    assert opened.state is SessionState.OPENED
    done = opened.authenticated(clock.now(), level=AssuranceLevel.MIDDEN)
    with pytest.raises(SessionAlreadyUsed):
        done.ensure_usable_link(clock.now())
    clock.advance(minutes=15)
    with pytest.raises(SessionExpired):
        s.ensure_usable_link(clock.now())


def test_session_ids_are_unguessable_and_url_safe():
    """192 bits, URL-safe alphabet."""
    ids = {new_session_id() for _ in range(100)}
    assert len(ids) == 100 and all(len(i) == 32 and i.replace("-", "").replace("_", "").isalnum() for i in ids)
