"""Consumer group generations of a rebuild."""

from __future__ import annotations

from tandem_api_gateway.rebuild import next_group


def test_the_first_rebuild_starts_generation_one() -> None:
    assert next_group("api-gateway") == "api-gateway.rebuild-1"


def test_later_rebuilds_count_up() -> None:
    assert next_group("api-gateway.rebuild-9") == "api-gateway.rebuild-10"
