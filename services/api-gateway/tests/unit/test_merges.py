"""Which rows a CRM merge folds into its winner."""

from __future__ import annotations

from datetime import UTC, datetime

from tandem_api_gateway.domain.merges import MergedKind, deal_id, kind_of, merged_away
from tandem_shared.events import CrmSystem, RecordsMerged


def _merge(winner: str, merged: list[str]) -> RecordsMerged:
    return RecordsMerged(
        crm=CrmSystem.HUBSPOT,
        object_type="deal",
        winner_id=winner,
        merged_ids=merged,
        occurred_at=datetime(2025, 3, 4, tzinfo=UTC),
    )


def test_merged_away_names_each_loser_once_and_never_the_winner() -> None:
    assert merged_away(_merge("7", ["5", "7", "5", "", "6"])) == ["5", "6"]


def test_object_types_of_both_crms_map_to_the_projected_kinds() -> None:
    assert [kind_of(t) for t in ("deal", "Opportunity", "company", "Account")] == [
        MergedKind.DEAL,
        MergedKind.DEAL,
        MergedKind.ACCOUNT,
        MergedKind.ACCOUNT,
    ]
    assert kind_of("contact") is None  # contacts are not projected by the gateway


def test_deal_ids_carry_their_crm() -> None:
    assert deal_id(CrmSystem.SALESFORCE, "006A") == "salesforce:006A"
