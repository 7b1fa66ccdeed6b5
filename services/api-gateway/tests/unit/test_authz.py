"""The authorization policy: the role/operation matrix and object-level rules."""

from __future__ import annotations

import pytest

from tandem_api_gateway.domain.authz import (
    POLICY,
    Operation,
    Principal,
    Role,
    Side,
    is_allowed,
    may_acknowledge_handoff,
    may_finalize_as,
    may_read_alert,
    may_read_handoff,
    role_for_person,
    visible_person_ids,
)
from tandem_shared.directory import Person
from tandem_shared.directory import Role as DirectoryRole

M, S, R, A = Role.MARKETING, Role.SALES, Role.REP, Role.REVOPS_ADMIN

# The matrix the product promises, written out independently of POLICY.
EXPECTED: dict[Operation, set[Role]] = {
    Operation.READ_ACCOUNTS: {M, S, R, A},
    Operation.READ_TAL: {M, S, R, A},
    Operation.PROPOSE_TAL: {M, A},
    Operation.VALIDATE_TAL: {S, A},
    Operation.FINALIZE_TAL: {M, S, A},
    Operation.REMOVE_FROM_TAL: {M, S, A},
    Operation.READ_HANDOFFS: {M, S, R, A},
    Operation.ACKNOWLEDGE_HANDOFF: {S, R, A},
    Operation.ACT_ON_HANDOFF: {S, R, A},
    Operation.SET_AVAILABILITY: {M, S, R, A},
    Operation.READ_AVAILABILITY: {M, S, R, A},
    Operation.READ_ALERTS: {M, S, R, A},
    Operation.READ_METRICS: {M, S, A},
    Operation.MANAGE_API_KEYS: {A},
}

REP = Principal(person_id="ava.ae", role=Role.REP)
OTHER_REP = Principal(person_id="ben.ae", role=Role.REP)
LEADERS = [Principal(person_id=f"{r.value}.lead", role=r) for r in (M, S, A)]


def test_policy_covers_every_operation() -> None:
    assert set(POLICY) == set(Operation)


@pytest.mark.parametrize("operation", list(Operation))
@pytest.mark.parametrize("role", list(Role))
def test_role_operation_matrix(role: Role, operation: Operation) -> None:
    principal = Principal(person_id="someone", role=role)
    assert is_allowed(principal, operation) == (role in EXPECTED[operation])


@pytest.mark.parametrize(
    ("role", "sides"),
    [(M, {Side.MARKETING}), (S, {Side.SALES}), (A, {Side.MARKETING, Side.SALES}), (R, set())],
)
def test_finalize_sides(role: Role, sides: set[Side]) -> None:
    principal = Principal(person_id="p", role=role)
    assert {side for side in Side if may_finalize_as(principal, side)} == sides


def test_rep_reads_only_handoffs_they_own_or_were_notified_of() -> None:
    assert may_read_handoff(REP, assignee_id="ava.ae")
    assert may_read_handoff(REP, assignee_id="dan.sdr", notified_ids=["ava.ae"])
    assert not may_read_handoff(REP, assignee_id="ben.ae", notified_ids=["dan.sdr"])


@pytest.mark.parametrize("leader", LEADERS, ids=lambda p: p.role.value)
def test_leaders_read_every_handoff_and_alert(leader: Principal) -> None:
    assert may_read_handoff(leader, assignee_id="ben.ae")
    assert may_read_alert(leader, recipient_ids=["ben.ae"])


def test_rep_reads_only_alerts_sent_to_them() -> None:
    assert may_read_alert(REP, recipient_ids=["ben.ae", "ava.ae"])
    assert not may_read_alert(OTHER_REP, recipient_ids=["ava.ae"])
    assert not may_read_alert(REP, recipient_ids=[])


def test_acknowledge_own_handoff_only_for_reps() -> None:
    assert may_acknowledge_handoff(REP, assignee_id="ava.ae")
    assert not may_acknowledge_handoff(OTHER_REP, assignee_id="ava.ae")
    assert may_acknowledge_handoff(Principal("sam.manager", S), assignee_id="ava.ae")
    assert not may_acknowledge_handoff(Principal("mia.marketing", M), assignee_id="ava.ae")


def test_reps_see_only_themselves_in_people_lists() -> None:
    people = ["ben.ae", "ava.ae", "dan.sdr"]
    assert visible_person_ids(REP, people) == ["ava.ae"]
    assert visible_person_ids(OTHER_REP, ["dan.sdr"]) == []
    for leader in LEADERS:
        assert visible_person_ids(leader, people) == people


@pytest.mark.parametrize(
    ("role", "team", "expected"),
    [
        (DirectoryRole.AE, "sales", R),
        (DirectoryRole.SDR, "sales", R),
        (DirectoryRole.MANAGER, "sales", S),
        (DirectoryRole.LEADER, "sales", S),
        (DirectoryRole.MARKETER, "marketing", M),
        (DirectoryRole.LEADER, "marketing", M),
        (DirectoryRole.REVOPS, "revops", A),
        (DirectoryRole.MANAGER, "revops", A),
    ],
)
def test_role_for_person(role: DirectoryRole, team: str, expected: Role) -> None:
    person = Person.model_validate(
        {"id": "p", "name": "P", "email": "p@tandem.example", "role": role, "team": team}
    )
    assert role_for_person(person) is expected
