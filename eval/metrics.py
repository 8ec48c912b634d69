"""Retrieval metrics through ranx (hit rate, MRR, nDCG, recall), grouped scores, latency,
and paired significance tests between modes."""

from __future__ import annotations

import numpy as np

METRICS = ("hit_rate@1", "hit_rate@3", "hit_rate@5", "hit_rate@10", "mrr@10", "ndcg@10", "recall@10")
# BEIR-style sets: runs 100 deep, so recall@100 (the field's second headline figure) is defined.
DEEP_METRICS = (*METRICS, "recall@100")
NAMES = {"hit_rate@1": "hit@1", "hit_rate@3": "hit@3", "hit_rate@5": "hit@5", "hit_rate@10": "hit@10"}


def _ranx():
    import ranx

    return ranx


def _objects(qrels: dict, run: dict):
    ranx = _ranx()
    qids = [q for q in qrels if q in run]
    # ranx needs every query in the run; a query with no hits gets an empty ranking.
    r = ranx.Run({q: (run[q] or {"__none__": 0.0}) for q in qids})
    return ranx.Qrels({q: qrels[q] for q in qids}), r


def score(qrels: dict, run: dict, names=METRICS) -> dict[str, float]:
    """Mean of ``names`` (default :data:`METRICS`) over the queries that have judgements, keys renamed hit@k."""
    if not any(q in run for q in qrels):  # ranx cannot build an empty run
        return {NAMES.get(m, m): float("nan") for m in names} | {"queries": 0}
    q, r = _objects(qrels, run)
    res = _ranx().evaluate(q, r, list(names), make_comparable=True)
    return {NAMES.get(m, m): float(v) for m, v in res.items()} | {"queries": len(q.qrels)}


def score_groups(qrels: dict, run: dict, group_of: dict[str, str]) -> dict[str, dict[str, float]]:
    out = {}
    for g in sorted(set(group_of.values())):
        keep = {q for q, v in group_of.items() if v == g}
        sub = {q: v for q, v in qrels.items() if q in keep}
        if sub:
            out[g] = score(sub, {q: v for q, v in run.items() if q in keep})
    return out


def latency(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms, dtype=float)
    if not len(a):
        return {}
    return {"latency_p50_ms": float(np.percentile(a, 50)), "latency_p95_ms": float(np.percentile(a, 95)),
            "latency_mean_ms": float(a.mean())}


def compare(qrels: dict, runs: dict[str, dict], metric: str = "mrr@10") -> dict:
    """Paired two-sided randomisation test of every pair of modes (ranx.compare)."""
    ranx = _ranx()
    names = list(runs)
    objs = []
    for n in names:
        q, r = _objects(qrels, runs[n])
        r.name = n
        objs.append(r)
    report = ranx.compare(q, objs, metrics=[metric], stat_test="fisher", max_p=0.05, make_comparable=True)
    d = report.to_dict()
    out = {}
    for n in names:
        pv = {m: float(v[metric]) for m, v in d[n]["comparisons"].items()}
        mine = d[n]["scores"][metric]
        out[n] = {
            "score": float(mine),
            "significantly_better_than": [m for m, p in pv.items() if p < 0.05 and mine > d[m]["scores"][metric]],
            "p_values": pv,
        }
    return out
