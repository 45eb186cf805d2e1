"""Benchmarks that load Cadenza and report its figures next to a reference run."""
