"""tandem_alerts."""
