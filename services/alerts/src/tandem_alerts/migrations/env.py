"""Alembic environment of the Alerts schema."""

from tandem_shared.migrations import run_env

run_env()
