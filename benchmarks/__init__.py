"""Benchmarks of Tandem services (`python -m benchmarks.<name>`)."""
