"""What a successful DigiD login tells us, after every check has passed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .assurance import AssuranceLevel
from .bsn import Bsn


@dataclass(frozen=True)
class DigidIdentity:
    bsn: Bsn
    level: AssuranceLevel
    assertion_id: str
    issuer: str
    assertion_sha256: str
    authn_instant: datetime
    # The signed saml:Assertion element as received (serialised by lxml; its exclusive canonical form,
    # which DigiD signed and assertion_sha256 covers, is unchanged). Holds the BSN: never logged.
    assertion_xml: str | None = field(default=None, repr=False)
