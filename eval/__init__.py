"""Retrieval benchmarks: run with ``python -m eval`` (import modules as ``from eval import …``)."""
