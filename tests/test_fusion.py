"""Fusion math by hand, input immutability, and agreement with ranx."""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pytest

from rag.fusion import min_max, ranked, rrf, wsum


def test_rrf_ranks_one_and_three():
    a = {"x": 9.0, "y": 5.0, "z": 1.0}
    b = {"z": 0.9, "w": 0.5, "x": 0.1}
    fused = rrf([a, b], k=60)
    assert fused["x"] == pytest.approx(1 / 61 + 1 / 63)  # rank 1 in a, rank 3 in b
    assert fused["z"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["y"] == pytest.approx(1 / 62)
    assert fused["w"] == pytest.approx(1 / 62)
    assert set(fused) == {"x", "y", "z", "w"}


def test_rrf_weights_and_k():
    a = {"p": 3.0, "q": 2.0}
    b = {"q": 7.0}
    fused = rrf([a, b], k=0, weights=[2.0, 0.5])
    assert fused == pytest.approx({"p": 2.0 / 1, "q": 2.0 / 2 + 0.5 / 1})


def test_rrf_rejects_bad_arguments():
    with pytest.raises(ValueError):
        rrf([{"a": 1.0}], k=-1)
    with pytest.raises(ValueError, match="one weight per run"):
        rrf([{"a": 1.0}, {"b": 1.0}], weights=[1.0])
    with pytest.raises(ValueError, match="one weight per run"):
        wsum([{"a": 1.0}], [0.5, 0.5])


def test_min_max_by_hand():
    assert min_max({"a": 1.0, "b": 3.0, "c": 5.0}) == {"a": 0.0, "b": 0.5, "c": 1.0}
    assert min_max({"a": -2.0, "b": 2.0}) == {"a": 0.0, "b": 1.0}
    assert min_max({}) == {}


def test_min_max_constant_run_maps_to_one():
    # documented difference from ranx (which gives 0): a lone keyword match is still a match
    assert min_max({"a": 4.2}) == {"a": 1.0}
    assert min_max({"a": 2.0, "b": 2.0}) == {"a": 1.0, "b": 1.0}


def test_wsum_by_hand():
    bm25 = {"a": 1.0, "b": 3.0, "c": 5.0}  # -> a 0, b .5, c 1
    dense = {"a": 10.0, "d": 20.0}  # -> a 0, d 1
    fused = wsum([bm25, dense], [0.7, 0.3])
    assert fused == pytest.approx({"a": 0.0, "b": 0.35, "c": 0.7, "d": 0.3})
    assert ranked(fused) == ["c", "b", "d", "a"]


def test_wsum_with_a_lone_match():
    fused = wsum([{"a": 12.3}, {"a": 0.2, "b": 0.6, "c": 0.4}], [0.7, 0.3])
    assert fused == pytest.approx({"a": 0.7 + 0.0, "b": 0.3, "c": 0.15})


def test_ranked_breaks_ties_by_first_appearance():
    assert ranked({"b": 1.0, "a": 2.0, "c": 1.0}) == ["a", "b", "c"]
    assert ranked({}) == []


def test_inputs_are_not_mutated():
    runs = [{"a": 1.0, "b": 3.0}, {"b": 0.2, "c": 0.9}]
    before = copy.deepcopy(runs)
    rrf(runs)
    wsum(runs, [0.5, 0.5])
    min_max(runs[0])
    assert runs == before
    assert rrf(runs) is not runs[0] and wsum(runs, [1, 1]) is not runs[0]


# --- agreement with ranx ---------------------------------------------------------------


@pytest.fixture(scope="module")
def ranx():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ranx import Run, fuse
    return Run, fuse


def _random_runs(seed: int) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    docs = [f"d{i}" for i in range(int(rng.integers(4, 30)))]
    runs = []
    for scale in (30.0, 1.0):  # a BM25-like and a cosine-like run
        n = int(rng.integers(2, len(docs) + 1))
        picked = rng.choice(docs, size=n, replace=False)
        scores = rng.uniform(-0.2, 1.0, size=n) * scale
        runs.append({str(d): float(s) for d, s in zip(picked, scores)})
    return runs


def _ranx_fuse(ranx, runs, **kw) -> dict[str, float]:
    Run, fuse = ranx
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fuse([Run({"q": r}) for r in runs], norm="min-max", **kw)
    return dict(out.to_dict()["q"])


@pytest.mark.parametrize("seed", range(25))
def test_agrees_with_ranx_on_random_runs(ranx, seed):
    runs = _random_runs(seed)
    assert all(len(set(r.values())) > 1 for r in runs)  # not all equal: min-max is defined the same way
    ours = rrf(runs, k=60)
    theirs = _ranx_fuse(ranx, runs, method="rrf", params={"k": 60})
    assert ours.keys() == theirs.keys()
    for d in ours:
        assert ours[d] == pytest.approx(theirs[d], rel=1e-9, abs=1e-12)

    weights = [0.7, 0.3]
    ours = wsum(runs, weights)
    theirs = _ranx_fuse(ranx, runs, method="wsum", params={"weights": weights})
    assert ours.keys() == theirs.keys()
    for d in ours:
        assert ours[d] == pytest.approx(theirs[d], rel=1e-7, abs=1e-9)
    # the fused ranking agrees wherever the scores are not (near-)tied
    order = ranked(ours)
    for better, worse in zip(order, order[1:]):
        assert theirs[better] >= theirs[worse] - 1e-9


def test_constant_run_differs_from_ranx_as_documented(ranx):
    runs = [{"a": 2.0, "b": 2.0}, {"a": 5.0, "c": 1.0}]
    theirs = _ranx_fuse(ranx, runs, method="wsum", params={"weights": [1.0, 1.0]})
    ours = wsum(runs, [1.0, 1.0])
    # ranx: the constant run contributes 0; ours: it contributes 1 to each of its docs
    assert theirs == pytest.approx({"a": 1.0, "b": 0.0, "c": 0.0})
    assert ours == pytest.approx({"a": 2.0, "b": 1.0, "c": 0.0})
    assert all(math.isclose(ours[d] - theirs[d], 1.0 if d in runs[0] else 0.0) for d in ours)
