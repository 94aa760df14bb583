"""Burgerservicenummer value object with the 11-proef.

Source: Logius/RvIG "11-proef" for BSN (weights 9..2 and -1); nine zeros pass the
arithmetic but is not a BSN and is refused (ZGW cheat sheet §1).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidBsn

_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)


def passes_elfproef(digits: str) -> bool:
    """True when ``digits`` is nine ASCII digits whose weighted sum is divisible by 11."""
    if len(digits) != 9 or not digits.isascii() or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits, _WEIGHTS, strict=True))
    return total % 11 == 0 and digits != "0" * 9


@dataclass(frozen=True, slots=True)
class Bsn:
    """A valid BSN. ``repr`` and ``str`` are masked so a BSN cannot leak through logging."""

    value: str

    def __post_init__(self) -> None:
        if not passes_elfproef(self.value):
            raise InvalidBsn()

    @classmethod
    def parse(cls, raw: object) -> Bsn:
        """Parse user input: surrounding whitespace is ignored, nothing else is forgiven."""
        if not isinstance(raw, str):
            raise InvalidBsn("a BSN is a string of nine digits")
        text = raw.strip()
        if len(text) != 9 or not text.isascii() or not text.isdigit():
            raise InvalidBsn("a BSN has exactly nine digits")
        return cls(text)

    @property
    def masked(self) -> str:
        return "*******" + self.value[-2:]

    def __repr__(self) -> str:
        return f"Bsn({self.masked})"

    def __str__(self) -> str:
        return self.masked
