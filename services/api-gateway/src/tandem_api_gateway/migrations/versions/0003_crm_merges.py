"""CRM merges: merged-away accounts and deals, and CRM accounts by CRM id.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("merged_into", sa.Text))
    op.add_column("deals", sa.Column("merged_into", sa.Text))
    op.create_table(
        "crm_accounts",
        sa.Column("crm", sa.Text, primary_key=True),
        sa.Column("crm_id", sa.Text, primary_key=True),
        sa.Column("account_key", sa.Text),
        sa.Column("merged_into", sa.Text),
    )


def downgrade() -> None:
    raise NotImplementedError("Tandem migrations only go forward")
