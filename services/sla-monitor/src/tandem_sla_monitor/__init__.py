"""tandem_sla_monitor."""
