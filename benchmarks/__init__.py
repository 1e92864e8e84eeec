"""Benchmark of the API against a hand-written FastAPI + asyncpg baseline (issue 6).

Run it with `uv run python -m benchmarks.run`; see benchmarks/README.md.
"""
