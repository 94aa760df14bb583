"""Recording fakes for the DigiD side: FakeIdentityProvider (the IdentityProvider port) and MemoryOneTimeIds."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..domain.assurance import AssuranceLevel
from ..domain.bsn import Bsn
from ..domain.errors import DigidCancelled, DigidFailed
from ..domain.identity import DigidIdentity
from ..ports import LoginRequest

FAKE_SSO_URL = "https://digid.test/saml/idp/request_authentication"
FAKE_ISSUER = "https://digid.test/saml/idp/metadata"


@dataclass
class BeginCall:
    min_level: AssuranceLevel
    relay_state: str
    request_id: str


@dataclass
class CompleteCall:
    artifact: str
    expected_request_id: str
    min_level: AssuranceLevel


@dataclass
class FakeIdentityProvider:
    """Answers like DigiD would, as configured by the test; records every call.

    ``identity`` is returned by ``complete_login`` unless ``error`` is set (a DigidCancelled or
    DigidFailed instance, raised instead). ``enforce_level`` (default True) makes a configured
    identity below ``min_level`` fail as the real adapter does; ``enforce_request_id`` makes an
    ``expected_request_id`` that begin_login did not hand out fail too.
    """

    identity: DigidIdentity | None = None
    error: DigidCancelled | DigidFailed | None = None
    enforce_level: bool = True
    enforce_request_id: bool = True
    begun: list[BeginCall] = field(default_factory=list)
    completed: list[CompleteCall] = field(default_factory=list)
    _counter: int = 0

    def login_as(
        self,
        bsn: str,
        level: AssuranceLevel = AssuranceLevel.MIDDEN,
        *,
        assertion_id: str | None = None,
        authn_instant: datetime | None = None,
    ) -> DigidIdentity:
        """Configure a successful login and return the identity it will produce."""
        self.error = None
        self._counter += 1
        self.identity = DigidIdentity(
            bsn=Bsn(bsn),
            level=level,
            assertion_id=assertion_id or f"_fake-assertion-{self._counter}",
            issuer=FAKE_ISSUER,
            assertion_sha256="0" * 64,
            authn_instant=authn_instant or datetime(2026, 11, 29, 14, 0, tzinfo=UTC),
        )
        return self.identity

    def cancel(self) -> None:
        self.error = DigidCancelled()

    def fail(self, reason: str = "fake failure") -> None:
        self.error = DigidFailed(reason)

    def begin_login(self, *, min_level: AssuranceLevel, relay_state: str) -> LoginRequest:
        request_id = f"_fake-request-{len(self.begun) + 1}"
        self.begun.append(BeginCall(min_level=min_level, relay_state=relay_state, request_id=request_id))
        return LoginRequest(
            request_id=request_id, url=FAKE_SSO_URL, form_fields={"SAMLRequest": "ZmFrZQ==", "RelayState": relay_state}
        )

    def complete_login(self, *, artifact: str, expected_request_id: str, min_level: AssuranceLevel) -> DigidIdentity:
        self.completed.append(
            CompleteCall(artifact=artifact, expected_request_id=expected_request_id, min_level=min_level)
        )
        if self.error is not None:
            raise self.error
        if self.enforce_request_id and expected_request_id not in {c.request_id for c in self.begun}:
            raise DigidFailed("unknown AuthnRequest id")
        if self.identity is None:
            raise DigidFailed("no identity configured in the fake")
        if self.enforce_level and not self.identity.level.satisfies(min_level):
            raise DigidFailed("level of assurance below the required level")
        return self.identity

    def metadata_xml(self) -> str:
        return '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="fake"/>'


class MemoryOneTimeIds:
    """The OneTimeIds port in memory (thread-safe); ``seen`` records (kind, value, expires_at)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seen: dict[tuple[str, str], datetime] = {}

    def use_once(self, kind: str, value: str, expires_at: datetime) -> bool:
        with self._lock:
            if (kind, value) in self.seen:
                return False
            self.seen[(kind, value)] = expires_at
            return True

    def use_once_each(self, ids: Sequence[tuple[str, str]], expires_at: datetime) -> str | None:
        """``use_once`` of each in turn until one was seen before (the port's rule)."""
        return next((kind for kind, value in ids if not self.use_once(kind, value, expires_at)), None)
