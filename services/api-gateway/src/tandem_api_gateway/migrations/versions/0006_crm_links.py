"""Links back to the CRM: each account's, handoff's and alert's record page.

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("accounts", "handoffs", "alerts"):
        op.add_column(table, sa.Column("crm_url", sa.Text))


def downgrade() -> None:
    raise NotImplementedError("Tandem migrations only go forward")
