"""What a metrics scope makes of each query: its bounds as parameters, its period cut into whole
UTC days (read from the per-day aggregates) and partial days at its edges (read from the rows),
the same in whole months (the touch times' histograms), and the conditions every metric's
query shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tandem_api_gateway.adapters.tables import handoff_measures as handoffs
from tandem_api_gateway.domain import metrics as m
from tandem_api_gateway.domain.metric_aggregates import split_days, split_months
from tandem_shared.events import Tier

RESOLVED = ("met", "breached")


@dataclass(frozen=True, slots=True)
class Shape:
    """What a scope makes of each query: the period's bounds as parameters (present or not),
    how it splits into whole days and edges, tier and team as they are. Each query is built
    once per shape (a few dozen at most)."""

    start: sa.BindParameter[datetime] | None
    end: sa.BindParameter[datetime] | None
    tier: Tier | None
    team: m.Team | None
    days: bool = False  # whether the per-day aggregates answer part of the period
    first_day: bool = False  # whether whole days start at a day (else from the beginning)
    end_day: bool = False  # whether they end before a day (else to the end)
    edges: int = 0  # spans of partial days the rows answer
    # The same for whole months (the touch times' histograms) and the partial months at edges.
    months: bool = False
    first_month: bool = False
    end_month: bool = False
    month_edges: int = 0

    @classmethod
    def of(cls, scope: m.Scope) -> Shape:
        start = _START if scope.start is not None else None
        split = split_days(scope.start, scope.end)
        months = split_months(scope.start, scope.end)
        return cls(
            start,
            _END if scope.end is not None else None,
            scope.tier,
            scope.team,
            days=split.days,
            first_day=split.first_day is not None,
            end_day=split.end_day is not None,
            edges=len(split.edges),
            months=months.days,
            first_month=months.first_day is not None,
            end_month=months.end_day is not None,
            month_edges=len(months.edges),
        )


_START = sa.bindparam("start", type_=sa.DateTime(timezone=True))
_END = sa.bindparam("end", type_=sa.DateTime(timezone=True))
_FIRST_DAY = sa.bindparam("first_day", type_=sa.Date)
_END_DAY = sa.bindparam("end_day", type_=sa.Date)
_EDGES = [
    tuple(sa.bindparam(f"edge{n}_{side}", type_=sa.DateTime(timezone=True)) for side in "se")
    for n in range(2)
]
_FIRST_MONTH = sa.bindparam("first_month", type_=sa.Date)
_END_MONTH = sa.bindparam("end_month", type_=sa.Date)
_MONTH_EDGES = [
    tuple(sa.bindparam(f"medge{n}_{side}", type_=sa.DateTime(timezone=True)) for side in "se")
    for n in range(2)
]


def params_of(scope: m.Scope) -> dict[str, Any]:
    split = split_days(scope.start, scope.end)
    bounds: dict[str, Any] = {
        "start": scope.start,
        "end": scope.end,
        "first_day": split.first_day,
        "end_day": split.end_day,
    }
    for n, (since, until) in enumerate(split.edges):
        bounds |= {f"edge{n}_s": since, f"edge{n}_e": until}
    months = split_months(scope.start, scope.end)
    bounds |= {"first_month": months.first_day, "end_month": months.end_day}
    for n, (since, until) in enumerate(months.edges):
        bounds |= {f"medge{n}_s": since, f"medge{n}_e": until}
    return {name: value for name, value in bounds.items() if value is not None}


def in_period(column: sa.ColumnElement[Any], scope: Shape) -> sa.ColumnElement[bool]:
    # Scope.in_period: a missing time is in no period; an open bound accepts anything.
    conditions: list[sa.ColumnElement[bool]] = [column.is_not(None)]
    if scope.start is not None:
        conditions.append(column >= scope.start)
    if scope.end is not None:
        conditions.append(column < scope.end)
    return sa.and_(*conditions)


def whole_days(table: sa.Table, scope: Shape) -> list[sa.ColumnElement[bool]]:
    """The rows of a per-day aggregate for the period's whole days, tier and team."""
    since = _FIRST_DAY if scope.first_day else None
    return _whole(table, table.c.day, since, _END_DAY if scope.end_day else None, scope)


def whole_months(table: sa.Table, scope: Shape) -> list[sa.ColumnElement[bool]]:
    """The rows of a per-month aggregate for the period's whole months, tier and team."""
    since = _FIRST_MONTH if scope.first_month else None
    return _whole(table, table.c.month, since, _END_MONTH if scope.end_month else None, scope)


def _whole(
    table: sa.Table,
    column: sa.ColumnElement[Any],
    since: sa.BindParameter[Any] | None,
    until: sa.BindParameter[Any] | None,
    scope: Shape,
) -> list[sa.ColumnElement[bool]]:
    conditions = []
    if since is not None:
        conditions.append(column >= since)
    if until is not None:
        conditions.append(column < until)
    if scope.tier is not None:
        conditions.append(table.c.tier == scope.tier.value)
    if scope.team is not None and "team" in table.c:
        conditions.append(table.c.team == scope.team.value)
    return conditions


def on_edges(column: sa.ColumnElement[Any], scope: Shape) -> sa.ColumnElement[bool]:
    # The partial days at the period's edges, half-open like the period.
    return sa.or_(*(sa.and_(column >= s, column < e) for s, e in _EDGES[: scope.edges]))


def month_edge_spans(column: sa.ColumnElement[Any], scope: Shape) -> list[sa.ColumnElement[bool]]:
    """Each partial month at the period's edges, half-open like the period: one condition
    each, so that each reads its own range of an index (an OR of weeks of rows would read
    them through a bitmap of the table's pages)."""
    return [sa.and_(column >= s, column < e) for s, e in _MONTH_EDGES[: scope.month_edges]]


def summed(
    parts: list[sa.Select[Any]], names: tuple[str, ...], by: tuple[str, ...] = ()
) -> sa.Select[Any]:
    """Add up, column by column (per `by`), what the per-day aggregates and the edges' rows
    counted."""
    union = (parts[0] if len(parts) == 1 else sa.union_all(*parts)).subquery("parts")
    keys = [union.c[n] for n in by]
    totals = (sa.func.coalesce(sa.func.sum(union.c[n]), 0).label(n) for n in names)
    return sa.select(*keys, *totals).group_by(*keys)


def measured_handoffs(scope: Shape, *conditions: sa.ColumnElement[bool]) -> list[Any]:
    # handoff_facts: handoffs known well enough to measure (tier, signal and start known).
    where = [handoffs.c.tier.is_not(None), handoffs.c.signal.is_not(None), *conditions]
    if scope.tier is not None:
        where.append(handoffs.c.tier == scope.tier.value)
    if scope.team is not None:
        where.append(handoffs.c.team == scope.team.value)
    return where
