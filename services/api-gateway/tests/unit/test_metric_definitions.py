"""Metric definitions as data, and docs/metrics.md kept in sync with them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tandem_api_gateway.domain.metric_definitions import (
    DEFINITIONS,
    Direction,
    Health,
    MetricDefinition,
    Unit,
    definition,
    render_markdown,
)

DOC = Path(__file__).resolve().parents[4] / "docs" / "metrics.md"


def test_the_doc_mentions_every_metric_defined_in_code() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [d.name for d in DEFINITIONS if f"`{d.name}`" not in text]
    assert missing == []


def test_the_doc_is_the_generated_text() -> None:
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        "docs/metrics.md is stale: run "
        "`python -m tandem_api_gateway.domain.metric_definitions > docs/metrics.md`"
    )


def test_rendered_doc_shows_targets_and_red_thresholds() -> None:
    text = render_markdown()
    assert "green >= 80%; red < 60%" in text
    assert "green <= 0; red > 5" in text


def test_metric_names_are_unique_and_every_definition_is_complete() -> None:
    names = [d.name for d in DEFINITIONS]
    assert len(names) == len(set(names))
    for d in DEFINITIONS:
        assert d.title and d.description and d.formula
        assert (d.target is None) == (d.red is None), d.name


def test_rated_thresholds_point_the_right_way() -> None:
    for d in DEFINITIONS:
        if d.target is None or d.red is None:
            continue
        if d.direction is Direction.HIGHER_IS_BETTER:
            assert d.red < d.target, d.name
        else:
            assert d.red > d.target, d.name


def test_definition_lookup() -> None:
    assert definition("joint_account_coverage").target == 0.80
    with pytest.raises(KeyError, match="unknown metric"):
        definition("vanity_metric")


def test_unrated_metric_has_no_colour() -> None:
    unrated = MetricDefinition(name="x", title="X", description="d", formula="f", unit=Unit.COUNT)
    assert not unrated.rated
    assert unrated.rate(1.0) is Health.UNKNOWN


@pytest.mark.parametrize(
    ("value", "expected"),
    [(10, Health.GREEN), (11, Health.YELLOW), (20, Health.YELLOW), (21, Health.RED)],
)
def test_lower_is_better_boundaries(value: float, expected: Health) -> None:
    latency = MetricDefinition(
        name="latency",
        title="Latency",
        description="d",
        formula="f",
        unit=Unit.SECONDS,
        direction=Direction.LOWER_IS_BETTER,
        target=10,
        red=20,
    )
    assert latency.rate(value) is expected
