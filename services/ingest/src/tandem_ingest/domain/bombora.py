"""Bombora Company Surge CSV files, streamed in byte chunks -> one IntentObserved per row."""

from __future__ import annotations

import codecs
import csv
import dataclasses
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time

from pydantic import BaseModel, ConfigDict, Field

from tandem_ingest.domain.errors import MalformedBodyError, SchemaError
from tandem_ingest.domain.normalized import ElementError, NormalizedEvent, NormalizeResult
from tandem_ingest.domain.parsing import clean_text, require_aware
from tandem_shared import topics
from tandem_shared.accounts import account_key
from tandem_shared.events import EventType, IntentObserved

SOURCE = "/ingest/bombora"
PROVIDER = "bombora"

# Normalized header -> the attribute it fills.
_COLUMNS = {
    "company name": "company_name",
    "domain": "domain",
    "size": "size",
    "industry": "industry",
    "category": "category",
    "topic": "topic",
    "composite score": "score",
    "metro scores": "metro_scores",
    "domain origin country": "country",
}
_REQUIRED = ("domain", "topic", "score")
_ATTRIBUTES = ("size", "industry", "category", "metro_scores", "country")

Item = NormalizedEvent | ElementError


class BomboraConfig(BaseModel):
    """The surge threshold (Bombora: 50 is average, 60+ is surging) and a guard on record size."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    surge_threshold: float = Field(60, ge=0, le=100)
    max_record_chars: int = Field(1 << 20, gt=0)  # a longer record means an unterminated quote


def _normalize_header(cell: str) -> str:
    return " ".join(cell.replace("_", " ").split()).lower()


class SurgeFileReader:
    """Read a Company Surge CSV incrementally: feed byte chunks, get the rows completed so far."""

    def __init__(self, *, observed_on: date, config: BomboraConfig | None = None) -> None:
        self._config = config or BomboraConfig()
        self._observed_on = observed_on
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._partial_line = ""
        self._record: list[str] = []  # the lines of a record whose quoted field spans lines
        self._record_chars = 0
        self._quotes = 0
        self._header: list[str] | None = None  # the file's own column names
        self._columns: list[str | None] = []  # attribute of each column, None when unknown
        self._closed = False
        self.rows = 0
        self.ignored = 0

    def feed(self, chunk: bytes) -> list[Item]:
        """Consume a chunk; return the events and row errors of the records it completed."""
        if self._closed:
            raise RuntimeError("feed() after close()")
        lines = (self._partial_line + self._decode(chunk, final=False)).split("\n")
        self._partial_line = lines.pop()
        self._guard(len(self._partial_line))
        return [item for line in lines for item in self._line(line + "\n")]

    def close(self) -> list[Item]:
        """Finish the file: flush the last line; refuse a file without a header row."""
        if self._closed:
            return []
        self._closed = True
        rest = self._partial_line + self._decode(b"", final=True)
        self._partial_line = ""
        items = self._line(rest) if rest else []
        if self._record:
            self.rows += 1
            items.append(self._error(self.rows - 1, "unterminated quoted field at end of file"))
            self._record = []
        if self._header is None:
            raise SchemaError([ElementError(None, ("header",), "the file has no header row")])
        return items

    def _decode(self, chunk: bytes, *, final: bool) -> str:
        try:
            return self._decoder.decode(chunk, final=final)
        except UnicodeDecodeError as exc:
            raise MalformedBodyError(f"the file is not UTF-8: {exc}") from exc

    def _guard(self, pending_chars: int) -> None:
        if self._record_chars + pending_chars > self._config.max_record_chars:
            limit = self._config.max_record_chars
            raise MalformedBodyError(f"a record exceeds {limit} characters (unterminated quote?)")

    def _line(self, line: str) -> list[Item]:
        # A record ends at a newline outside quotes: with "" escapes, where the quote count is even.
        self._record.append(line)
        self._record_chars += len(line)
        self._quotes += line.count('"')
        self._guard(0)
        if self._quotes % 2:
            return []
        record, self._record, self._record_chars, self._quotes = self._record, [], 0, 0
        try:
            cells = next(csv.reader(record), [])
        except csv.Error as exc:
            self.rows += 1
            return [self._error(self.rows - 1, f"unreadable CSV record: {exc}")]
        if not any(cell.strip() for cell in cells):
            return []
        if self._header is None:
            self._read_header(cells)
            return []
        self.rows += 1
        return self._row(self.rows - 1, cells)

    def _read_header(self, cells: list[str]) -> None:
        self._header = cells
        self._columns = [_COLUMNS.get(_normalize_header(cell)) for cell in cells]
        missing = [name for name in _REQUIRED if name not in self._columns]
        if missing:
            labels = [label for label, attr in _COLUMNS.items() if attr in missing]
            message = f"missing column(s): {', '.join(labels)}"
            raise SchemaError([ElementError(None, ("header",), message)])

    def _row(self, index: int, cells: list[str]) -> list[Item]:
        if len(cells) != len(self._columns):
            message = f"expected {len(self._columns)} columns, got {len(cells)}"
            return [self._error(index, message)]
        values = {
            attr: clean_text(cell) for attr, cell in zip(self._columns, cells, strict=True) if attr
        }
        if values.get("topic") is None:
            self.ignored += 1  # a company listed without any topic: nothing to observe
            return []
        domain = values.get("domain") or ""
        key = account_key(domain)
        if key is None:
            return [self._error(index, f"not a company domain: {domain!r}", "domain")]
        try:
            score = float(values.get("score") or "")
        except ValueError:
            return [self._error(index, f"not a number: {values.get('score')!r}", "score")]
        if not 0 <= score <= 100:
            return [self._error(index, f"out of 0-100: {score}", "score")]
        return [self._event(key, domain, score, values)]

    def _event(self, key: str, domain: str, score: float, values: dict[str, str | None]) -> Item:
        topic = values["topic"] or ""
        observed_at = datetime.combine(self._observed_on, time.min, UTC)
        payload = IntentObserved(
            provider=PROVIDER,
            account_key=key,
            company_name=values.get("company_name"),
            topic=topic,
            score=score,
            surging=score >= self._config.surge_threshold,
            attributes={name: values[name] for name in _ATTRIBUTES if values.get(name)},
            observed_at=observed_at,
        )
        return NormalizedEvent(
            source=SOURCE,
            topic=topics.INTENT,
            type=EventType.INTENT_OBSERVED,
            subject=key,
            dedupe_key=f"{domain.lower()}:{topic.lower()}:{self._observed_on.isoformat()}",
            occurred_at=observed_at,
            payload=payload,
        )

    def _error(self, index: int | None, message: str, attribute: str | None = None) -> ElementError:
        column = self._column_label(attribute)
        loc = (index,) if index is not None else ()
        return ElementError(index, (*loc, column) if column else loc, message)

    def _column_label(self, attribute: str | None) -> str | None:
        if attribute is None or self._header is None:
            return None
        return self._header[self._columns.index(attribute)].strip()


def normalize_bombora(
    chunks: Iterable[bytes],
    *,
    config: BomboraConfig | None = None,
    received_at: datetime,
    observed_on: date | None = None,
) -> NormalizeResult:
    """Read a whole Company Surge file (all its events in memory: prefer SurgeFileReader)."""
    require_aware(received_at, "received_at")
    reader = SurgeFileReader(
        observed_on=observed_on or received_at.astimezone(UTC).date(), config=config
    )
    result = NormalizeResult.collect([item] for item in _read_all(reader, chunks))
    return dataclasses.replace(result, ignored=reader.ignored)


def _read_all(reader: SurgeFileReader, chunks: Iterable[bytes]) -> Iterator[Item]:
    for chunk in chunks:
        yield from reader.feed(chunk)
    yield from reader.close()
