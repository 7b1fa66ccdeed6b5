"""Pure decisions of the router service: no I/O imports."""
