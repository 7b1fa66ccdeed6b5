"""Pure decisions of the alerts service: no I/O imports."""
