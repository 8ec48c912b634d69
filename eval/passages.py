"""``python -m eval passages``: which passages after the first does an answer quote?

An answer quotes its first passage and, after it, each passage whose best sentence is within
``second_passage`` of the best (:func:`rag.extract.select`). Many of those hold none of the
question's key points (the *padding* of the answer benchmark). This fits a small logistic
model on the dev half of the answer benchmark that tells the ones that answer from the rest,
from :func:`rag.extract.passage_features`:

1. every dev question is answered with every candidate kept; each passage after the first that
   the answer cites is a sample, labelled by whether its quoted sentences hold a key point;
2. a logistic regression (standardised features, balanced classes) is fitted on those samples;
3. its threshold is the one with the least dev padding among those losing no dev answer (with
   every key point, with half) — none kept when every threshold loses one;
4. the held-out half is answered once with and once without the gate.

Written to ``eval/results/passages.{json,md}``; with ``--tune`` (and only when the held-out
half loses no answer and its padding falls) the gate is written to ``rag/tuned.json``
(``answer.extract.passage_gate``), which the answerer reads.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path

import numpy as np

import rag.extract as extract
from eval import report
from eval.answers import Item, covered, load_items, quoted, run, summarize
from eval.datasets import load_seed
from eval.runner import CachingEncoder, build_index
from rag.encoders import DEFAULT_ENCODER, load_encoder
from rag.search import Searcher
from rag.tuned import TUNED_FILE, load_tuned, save_tuned

KEEP_ALL = {"weights": {}, "bias": 60.0, "threshold": 0.0}  # computes the features, keeps every passage
THRESHOLDS = tuple(np.round(np.arange(0.05, 0.96, 0.05), 2))
COLS = ("all_points", "half_points", "padding", "offtopic_abstained", "wrongly_abstained")


def _with_gate(searcher: Searcher, gate: dict | None) -> None:
    base = searcher.tuned
    ex = {**((base.answer or {}).get("extract") or {}), "passage_gate": gate}
    searcher.tuned = dataclasses.replace(base, answer={**(base.answer or {}), "extract": ex})


def samples(searcher: Searcher, items: list[Item]) -> list[tuple[dict[str, float], bool, str]]:
    """(features, holds a key point, qid) for each passage after the first that an answer to
    one of ``items`` cites, every candidate kept."""
    seen: dict[int, dict[str, float]] = {}
    own = [False]
    compute = extract.passage_features

    def record(index, query, rows, row, units, best):
        f = compute(index, query, rows, row, units, best)
        if own[0]:
            seen[row] = f
        return f

    def before(item, is_own):
        own[0] = is_own
        if is_own:
            seen.clear()

    out = []
    _with_gate(searcher, KEEP_ALL)
    extract.passage_features = record
    try:
        for it in items:
            o = run(searcher, [it], progress=False, before=before)[0]
            if not o.answer.answered:
                continue
            by_id = {c.chunk.id: c for c in o.answer.citations}
            for row, f in seen.items():
                c = by_id.get(searcher.index.chunks[row].id)
                if c is not None:
                    out.append((f, any(covered(p, quoted(c)) for p in it.key_points), it.qid))
    finally:
        extract.passage_features = compute
    return out


def fit(rows: list[tuple[dict[str, float], bool, str]]) -> dict:
    from sklearn.linear_model import LogisticRegression

    names = extract.PASSAGE_FEATURES
    X = np.array([[f[k] for k in names] for f, _, _ in rows])
    y = np.array([int(lab) for _, lab, _ in rows])
    mu, sd = X.mean(axis=0), X.std(axis=0) + 1e-9
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000).fit((X - mu) / sd, y)
    w = model.coef_[0] / sd
    b = float(model.intercept_[0] - (model.coef_[0] * mu / sd).sum())
    return {"weights": dict(zip(names, map(float, w))), "bias": b}


def _scores(searcher: Searcher, items: list[Item], gate: dict | None) -> dict:
    _with_gate(searcher, gate)
    s = summarize(run(searcher, items, progress=False))
    return {k: float(s[k]) for k in COLS}


def main(*, out: Path, encoder: str = DEFAULT_ENCODER, do_tune: bool = False) -> dict:
    warnings.simplefilter("ignore")
    t0 = time.time()
    enc = CachingEncoder(load_encoder(encoder), cache_queries=False)
    index = build_index(load_seed(), enc, progress=False).index
    searcher = Searcher(index, encoder=enc)
    shipped = searcher.tuned
    items = load_items()
    dev = [i for i in items if i.split == "dev"]
    test = [i for i in items if i.split == "test"]
    on_dev = [i for i in dev if i.expect == "answer" and i.key_points]

    data = samples(searcher, on_dev)
    model = fit(data)
    searcher.tuned = dataclasses.replace(shipped, answer={**(shipped.answer or {}),
                                                          "extract": {**shipped.answer["extract"], "passage_gate": None}})
    base_dev = _scores(searcher, dev, None)
    grid = []
    for t in THRESHOLDS:
        grid.append({"threshold": float(t), **_scores(searcher, dev, {**model, "threshold": float(t)})})
    fair = [g for g in grid if g["all_points"] >= base_dev["all_points"] and g["half_points"] >= base_dev["half_points"]
            and g["wrongly_abstained"] <= base_dev["wrongly_abstained"]]
    chosen = min(fair, key=lambda g: (g["padding"], -g["threshold"])) if fair else None
    gate = {**model, "threshold": chosen["threshold"]} if chosen else None
    base_test = _scores(searcher, test, None)
    gated_test = _scores(searcher, test, gate) if gate else base_test
    gated_dev = {k: chosen[k] for k in COLS} if chosen else base_dev
    wins = bool(gate) and gated_test["all_points"] >= base_test["all_points"] and \
        gated_test["half_points"] >= base_test["half_points"] and gated_test["padding"] < base_test["padding"]
    res = {
        "encoder": enc.id, "seconds": round(time.time() - t0, 1),
        "samples": {"dev": len(data), "holding_a_key_point": int(sum(lab for _, lab, _ in data))},
        "model": model, "chosen_threshold": chosen["threshold"] if chosen else None,
        "dev": {"without": base_dev, "with": gated_dev}, "test": {"without": base_test, "with": gated_test},
        "held_out_wins": wins, "grid": grid,
    }
    if do_tune and wins:
        tuned = load_tuned(enc.id)
        ex = {**((tuned.answer or {}).get("extract") or {}), "passage_gate": gate}
        save_tuned(dataclasses.replace(tuned, answer={**(tuned.answer or {}), "extract": ex}), TUNED_FILE)
        res["written"] = str(TUNED_FILE)
    searcher.tuned = shipped
    _write(out, res)
    return res


def _write(out: Path, res: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / "passages.json", res)
    rows = {f"{half} {name}": res[half][key] for half in ("dev", "test") for name, key in
            (("without the gate", "without"), ("with the gate", "with"))}
    w = res["model"]["weights"]
    lines = [
        "# Passages after the first: a fitted gate (`python -m eval passages`)",
        "",
        f"Command: `python -m eval passages --encoder {res['encoder'].split('@')[0]}` ({res['seconds']:.0f} s). "
        f"Fitted on {res['samples']['dev']} cited passages after the first of the dev half's answers "
        f"({res['samples']['holding_a_key_point']} hold a key point); threshold chosen on dev "
        f"(least padding, no dev answer lost): {res['chosen_threshold']}. The test half is answered once "
        "with and once without it.",
        "",
        report.table(rows, cols=COLS, first="half"),
        "",
        f"Held out: {'the gate wins (no answer lost, less padding)' if res['held_out_wins'] else 'the gate does not win'}"
        + (f"; written to `{res['written']}`." if res.get("written") else "."),
        "",
        "Weights (raw features): " + ", ".join(f"{k} {v:+.2f}" for k, v in w.items()) + f", bias {res['model']['bias']:+.2f}.",
        "",
        "## Dev thresholds",
        "",
        report.table({str(g["threshold"]): g for g in res["grid"]}, cols=COLS, first="threshold"),
        "",
    ]
    (out / "passages.md").write_text("\n".join(lines), encoding="utf-8")
