"""Who owns an account, per role, from the TAL, the CRM, the lead owner and territories.

Precedence: an account-level source (the TAL workflow, the CRM account) always beats the lead's
owner; between the TAL and the CRM the rule set says who wins per role, and "escalate" turns a
disagreement into a conflict for a manager instead of a silent pick. With no account-level owner,
the lead owner counts, then the one AE whose territory covers the account.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tandem_router.domain.model import AccountState
from tandem_router.domain.rules import OwnershipRules
from tandem_shared.directory import Directory, Person, Role

OwnerRole = Literal["ae", "sdr", "marketer"]
_DIRECTORY_ROLE: dict[OwnerRole, Role] = {"ae": Role.AE, "sdr": Role.SDR, "marketer": Role.MARKETER}


@dataclass(frozen=True)
class OwnershipConflict:
    """Sources name different people for one role and no rule settles it."""

    role: OwnerRole
    candidates: dict[str, str]  # source -> person id
    reason: str


@dataclass(frozen=True)
class Ownership:
    """The resolved team of an account, the conflicts left open and how it was decided."""

    ae: Person | None = None
    sdr: Person | None = None
    marketer: Person | None = None
    conflicts: tuple[OwnershipConflict, ...] = ()
    explanation: tuple[str, ...] = ()
    sources: dict[OwnerRole, str] = field(default_factory=dict)  # role -> winning source

    def conflict(self, role: OwnerRole) -> OwnershipConflict | None:
        """Return the open conflict about a role, or None."""
        return next((c for c in self.conflicts if c.role == role), None)


@dataclass(frozen=True)
class _RoleResult:
    person: Person | None = None
    source: str | None = None
    conflict: OwnershipConflict | None = None
    notes: tuple[str, ...] = ()


def resolve_ownership(
    *,
    state: AccountState | None,
    lead_owner_id: str | None,
    directory: Directory,
    rules: OwnershipRules,
) -> Ownership:
    """Return the account's AE, SDR and marketer, or the conflicts that block a choice."""
    lead_owner, notes = _lookup(directory, lead_owner_id, "lead owner")
    results: dict[OwnerRole, _RoleResult] = {}
    for role in ("ae", "sdr", "marketer"):
        results[role] = _resolve_role(
            role,
            state=state,
            lead_owner=lead_owner,
            directory=directory,
            precedence=getattr(rules, role),
        )
    conflicts = tuple(r.conflict for r in results.values() if r.conflict is not None)
    explanation = (*notes, *(n for r in results.values() for n in r.notes))
    sources: dict[OwnerRole, str] = {
        role: r.source for role, r in results.items() if r.source is not None
    }
    return Ownership(
        ae=results["ae"].person,
        sdr=results["sdr"].person,
        marketer=results["marketer"].person,
        conflicts=conflicts,
        explanation=explanation,
        sources=sources,
    )


def _resolve_role(
    role: OwnerRole,
    *,
    state: AccountState | None,
    lead_owner: Person | None,
    directory: Directory,
    precedence: str,
) -> _RoleResult:
    tal, tal_notes = _lookup(
        directory, getattr(state.tal, f"{role}_id") if state else None, f"TAL {role}"
    )
    crm, crm_notes = _lookup(
        directory, getattr(state.crm, f"{role}_id") if state else None, f"CRM {role}"
    )
    notes = (*tal_notes, *crm_notes)
    if tal is not None and crm is not None and tal.id != crm.id:
        return _settle_disagreement(role, tal, crm, precedence, notes)
    account_owner, source = (tal, "tal") if tal is not None else (crm, "crm")
    lead_fits = lead_owner is not None and lead_owner.role == _DIRECTORY_ROLE[role]
    if account_owner is not None:
        note = f"{role}: {account_owner.id} from the {source.upper()}"
        if lead_fits and lead_owner is not None and lead_owner.id != account_owner.id:
            note += f" (the account owner wins over lead owner {lead_owner.id})"
        return _RoleResult(account_owner, source, None, (*notes, note))
    if lead_fits and lead_owner is not None:
        note = f"{role}: {lead_owner.id}, the lead owner (no account-level {role})"
        return _RoleResult(lead_owner, "lead_owner", None, (*notes, note))
    if role == "ae" and state is not None and state.territory:
        return _territory_ae(state.territory, directory, notes)
    return _RoleResult(None, None, None, notes)


def _settle_disagreement(
    role: OwnerRole, tal: Person, crm: Person, precedence: str, notes: tuple[str, ...]
) -> _RoleResult:
    if precedence == "tal":
        note = f"{role}: {tal.id} from the TAL (the rules prefer it over CRM {crm.id})"
        return _RoleResult(tal, "tal", None, (*notes, note))
    if precedence == "crm":
        note = f"{role}: {crm.id} from the CRM (the rules prefer it over TAL {tal.id})"
        return _RoleResult(crm, "crm", None, (*notes, note))
    reason = (
        f"the CRM names {crm.id} as {role} but the TAL names {tal.id}, and no rule says which wins"
    )
    conflict = OwnershipConflict(role, {"crm": crm.id, "tal": tal.id}, reason)
    return _RoleResult(None, None, conflict, (*notes, f"{role}: conflict, {reason}"))


def _territory_ae(territory: str, directory: Directory, notes: tuple[str, ...]) -> _RoleResult:
    covering = [p for p in directory.with_role(Role.AE) if territory in p.territories]
    if len(covering) == 1:
        note = f"ae: {covering[0].id}, the AE of territory {territory} (no named owner)"
        return _RoleResult(covering[0], "territory", None, (*notes, note))
    if not covering:
        return _RoleResult(None, None, None, (*notes, f"ae: nobody covers territory {territory}"))
    ids = sorted(p.id for p in covering)
    reason = f"territory {territory} has several AEs ({', '.join(ids)}) and no named owner"
    conflict = OwnershipConflict("ae", {f"territory:{i}": i for i in ids}, reason)
    return _RoleResult(None, None, conflict, (*notes, f"ae: conflict, {reason}"))


def _lookup(
    directory: Directory, ref: str | None, label: str
) -> tuple[Person | None, tuple[str, ...]]:
    """Resolve a person id or CRM user id; unknown or inactive people do not count as owners."""
    if not ref:
        return None, ()
    person = directory.by_crm_user(ref)
    if person is None:
        return None, (f"{label} {ref} is not in the directory; ignored",)
    if not person.active:
        return None, (f"{label} {person.id} is inactive; ignored",)
    return person, ()
