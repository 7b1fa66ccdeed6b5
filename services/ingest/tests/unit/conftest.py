"""Shared fixtures of the ingest unit tests: vendor samples and a fixed reception instant."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

VENDOR_SAMPLES = Path(__file__).resolve().parents[4] / "tests" / "fixtures" / "vendor"


@pytest.fixture
def vendor_sample() -> Callable[[str], bytes]:
    """Return a reader of the vendors' documented sample payloads."""

    def read(relative_path: str) -> bytes:
        return (VENDOR_SAMPLES / relative_path).read_bytes()

    return read


@pytest.fixture
def received_at() -> datetime:
    """Return the instant the delivery under test was received."""
    return datetime(2025, 1, 6, 16, 0, tzinfo=UTC)
