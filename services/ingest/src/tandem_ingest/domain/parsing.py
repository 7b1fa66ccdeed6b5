"""Small parsing helpers shared by the normalizers: JSON bodies, instants, validation errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import orjson
from pydantic import ValidationError

from tandem_ingest.domain.errors import MalformedBodyError
from tandem_ingest.domain.normalized import ElementError, Loc


def load_json(body: bytes | object) -> object:
    """Return the parsed body: raw bytes are decoded as JSON, anything else is taken as parsed."""
    if not isinstance(body, bytes | bytearray | memoryview | str):
        return body
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedBodyError(f"body is not valid JSON: {exc}") from exc


def require_aware(value: datetime, name: str) -> datetime:
    """Return `value`, refusing a naive datetime (every instant in Tandem carries its offset)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value


def from_epoch(value: float, unit: Literal["s", "ms"]) -> datetime:
    """Return the aware UTC instant of an epoch number in seconds or milliseconds."""
    seconds = value / 1000 if unit == "ms" else value
    return datetime.fromtimestamp(seconds, UTC)


def parse_instant(value: object, *, numeric_unit: Literal["s", "ms"]) -> datetime:
    """Parse an ISO 8601 string or an epoch number; naive ISO values are taken as UTC."""
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float):
        return from_epoch(value, numeric_unit)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return from_epoch(int(text), numeric_unit)
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError(f"not a timestamp: {value!r}")


def clean_text(value: object) -> str | None:
    """Return a stripped string, or None for a missing or blank value."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def validation_errors(
    exc: ValidationError, *, index: int | None, prefix: Loc
) -> list[ElementError]:
    """Turn a pydantic ValidationError into element errors whose paths start at `prefix`."""
    return [
        ElementError(index=index, loc=(*prefix, *error["loc"]), message=error["msg"])
        for error in exc.errors(include_url=False)
    ]


def element_error(index: int | None, prefix: Loc, message: str) -> ElementError:
    """Build one element error (a shorthand for normalizers)."""
    return ElementError(index=index, loc=prefix, message=message)
