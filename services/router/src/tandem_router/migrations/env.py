"""Alembic environment of the Router schema."""

from tandem_shared.migrations import run_env

run_env()
