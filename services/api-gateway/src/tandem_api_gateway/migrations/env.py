"""Alembic environment of the API gateway schema."""

from tandem_shared.migrations import run_env

run_env()
