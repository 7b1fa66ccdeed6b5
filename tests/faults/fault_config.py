"""The fault runs' configuration: the example config with the run's accounts (one per webhook),
a sales team to spread them over, and the webhook sources the load signs for."""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import yaml
from fakes import ACCOUNT_NAME

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {  # dev-only signing secrets of the run's sources
    "generic": "whsec_ZmF1bHRzLWdlbmVyaWMtc291cmNlLXNlY3JldA==",
    "hubspot": "hubspot-faults-client-secret",
    "salesforce": "salesforce-faults-token",
}
SALESFORCE_ORG = "00D5e000000KQ2eEAG"


def account_key(number: int) -> str:
    return f"faultco{number:07d}.com"


class Pool:
    """Account numbers handed out once each: one webhook per account keeps outcomes independent
    of timing (no cool-down or ordering between two webhooks of an account)."""

    def __init__(self, size: int) -> None:
        # External infra outlives runs: a random base keeps this run's accounts its own.
        self.base = random.randrange(0, 9_000_000)
        self.size = size
        self._next = 0

    def take(self, count: int) -> list[int]:
        if self._next + count > self.size:
            raise RuntimeError(f"account pool of {self.size} exhausted")
        start = self.base + self._next
        self._next += count
        return list(range(start, start + count))

    def accounts(self) -> list[dict[str, str]]:
        """The pool as Tier 1 TAL accounts, spread over the team's AEs and marketers."""
        return [
            {
                "account_key": account_key(n),
                "name": ACCOUNT_NAME.format(n),
                "tier": "1",
                "ae_id": team_member("ae", n)["id"],
                "marketer_id": team_member("marketer", n)["id"],
                "territory": "na-east",
            }
            for n in range(self.base, self.base + self.size)
        ]


# Alerts sends one message at a time per destination (claim, send, record): with every account
# on one AE, the run would measure how fast one person's queue drains. Accounts are spread over
# TEAM AEs (Slack and email) and TEAM marketers (Slack) instead, as in a real sales team.
TEAM = 16
DESTINATIONS = 3 * TEAM  # each AE's Slack and mailbox, each marketer's Slack


# The SLA probes' terms: a minute, warned 3 s before the deadline.
PROBE_MINUTES = 1
WARNING_SHARE = 0.95


def team_member(role: str, account: int) -> dict[str, Any]:
    """The AE or marketer of `account`, as a people.yaml entry."""
    j = account % TEAM
    short = "ae" if role == "ae" else "mk"
    return {
        "id": f"fault.{short}{j:02d}",
        "name": f"Fault {short.upper()} {j:02d}",
        "email": f"fault.{short}{j:02d}@tandem.example",
        "role": role,
        "team": "sales" if role == "ae" else "marketing",
        "slack_user_id": f"U0F{short.upper()}{j:04d}",
        "manager_id": "sam.manager",
        "timezone": "UTC",
        "territories": ["na-east"],
        "preferences": {"channels": ["slack", "email"] if role == "ae" else ["slack"]},
    }


def roles_of(account: int) -> dict[str, str]:
    """How the account's AE and marketer appear in outcomes, and the role each stands for, so
    that every account's outcome reads the same: {"U0FAE0003": "ae", "fault.ae03": "ae", ...}."""
    names = {}
    for role, label in (("ae", "ae"), ("marketer", "marketer")):
        person = team_member(role, account)
        names.update({person[k]: label for k in ("id", "email", "slack_user_id")})
    return names


def write_config(tmp: Path, pool: Pool) -> Path:
    """The example config with the run's accounts, everyone reachable at any hour and told at
    once (no digest), day-long SLAs (no warning fires mid-run) but for the SLA probes' own
    signal and tier (sla_probes.py: no webhook makes one), and the run's sources without rate
    limits."""
    config = tmp / "config"
    shutil.copytree(ROOT / "config/example", config)
    listed = yaml.safe_load((config / "accounts.yaml").read_text())
    listed["accounts"].extend(pool.accounts())
    (config / "accounts.yaml").write_text(yaml.safe_dump(listed))
    people = yaml.safe_load((config / "people.yaml").read_text())
    people["people"] += [team_member(r, j) for r in ("ae", "marketer") for j in range(TEAM)]
    for person in people["people"]:
        person.get("preferences", {}).pop("quiet_hours", None)
        person["working_hours"] = {"days": [1, 2, 3, 4, 5, 6, 7], "start": "00:00", "end": "23:59"}
        # Low-urgency alerts (marketing's FYI) would wait for a daily digest: send them now.
        person.setdefault("preferences", {})["digest"] = "off"
        person["capacity"] = 1_000_000
    (config / "people.yaml").write_text(yaml.safe_dump(people))
    sla = yaml.safe_load((config / "sla.yaml").read_text())
    sla["targets"] = {signal: {1: 1440, 2: 2880, 3: 4320} for signal in sla["targets"]}
    sla["targets"]["intent_surge"][1] = PROBE_MINUTES
    sla["warning_share"] = WARNING_SHARE
    (config / "sla.yaml").write_text(yaml.safe_dump(sla))
    unlimited = {"per_second": 1_000_000, "burst": 1_000_000}
    sources = [
        {"name": "meetings", "kind": "generic", "dev_secrets": [SECRETS["generic"]]},
        {"name": "hubspot", "kind": "hubspot", "dev_secrets": [SECRETS["hubspot"]]},
        {
            "name": "salesforce",
            "kind": "salesforce_outbound",
            "dev_secrets": [SECRETS["salesforce"]],
            "config": {"allowed_org_ids": [SALESFORCE_ORG]},
        },
    ]
    for source in sources:
        source["rate_limit"] = unlimited
    (config / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}))
    return config
