"""tandem_shared."""
