"""tandem_ingest."""
