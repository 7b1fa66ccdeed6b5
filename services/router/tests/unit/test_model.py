from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from tandem_router.domain.model import AccountState, HandoffRecord, seed_states
from tandem_shared.events import Signal, Tier

EXAMPLE = Path(__file__).resolve().parents[4] / "config" / "example"


def test_account_state_round_trips_through_json(make):
    state = make.acme(
        engagements=make.history(3, start=make.now, step=make.now - make.now),
        last_alerts={Signal.INTENT_SURGE: make.now},
        handoffs=(
            HandoffRecord(
                handoff_id="h1",
                signal=Signal.INBOUND_LEAD,
                tier=Tier.T1,
                assignee_id="ava.ae",
                decided_at=make.now,
            ),
        ),
    )
    assert AccountState.model_validate_json(state.model_dump_json()) == state
    assert AccountState.model_validate(state.model_dump(mode="json")) == state


def test_state_is_immutable_and_strict(make):
    with pytest.raises(ValidationError):
        make.acme().tier = Tier.T2
    with pytest.raises(ValidationError):
        AccountState(account_key="a.com", colour="red")


def test_effective_team_prefers_the_tal(make):
    state = make.acme()
    assert (state.ae_id, state.sdr_id, state.marketer_id) == ("ava.ae", "dan.sdr", "mia.marketing")
    assert state.handoff("nope") is None


def test_seed_the_example_accounts():
    states = {
        s.account_key: s
        for s in seed_states(yaml.safe_load((EXAMPLE / "accounts.yaml").read_text()))
    }
    acme = states["acme.com"]
    assert acme.in_tal and acme.tier == Tier.T1 and acme.territory == "na-east"
    assert acme.alias_domains == ("acme.io", "acmecorp.com")
    assert states["hooli.com"].tier == Tier.T3 and states["hooli.com"].tal.ae_id is None


def test_seed_rejects_a_non_list():
    with pytest.raises(ValueError, match="expected a list"):
        seed_states({"accounts": {"acme.com": {}}})
