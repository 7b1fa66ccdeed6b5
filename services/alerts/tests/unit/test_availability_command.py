"""`/tandem` texts read into availability changes, in the person's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path

import pytest

from tandem_alerts.domain.availability_command import CommandError, parse_command
from tandem_shared.directory import load_directory

ROOT = Path(__file__).resolve().parents[4]
DIRECTORY = load_directory(ROOT / "config/example/people.yaml")
AVA = DIRECTORY.get("ava.ae")  # New York, covered by Ben
NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # a Wednesday, 10:00 in New York


def parse(text: str):
    assert AVA is not None
    return parse_command(text, person=AVA, directory=DIRECTORY, now=NOW)


def test_ooo_until_a_weekday_covers_that_whole_day_in_her_zone():
    change = parse("ooo until friday")
    [period] = change.out_of_office
    assert period.start == NOW
    assert period.end == datetime(2026, 12, 5, 5, 0, tzinfo=UTC)  # Sat 00:00 in New York
    assert change.cover_id is None and "ben.ae covers" in change.summary


def test_ooo_with_a_start_and_a_named_cover():
    change = parse("OOO from monday until 11 dec cover @chloe.ae")
    [period] = change.out_of_office
    assert period.start == datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
    assert period.end == datetime(2026, 12, 12, 5, 0, tzinfo=UTC)
    assert change.cover_id == "chloe.ae"


def test_back_capacity_and_hours():
    assert parse("back").out_of_office == []
    assert parse("capacity 7").capacity == 7
    hours = parse("hours 8-16:30").working_hours
    assert (hours.start, hours.end, hours.days) == (time(8), time(16, 30), (1, 2, 3, 4, 5))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("ooo until yesterday", "after its start"),
        ("ooo until someday maybe", "could not read the date"),
        ("ooo until friday cover nobody.ae", "cannot cover for you"),
        ("hours 17-9", "must end after they start"),
        ("make me a sandwich", "did not understand"),
    ],
)
def test_what_is_not_understood_says_so(text: str, says: str):
    with pytest.raises(CommandError, match=says):
        parse(text)
