"""Pure decisions of the ingest service: no I/O imports."""
