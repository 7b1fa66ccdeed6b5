from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tandem_ingest.domain.errors import MalformedBodyError
from tandem_ingest.domain.parsing import clean_text, load_json, parse_instant, require_aware


def test_load_json_parses_bytes_and_passes_parsed_values_through() -> None:
    assert load_json(b'{"a": [1]}') == {"a": [1]}
    parsed = [{"already": "parsed"}]
    assert load_json(parsed) is parsed


@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe"])
def test_load_json_refuses_malformed_bytes(raw: bytes) -> None:
    with pytest.raises(MalformedBodyError, match="not valid JSON"):
        load_json(raw)


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (1612912679000, "ms", datetime(2021, 2, 9, 23, 17, 59, tzinfo=UTC)),
        ("1612912679000", "ms", datetime(2021, 2, 9, 23, 17, 59, tzinfo=UTC)),
        (1612912679, "s", datetime(2021, 2, 9, 23, 17, 59, tzinfo=UTC)),
        ("2021-02-09T23:17:59Z", "ms", datetime(2021, 2, 9, 23, 17, 59, tzinfo=UTC)),
        ("2021-02-09T23:17:59", "ms", datetime(2021, 2, 9, 23, 17, 59, tzinfo=UTC)),
        (
            "2021-02-10T00:17:59+01:00",
            "ms",
            datetime(2021, 2, 10, 0, 17, 59, tzinfo=timezone(timedelta(hours=1))),
        ),
    ],
)
def test_parse_instant_reads_epochs_and_iso_strings(
    value: object, unit: str, expected: datetime
) -> None:
    parsed = parse_instant(value, numeric_unit=unit)  # type: ignore[arg-type]

    assert parsed == expected
    assert parsed.tzinfo is not None


@pytest.mark.parametrize("value", [True, None, "yesterday", [1]])
def test_parse_instant_refuses_other_values(value: object) -> None:
    with pytest.raises(ValueError):
        parse_instant(value, numeric_unit="ms")


def test_clean_text_strips_and_turns_blank_into_none() -> None:
    assert clean_text("  Acme ") == "Acme"
    assert clean_text("   ") is None
    assert clean_text(None) is None
    assert clean_text(42) == "42"


def test_require_aware_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="received_at must be timezone-aware"):
        require_aware(datetime(2025, 1, 1), "received_at")
