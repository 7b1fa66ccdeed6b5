from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime

import pytest

from tandem_ingest.domain.bombora import BomboraConfig, SurgeFileReader, normalize_bombora
from tandem_ingest.domain.errors import MalformedBodyError, SchemaError
from tandem_ingest.domain.normalized import ElementError, NormalizedEvent
from tandem_shared import topics
from tandem_shared.events import EventType, IntentObserved

SAMPLE = "intent/bombora_mastersurge_sample.csv"
HEADER = (
    "Company Name,Domain,Size,Industry,Category,Topic,Composite Score,Metro Scores,"
    "Domain Origin Country\n"
)
FILE_DATE = date(2025, 1, 6)


def _chunks(raw: bytes, size: int) -> list[bytes]:
    return [raw[start : start + size] for start in range(0, len(raw), size)]


def _intents(result_events: tuple[NormalizedEvent, ...]) -> list[IntentObserved]:
    payloads = [event.payload for event in result_events]
    assert all(isinstance(payload, IntentObserved) for payload in payloads)
    return payloads  # type: ignore[return-value]


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 1 << 16])
def test_docs_sample_reads_the_same_whatever_the_chunking(
    chunk_size: int, vendor_sample: Callable[[str], bytes], received_at: datetime
) -> None:
    raw = vendor_sample(SAMPLE)

    result = normalize_bombora(
        _chunks(raw, chunk_size), received_at=received_at, observed_on=FILE_DATE
    )

    intents = _intents(result.events)
    assert [(i.account_key, i.topic, i.score, i.surging) for i in intents] == [
        ("0-lightower.net", "workforce analytics", 83.0, True),
        ("0-lightower.net", "email management software", 75.0, True),
        ("101alma.com", "recurring journal entries", 55.0, False),
        ("101alma.com", "recruiting software / services", 75.0, True),
        ("agencypja.com", "internet search", 70.0, True),
        ("agencypja.com", "windows phone", 92.0, True),
    ]
    assert intents[2].attributes["metro_scores"].startswith("san francisco bay area[13]|")
    assert intents[2].attributes["category"] == "accounting"
    assert intents[4].company_name == "pja advertising + marketing"
    assert (result.errors, result.ignored) == ((), 1)  # 100doo.si is listed without a topic


def test_events_carry_topic_dedupe_key_and_file_date(
    vendor_sample: Callable[[str], bytes], received_at: datetime
) -> None:
    result = normalize_bombora(
        [vendor_sample(SAMPLE)], received_at=received_at, observed_on=FILE_DATE
    )

    event = result.events[0]
    assert (event.topic, event.type, event.subject) == (
        topics.INTENT,
        EventType.INTENT_OBSERVED,
        "0-lightower.net",
    )
    assert event.dedupe_key == "0-lightower.net:workforce analytics:2025-01-06"
    assert event.occurred_at == datetime(2025, 1, 6, tzinfo=UTC)


def test_observed_day_defaults_to_the_reception_day(
    vendor_sample: Callable[[str], bytes], received_at: datetime
) -> None:
    result = normalize_bombora([vendor_sample(SAMPLE)], received_at=received_at)

    assert result.events[0].dedupe_key.endswith(received_at.date().isoformat())


def test_threshold_is_configurable(
    vendor_sample: Callable[[str], bytes], received_at: datetime
) -> None:
    result = normalize_bombora(
        [vendor_sample(SAMPLE)],
        config=BomboraConfig(surge_threshold=80),
        received_at=received_at,
    )

    assert [i.score for i in _intents(result.events) if i.surging] == [83.0, 92.0]


def test_a_score_equal_to_the_threshold_is_surging(received_at: datetime) -> None:
    raw = (HEADER + ",acme.com,,,,crm,60,,\n").encode()

    result = normalize_bombora([raw], received_at=received_at)

    assert _intents(result.events)[0].surging is True


def test_feed_returns_rows_as_soon_as_they_are_complete() -> None:
    reader = SurgeFileReader(observed_on=FILE_DATE)

    assert reader.feed(HEADER.encode()) == []
    assert reader.feed(b",acme.com,,,,crm,70,") == []
    completed = reader.feed(b",US\n,initech.io,,,,erp,45,,")
    finished = reader.close()

    assert [item.subject for item in completed] == ["acme.com"]  # type: ignore[union-attr]
    assert [item.subject for item in finished] == ["initech.io"]  # type: ignore[union-attr]


def test_quoted_newlines_and_multibyte_characters_across_chunks(received_at: datetime) -> None:
    raw = (
        HEADER + '"Société\nGénérale",societegenerale.fr,,,,"a, b",71,"paris[80]|lyon[60]",FR\r\n'
    ).encode()

    result = normalize_bombora(_chunks(raw, 3), received_at=received_at)

    (intent,) = _intents(result.events)
    assert intent.company_name == "Société\nGénérale"
    assert intent.topic == "a, b"
    assert intent.attributes["country"] == "FR"


def test_header_tolerates_case_spacing_a_bom_and_column_order(received_at: datetime) -> None:
    raw = "\ufeffTOPIC , composite_score,  domain\nCRM,65,acme.com\n".encode()

    result = normalize_bombora([raw], received_at=received_at)

    (intent,) = _intents(result.events)
    assert (intent.topic, intent.score, intent.account_key) == ("CRM", 65.0, "acme.com")


def test_a_header_without_required_columns_is_a_schema_error(received_at: datetime) -> None:
    with pytest.raises(SchemaError, match="missing column"):
        normalize_bombora(
            [b"Company Name,Domain,Topic\nAcme,acme.com,crm\n"], received_at=received_at
        )


def test_an_empty_file_is_a_schema_error(received_at: datetime) -> None:
    with pytest.raises(SchemaError, match="no header row"):
        normalize_bombora([b"", b"\n"], received_at=received_at)


def test_bad_rows_are_reported_with_their_index_and_column(received_at: datetime) -> None:
    rows = [
        ",acme.com,,,,crm,70,,",
        ",acme.com,,,,crm,high,,",
        ",acme.com,,,,crm,101,,",
        ",not a domain,,,,crm,70,,",
        ",acme.com,,,,crm",
        ",initech.io,,,,erp,61,,",
    ]
    raw = (HEADER + "\n".join(rows) + "\n").encode()

    result = normalize_bombora([raw], received_at=received_at)

    assert [event.subject for event in result.events] == ["acme.com", "initech.io"]
    assert [(error.index, error.loc) for error in result.errors] == [
        (1, (1, "Composite Score")),
        (2, (2, "Composite Score")),
        (3, (3, "Domain")),
        (4, (4,)),
    ]


def test_an_unterminated_quote_at_the_end_is_a_row_error(received_at: datetime) -> None:
    raw = (HEADER + ",acme.com,,,,crm,70,,\n" + ',"initech.io,,,,erp,61,,\n').encode()

    result = normalize_bombora([raw], received_at=received_at)

    assert len(result.events) == 1
    assert result.errors == (ElementError(1, (1,), "unterminated quoted field at end of file"),)


def test_memory_stays_bounded_on_an_unterminated_quote() -> None:
    reader = SurgeFileReader(observed_on=FILE_DATE, config=BomboraConfig(max_record_chars=200))
    reader.feed(HEADER.encode())
    reader.feed(b',"acme.com\n')

    with pytest.raises(MalformedBodyError, match="exceeds 200 characters"):
        for _ in range(10):
            reader.feed(b"x" * 30 + b"\n")


def test_memory_stays_bounded_on_a_line_without_end() -> None:
    reader = SurgeFileReader(observed_on=FILE_DATE, config=BomboraConfig(max_record_chars=200))
    reader.feed(HEADER.encode())

    with pytest.raises(MalformedBodyError, match="exceeds 200 characters"):
        for _ in range(10):
            reader.feed(b"x" * 30)


def test_a_large_file_streams_without_holding_it(received_at: datetime) -> None:
    def rows() -> Iterator[bytes]:
        yield HEADER.encode()
        for number in range(20_000):
            yield f",c{number}.com,,,,topic,{number % 101},,\n".encode()

    reader = SurgeFileReader(observed_on=FILE_DATE, config=BomboraConfig(max_record_chars=200))
    surging = 0
    for chunk in rows():
        surging += sum(1 for item in reader.feed(chunk) if item.payload.surging)  # type: ignore[union-attr]
    reader.close()

    assert reader.rows == 20_000
    assert surging == sum(1 for number in range(20_000) if number % 101 >= 60)


def test_non_utf8_bytes_are_a_malformed_body(received_at: datetime) -> None:
    with pytest.raises(MalformedBodyError, match="not UTF-8"):
        normalize_bombora([HEADER.encode() + b"\xff\xfe,x\n"], received_at=received_at)


def test_feed_after_close_is_a_programming_error() -> None:
    reader = SurgeFileReader(observed_on=FILE_DATE)
    reader.feed(HEADER.encode())
    reader.close()

    with pytest.raises(RuntimeError):
        reader.feed(b"")
