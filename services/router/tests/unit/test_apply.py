from __future__ import annotations

from datetime import timedelta

from tandem_router.domain.apply import apply_event, prune
from tandem_router.domain.model import AccountState
from tandem_router.domain.rules import RetentionRules
from tandem_shared.events import (
    AccountUpserted,
    ActivityKind,
    ActivityLogged,
    CrmSystem,
    TalFinalized,
    TalRemoved,
    Tier,
)

RETENTION = RetentionRules(window=timedelta(days=35), max_engagements=10, max_contacts=10)


def apply(state, event, now):
    return apply_event(state, event, now=now, retention=RETENTION)


def test_crm_account_fields_merge_and_settle_tier(make):
    state = AccountState(account_key="globex.com")
    event = AccountUpserted(
        crm=CrmSystem.HUBSPOT,
        crm_id="hs-9",
        name="Globex",
        domain="www.globex.de",
        tier=Tier.T2,
        owner_id="hs-owner-102",
        territory="na-central",
        occurred_at=make.now,
    )
    after = apply(state, event, make.now)
    assert (after.name, after.tier, after.territory, after.crm.ae_id) == (
        "Globex",
        Tier.T2,
        "na-central",
        "hs-owner-102",
    )
    assert after.crm_ids == {"hubspot": "hs-9"} and after.alias_domains == ("globex.de",)
    # a later partial change keeps what it does not mention
    rename = AccountUpserted(
        crm=CrmSystem.HUBSPOT, crm_id="hs-9", name="Globex Corp", occurred_at=make.now
    )
    assert apply(after, rename, make.now).crm.ae_id == "hs-owner-102"


def test_tal_overrides_then_removal_reverts(make):
    state = AccountState(
        account_key="globex.com", crm=make.acme().crm.model_copy(update={"tier": Tier.T3})
    )
    listed = apply(
        state,
        TalFinalized(
            account_key="globex.com",
            tier=Tier.T1,
            ae_id="ben.ae",
            territory="na-central",
            finalized_at=make.now,
        ),
        make.now,
    )
    assert (listed.in_tal, listed.tier, listed.tal.ae_id) == (True, Tier.T1, "ben.ae")
    removed = apply(listed, TalRemoved(account_key="globex.com", removed_at=make.now), make.now)
    assert (removed.in_tal, removed.tier, removed.tal.ae_id) == (False, Tier.T3, None)


def test_engagements_are_bounded_deduplicated_and_remember_contacts(make):
    state = make.acme()
    for i in range(12):
        state = apply(
            state,
            make.engagement(
                engagement_id=f"e{i}",
                email=f"p{i}@acme.com",
                at=make.now - timedelta(minutes=12 - i),
            ),
            make.now,
        )
    assert len(state.engagements) == 10
    assert state.engagements[-1].engagement_id == "e11"
    assert apply(state, make.engagement(engagement_id="e11"), make.now) == state
    assert state.known_contacts[-1] == "p11@acme.com" and len(state.known_contacts) == 10


def test_old_history_is_pruned(make):
    state = make.acme(
        engagements=make.history(2, start=make.now - timedelta(days=40), step=timedelta(days=10))
    )
    assert [
        e.engagement_id for e in prune(state, now=make.now, retention=RETENTION).engagements
    ] == ["h-1"]


def test_intent_and_activity(make):
    state = apply(make.acme(), make.intent(80), make.now)
    assert state.intents[-1].score == 80
    activity = ActivityLogged(
        crm=CrmSystem.HUBSPOT, activity_id="a1", kind=ActivityKind.CALL, occurred_at=make.now
    )
    assert apply(state, activity, make.now).last_sales_activity_at == make.now
    older = activity.model_copy(update={"occurred_at": make.now - timedelta(days=1)})
    assert (
        apply(apply(state, activity, make.now), older, make.now).last_sales_activity_at == make.now
    )


def test_contact_upsert_remembers_the_email(make):
    state = apply(make.acme(), make.lead("New.Person@Acme.com"), make.now)
    assert "new.person@acme.com" in state.known_contacts


def test_crm_alias_domains_are_added_once_as_registered_domains(make):
    state = AccountState(account_key="globex.com", alias_domains=("globex.de",))
    event = AccountUpserted(
        crm=CrmSystem.HUBSPOT,
        crm_id="hs-9",
        domain="globex.com",
        alias_domains=["https://www.globex.io/about", "GLOBEX.DE", "mail.globex.co.uk"],
        occurred_at=make.now,
    )
    after = apply(state, event, make.now)
    assert after.alias_domains == ("globex.de", "globex.io", "globex.co.uk")


def test_crm_target_flag_lists_the_account_until_the_tal_workflow_decides(make):
    def crm(**fields):
        return AccountUpserted(crm=CrmSystem.HUBSPOT, crm_id="hs-9", occurred_at=make.now, **fields)

    state = apply(AccountState(account_key="globex.com"), crm(target_account=True), make.now)
    assert state.in_tal and state.crm.listed is True
    state = apply(state, crm(tier=Tier.T2), make.now)  # a change that does not mention the flag
    assert (state.in_tal, state.tier) == (True, Tier.T2)
    assert not apply(state, crm(target_account=False), make.now).in_tal
    # once the TAL workflow removed it, the CRM's flag no longer puts it back
    removed = apply(state, TalRemoved(account_key="globex.com", removed_at=make.now), make.now)
    assert not apply(removed, crm(target_account=True), make.now).in_tal


def test_states_saved_before_the_listed_field_keep_their_membership(make):
    legacy = AccountState(account_key="globex.com", in_tal=True, tier=Tier.T1)
    event = AccountUpserted(crm=CrmSystem.HUBSPOT, crm_id="hs-9", name="G", occurred_at=make.now)
    assert apply(legacy, event, make.now).in_tal
