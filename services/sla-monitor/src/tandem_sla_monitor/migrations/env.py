"""Alembic environment of the SLA monitor schema."""

from tandem_shared.migrations import run_env

run_env()
