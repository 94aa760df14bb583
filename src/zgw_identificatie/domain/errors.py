"""Domain errors. The web layer maps each to a page (citizen, staff) or a precise 4xx (API).

No message here ever contains a BSN: texts are fixed and values are referred to by role.
"""


class DomainError(Exception):
    """Base class; ``code`` is a stable machine-readable identifier."""

    code = "error"


class InvalidBsn(DomainError, ValueError):
    code = "invalid-bsn"

    def __init__(self, reason: str = "not a valid BSN") -> None:
        super().__init__(reason)


class InvalidLevel(DomainError, ValueError):
    code = "invalid-level"


class SessionNotFound(DomainError):
    code = "session-not-found"


class SessionExpired(DomainError):
    code = "session-expired"


class SessionAlreadyUsed(DomainError):
    code = "session-used"

    def __init__(self, state: str = "authenticated", reason: str | None = None) -> None:
        super().__init__(state)
        self.state = state  # what makes the link unusable: authenticated, completed, failed, withdrawn
        self.reason = reason  # SessionReason value for a failed session


class InvalidTransition(DomainError):
    code = "invalid-transition"


class NotOwner(DomainError):
    """A behandelaar or API client asked for a session it did not create."""

    code = "not-owner"


class LevelTooLow(DomainError):
    code = "level-too-low"


class DigidCancelled(DomainError):
    """The citizen cancelled at DigiD (Responder/AuthnFailed)."""

    code = "digid-cancelled"


class DigidFailed(DomainError):
    """Any other failure of the DigiD login: bad message, status, signature, replay, time-out.

    ``reason`` is for the security log only (never shown to the citizen, never holds a BSN).
    """

    code = "digid-failed"

    def __init__(self, reason: str, *, level_too_low: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.level_too_low = level_too_low  # DigiD's NoAuthnContext, or an assertion below the asked level


class RegistrationFailed(DomainError):
    """The zaaksysteem refused a request (4xx): not retried; ``invalid_params`` says why."""

    code = "registration-failed"

    def __init__(self, message: str, invalid_params: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.invalid_params = invalid_params or []


class RegistryUnavailable(DomainError):
    """The zaaksysteem could not be reached or answered 5xx: retried later."""

    code = "registry-unavailable"


class ZaakNotFound(DomainError):
    code = "zaak-not-found"
