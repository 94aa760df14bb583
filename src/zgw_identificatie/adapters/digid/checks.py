"""Our own checks on DigiD's messages, on top of python3-saml's (DIGID-SAML-NOTES R7–R9, §4 gaps).

Every function raises DigidFailed (or DigidCancelled for the citizen's cancel) with a reason that
names the rule and never carries a value from the message (no BSN, no XML).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from lxml import etree

from ...domain.assurance import AssuranceLevel
from ...domain.bsn import Bsn, passes_elfproef
from ...domain.errors import DigidCancelled, DigidFailed, InvalidLevel
from .xmldsig import NS_DS, NS_SAML, NS_SAMLP, XmlRejected, q, text_of, verify_enveloped, xpath

STATUS_PREFIX = "urn:oasis:names:tc:SAML:2.0:status:"
SUCCESS = STATUS_PREFIX + "Success"
RESPONDER = STATUS_PREFIX + "Responder"
AUTHN_FAILED = STATUS_PREFIX + "AuthnFailed"
NO_AUTHN_CONTEXT = STATUS_PREFIX + "NoAuthnContext"  # DigiD: the level reached is below the one asked for
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
BSN_SECTOR = "s00000000:"


def status_codes(message: etree._Element) -> tuple[str | None, str | None]:
    """(top-level, second-level) StatusCode values, read ourselves (notes §2.8: p3s hides the sub-status)."""
    status = message.findall(q(NS_SAMLP, "Status"))
    if len(status) != 1:
        return None, None
    top = status[0].findall(q(NS_SAMLP, "StatusCode"))
    if len(top) != 1:
        return None, None
    subs = top[0].findall(q(NS_SAMLP, "StatusCode"))
    return top[0].get("Value"), (subs[0].get("Value") if len(subs) == 1 else None)


def check_response_status(response: etree._Element) -> None:
    """SAML core §3.2.2.2; Logius T6/T7 (notes §2.8, R17/R18): Responder/AuthnFailed is a cancel, all else fails."""
    top, sub = status_codes(response)
    if top == SUCCESS:
        return
    if top == RESPONDER and sub == AUTHN_FAILED:
        raise DigidCancelled()
    raise DigidFailed(f"response status {_short(top)}/{_short(sub)}", level_too_low=sub == NO_AUTHN_CONTEXT)


def _short(value: str | None) -> str:
    if value is None:
        return "none"
    name = value.removeprefix(STATUS_PREFIX)
    return name if name.isalnum() and len(name) <= 40 else "unknown"


def check_equal(actual: str | None, expected: str, what: str) -> None:
    """Exact string comparison (notes §4: p3s's Destination prefix and Recipient substring checks are too weak)."""
    if actual is None or actual != expected:
        raise DigidFailed(f"{what} missing or wrong")


def check_issuer(message: etree._Element, idp_entity_id: str, what: str) -> None:
    """SAML core §2.2.5 / §3.2.2; R8: the Issuer must be present and be DigiD's entityID."""
    issuers = message.findall(q(NS_SAML, "Issuer"))
    if len(issuers) != 1:
        raise DigidFailed(f"{what} Issuer missing or repeated")
    check_equal(text_of(issuers[0]), idp_entity_id, f"{what} Issuer")


def single_assertion(document_root: etree._Element, response: etree._Element) -> etree._Element:
    """XSW defence (notes §8.10; SAML profiles §4.1.4.2): exactly one Assertion in the whole document,
    a direct child of the one Response, no encrypted assertions, no duplicate IDs."""
    if xpath(document_root, "//saml:EncryptedAssertion | //saml:EncryptedID"):
        raise DigidFailed("encrypted assertion or NameID")
    assertions = xpath(document_root, "//saml:Assertion")
    if len(assertions) != 1 or assertions[0].getparent() is not response:
        raise DigidFailed("expected exactly one assertion in the response")
    ids = [str(v) for v in xpath(document_root, "//@ID")]
    if len(ids) != len(set(ids)):
        raise DigidFailed("duplicate ID attributes")
    for signature in xpath(document_root, "//ds:Signature"):
        parent = signature.getparent()
        if parent is None or parent.tag not in (
            q(NS_SAMLP, "ArtifactResponse"),
            q(NS_SAMLP, "Response"),
            q(NS_SAML, "Assertion"),
        ):
            raise DigidFailed("signature in an unexpected place")
    return assertions[0]


def parse_saml_time(value: str | None, what: str) -> datetime:
    """xs:dateTime in UTC (SAML core §1.3.3)."""
    if not value or not value.endswith("Z"):
        raise DigidFailed(f"{what} missing or not UTC")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise DigidFailed(f"{what} is not a time") from None
    if moment.tzinfo is None or moment.utcoffset() != timedelta(0):
        raise DigidFailed(f"{what} not UTC")
    return moment


def check_issue_instant(assertion: etree._Element, now: datetime, drift: timedelta, max_age: timedelta) -> datetime:
    """Notes §8.12 (maximum assertion age, SHOULD) and R23: not older than max_age, not from the future."""
    issued = parse_saml_time(assertion.get("IssueInstant"), "Assertion IssueInstant")
    if issued > now + drift:
        raise DigidFailed("assertion issued in the future")
    if now - issued > max_age + drift:
        raise DigidFailed("assertion too old")
    return issued


def check_conditions(assertion: etree._Element, *, sp_entity_id: str, now: datetime, drift: timedelta) -> datetime:
    """SAML core §2.5.1 (NotBefore/NotOnOrAfter with our drift, R23) and §2.5.1.4 (every AudienceRestriction
    must name us); returns NotOnOrAfter."""
    conditions = assertion.findall(q(NS_SAML, "Conditions"))
    if len(conditions) != 1:
        raise DigidFailed("expected exactly one Conditions")
    not_before = parse_saml_time(conditions[0].get("NotBefore"), "Conditions NotBefore")
    not_on_or_after = parse_saml_time(conditions[0].get("NotOnOrAfter"), "Conditions NotOnOrAfter")
    if now < not_before - drift:
        raise DigidFailed("assertion not yet valid")
    if now > not_on_or_after + drift:
        raise DigidFailed("assertion expired")
    restrictions = conditions[0].findall(q(NS_SAML, "AudienceRestriction"))
    if not restrictions:
        raise DigidFailed("no AudienceRestriction")
    for restriction in restrictions:
        audiences = [text_of(a) for a in restriction.findall(q(NS_SAML, "Audience"))]
        if sp_entity_id not in audiences:
            raise DigidFailed("Audience missing or wrong")
    return not_on_or_after


def check_subject_confirmation(
    assertion: etree._Element, *, expected_request_id: str, acs_url: str, now: datetime, drift: timedelta
) -> datetime:
    """SAML profiles §4.1.4.2 / R8: one bearer SubjectConfirmationData with InResponseTo == our AuthnRequest,
    Recipient exactly our ACS URL, NotOnOrAfter not passed (with drift: the 1.16.0 gap of notes §4)."""
    subject = _one(assertion, q(NS_SAML, "Subject"), "Subject")
    confirmations = subject.findall(q(NS_SAML, "SubjectConfirmation"))
    if len(confirmations) != 1 or confirmations[0].get("Method") != BEARER:
        raise DigidFailed("expected exactly one bearer SubjectConfirmation")
    data = _one(confirmations[0], q(NS_SAML, "SubjectConfirmationData"), "SubjectConfirmationData")
    check_equal(data.get("InResponseTo"), expected_request_id, "SubjectConfirmationData InResponseTo")
    check_equal(data.get("Recipient"), acs_url, "SubjectConfirmationData Recipient")
    not_on_or_after = parse_saml_time(data.get("NotOnOrAfter"), "SubjectConfirmationData NotOnOrAfter")
    if now > not_on_or_after + drift:
        raise DigidFailed("subject confirmation expired")
    if data.get("NotBefore") is not None:
        raise DigidFailed("bearer SubjectConfirmationData must not have NotBefore")
    return not_on_or_after


def read_bsn(assertion: etree._Element) -> Bsn:
    """R9 / notes §2.4: NameID exactly ``s00000000:`` + nine digits passing the 11-proef (surrounding
    whitespace stripped); comments are dropped by the parser, so the full value is read (CVE-2017-11427)."""
    subject = _one(assertion, q(NS_SAML, "Subject"), "Subject")
    name_id = text_of(_one(subject, q(NS_SAML, "NameID"), "NameID"))
    if name_id is None:
        raise DigidFailed("NameID has child elements")
    value = name_id.strip()
    if not value.startswith(BSN_SECTOR):
        raise DigidFailed("NameID is not a BSN (sector s00000000)")
    digits = value.removeprefix(BSN_SECTOR)
    if not passes_elfproef(digits):
        raise DigidFailed("NameID does not hold a valid BSN")
    return Bsn(digits)


def read_authn(assertion: etree._Element, min_level: AssuranceLevel) -> tuple[AssuranceLevel, datetime]:
    """R4: exactly one AuthnStatement with a known AuthnContextClassRef at least ``min_level`` (ordered,
    not python3-saml's set semantics); returns the level and AuthnInstant."""
    statement = _one(assertion, q(NS_SAML, "AuthnStatement"), "AuthnStatement")
    context = _one(statement, q(NS_SAML, "AuthnContext"), "AuthnContext")
    ref = text_of(_one(context, q(NS_SAML, "AuthnContextClassRef"), "AuthnContextClassRef"))
    try:
        level = AssuranceLevel.from_uri((ref or "").strip())
    except InvalidLevel:
        raise DigidFailed("unknown level of assurance") from None
    if not level.satisfies(min_level):
        raise DigidFailed("level of assurance below the required level", level_too_low=True)
    instant = parse_saml_time(statement.get("AuthnInstant"), "AuthnInstant")
    return level, instant


def check_inner_response_signature(response: etree._Element, certs: Sequence[str]) -> bool:
    """DigiD signs the Assertion and the ArtifactResponse, not the inner Response (notes §2.3). Should it ever
    sign the Response too, that signature must verify like every other one: our ``verify_enveloped`` (one
    enveloped signature referencing the Response, exclusive C14N, RSA/ECDSA-SHA256, key from a pinned
    certificate, never from KeyInfo) BEFORE python3-saml sees it, since python3-saml verifies a Response
    signature without transform restrictions (p3s #447). A valid one is accepted (True); an invalid, foreign
    or oddly built one is refused. It never replaces the assertion's own signature (§8.7)."""
    if not response.findall(q(NS_DS, "Signature")):
        return False
    try:
        verify_enveloped(response, certs)
    except XmlRejected as exc:
        raise DigidFailed(f"inner Response signature: {exc}") from None
    return True


def _one(parent: etree._Element, tag: str, what: str) -> etree._Element:
    found = parent.findall(tag)
    if len(found) != 1:
        raise DigidFailed(f"expected exactly one {what}")
    return found[0]
