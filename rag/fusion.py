"""Rank fusion of the BM25 and dense result lists: small pure functions.

A run is ``{doc: score}``. Both functions return a new dict and never touch their inputs;
they agree with ``ranx.fusion`` (``rrf`` and ``wsum`` with ``min-max`` norm), which the
tests check.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

Run = Mapping[Hashable, float]


def rrf(runs: Sequence[Run], *, k: int = 60, weights: Sequence[float] | None = None) -> dict:
    """Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009).

    score(d) = sum_i w_i / (k + rank_i(d)), ranks starting at 1. With k=60, ranks 1 and 3
    give 1/61 + 1/63.
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    weights = [1.0] * len(runs) if weights is None else list(weights)
    if len(weights) != len(runs):
        raise ValueError(f"need one weight per run: {len(weights)} weights for {len(runs)} runs")
    fused: dict = {}
    for run, w in zip(runs, weights):
        ranked = sorted(run.items(), key=lambda kv: -kv[1])
        for rank, (doc, _) in enumerate(ranked, start=1):
            fused[doc] = fused.get(doc, 0.0) + w / (k + rank)
    return fused


def min_max(run: Run) -> dict:
    """Scale scores to [0, 1].

    A run whose scores are all equal maps to 1.0 (ranx maps it to 0): a lone keyword
    match is still a match.
    """
    if not run:
        return {}
    lo, hi = min(run.values()), max(run.values())
    if hi == lo:
        return {d: 1.0 for d in run}
    return {d: (s - lo) / (hi - lo) for d, s in run.items()}


def wsum(runs: Sequence[Run], weights: Sequence[float]) -> dict:
    """Weighted sum of min-max normalised scores (CombSUM with weights; Fox & Shaw 1994).

    A document missing from a run contributes 0 from it.
    """
    if len(weights) != len(runs):
        raise ValueError(f"need one weight per run: {len(weights)} weights for {len(runs)} runs")
    fused: dict = {}
    for run, w in zip(runs, weights):
        for doc, s in min_max(run).items():
            fused[doc] = fused.get(doc, 0.0) + w * s
    return fused


def ranked(fused: Mapping[Hashable, float]) -> list:
    """Docs of a fused run, best first (ties by first appearance)."""
    return [d for d, _ in sorted(fused.items(), key=lambda kv: -kv[1])]
