"""§2.1 step 9: the behandelaar's confirmation that the code the citizen read aloud is the code in the zaak.

One per session, final: the first answer ("Code klopt" / "Code klopt niet") is recorded; the same
answer again is the same confirmation (a retried request), another answer is refused. It is written to
the zaak as a status (``zgw.statustype_code_klopt`` / ``zgw.statustype_code_klopt_niet``) by the
background worker, exactly once: ``uncertain`` is stored before the create call (write-ahead) and the
worker always looks for the status before creating it. It holds no BSN.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

MAX_BACKOFF = timedelta(minutes=10)


class ConfirmationState(StrEnum):
    PENDING = "pending"  # recorded here; the status is not (yet) on the zaak
    DONE = "done"  # the status is on the zaak
    FAILED = "failed"  # the zaaksysteem refused it (4xx) or the attempts ran out


@dataclass(frozen=True)
class CodeConfirmation:
    id: str
    session_id: str
    matches: bool
    behandelaar_id: str
    behandelaar_name: str
    confirmed_at: datetime
    state: ConfirmationState
    next_attempt_at: datetime
    attempts: int = 0
    zaak_url: str | None = None
    zaak_identificatie: str | None = None
    status_url: str | None = None
    uncertain: bool = False  # a create call may have reached the zaaksysteem: look before creating again
    error: str | None = None

    @property
    def outcome(self) -> str:
        return "code-klopt" if self.matches else "code-klopt-niet"

    def retry_later(self, now: datetime, error: str, *, count: bool = True) -> CodeConfirmation:
        """Exponential backoff (2, 4, 8 … s, at most ten minutes); ``count=False`` for waiting on the zaak."""
        attempts = self.attempts + 1 if count else self.attempts
        delay = min(timedelta(seconds=2 ** max(attempts, 1)), MAX_BACKOFF)
        return replace(self, attempts=attempts, next_attempt_at=now + delay, error=error)
