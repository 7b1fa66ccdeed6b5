"""I/O adapters of the SLA monitor: tables and the queries on them."""
