"""Benchmarks that run Docket as it is deployed (separate scripts; the tests assert behaviour, not speed)."""
