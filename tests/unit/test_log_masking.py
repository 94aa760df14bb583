"""The log filter masks a BSN (a standalone nine-digit number) and leaves longer identifiers intact (issue 9)."""

from __future__ import annotations

import logging

import pytest

from zgw_identificatie.logging_setup import BsnScrubFilter, scrub
from zgw_identificatie.testing.builders import TEST_BSN

HEX_ID = "adb27c1f6e304ce" + "123456789" + "ec0f0000"
UUID = "5b2e7a10-8c4d-4e21-9f3a-" + "123456789012"
DIGITS_IN_UUID = "12345678-1234-1234-1234-" + "000" + "123456789"


@pytest.mark.parametrize(
    ("text", "kept", "masked"),
    [
        (f"registration {HEX_ID} for bsn {TEST_BSN}", [HEX_ID], [TEST_BSN]),
        (f"zaak {UUID} rol inpBsn={TEST_BSN}", [UUID], [TEST_BSN]),
        (f"{DIGITS_IN_UUID} {TEST_BSN}.", [DIGITS_IN_UUID], [TEST_BSN]),
        (f'{{"inpBsn": "{TEST_BSN}", "id": "{HEX_ID}"}}', [HEX_ID], [TEST_BSN]),
        (f"request {HEX_ID.upper()} number 1{TEST_BSN}", [HEX_ID.upper(), "1" + TEST_BSN], []),
        (f"/rollen?x={TEST_BSN}&zaak={UUID}", [UUID], [TEST_BSN]),
    ],
)
def test_only_standalone_nine_digit_numbers_are_masked(text: str, kept: list[str], masked: list[str]) -> None:
    out = scrub(text)
    for value in kept:
        assert value in out
    for value in masked:
        assert value not in out
    assert out.count("*********") == len(masked)


def test_the_filter_masks_a_record_next_to_ids() -> None:
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "registration %s session %s bsn %s", (HEX_ID, UUID, TEST_BSN), None
    )
    BsnScrubFilter().filter(record)
    assert record.getMessage() == f"registration {HEX_ID} session {UUID} bsn *********"
