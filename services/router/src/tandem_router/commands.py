"""The router's operator commands: `check` a rule set, replay the archive `what-if`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from pathlib import Path

from tandem_router.adapters import repository
from tandem_router.config import RULES_FILE, SCHEMA, ConfigError, load_config, load_seeds
from tandem_router.domain.whatif import ReplayEvent, WhatIfReport, World, what_if
from tandem_router.handlers import router_event
from tandem_shared.db import create_engine, session_factory
from tandem_shared.envelope import Envelope
from tandem_shared.events import EventType, SlaEvent
from tandem_shared.settings import Settings


def check(settings: Settings, argv: list[str]) -> int:
    """`tandem-router check [--rules PATH]`: validate a rule set against the people directory."""
    parser = argparse.ArgumentParser(prog="tandem-router check")
    parser.add_argument("--rules", type=Path, default=settings.config_dir / RULES_FILE)
    args = parser.parse_args(argv)
    try:
        config = load_config(settings.config_dir, rules_path=args.rules)
        load_seeds(settings.config_dir, config.directory)
    except ConfigError as exc:
        _say(f"{args.rules}: {len(exc.problems)} problem(s)")
        for problem in exc.problems:
            _say(f"  - {problem}")
        return 1
    rules = config.rules
    _say(
        f"{args.rules}: rule set {rules.version} is valid "
        f"({len(rules.pools)} pools, {len(config.directory.people)} people)"
    )
    return 0


def what_if_command(settings: Settings, argv: list[str]) -> int:
    """`tandem-router what-if --rules CANDIDATE [--since ISO] [--schema NAME]`: replay both."""
    parser = argparse.ArgumentParser(prog="tandem-router what-if")
    parser.add_argument("--rules", type=Path, required=True, help="the candidate rule set")
    parser.add_argument("--since", type=datetime.fromisoformat, default=None)
    # The archive lives in the schema the router was migrated into (`migrate` uses SCHEMA).
    parser.add_argument("--schema", default=SCHEMA, help="the router's PostgreSQL schema")
    args = parser.parse_args(argv)
    try:
        current = load_config(settings.config_dir)
        candidate = load_config(settings.config_dir, rules_path=args.rules)
        seeds = load_seeds(settings.config_dir, current.directory)
    except ConfigError as exc:
        for problem in exc.problems:
            _say(f"  - {problem}")
        return 1
    since: datetime | None = args.since
    if since is not None and since.tzinfo is None:
        parser.error("--since needs a time zone, e.g. 2026-11-24T00:00:00+00:00")
    events = asyncio.run(load_replay(settings, schema=args.schema))
    # The router started from the seed accounts; replaying the whole archive from there rebuilds
    # each account's state, and --since only limits which decisions are compared.
    report = what_if(
        events,
        current=current.rules,
        candidate=candidate.rules,
        directory=current.directory,
        world=World(accounts={s.account_key: s for s in seeds}),
        report_from=since,
    )
    _say(format_report(report, events))
    return 0


async def load_replay(settings: Settings, *, schema: str = SCHEMA) -> list[ReplayEvent]:
    """Read the archived inputs of a router schema, in processing order, as replayable events."""
    engine = create_engine(settings.database, schema=schema)
    try:
        async with session_factory(engine)() as session:
            archived = await repository.archived_events(session)
    finally:
        await engine.dispose()
    replay = []
    for a in archived:
        envelope = Envelope(id=a.event_id, type=a.event_type, source="/router", data=a.payload)
        payload = (
            envelope.payload(SlaEvent)
            if a.event_type == EventType.SLA_MET
            else router_event(envelope)
        )
        replay.append(ReplayEvent(event_id=a.event_id, payload=payload, at=a.occurred_at))
    return replay


def format_report(report: WhatIfReport, events: list[ReplayEvent]) -> str:
    """Return the what-if report as text: one line per changed event, then the summary."""
    at = {e.event_id: e.at for e in events}
    lines = [f"what-if: {report.current_version} -> {report.candidate_version}"]
    for diff in report.diffs:
        before, after = diff.before, diff.after
        lines.append(
            f"  {at[diff.event_id]:%Y-%m-%d %H:%M} {diff.event_id}: "
            f"{before.assignee_id or '-'} -> {after.assignee_id or '-'}"
            f" (tier {_value(before.tier)} -> {_value(after.tier)},"
            f" signal {_value(before.signal)} -> {_value(after.signal)},"
            f" conflict {before.conflict} -> {after.conflict})"
        )
    s = report.summary
    lines.append(
        f"{s.events} events replayed, {s.changed} would change: {s.assignee_changed} assignee, "
        f"{s.tier_changed} tier, {s.signal_changed} signal, {s.conflict_changed} conflict; "
        f"handoffs {s.handoffs_before} -> {s.handoffs_after}"
    )
    return "\n".join(lines)


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")


def _value(item: object) -> str:
    value = getattr(item, "value", None)
    return str(value) if value is not None else "-"
