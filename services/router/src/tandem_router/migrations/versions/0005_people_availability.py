"""Run-time availability of people (out of office, cover, capacity, working hours).

Revision ID: 0005
"""

from tandem_shared.availability import create_availability_table

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_availability_table()


def downgrade() -> None:
    raise NotImplementedError("Tandem migrations only go forward")
