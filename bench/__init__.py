"""`make bench`: the IdP and the linking service as real processes on PostgreSQL and Redis,
driven over loopback from this (separate) process; requests per server CPU-second beside the
machine's limits. Not a test: ``tests/bench/test_smoke.py`` only checks that it completes.

Run ``python -m bench --help``; the README's «Performance» section explains the figures."""
