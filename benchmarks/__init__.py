"""Benchmarks of every installed storage backend, side by side (``python -m benchmarks``).

Each target (a backend on one store) is measured against the raw driver doing
the least I/O a fire needs (:mod:`.floor`) and against a two-method backend
that keeps the whole session in one JSON blob on the same store
(:mod:`.naive`). See :mod:`.scenarios` for what is timed and
``benchmarks/RESULTS.md`` for the last full run.
"""
