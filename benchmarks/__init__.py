"""Benchmark of the API against a hand-written FastAPI + asyncpg baseline.

Run it with `uv run python -m benchmarks.run`; see benchmarks/README.md.
"""
