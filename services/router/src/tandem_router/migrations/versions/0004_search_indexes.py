"""The account search indexes without GIN's pending list.

With fastupdate, every account write appends to a pending list that each search must scan and
that a later write merges: measured, half the router's database CPU per event. Without it a write
updates the index at once and a search reads only the index.

Revision ID: 0004
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for index in ("account_states_match_domains", "account_states_crm_ids"):
        op.execute(f"ALTER INDEX {index} SET (fastupdate = off)")


def downgrade() -> None:
    raise NotImplementedError("Tandem migrations only go forward")
