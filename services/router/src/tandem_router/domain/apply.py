"""Fold canonical events into an account's state (pure, bounded by the retention rules)."""

from __future__ import annotations

from datetime import datetime

from tandem_router.domain.model import (
    AccountState,
    Assignment,
    EngagementRecord,
    HandoffRecord,
    IntentRecord,
)
from tandem_router.domain.rules import RetentionRules
from tandem_shared.accounts import registered_domain
from tandem_shared.events import (
    AccountUpserted,
    ActivityLogged,
    ContactUpserted,
    EngagementRecorded,
    HandoffReassignRequested,
    IntentObserved,
    TalFinalized,
    TalRemoved,
    Tier,
)

RouterEvent = (
    AccountUpserted
    | ContactUpserted
    | EngagementRecorded
    | IntentObserved
    | TalFinalized
    | TalRemoved
    | ActivityLogged
    | HandoffReassignRequested
)


def contact_identity(event: EngagementRecorded) -> str | None:
    """Return who engaged: the email when known, else the vendor's user or anonymous id."""
    if event.contact_email:
        return event.contact_email.strip().lower()
    return event.user_id or event.anonymous_id


def apply_event(
    state: AccountState, event: RouterEvent, *, now: datetime, retention: RetentionRules
) -> AccountState:
    """Return the account's state after the event, pruned to the retention window."""
    match event:
        case AccountUpserted():
            state = _apply_account(state, event)
        case TalFinalized():
            state = _apply_tal(state, event)
        case TalRemoved():
            state = _settle(state.model_copy(update={"tal": Assignment(listed=False)}))
        case ContactUpserted():
            state = _remember_contact(state, event.email, retention)
        case EngagementRecorded():
            state = _apply_engagement(state, event, retention)
        case IntentObserved():
            record = IntentRecord(
                provider=event.provider,
                topic=event.topic,
                score=event.score,
                surging=event.surging,
                observed_at=event.observed_at,
            )
            intents = (*state.intents, record)[-retention.max_intents :]
            state = state.model_copy(update={"intents": intents})
        case ActivityLogged():
            last = state.last_sales_activity_at
            if last is None or event.occurred_at > last:
                state = state.model_copy(update={"last_sales_activity_at": event.occurred_at})
        case HandoffReassignRequested():
            pass
    return prune(state, now=now, retention=retention)


def record_handoff(
    state: AccountState, handoff: HandoffRecord, *, retention: RetentionRules
) -> AccountState:
    """Return the state with a handoff recorded (replacing an earlier record of the same id)."""
    kept = tuple(h for h in state.handoffs if h.handoff_id != handoff.handoff_id)
    handoffs = (*kept, handoff)[-retention.max_handoffs :]
    return state.model_copy(update={"handoffs": handoffs})


def prune(state: AccountState, *, now: datetime, retention: RetentionRules) -> AccountState:
    """Drop engagements and intent observations older than the retention window."""
    horizon = now - retention.window
    engagements = tuple(e for e in state.engagements if e.occurred_at >= horizon)
    intents = tuple(i for i in state.intents if i.observed_at >= horizon)
    if engagements == state.engagements and intents == state.intents:
        return state
    return state.model_copy(update={"engagements": engagements, "intents": intents})


def _apply_account(state: AccountState, event: AccountUpserted) -> AccountState:
    crm = state.crm.model_copy(
        update={
            field: value
            for field, value in (
                ("ae_id", event.owner_id),
                ("sdr_id", event.sdr_id),
                ("marketer_id", event.marketer_id),
                ("tier", event.tier),
                ("territory", event.territory),
                ("listed", event.target_account),
            )
            if value is not None
        }
    )
    update: dict[str, object] = {
        "crm": crm,
        "crm_ids": {**state.crm_ids, event.crm.value: event.crm_id},
    }
    if event.crm_url:
        update["crm_urls"] = {**state.crm_urls, event.crm.value: event.crm_url}
    if event.name:
        update["name"] = event.name
    aliases = list(state.alias_domains)
    for value in (event.domain, *(event.alias_domains or ())):
        domain = registered_domain(value)
        if domain and domain != state.account_key and domain not in aliases:
            aliases.append(domain)
    if len(aliases) != len(state.alias_domains):
        update["alias_domains"] = tuple(aliases)
    return _settle(state.model_copy(update=update))


def _apply_tal(state: AccountState, event: TalFinalized) -> AccountState:
    tal = Assignment(
        ae_id=event.ae_id,
        sdr_id=event.sdr_id,
        marketer_id=event.marketer_id,
        tier=event.tier,
        territory=event.territory,
        listed=True,
    )
    update: dict[str, object] = {"tal": tal}
    if event.name:
        update["name"] = event.name
    return _settle(state.model_copy(update=update))


def _settle(state: AccountState) -> AccountState:
    """Recompute the effective TAL membership, tier and territory from the two sources."""
    # The TAL workflow's decision outranks the CRM's target-account flag once there is one;
    # with neither saying anything (states saved before `listed`), membership stays as it was.
    in_tal = next((s for s in (state.tal.listed, state.crm.listed) if s is not None), state.in_tal)
    tier = (state.tal.tier if in_tal else None) or state.crm.tier or Tier.T3
    territory = state.tal.territory or state.crm.territory
    return state.model_copy(update={"in_tal": in_tal, "tier": tier, "territory": territory})


def _remember_contact(
    state: AccountState, email: str | None, retention: RetentionRules
) -> AccountState:
    if not email:
        return state
    email = email.strip().lower()
    if email in state.known_contacts:
        return state
    contacts = (*state.known_contacts, email)[-retention.max_contacts :]
    return state.model_copy(update={"known_contacts": contacts})


def _apply_engagement(
    state: AccountState, event: EngagementRecorded, retention: RetentionRules
) -> AccountState:
    if any(e.engagement_id == event.engagement_id for e in state.engagements):
        return state
    record = EngagementRecord(
        engagement_id=event.engagement_id,
        kind=event.kind,
        name=event.name,
        contact=contact_identity(event),
        content_title=event.content_title,
        url=event.url,
        occurred_at=event.occurred_at,
    )
    engagements = tuple(
        sorted((*state.engagements, record), key=lambda e: e.occurred_at)[
            -retention.max_engagements :
        ]
    )
    state = state.model_copy(update={"engagements": engagements})
    return _remember_contact(state, event.contact_email, retention)
