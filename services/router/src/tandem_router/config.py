"""The router's configuration files: rules, people and seed accounts, validated together."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from tandem_router.domain.model import AccountState, seed_states
from tandem_router.domain.rules import RulesError, RuleSet, cross_check, parse_rules
from tandem_shared.availability import LiveDirectory
from tandem_shared.directory import Directory, load_directory

RULES_FILE = "routing.yaml"
PEOPLE_FILE = "people.yaml"
SCHEMA = "router"  # the PostgreSQL schema the router owns
ACCOUNTS_FILE = "accounts.yaml"


class ConfigError(ValueError):
    """Raised when the configuration cannot be used; `problems` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid router configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class RouterConfig:
    """What every routing decision reads: the rule set and the people directory.

    `directory` is the seed (people.yaml); `live` adds the availability changed at run time.
    """

    rules: RuleSet
    directory: Directory
    live: LiveDirectory = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "live", LiveDirectory(self.directory))


def load_people(config_dir: Path) -> Directory:
    """Load the people directory, raising ConfigError when it is missing or invalid."""
    path = config_dir / PEOPLE_FILE
    try:
        return load_directory(path)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError([f"{path}: {exc}"]) from exc


def load_rules(path: Path) -> RuleSet:
    """Read and validate a rule set YAML file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RulesError([f"{path}: not valid YAML: {exc}"]) from exc
    return parse_rules(data)


def check(path: Path, directory: Directory | None = None) -> list[str]:
    """Return every problem of a rule set file (empty when it is valid)."""
    try:
        rules = load_rules(path)
    except RulesError as exc:
        return exc.problems
    except OSError as exc:
        return [f"{path}: cannot read: {exc}"]
    return cross_check(rules, directory) if directory is not None else []


def load_checked_rules(path: Path, directory: Directory) -> RuleSet:
    """Load a rule set and cross-check it against the directory; raise ConfigError on problems."""
    try:
        rules = load_rules(path)
    except RulesError as exc:
        raise ConfigError([f"{path}: {p}" for p in exc.problems]) from exc
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from exc
    problems = cross_check(rules, directory)
    if problems:
        raise ConfigError([f"{path}: {p}" for p in problems])
    return rules


def load_config(config_dir: Path, *, rules_path: Path | None = None) -> RouterConfig:
    """Load the people and the rule set (config_dir/routing.yaml unless given)."""
    directory = load_people(config_dir)
    rules = load_checked_rules(rules_path or config_dir / RULES_FILE, directory)
    return RouterConfig(rules=rules, directory=directory)


def load_seeds(config_dir: Path, directory: Directory) -> list[AccountState]:
    """Load the seed accounts (none when the file is absent); people they name must exist."""
    path = config_dir / ACCOUNTS_FILE
    if not path.exists():
        return []
    try:
        states = seed_states(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise ConfigError([f"{path}: {exc}"]) from exc
    problems = [
        f"{path}: {state.account_key}.{role}: unknown person {person_id!r}"
        for state in states
        for role, person_id in state.tal.model_dump(
            include={"ae_id", "sdr_id", "marketer_id"}
        ).items()
        if person_id is not None and directory.get(person_id) is None
    ]
    if problems:
        raise ConfigError(problems)
    return states
