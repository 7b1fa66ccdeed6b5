"""The SLA policy: business minutes allowed per signal and tier, warnings and escalation."""

from __future__ import annotations

from enum import StrEnum
from itertools import pairwise
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from tandem_shared.events import Signal, Tier

# Business minutes allowed for the first touch, by signal then tier.
DEFAULT_TARGETS: dict[Signal, dict[Tier, int]] = {
    Signal.MEETING_REQUEST: {Tier.T1: 15, Tier.T2: 60, Tier.T3: 240},
    Signal.INBOUND_LEAD: {Tier.T1: 30, Tier.T2: 120, Tier.T3: 480},
    Signal.MULTIPLE_CONTACTS: {Tier.T1: 60, Tier.T2: 240, Tier.T3: 960},
    Signal.ENGAGEMENT_SPIKE: {Tier.T1: 120, Tier.T2: 480, Tier.T3: 1440},
    Signal.INTENT_SURGE: {Tier.T1: 240, Tier.T2: 960, Tier.T3: 2400},
}


class PolicyError(ValueError):
    """Raised when an SLA policy document is not valid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EscalationTarget(StrEnum):
    """Who an escalation level notifies, resolved through the assignee's manager chain."""

    ASSIGNEE = "assignee"
    MANAGER = "manager"  # the assignee's direct manager
    LEADERSHIP = "leadership"  # everyone above the direct manager


class EscalationStep(_Strict):
    """One level of the escalation chain, timed in business minutes after the breach."""

    notify: EscalationTarget
    after_breach_minutes: NonNegativeInt
    repeat_every_minutes: PositiveInt | None = None
    max_repeats: PositiveInt | None = None  # None: repeat until the next level or the touch
    channel_ids: tuple[str, ...] = ()  # extra channels, e.g. sales-leadership


class Toucher(StrEnum):
    """Whose logged call, email or meeting can stop a clock."""

    ASSIGNEE = "assignee"  # the person the handoff was routed to
    COVER = "cover"  # whoever an alert about it reached in the assignee's place (quiet hours)
    ACCOUNT_TEAM = "account_team"  # the account's AE, SDR and marketer, and whoever was told


ALL_TOUCHERS = (Toucher.ASSIGNEE, Toucher.COVER, Toucher.ACCOUNT_TEAM)


def default_escalation() -> tuple[EscalationStep, ...]:
    """Return the default chain: remind the rep, then the manager, then leadership."""
    return (
        EscalationStep(
            notify=EscalationTarget.ASSIGNEE, after_breach_minutes=30, repeat_every_minutes=60
        ),
        EscalationStep(
            notify=EscalationTarget.MANAGER, after_breach_minutes=120, repeat_every_minutes=240
        ),
        EscalationStep(notify=EscalationTarget.LEADERSHIP, after_breach_minutes=480),
    )


class PolicyTerms(_Strict):
    """The terms one clock runs under, snapshotted when it starts."""

    policy_version: str
    tier: Tier
    signal: Signal
    allowed_seconds: PositiveInt
    warning_share: float = Field(gt=0, lt=1)
    escalation: tuple[EscalationStep, ...]
    acknowledgement_pause_seconds: PositiveInt | None  # None: an ack pauses until the touch
    reassign_on_breach: bool
    # Clocks stored before the setting existed counted the assignee and the team; covers now too.
    touched_by: tuple[Toucher, ...] = ALL_TOUCHERS

    @property
    def warning_seconds(self) -> int:
        return int(self.allowed_seconds * self.warning_share)


class SlaPolicy(_Strict):
    """The policy matrix and the rules around it; missing matrix cells take the defaults."""

    version: str = Field(min_length=1)
    warning_share: float = Field(default=0.75, gt=0, lt=1)
    targets: dict[Signal, dict[Tier, PositiveInt]] = Field(
        default_factory=dict, validate_default=True
    )
    escalation: tuple[EscalationStep, ...] = Field(default_factory=default_escalation)
    acknowledgement_pause_minutes: PositiveInt | None = 120
    reassign_on_breach: bool = False
    # Whose touch stops a clock, by tier; tiers left out count everyone in ALL_TOUCHERS.
    touched_by: dict[Tier, tuple[Toucher, ...]] = Field(default_factory=dict)

    @field_validator("targets", mode="before")
    @classmethod
    def _tier_keys_as_text(cls, value: Any) -> Any:
        # YAML reads `1:` as an int; tiers are the strings "1".."3".
        if not isinstance(value, dict):
            return value
        return {
            signal: {str(k): v for k, v in row.items()} if isinstance(row, dict) else row
            for signal, row in value.items()
        }

    @field_validator("touched_by", mode="before")
    @classmethod
    def _touch_tiers_as_text(cls, value: Any) -> Any:
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value

    @field_validator("touched_by", mode="after")
    @classmethod
    def _assignee_always_counts(
        cls, value: dict[Tier, tuple[Toucher, ...]]
    ) -> dict[Tier, tuple[Toucher, ...]]:
        for tier, who in value.items():
            if Toucher.ASSIGNEE not in who:
                raise ValueError(f"tier {tier.value}: the assignee's own touch must count")
        return {tier: tuple(dict.fromkeys(who)) for tier, who in value.items()}

    @field_validator("targets", mode="after")
    @classmethod
    def _fill_defaults(cls, value: dict[Signal, dict[Tier, int]]) -> dict[Signal, dict[Tier, int]]:
        return {
            signal: {**defaults, **value.get(signal, {})}
            for signal, defaults in DEFAULT_TARGETS.items()
        }

    @model_validator(mode="after")
    def _levels_in_order(self) -> SlaPolicy:
        delays = [step.after_breach_minutes for step in self.escalation]
        if any(later <= earlier for earlier, later in pairwise(delays)):
            raise ValueError("escalation levels must have strictly increasing after_breach_minutes")
        return self

    def allowed_minutes(self, tier: Tier, signal: Signal) -> int:
        """Return the business minutes allowed for a first touch."""
        return self.targets[signal][tier]

    def terms_for(self, tier: Tier, signal: Signal) -> PolicyTerms:
        """Return the terms a clock for this tier and signal starts with."""
        pause = self.acknowledgement_pause_minutes
        return PolicyTerms(
            policy_version=self.version,
            tier=tier,
            signal=signal,
            allowed_seconds=self.allowed_minutes(tier, signal) * 60,
            warning_share=self.warning_share,
            escalation=self.escalation,
            acknowledgement_pause_seconds=None if pause is None else pause * 60,
            reassign_on_breach=self.reassign_on_breach,
            touched_by=self.touched_by.get(tier, ALL_TOUCHERS),
        )


def parse_policy(text: str) -> SlaPolicy:
    """Parse and validate an SLA policy YAML document."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"sla policy is not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise PolicyError("sla policy must be a mapping")
    try:
        return SlaPolicy.model_validate(document)
    except ValidationError as exc:
        raise PolicyError(_describe(exc)) from exc


def _describe(exc: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(part) for part in error['loc']) or '(root)'}: {error['msg']}"
        for error in exc.errors()
    ]
    return "invalid sla policy:\n  " + "\n  ".join(problems)
