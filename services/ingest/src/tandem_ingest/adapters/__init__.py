"""The ingest service's I/O adapters: tables and the queries on them."""
