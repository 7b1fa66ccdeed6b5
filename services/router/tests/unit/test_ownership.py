from __future__ import annotations

from tandem_router.domain.model import AccountState, Assignment
from tandem_router.domain.ownership import resolve_ownership
from tandem_router.domain.rules import OwnershipRules
from tandem_shared.directory import Role


def resolve(directory, state, lead_owner=None, **rules):
    return resolve_ownership(
        state=state, lead_owner_id=lead_owner, directory=directory, rules=OwnershipRules(**rules)
    )


def test_tal_and_crm_agree(directory, make):
    result = resolve(directory, make.acme())  # CRM owner hs-owner-101 is Ava, as on the TAL
    assert (result.ae.id, result.sdr.id, result.marketer.id) == (
        "ava.ae",
        "dan.sdr",
        "mia.marketing",
    )
    assert result.conflicts == ()


def test_crm_owner_and_tal_ae_disagree_without_a_rule_is_a_conflict(directory, make):
    state = make.acme(crm=Assignment(ae_id="hs-owner-102"))  # Ben in the CRM
    result = resolve(directory, state)
    assert result.ae is None
    [conflict] = result.conflicts
    assert conflict.role == "ae"
    assert conflict.candidates == {"crm": "ben.ae", "tal": "ava.ae"}
    assert "no rule says which wins" in conflict.reason


def test_a_precedence_rule_settles_the_disagreement(directory, make):
    state = make.acme(crm=Assignment(ae_id="hs-owner-102"))
    assert resolve(directory, state, ae="tal").ae.id == "ava.ae"
    crm_wins = resolve(directory, state, ae="crm")
    assert crm_wins.ae.id == "ben.ae" and crm_wins.sources["ae"] == "crm"


def test_account_owner_wins_over_lead_owner(directory, make):
    result = resolve(directory, make.acme(), lead_owner="hs-owner-102")
    assert result.ae.id == "ava.ae"
    assert any("wins over lead owner ben.ae" in line for line in result.explanation)


def test_lead_owner_counts_when_the_account_has_no_owner(directory):
    state = AccountState(account_key="newco.io")
    result = resolve(directory, state, lead_owner="hs-owner-102")
    assert result.ae.id == "ben.ae" and result.sources["ae"] == "lead_owner"


def test_territory_ae_when_no_one_is_named(directory):
    state = AccountState(account_key="newco.io", territory="emea")
    result = resolve(directory, state)
    assert result.ae.id == "chloe.ae" and result.sources["ae"] == "territory"


def test_several_territory_aes_is_a_conflict(make):
    directory = make.directory(make.person("zoe.ae", Role.AE, territories=("emea",)))
    result = resolve(directory, AccountState(account_key="newco.io", territory="emea"))
    assert result.ae is None
    assert result.conflict("ae").candidates == {
        "territory:chloe.ae": "chloe.ae",
        "territory:zoe.ae": "zoe.ae",
    }


def test_unknown_and_inactive_owners_are_ignored(make):
    directory = make.directory(
        make.person("ava.ae", Role.AE, active=False, crm_user_ids=("hs-owner-101",))
    )
    state = make.acme(crm=Assignment(ae_id="hs-owner-999"))
    result = resolve(directory, state)
    assert result.conflicts == ()
    assert result.ae is None  # and nobody else covers na-east
    assert any("hs-owner-999 is not in the directory" in n for n in result.explanation)
    assert any("ava.ae is inactive" in n for n in result.explanation)


def test_sdr_disagreement_follows_the_default_tal_precedence(directory, make):
    state = make.acme(crm=Assignment(ae_id="hs-owner-101", sdr_id="eve.sdr"))
    result = resolve(directory, state)
    assert result.sdr.id == "dan.sdr" and result.conflicts == ()


def test_no_state_no_owners(directory):
    result = resolve(directory, None)
    assert (result.ae, result.sdr, result.marketer, result.conflicts) == (None, None, None, ())
