"""tandem_router."""
