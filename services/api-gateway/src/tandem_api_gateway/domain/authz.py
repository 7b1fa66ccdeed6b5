"""Who may do what in the gateway: roles, the operation policy and object-level rules.

The policy is data (`POLICY`), so the docs and tests read the same table the shell enforces.

Object-level rules: leaders (marketing, sales, revops-admin) read every handoff and alert. A rep
reads a handoff when they are its assignee or were notified about it, and an alert when they are
one of its recipients; anything else is reported as "not found" by the shell (404), so a rep
cannot probe for other reps' work. Inside an object a rep sees only their own person id in the
people lists (notified ids, recipients, deliveries): the other names are hidden, not just the
contact details, because who else was told is itself information about colleagues' workload.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from tandem_shared.directory import Person
from tandem_shared.directory import Role as DirectoryRole


class Role(StrEnum):
    """Roles of gateway callers (carried by their session or API key)."""

    MARKETING = "marketing"  # marketing team members and leaders
    SALES = "sales"  # sales managers and leaders
    REP = "rep"  # account executives and SDRs: see their own work only
    REVOPS_ADMIN = "revops-admin"  # operates Tandem: everything, both sides of the TAL


class Operation(StrEnum):
    """Operations of the gateway API that the policy rules on."""

    READ_ACCOUNTS = "read_accounts"
    READ_TAL = "read_tal"
    PROPOSE_TAL = "propose_tal"
    VALIDATE_TAL = "validate_tal"
    FINALIZE_TAL = "finalize_tal"
    REMOVE_FROM_TAL = "remove_from_tal"
    READ_HANDOFFS = "read_handoffs"
    ACKNOWLEDGE_HANDOFF = "acknowledge_handoff"
    ACT_ON_HANDOFF = "act_on_handoff"  # who exactly: tandem_shared.handoff_policy
    SET_AVAILABILITY = "set_availability"  # their own; sales leaders and revops: anyone's
    READ_AVAILABILITY = "read_availability"  # their own; leaders: anyone's
    READ_ALERTS = "read_alerts"
    READ_METRICS = "read_metrics"
    MANAGE_API_KEYS = "manage_api_keys"


class Side(StrEnum):
    """The two sides of the joint TAL decision."""

    MARKETING = "marketing"
    SALES = "sales"


_EVERYONE = frozenset(Role)
_LEADERS = frozenset({Role.MARKETING, Role.SALES, Role.REVOPS_ADMIN})

POLICY: Mapping[Operation, frozenset[Role]] = {
    Operation.READ_ACCOUNTS: _EVERYONE,
    Operation.READ_TAL: _EVERYONE,
    Operation.PROPOSE_TAL: frozenset({Role.MARKETING, Role.REVOPS_ADMIN}),
    Operation.VALIDATE_TAL: frozenset({Role.SALES, Role.REVOPS_ADMIN}),
    Operation.FINALIZE_TAL: _LEADERS,
    Operation.REMOVE_FROM_TAL: _LEADERS,
    Operation.READ_HANDOFFS: _EVERYONE,  # reps: their own only (see may_read_handoff)
    Operation.ACKNOWLEDGE_HANDOFF: frozenset({Role.REP, Role.SALES, Role.REVOPS_ADMIN}),
    Operation.ACT_ON_HANDOFF: frozenset({Role.REP, Role.SALES, Role.REVOPS_ADMIN}),
    Operation.SET_AVAILABILITY: _EVERYONE,
    Operation.READ_AVAILABILITY: _EVERYONE,
    Operation.READ_ALERTS: _EVERYONE,  # reps: their own only (see may_read_alert)
    Operation.READ_METRICS: _LEADERS,
    Operation.MANAGE_API_KEYS: frozenset({Role.REVOPS_ADMIN}),
}

# The side(s) of the TAL each role may approve for.
FINALIZE_SIDES: Mapping[Role, frozenset[Side]] = {
    Role.MARKETING: frozenset({Side.MARKETING}),
    Role.SALES: frozenset({Side.SALES}),
    Role.REVOPS_ADMIN: frozenset(Side),
    Role.REP: frozenset(),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: a person (or an integration acting as one) with one role."""

    person_id: str
    role: Role

    @property
    def is_leader(self) -> bool:
        """Return True for roles that see every object, not only their own."""
        return self.role in _LEADERS


def is_allowed(principal: Principal, operation: Operation) -> bool:
    """Return True when the principal's role may perform the operation at all."""
    return principal.role in POLICY[operation]


def may_finalize_as(principal: Principal, side: Side) -> bool:
    """Return True when the principal may approve a TAL entry for this side."""
    return side in FINALIZE_SIDES[principal.role]


def may_read_handoff(
    principal: Principal, *, assignee_id: str, notified_ids: Iterable[str] = ()
) -> bool:
    """Return True when the principal may see this handoff (False maps to 404)."""
    if not is_allowed(principal, Operation.READ_HANDOFFS):
        return False
    if principal.is_leader:
        return True
    return principal.person_id == assignee_id or principal.person_id in set(notified_ids)


def may_acknowledge_handoff(principal: Principal, *, assignee_id: str) -> bool:
    """Return True when the principal may acknowledge this handoff (a rep: only their own)."""
    if not is_allowed(principal, Operation.ACKNOWLEDGE_HANDOFF):
        return False
    return principal.is_leader or principal.person_id == assignee_id


def may_read_alert(principal: Principal, *, recipient_ids: Iterable[str]) -> bool:
    """Return True when the principal may see this alert (False maps to 404)."""
    if not is_allowed(principal, Operation.READ_ALERTS):
        return False
    return principal.is_leader or principal.person_id in set(recipient_ids)


def visible_person_ids(principal: Principal, person_ids: Iterable[str]) -> list[str]:
    """Return the people of a list the principal may see: all for leaders, only self for reps."""
    ids = list(person_ids)
    if principal.is_leader:
        return ids
    return [pid for pid in ids if pid == principal.person_id]


def role_for_person(person: Person) -> Role:
    """Return the gateway role a directory person gets by default."""
    if person.role == DirectoryRole.REVOPS:
        return Role.REVOPS_ADMIN
    if person.team == "marketing" or person.role == DirectoryRole.MARKETER:
        return Role.MARKETING
    if person.role in (DirectoryRole.AE, DirectoryRole.SDR):
        return Role.REP
    if person.team == "sales":
        return Role.SALES
    # A manager or leader on the revops team administers Tandem.
    return Role.REVOPS_ADMIN
