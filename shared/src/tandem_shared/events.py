"""Canonical event payloads and their type names: the contract between Tandem's services."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tandem_shared.directory import Period, WorkingHours


class Model(BaseModel):
    """Base of canonical payloads: tolerant of new fields, so producers can evolve first."""

    model_config = ConfigDict(extra="ignore")


# ---- event type names -------------------------------------------------------------------


class EventType(StrEnum):
    """Every canonical event type (the envelope's `type`)."""

    ACCOUNT_UPSERTED = "tandem.crm.account.upserted"
    CONTACT_UPSERTED = "tandem.crm.contact.upserted"
    LEAD_UPSERTED = "tandem.crm.lead.upserted"
    DEAL_UPSERTED = "tandem.crm.deal.upserted"
    ACTIVITY_LOGGED = "tandem.crm.activity.logged"
    RECORD_DELETED = "tandem.crm.record.deleted"
    RECORDS_MERGED = "tandem.crm.records.merged"
    ENGAGEMENT_RECORDED = "tandem.engagement.recorded"
    INTENT_OBSERVED = "tandem.intent.observed"
    TAL_FINALIZED = "tandem.tal.finalized"
    TAL_REMOVED = "tandem.tal.removed"
    ROUTING_DECIDED = "tandem.routing.decided"
    ROUTING_CONFLICT = "tandem.routing.conflict"
    ALERT_REQUESTED = "tandem.alert.requested"
    ALERT_DELIVERED = "tandem.alert.delivered"
    ALERT_FAILED = "tandem.alert.failed"
    SLA_STARTED = "tandem.sla.started"
    SLA_WARNING = "tandem.sla.warning"
    SLA_BREACHED = "tandem.sla.breached"
    SLA_MET = "tandem.sla.met"
    SLA_ESCALATED = "tandem.sla.escalated"
    SLA_ACKNOWLEDGED = "tandem.sla.acknowledged"
    HANDOFF_ACKNOWLEDGED = "tandem.handoff.acknowledged"
    HANDOFF_REASSIGN_REQUESTED = "tandem.handoff.reassign-requested"
    # A rep's or manager's action on a handoff (any channel), and the router's answer to it.
    HANDOFF_ACTION_REQUESTED = "tandem.handoff.action.requested"
    HANDOFF_ACTION_TAKEN = "tandem.handoff.action.taken"
    HANDOFF_ACTION_REFUSED = "tandem.handoff.action.refused"
    AVAILABILITY_CHANGED = "tandem.people.availability.changed"


class Tier(StrEnum):
    """Account tiers of the ABM programme (3 also covers accounts outside the TAL)."""

    T1 = "1"
    T2 = "2"
    T3 = "3"


class Signal(StrEnum):
    """Handoff signals: why marketing hands an account to sales now."""

    MEETING_REQUEST = "meeting_request"
    ENGAGEMENT_SPIKE = "engagement_spike"
    MULTIPLE_CONTACTS = "multiple_contacts"
    INTENT_SURGE = "intent_surge"
    INBOUND_LEAD = "inbound_lead"


class CrmSystem(StrEnum):
    HUBSPOT = "hubspot"
    SALESFORCE = "salesforce"


# ---- CRM ----------------------------------------------------------------------------------


class AccountUpserted(Model):
    """An account (company) created or changed in a CRM; None means 'not in this change'."""

    crm: CrmSystem
    crm_id: str
    account_key: str | None = None
    name: str | None = None
    domain: str | None = None
    tier: Tier | None = None
    target_account: bool | None = None
    owner_id: str | None = None  # the account owner (AE), as a CRM user id
    sdr_id: str | None = None
    marketer_id: str | None = None
    territory: str | None = None
    alias_domains: list[str] | None = None  # other domains of the same account
    crm_url: str | None = None  # the record's page in the CRM (tandem_shared.crm_links)
    changed: dict[str, Any] = Field(default_factory=dict)  # raw CRM property -> new value
    occurred_at: datetime


class ContactUpserted(Model):
    """A contact or lead created or changed in a CRM."""

    crm: CrmSystem
    crm_id: str
    is_lead: bool = False
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    title: str | None = None
    company_name: str | None = None
    account_key: str | None = None
    account_crm_id: str | None = None
    owner_id: str | None = None
    lifecycle_stage: str | None = None
    crm_url: str | None = None
    changed: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime


class DealUpserted(Model):
    """A deal / opportunity created or changed."""

    crm: CrmSystem
    crm_id: str
    account_key: str | None = None
    account_crm_id: str | None = None
    name: str | None = None
    stage: str | None = None
    amount: float | None = None
    currency: str | None = None
    is_closed: bool | None = None
    is_won: bool | None = None
    owner_id: str | None = None
    crm_url: str | None = None
    changed: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime


class ActivityKind(StrEnum):
    CALL = "call"
    EMAIL = "email"
    MEETING = "meeting"
    TASK = "task"
    NOTE = "note"
    OTHER = "other"


class ActivityLogged(Model):
    """Sales activity logged in a CRM: what stops an SLA clock."""

    crm: CrmSystem
    activity_id: str
    kind: ActivityKind
    account_key: str | None = None
    account_crm_id: str | None = None
    contact_email: str | None = None
    actor_id: str | None = None  # CRM user id (or email) of the rep who did it
    subject: str | None = None
    # The tool that logged it when it is not the CRM itself (outreach, gong, zoom, ...): then
    # `crm` names the CRM whose ids the event carries.
    source: str | None = None
    occurred_at: datetime


class RecordDeleted(Model):
    crm: CrmSystem
    object_type: str
    crm_id: str
    account_key: str | None = None
    occurred_at: datetime


class RecordsMerged(Model):
    crm: CrmSystem
    object_type: str
    winner_id: str
    merged_ids: list[str]
    account_key: str | None = None
    occurred_at: datetime


# ---- engagement and intent ----------------------------------------------------------------


class EngagementKind(StrEnum):
    PAGE_VIEW = "page_view"
    CONTENT_DOWNLOAD = "content_download"
    FORM_FILL = "form_fill"
    MEETING_REQUEST = "meeting_request"
    EVENT_ATTENDANCE = "event_attendance"
    AD_CLICK = "ad_click"
    EMAIL_ENGAGEMENT = "email_engagement"
    IDENTIFY = "identify"
    GROUP = "group"
    OTHER = "other"


class EngagementRecorded(Model):
    """A marketing engagement by a person (known or anonymous) at an account."""

    engagement_id: str
    source: str  # e.g. "segment", "generic"
    kind: EngagementKind
    name: str | None = None  # the vendor's event name, e.g. "Whitepaper Downloaded"
    account_key: str | None = None
    company_name: str | None = None
    contact_email: str | None = None
    contact_name: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    url: str | None = None
    content_title: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime


class IntentObserved(Model):
    """A third-party intent observation: an account researching a topic."""

    provider: str  # bombora, clearbit, 6sense, g2, demandbase, zoominfo, ...
    account_key: str
    company_name: str | None = None
    topic: str
    score: float | None = None  # 0-100
    surging: bool = False
    segment: str | None = None  # Clearbit audience / segment id
    entered: bool | None = None  # Clearbit segment_enter / segment_exit
    attributes: dict[str, Any] = Field(default_factory=dict)
    observed_at: datetime


# ---- target account list ------------------------------------------------------------------


class TalFinalized(Model):
    """An account finalized on the target account list by marketing and sales together."""

    account_key: str
    name: str | None = None
    tier: Tier
    ae_id: str | None = None
    sdr_id: str | None = None
    marketer_id: str | None = None
    territory: str | None = None
    decided_by: list[str] = Field(default_factory=list)
    reason: str | None = None
    finalized_at: datetime


class TalRemoved(Model):
    account_key: str
    decided_by: list[str] = Field(default_factory=list)
    reason: str | None = None
    removed_at: datetime


# ---- routing and handoffs -----------------------------------------------------------------


class EngagementItem(Model):
    occurred_at: datetime
    kind: str
    name: str | None = None
    contact: str | None = None


class IntentItem(Model):
    provider: str
    topic: str
    score: float | None = None
    surging: bool = False


class HandoffContext(Model):
    """What marketing hands over with an account, so the rep can act."""

    research_summary: str = ""
    engagement_history: list[EngagementItem] = Field(default_factory=list)
    content_consumed: list[str] = Field(default_factory=list)
    intent_signals: list[IntentItem] = Field(default_factory=list)
    suggested_approach: str = ""


class MatchInfo(Model):
    method: Literal["domain", "alias_domain", "subsidiary_domain", "crm_id", "fuzzy_name", "none"]
    score: float = 1.0
    matched_value: str | None = None


class RoutingDecided(Model):
    """Who owns a handoff and why."""

    decision_id: str
    handoff_id: str
    account_key: str | None = None
    account_name: str | None = None
    tier: Tier
    in_tal: bool
    signal: Signal
    assignee_id: str
    assignee_role: str
    notified_ids: list[str] = Field(default_factory=list)
    # The account's owners (AE, SDR, marketer) as routing resolved them, whether told or not.
    account_team_ids: list[str] = Field(default_factory=list)
    contact_email: str | None = None
    crm_url: str | None = None  # the CRM record the handoff is about (the lead, else the account)
    match: MatchInfo
    rule_set_version: str
    explanation: list[str] = Field(default_factory=list)
    context: HandoffContext = Field(default_factory=HandoffContext)
    decided_at: datetime
    # Set when the new owner took the handoff by accepting it (a cover): its clock starts paused.
    accepted_by: str | None = None


class RoutingConflict(Model):
    """Ownership sources disagree: escalated instead of a silent pick."""

    account_key: str | None = None
    handoff_id: str | None = None
    candidates: dict[str, str] = Field(default_factory=dict)  # source -> person id
    reason: str
    rule_set_version: str
    occurred_at: datetime


class HandoffAcknowledged(Model):
    handoff_id: str
    person_id: str
    via: Literal["slack", "api"]
    acknowledged_at: datetime


class HandoffReassignRequested(Model):
    handoff_id: str
    account_key: str | None = None
    previous_assignee_id: str
    tier: Tier | None = None
    signal: Signal | None = None
    reason: str
    requested_at: datetime


class HandoffAction(StrEnum):
    """What a person can do with a handoff where they read it (Slack, email, API)."""

    ACKNOWLEDGE = "acknowledge"  # seen, on it: escalation pauses
    ACCEPT = "accept"  # mine: escalation pauses, the handoff is settled
    REJECT = "reject"  # not mine (with a reason): routed again without me
    HAND_ON = "hand_on"  # to my cover, a named teammate, or back to the pool
    ASSIGN = "assign"  # a manager gives a handoff nobody owns (blocked, conflicted) to someone
    REASSIGN = "reassign"  # a manager moves an owned handoff to someone else


class RejectReason(StrEnum):
    WRONG_PERSON = "wrong_person"
    NOT_A_FIT = "not_a_fit"
    DUPLICATE = "duplicate"
    ALREADY_WORKING = "already_working"
    OTHER = "other"


class HandOnTo(StrEnum):
    COVER = "cover"
    PERSON = "person"
    POOL = "pool"


ActionChannel = Literal["slack", "email", "api"]


class HandoffActionRequested(Model):
    """Someone asks to act on a handoff; the router, which owns assignments, decides."""

    action_id: str  # derived from what triggered it (a click, a link, a request)
    handoff_id: str
    action: HandoffAction
    actor_id: str
    via: ActionChannel
    hand_on_to: HandOnTo | None = None  # HAND_ON only
    target_id: str | None = None  # HAND_ON to a person, ASSIGN, REASSIGN
    reason: RejectReason | None = None  # REJECT only
    note: str | None = None  # free text with a reason
    requested_at: datetime


class HandoffActionOutcome(Model):
    """The router's answer to an action request: taken (with its effect) or refused (why)."""

    action_id: str
    handoff_id: str
    account_key: str | None = None
    action: HandoffAction
    actor_id: str
    via: ActionChannel
    taken: bool
    code: str  # "done", or why not: not_permitted, already_done, closed, unknown_handoff, ...
    message: str  # in words, for the person who asked
    previous_assignee_id: str | None = None
    assignee_id: str | None = None  # after the action (None: nobody owns it now)
    decision_id: str | None = None  # the new routing decision, when the owner changed
    reason: RejectReason | None = None
    note: str | None = None
    occurred_at: datetime


class AvailabilityChanged(Model):
    """A person's availability set at run time (API, Slack); None fields stay as they were."""

    change_id: str
    person_id: str
    changed_by: str
    via: ActionChannel
    out_of_office: list[Period] | None = None  # the periods now; [] = back
    cover_id: str | None = None
    clear_cover: bool = False
    capacity: int | None = None
    working_hours: WorkingHours | None = None
    changed_at: datetime


# ---- alerts -------------------------------------------------------------------------------


class AlertKind(StrEnum):
    HANDOFF = "handoff"  # you own this now
    HANDOFF_FYI = "handoff_fyi"  # e.g. the AE of a Tier 2 account
    MARKETING_FYI = "marketing_fyi"
    SLA_WARNING = "sla_warning"
    SLA_BREACH = "sla_breach"
    SLA_ESCALATION = "sla_escalation"
    ROUTING_CONFLICT = "routing_conflict"


class Urgency(StrEnum):
    URGENT = "urgent"
    NORMAL = "normal"
    LOW = "low"


class AlertRequested(Model):
    """Ask the alerts service to tell people something; one delivery per recipient and channel."""

    alert_id: str
    kind: AlertKind
    urgency: Urgency = Urgency.NORMAL
    recipient_ids: list[str]
    channel_ids: list[str] = Field(
        default_factory=list
    )  # extra Slack channels, e.g. #abm-marketing
    title: str
    summary: str = ""
    account_key: str | None = None
    account_name: str | None = None
    tier: Tier | None = None
    signal: Signal | None = None
    handoff_id: str | None = None
    assignee_id: str | None = None
    reason: str | None = None  # why this person, in words
    sla_deadline: datetime | None = None
    crm_url: str | None = None
    context: HandoffContext = Field(default_factory=HandoffContext)
    requested_at: datetime


class DeliveryChannel(StrEnum):
    SLACK = "slack"
    EMAIL = "email"
    LOG = "log"  # the local sink when no Slack or SMTP credentials are configured


class AlertDelivered(Model):
    alert_id: str
    recipient_id: str
    channel: DeliveryChannel
    destination: str
    attempts: int
    coalesced: bool = False
    on_behalf_of: str | None = None  # the person a cover received it for (their quiet hours)
    handoff_id: str | None = None  # the alert's handoff, so a cover's touch can count for it
    delivered_at: datetime


class AlertFailed(Model):
    alert_id: str
    recipient_id: str
    channel: DeliveryChannel | None = None  # None when no channel could be chosen
    destination: str | None = None
    attempts: int
    error: str
    permanent: bool
    failed_at: datetime


# ---- SLA ----------------------------------------------------------------------------------


class SlaEvent(Model):
    """A follow-up clock's life event (started, warning, breached, met, escalated, acknowledged)."""

    handoff_id: str
    account_key: str | None = None
    assignee_id: str
    tier: Tier
    signal: Signal
    started_at: datetime
    deadline: datetime
    allowed_seconds: int  # business seconds allowed by the policy in force at start
    policy_version: str
    elapsed_business_seconds: int | None = None
    escalation_level: int | None = None
    escalated_to: list[str] = Field(default_factory=list)
    met_by_activity_id: str | None = None
    # On SLA_MET: whether the first touch came within the allowed time (a late touch is not met).
    within_sla: bool | None = None
    occurred_at: datetime


# The payload model of each event type, for consumers that decode generically.
PAYLOADS: dict[str, type[Model]] = {
    EventType.ACCOUNT_UPSERTED: AccountUpserted,
    EventType.CONTACT_UPSERTED: ContactUpserted,
    EventType.LEAD_UPSERTED: ContactUpserted,
    EventType.DEAL_UPSERTED: DealUpserted,
    EventType.ACTIVITY_LOGGED: ActivityLogged,
    EventType.RECORD_DELETED: RecordDeleted,
    EventType.RECORDS_MERGED: RecordsMerged,
    EventType.ENGAGEMENT_RECORDED: EngagementRecorded,
    EventType.INTENT_OBSERVED: IntentObserved,
    EventType.TAL_FINALIZED: TalFinalized,
    EventType.TAL_REMOVED: TalRemoved,
    EventType.ROUTING_DECIDED: RoutingDecided,
    EventType.ROUTING_CONFLICT: RoutingConflict,
    EventType.ALERT_REQUESTED: AlertRequested,
    EventType.ALERT_DELIVERED: AlertDelivered,
    EventType.ALERT_FAILED: AlertFailed,
    EventType.SLA_STARTED: SlaEvent,
    EventType.SLA_WARNING: SlaEvent,
    EventType.SLA_BREACHED: SlaEvent,
    EventType.SLA_MET: SlaEvent,
    EventType.SLA_ESCALATED: SlaEvent,
    EventType.SLA_ACKNOWLEDGED: SlaEvent,
    EventType.HANDOFF_ACKNOWLEDGED: HandoffAcknowledged,
    EventType.HANDOFF_REASSIGN_REQUESTED: HandoffReassignRequested,
    EventType.HANDOFF_ACTION_REQUESTED: HandoffActionRequested,
    EventType.HANDOFF_ACTION_TAKEN: HandoffActionOutcome,
    EventType.HANDOFF_ACTION_REFUSED: HandoffActionOutcome,
    EventType.AVAILABILITY_CHANGED: AvailabilityChanged,
}
