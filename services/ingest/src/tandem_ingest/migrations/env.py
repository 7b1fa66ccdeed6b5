"""Alembic environment of the Ingest schema."""

from tandem_shared.migrations import run_env

run_env()
