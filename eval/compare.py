"""``python -m eval compare RUN… --qrels FILE``: score TREC run files from any system (ours,
Pyserini, a vector database) on one qrels file, with paired significance (ranx.compare,
Fisher's randomisation test, p < 0.05).

Runs are TREC run files (``qid Q0 docid rank score tag``); qrels are TREC qrels
(``qid 0 docid grade``) or BEIR ``qrels/*.tsv`` (``query-id  corpus-id  score`` with a header).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from eval.lines import qrels_lines
from eval.metrics import NAMES

METRICS = ("ndcg@10", "recall@100", "mrr@10", "hit_rate@1", "hit_rate@5")


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """TREC or BEIR qrels as ``{qid: {docid: grade}}`` (grades <= 0 dropped: judged not relevant)."""
    out: dict[str, dict[str, int]] = {}
    for _, qid, did, grade in qrels_lines(path):
        if grade > 0:
            out.setdefault(qid, {})[did] = grade
    if not out:
        raise ValueError(f"{Path(path).name}: no relevant judgements")
    return out


def read_run(path: Path) -> tuple[str, dict[str, dict[str, float]]]:
    """A TREC run file as ``(tag, {qid: {docid: score}})``."""
    run: dict[str, dict[str, float]] = {}
    tags = set()
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 6:
            raise ValueError(f"{Path(path).name}:{n}: expected `qid Q0 docid rank score tag`")
        qid, _, did, _, score, tag = parts
        try:
            run.setdefault(qid, {})[did] = float(score)
        except ValueError:
            raise ValueError(f"{Path(path).name}:{n}: score {score!r} is not a number") from None
        tags.add(tag)
    if not run:
        raise ValueError(f"{Path(path).name}: empty run")
    return (tags.pop() if len(tags) == 1 else Path(path).stem), run


def compare_runs(qrels: dict, runs: dict[str, dict], metrics=METRICS):
    """The ranx report (scores and paired p-values) of ``runs`` on ``qrels``; queries a run
    lacks count as misses (ranx ``make_comparable``)."""
    import ranx

    q = ranx.Qrels(qrels)
    objs = []
    for name, run in runs.items():
        r = ranx.Run({qid: docs for qid, docs in run.items() if qid in qrels} or {"__none__": {"__none__": 0.0}},
                     name=name)
        objs.append(r)
    return ranx.compare(q, objs, metrics=list(metrics), stat_test="fisher", max_p=0.05, make_comparable=True,
                        rounding_digits=4)


def main(paths: list[Path], *, qrels: Path | None, as_json: bool = False) -> int:
    if qrels is None or not paths:
        print("error: `python -m eval compare RUN… --qrels FILE` needs run files and a qrels file", file=sys.stderr)
        return 2
    try:
        judged = read_qrels(qrels)
        runs: dict[str, dict] = {}
        for p in paths:
            name, run = read_run(p)
            runs[name if name not in runs else Path(p).stem] = run
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rep = compare_runs(judged, runs)
    if as_json:
        d = rep.to_dict()
        modes = {n: {NAMES.get(m, m): float(v) for m, v in d[n]["scores"].items()} for n in runs}
        pvals = {n: {o: float(v[METRICS[0]]) for o, v in d[n]["comparisons"].items()} for n in runs}
        print(json.dumps({"modes": modes, "default_mode": None, "n_queries": len(judged),
                          "p_values_" + METRICS[0]: pvals}, ensure_ascii=False))
    else:
        print(f"{len(judged)} judged queries; superscripts: significantly better (p < 0.05, paired randomisation test) "
              "than the numbered runs")
        print(rep)
    return 0
