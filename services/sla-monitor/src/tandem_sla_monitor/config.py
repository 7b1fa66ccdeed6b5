"""The SLA monitor's configuration files: the SLA policy and the people directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tandem_shared.directory import Directory, load_directory
from tandem_sla_monitor.domain.policy import SlaPolicy, parse_policy

POLICY_FILE = "sla.yaml"
PEOPLE_FILE = "people.yaml"


@dataclass(frozen=True, slots=True)
class SlaConfig:
    """The policy new clocks start under and the people whose calendars they run in."""

    policy: SlaPolicy
    directory: Directory


def load_config(config_dir: Path) -> SlaConfig:
    """Load and validate the policy and the directory; fail at start-up when either is wrong."""
    policy = parse_policy((config_dir / POLICY_FILE).read_text(encoding="utf-8"))
    return SlaConfig(policy=policy, directory=load_directory(config_dir / PEOPLE_FILE))
