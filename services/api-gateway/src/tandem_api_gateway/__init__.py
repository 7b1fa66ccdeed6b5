"""tandem_api_gateway."""
