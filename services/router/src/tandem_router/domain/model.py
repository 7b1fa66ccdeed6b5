"""The router's persisted state: one record per account and one for the round-robin pools."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from tandem_shared.events import EngagementKind, Signal, Tier


class State(BaseModel):
    """Immutable and strict: decisions return new states, and JSON round-trips exactly."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Assignment(State):
    """What one source (the TAL workflow or the CRM) says about an account's team."""

    ae_id: str | None = None
    sdr_id: str | None = None
    marketer_id: str | None = None
    tier: Tier | None = None
    territory: str | None = None
    listed: bool | None = None  # whether this source puts the account on the TAL (None: unsaid)


class EngagementRecord(State):
    engagement_id: str
    kind: EngagementKind
    name: str | None = None
    contact: str | None = None  # email when known, else the vendor's user / anonymous id
    content_title: str | None = None
    url: str | None = None
    occurred_at: datetime


class IntentRecord(State):
    provider: str
    topic: str
    score: float | None = None
    surging: bool = False
    observed_at: datetime


class HandoffRecord(State):
    """A handoff the router made for the account, kept so it can be reassigned."""

    handoff_id: str
    signal: Signal
    tier: Tier
    assignee_id: str | None = None
    decided_at: datetime
    acknowledged_by: str | None = None  # an action on the handoff (Slack, email, API)
    accepted_by: str | None = None


class AccountState(State):
    """Everything the router knows about one account, keyed by its registered domain."""

    account_key: str
    name: str | None = None
    tier: Tier = Tier.T3  # effective: the TAL's tier while listed, else the CRM's, else 3
    in_tal: bool = False  # effective: the TAL workflow's decision, else the CRM's target flag
    territory: str | None = None  # effective: the TAL's, else the CRM's
    tal: Assignment = Assignment()  # person ids, from the gateway's TAL workflow
    crm: Assignment = Assignment()  # CRM user ids, resolved through the directory
    alias_domains: tuple[str, ...] = ()
    subsidiary_domains: tuple[str, ...] = ()
    crm_ids: dict[str, str] = Field(default_factory=dict)  # CRM system -> account record id
    crm_urls: dict[str, str] = Field(default_factory=dict)  # CRM system -> its record's page
    known_contacts: tuple[str, ...] = ()  # lower-cased emails seen at the account, oldest first
    engagements: tuple[EngagementRecord, ...] = ()  # oldest first, within the retention window
    intents: tuple[IntentRecord, ...] = ()  # oldest first, within the retention window
    last_alerts: dict[Signal, datetime] = Field(default_factory=dict)  # for cool-downs
    handoffs: tuple[HandoffRecord, ...] = ()  # newest last
    last_sales_activity_at: datetime | None = None

    @property
    def ae_id(self) -> str | None:
        """Return the AE the TAL names, else the CRM account owner (see ownership for conflicts)."""
        return self.tal.ae_id or self.crm.ae_id

    @property
    def sdr_id(self) -> str | None:
        return self.tal.sdr_id or self.crm.sdr_id

    @property
    def marketer_id(self) -> str | None:
        return self.tal.marketer_id or self.crm.marketer_id

    def handoff(self, handoff_id: str) -> HandoffRecord | None:
        """Return a recorded handoff by id, or None."""
        return next((h for h in self.handoffs if h.handoff_id == handoff_id), None)


class PoolState(State):
    """Smooth weighted round robin over one pool: per-rep credit and lifetime assignments."""

    credits: dict[str, int] = Field(default_factory=dict)
    assigned: dict[str, int] = Field(default_factory=dict)


class RoundRobinState(State):
    pools: dict[str, PoolState] = Field(default_factory=dict)

    def pool(self, name: str) -> PoolState:
        """Return the state of one pool (empty when it has never assigned)."""
        return self.pools.get(name, PoolState())


class AccountSeed(BaseModel):
    """One entry of the seed account list (config/example/accounts.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    account_key: str
    name: str | None = None
    tier: Tier = Tier.T3
    ae_id: str | None = None
    sdr_id: str | None = None
    marketer_id: str | None = None
    territory: str | None = None
    aliases: tuple[str, ...] = ()
    subsidiaries: tuple[str, ...] = ()

    def to_state(self) -> AccountState:
        """Return the initial state of a seeded (target-listed) account."""
        tal = Assignment(
            ae_id=self.ae_id,
            sdr_id=self.sdr_id,
            marketer_id=self.marketer_id,
            tier=self.tier,
            territory=self.territory,
            listed=True,
        )
        return AccountState(
            account_key=self.account_key.lower(),
            name=self.name,
            tier=self.tier,
            in_tal=True,
            territory=self.territory,
            tal=tal,
            alias_domains=tuple(a.lower() for a in self.aliases),
            subsidiary_domains=tuple(s.lower() for s in self.subsidiaries),
        )


def seed_states(data: object) -> list[AccountState]:
    """Validate a parsed accounts.yaml document (`accounts: [...]`) into initial states."""
    entries = data.get("accounts", []) if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ValueError("accounts: expected a list of accounts")
    return [AccountSeed.model_validate(entry).to_state() for entry in entries]
