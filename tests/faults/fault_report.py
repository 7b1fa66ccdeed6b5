"""The scenarios' counts: printed as each scenario ends, and as one table at the end."""

from __future__ import annotations

from dataclasses import dataclass

from ledger import Verdict

ROWS: list[Row] = []


@dataclass(frozen=True)
class Row:
    scenario: str
    injected: str
    verdict: Verdict
    recovery: str

    def cells(self) -> list[str]:
        v = self.verdict
        return [
            self.scenario,
            self.injected,
            str(v.accepted),
            str(v.alerts_out),
            f"{v.lost} ({v.given_up} given up)" if v.given_up else str(v.lost),
            _dup(v),
            self.recovery,
        ]


def record(scenario: str, injected: str, verdict: Verdict, recovery: str = "") -> None:
    """Print a scenario's counts now and keep them for the summary table."""
    if not recovery and verdict.settled_after is not None:
        recovery = f"{verdict.settled_after:.1f} s"
    ROWS.append(Row(scenario, injected, verdict, recovery))
    v = verdict
    print(
        f"\n[{scenario}] injected: {injected}\n"
        f"  webhooks accepted {v.accepted} (never accepted {v.not_accepted}), "
        f"events {v.events}, decisions {v.decisions}, clocks {v.clocks}, "
        f"alerts out {v.alerts_out}, read-model rows {v.read_rows}\n"
        f"  lost {v.lost}, duplicated {v.duplicated} (Slack messages {v.duplicated_slack}, "
        f"emails {v.duplicated_messages - v.duplicated_slack}), recovery {recovery or '-'}"
        + "".join(f"\n  ! {p}" for p in v.problems),
        flush=True,
    )


def _dup(v: Verdict) -> str:
    if not v.duplicated:
        return "0"
    emails = v.duplicated_messages - v.duplicated_slack
    return f"{v.duplicated} ({v.duplicated_slack} Slack, {emails} email)"
