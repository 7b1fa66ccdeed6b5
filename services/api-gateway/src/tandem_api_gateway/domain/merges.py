"""CRM records merged into one: which read-model rows a merge folds into which survivor."""

from __future__ import annotations

from enum import StrEnum

from tandem_shared.events import CrmSystem, RecordsMerged


class MergedKind(StrEnum):
    """The CRM objects the gateway projects, hence the only merges it reads."""

    DEAL = "deal"
    ACCOUNT = "account"


# The CRMs' names of each object (HubSpot's and Salesforce's, singular or plural).
_KINDS = {
    "deal": MergedKind.DEAL,
    "deals": MergedKind.DEAL,
    "opportunity": MergedKind.DEAL,
    "opportunities": MergedKind.DEAL,
    "account": MergedKind.ACCOUNT,
    "accounts": MergedKind.ACCOUNT,
    "company": MergedKind.ACCOUNT,
    "companies": MergedKind.ACCOUNT,
}


def kind_of(object_type: str) -> MergedKind | None:
    """Return which projected object a CRM object type names (None: one not projected)."""
    return _KINDS.get(object_type.lower())


def deal_id(crm: CrmSystem, crm_id: str) -> str:
    """Return the read model's id of a CRM deal: `<crm>:<crm id>`."""
    return f"{crm.value}:{crm_id}"


def merged_away(event: RecordsMerged) -> list[str]:
    """Return the CRM ids the merge folded into its winner, each once, never the winner."""
    return [i for i in dict.fromkeys(event.merged_ids) if i and i != event.winner_id]
