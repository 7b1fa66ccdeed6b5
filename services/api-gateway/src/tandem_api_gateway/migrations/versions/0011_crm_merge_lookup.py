"""The CRM records merged into a record, by index: settling the merges a record takes part in
as the winner reads them, instead of every record of its CRM.

Revision ID: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "crm_accounts_merged_into",
        "crm_accounts",
        ["crm", "merged_into"],
        postgresql_where=sa.text("merged_into IS NOT NULL"),
    )


def downgrade() -> None:
    raise NotImplementedError("Tandem migrations only go forward")
