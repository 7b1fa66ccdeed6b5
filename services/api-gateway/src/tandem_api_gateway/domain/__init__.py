"""Pure decisions of the api-gateway service: no I/O imports."""
