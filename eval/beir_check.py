"""``python -m eval beir-check``: the shipped JSQuAD and CMRC 2018 sets through both readers.

Each SQuAD-format file is scored as usual (``load_squad``, runs 10 deep) and, converted to a
BEIR folder (:func:`eval.beir.squad_to_beir`), through the BEIR path (the reader, the
content-hash index cache, runs 100 deep: the first ten units from the same default-depth search
as the SQuAD path, the rest from a 100-deep search, see :func:`eval.runner.run_mode`). The two
must agree (nDCG@10 within 0.002 per mode),
and the default mode must not lose to BM25 on nDCG@10. Writes ``beir_check.{md,json}`` and
the BEIR path's TREC runs (``eval/runs/beir-check/<set>-beir-test.<mode>.run``), whose nDCG@10 re-computed by
ranx from the files is reported beside the in-memory figure.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from eval import report
from eval.beir import load_beir, squad_to_beir
from eval.datasets import BENCHMARKS, load_squad
from rag.search import MODES

TOLERANCE = 0.002
SHARED = ("ndcg@10", "mrr@10", "hit@1", "hit@5", "recall@10")  # scored by both paths


def ndcg_from_files(qrels_file: Path, run_file: Path) -> float:
    """nDCG@10 as ranx computes it from a saved TREC qrels and run file (the interoperability check)."""
    import ranx

    q = ranx.Qrels.from_file(str(qrels_file), kind="trec")
    r = ranx.Run.from_file(str(run_file), kind="trec")
    return float(ranx.evaluate(q, r, "ndcg@10", make_comparable=True))


def main(*, out: Path, runs: Path, encoder: str = "e5-small", limit: int | None = None,
         names: list[str] | None = None, command: str = "python -m eval beir-check") -> int:
    """``runs``: where the TREC files go (large: 100 passages per query and mode; not committed)."""
    from eval.cli import json_payload, load_encoder_id, run_sets
    from rag.tuned import load_tuned

    rows, data = {}, {}
    default = load_tuned(load_encoder_id(encoder)).default_mode
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in BENCHMARKS.items():
            if names and name not in names:
                continue
            squad = run_sets([load_squad(path, name)], list(MODES), split="test", limit=limit,
                             encoder_name=encoder, progress=True, cache_queries=True)
            beir = run_sets([load_beir(squad_to_beir(path, Path(tmp) / name), f"{name}-beir")], list(MODES),
                            split="test", limit=limit, encoder_name=encoder, progress=True, deep=True, cache_queries=True)
            r = beir[f"{name}-beir"]
            report.write_trec(runs, f"{name}-beir-test", r["_qrels"], r["_runs"])
            a = json_payload(squad, default)["modes"]
            b = json_payload(beir, default)["modes"]
            for m in MODES:
                from_file = ndcg_from_files(runs / f"{name}-beir-test.qrels",
                                            runs / f"{name}-beir-test.{m}.run")
                rows[f"{name} / {m}"] = {
                    "queries": b[m]["queries"],
                    "squad ndcg@10": a[m]["ndcg@10"], "beir ndcg@10": b[m]["ndcg@10"],
                    "abs diff": abs(a[m]["ndcg@10"] - b[m]["ndcg@10"]),
                    "max diff, shared metrics": max(abs(a[m][k] - b[m][k]) for k in SHARED),
                    "ranx from run file": from_file,
                    "beir recall@100": b[m]["recall@100"], "beir mrr@10": b[m]["mrr@10"],
                    "beir hit@1": b[m]["hit@1"], "beir hit@5": b[m]["hit@5"],
                }
            data[name] = {"squad": a, "beir": b, "default_mode": default,
                          "default_minus_bm25_ndcg@10": b[default]["ndcg@10"] - b["bm25"]["ndcg@10"]}
    worst = max(r["abs diff"] for r in rows.values())
    worst_shared = max(r["max diff, shared metrics"] for r in rows.values())
    file_gap = max(abs(r["ranx from run file"] - r["beir ndcg@10"]) for r in rows.values())
    md = ["# JSQuAD and CMRC 2018 through the BEIR reader", "",
          f"Command: `{command}`. Encoder `{encoder}`; default mode `{default}`; held-out (test) "
          "halves" + (f" (at most {limit} questions per set, the same sample on both paths)" if limit else "")
          + ". `squad` = the SQuAD-format path; `beir` = the same file converted with "
          "`python -m eval to-beir` and scored by `python -m eval beir` (runs 100 deep: the top ten from the same "
          "default-depth search as the SQuAD path, so the fused pool behind the @10 figures is the same; ranks "
          "11-100 from a 100-deep search). "
          f"Largest nDCG@10 difference between the paths: {worst:.4f} (tolerance {TOLERANCE}); over all the "
          f"metrics both paths score ({', '.join(SHARED)}): {worst_shared:.4f}; largest difference "
          f"between the report's nDCG@10 and ranx's from the saved TREC run: {file_gap:.2g}.", "",
          report.table(rows, tuple(next(iter(rows.values()))), "set / mode"), ""]
    md += [f"Default mode minus BM25 on nDCG@10 (beir path): "
           + "; ".join(f"{n} {d['default_minus_bm25_ndcg@10']:+.4f}" for n, d in data.items()), ""]
    out.mkdir(parents=True, exist_ok=True)
    (out / "beir_check.md").write_text("\n".join(md), encoding="utf-8")
    report.write_json(out / "beir_check.json", {"rows": rows, "sets": data, "max_abs_diff": worst,
                                                "max_abs_diff_shared_metrics": worst_shared,
                                                "max_file_gap": file_gap})
    print("\n".join(md))
    return 0 if worst <= TOLERANCE else 1
