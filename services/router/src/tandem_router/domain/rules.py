"""The routing rule set: versioned YAML, validated strictly, cross-checked against the directory."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tandem_shared.directory import Directory, Role
from tandem_shared.events import Signal, Tier, Urgency

RouteKind = Literal["ae", "sdr", "round_robin"]
Precedence = Literal["tal", "crm", "escalate"]
LeadSource = Literal["crm_lead", "form_fill"]
# Windows and baselines divide and bound counts, so a zero or negative one is a configuration error.
Span = Annotated[timedelta, Field(gt=timedelta(0))]
Cooldown = Annotated[timedelta, Field(ge=timedelta(0))]  # zero: every occurrence alerts


class RulesError(ValueError):
    """Raised when a rule set is invalid; `problems` lists each one with its path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid rule set:\n  " + "\n  ".join(problems))
        self.problems = problems


class Rules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TierRule(Rules):
    """How handoffs of one tier are routed."""

    route: RouteKind
    fyi_ae: bool = False  # tell the account's AE when someone else takes the handoff


class Pool(Rules):
    """A round-robin pool of reps and the territories it serves."""

    members: tuple[str, ...] = Field(min_length=1)
    territories: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _unique_members(self) -> Pool:
        if len(set(self.members)) != len(self.members):
            raise ValueError("members must be unique")
        return self


class SignalRule(Rules):
    """What every signal detector has: a switch and a cool-down per account."""

    enabled: bool = True
    cooldown: Cooldown = timedelta(hours=1)


class MeetingRequestRule(SignalRule):
    pass


class EngagementSpikeRule(SignalRule):
    window: Span = timedelta(days=7)
    baseline: Span = timedelta(days=28)  # the period before `window` the rate is taken from
    ratio: float = Field(default=3.0, ge=1.0)
    min_count: int = Field(default=5, ge=1)
    cooldown: Cooldown = timedelta(days=7)


class MultipleContactsRule(SignalRule):
    window: Span = timedelta(days=14)
    min_contacts: int = Field(default=3, ge=2)
    cooldown: Cooldown = timedelta(days=14)


class IntentSurgeRule(SignalRule):
    score_threshold: float = Field(default=70.0, ge=0, le=100)
    jump: float = Field(default=15.0, gt=0, le=100)
    honor_vendor_surge: bool = True
    cooldown: Cooldown = timedelta(days=7)


class InboundLeadRule(SignalRule):
    sources: tuple[LeadSource, ...] = ("crm_lead", "form_fill")
    cooldown: Cooldown = timedelta(days=1)


class SignalRules(Rules):
    meeting_request: MeetingRequestRule = MeetingRequestRule()
    engagement_spike: EngagementSpikeRule = EngagementSpikeRule()
    multiple_contacts: MultipleContactsRule = MultipleContactsRule()
    intent_surge: IntentSurgeRule = IntentSurgeRule()
    inbound_lead: InboundLeadRule = InboundLeadRule()

    def rule(self, signal: Signal) -> SignalRule:
        """Return the rule of one signal."""
        rule: SignalRule = getattr(self, signal.value)
        return rule


class UrgencyRules(Rules):
    default: Urgency = Urgency.NORMAL
    tiers: dict[Tier, dict[Signal, Urgency]] = Field(default_factory=dict)


class OwnershipRules(Rules):
    """Which source wins when the TAL and the CRM name different people for a role."""

    ae: Precedence = "escalate"
    sdr: Precedence = "tal"
    marketer: Precedence = "tal"


class RetentionRules(Rules):
    """How much history an account's state keeps (bounded, so rows stay small)."""

    window: Span = timedelta(days=35)
    max_engagements: int = Field(default=500, ge=10)
    max_intents: int = Field(default=200, ge=10)
    max_contacts: int = Field(default=1000, ge=10)
    max_handoffs: int = Field(default=50, ge=1)


class RuleSet(Rules):
    """Everything that decides who gets a handoff, when, and how urgently."""

    version: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}\.\d+$")
    tiers: dict[Tier, TierRule]
    pools: dict[str, Pool]
    default_pool: str
    signals: SignalRules = SignalRules()
    urgency: UrgencyRules = UrgencyRules()
    ownership: OwnershipRules = OwnershipRules()
    retention: RetentionRules = RetentionRules()
    marketing_channel: str
    escalation_manager_id: str
    fuzzy_threshold: float = Field(default=0.9, gt=0, le=1)
    enforce_working_hours: bool = False
    # An out-of-office AE's tier 1 handoffs and tier 2 FYIs go to their cover, else the SDR path.
    out_of_office_cover: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> RuleSet:
        missing = [t.value for t in Tier if t not in self.tiers]
        if missing:
            raise ValueError(f"tiers: missing tier(s) {missing}")
        if self.default_pool not in self.pools:
            raise ValueError(f"default_pool: unknown pool {self.default_pool!r}")
        seen: dict[str, str] = {}
        for name, pool in self.pools.items():
            for territory in pool.territories:
                if territory in seen:
                    raise ValueError(
                        f"pools.{name}.territories: {territory!r} is already served by "
                        f"pool {seen[territory]!r}"
                    )
                seen[territory] = name
        spike = self.signals.engagement_spike
        needed = max(spike.window + spike.baseline, self.signals.multiple_contacts.window)
        if self.retention.window < needed:
            raise ValueError(f"retention.window must cover the signal windows (at least {needed})")
        return self

    def pool_for(self, territory: str | None) -> str:
        """Return the pool serving a territory, else the default pool."""
        return next(
            (n for n, p in self.pools.items() if territory and territory in p.territories),
            self.default_pool,
        )

    def urgency_for(self, tier: Tier, signal: Signal) -> Urgency:
        """Return the urgency of a handoff of this tier and signal."""
        return self.urgency.tiers.get(tier, {}).get(signal, self.urgency.default)


def _format_errors(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        path = ".".join(str(part) for part in error["loc"]) or "(root)"
        problems.append(f"{path}: {error['msg']}")
    return problems


def parse_rules(data: object) -> RuleSet:
    """Validate a parsed YAML document as a rule set; raise RulesError listing every problem.

    Reading the file is the shell's (config.load_rules): the domain does no I/O."""
    try:
        return RuleSet.model_validate(data)
    except ValidationError as exc:
        raise RulesError(_format_errors(exc)) from exc


def cross_check(rules: RuleSet, directory: Directory) -> list[str]:
    """Return the rule set's references the directory does not satisfy."""
    problems = []
    for name, pool in rules.pools.items():
        for index, person_id in enumerate(pool.members):
            where = f"pools.{name}.members.{index}"
            person = directory.get(person_id)
            if person is None:
                problems.append(f"{where}: unknown person {person_id!r}")
            elif person.role not in (Role.SDR, Role.AE):
                problems.append(f"{where}: {person_id!r} is a {person.role.value}, not a rep")
            elif not person.active:
                problems.append(f"{where}: {person_id!r} is inactive")
    if directory.get(rules.escalation_manager_id) is None:
        problems.append(f"escalation_manager_id: unknown person {rules.escalation_manager_id!r}")
    if directory.channel(rules.marketing_channel) is None:
        problems.append(f"marketing_channel: unknown channel {rules.marketing_channel!r}")
    return problems
