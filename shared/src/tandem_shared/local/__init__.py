"""The local stack: embedded broker and PostgreSQL, for `make up` and the tests."""
