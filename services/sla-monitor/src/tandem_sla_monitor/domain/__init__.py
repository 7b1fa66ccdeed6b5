"""Pure decisions of the sla-monitor service: no I/O imports."""
