"""DigiD levels of assurance and their order.

Source: DIGID-SAML-NOTES §2.2 (legacy SAML interface URIs; DigiD's numeric levels 10/20/25/30).
"""

from __future__ import annotations

from enum import IntEnum

from .errors import InvalidLevel

_URI_PREFIX = "urn:oasis:names:tc:SAML:2.0:ac:classes:"


class AssuranceLevel(IntEnum):
    BASIS = 10
    MIDDEN = 20
    SUBSTANTIEEL = 25
    HOOG = 30

    @property
    def uri(self) -> str:
        return _URI_PREFIX + _URIS[self]

    @property
    def label(self) -> str:
        return self.name.capitalize()

    @classmethod
    def from_uri(cls, uri: str) -> AssuranceLevel:
        for level, suffix in _URIS.items():
            if uri == _URI_PREFIX + suffix:
                return level
        raise InvalidLevel("unknown AuthnContextClassRef")

    @classmethod
    def from_name(cls, name: str) -> AssuranceLevel:
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise InvalidLevel(f"unknown level {name!r}; use basis, midden, substantieel or hoog") from None

    def satisfies(self, required: AssuranceLevel) -> bool:
        """Ordered check: a higher level than required is fine, a lower one is not (R4)."""
        return self >= required


_URIS = {
    AssuranceLevel.BASIS: "PasswordProtectedTransport",
    AssuranceLevel.MIDDEN: "MobileTwoFactorContract",
    AssuranceLevel.SUBSTANTIEEL: "Smartcard",
    AssuranceLevel.HOOG: "SmartcardPKI",
}
