"""Benchmarks of Patron against a raw-asyncpg endpoint and pgbench (see bench/README.md).

Not a test suite: ``python -m bench.run`` (``make bench``) loads a database and measures.
"""
