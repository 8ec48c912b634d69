"""``python -m eval beir-scale``: BEIR-style runs (every mode, runs 100 deep, nDCG@10 and
recall@100) over 10k and 100k synthetic passages.

The passages come from :func:`eval.scale.synthesize` (one passage per document): each copies a
real JSQuAD or CMRC 2018 passage's text, tokens and a perturbed copy of its real vectors, so no
encoding is needed (encoding 100k passages and their sentences with the bundled encoder on
2 cores would take hours; its cost is estimated from the measured rate instead). The queries
are held-out JSQuAD / CMRC questions; a passage is relevant when it copies a passage of the
question's own context. Reports index build time (no encoding), peak and added memory, and
queries per second per mode. Writes ``beir_scale.{md,json}``.
"""

from __future__ import annotations

import random
import time
import warnings
from pathlib import Path

from eval import report
from eval.datasets import BENCHMARKS, Dataset, load_squad
from eval.metrics import DEEP_METRICS
from eval.runner import CachingEncoder, build_index, evaluate_modes
from eval.scale import _rss_mb, peak_mb, reset_peak, sources, synthesize
from rag.encoders import load_encoder
from rag.search import MODES, Searcher

SIZES = (10_000, 100_000)
QUERIES = 200


def synthetic_set(bases, sets: list[Dataset], n: int, n_queries: int, seed: int = 0) -> Dataset:
    """The queries of ``sets`` (test halves) with qrels on the synthetic copies of their passages."""
    copies: dict[tuple[int, str], list[str]] = {}
    for j, (k, i) in enumerate(sources(bases, n, seed)):
        copies.setdefault((k, bases[k].chunks[i].doc_id), []).append(f"synthetic/{j:05d}")
    queries, grades = [], {}
    for k, ds in enumerate(sets):
        for q in ds.subset("test").queries:
            rel = [d for gold in ds.gold_docs[q.qid] for d in copies.get((k, gold), [])]
            if rel:
                queries.append(q)
                grades[q.qid] = {d: 1 for d in rel}
    queries = sorted(random.Random(seed).sample(queries, min(n_queries, len(queries))), key=lambda q: q.qid)
    keep = {q.qid for q in queries}
    return Dataset(f"synthetic-{n}", [], queries, "doc", gold_docs={q: set(g) for q, g in grades.items() if q in keep},
                   doc_grades={q: g for q, g in grades.items() if q in keep})


def main(*, out: Path, quick: bool = False, encoder: str = "e5-small",
         command: str = "python -m eval beir-scale") -> int:
    warnings.simplefilter("ignore")
    enc = CachingEncoder(load_encoder(encoder), cache_queries=True)
    sets = [load_squad(path, name) for name, path in BENCHMARKS.items()]
    bases = [build_index(ds, enc, progress=True).index for ds in sets]
    enc.save()
    sample = [c.text for c in bases[0].chunks[:32]]
    enc.inner.encode(sample[:4], query=False)  # warm-up
    t = time.perf_counter()
    enc.inner.encode(sample, query=False)
    rate = len(sample) / (time.perf_counter() - t)
    warm = Searcher(bases[0], encoder=enc)  # lazy imports and models load here, not inside a measured size
    for m in MODES:
        warm.search(sets[0].queries[0].text, k=10, mode=m)
    del warm
    rows, quality = {}, {}
    for n in SIZES[:1] if quick else SIZES:
        ds = synthetic_set(bases, sets, n, QUERIES)
        before = _rss_mb()
        reset_peak()
        t = time.perf_counter()
        index, timings = synthesize(bases, n, per_doc=1)
        build_s = time.perf_counter() - t
        searcher = Searcher(index, encoder=enc)
        for q in ds.queries:  # query vectors computed once up front: queries/s measures the index, not the encoder
            searcher.make_query(q.text)
        res = evaluate_modes(searcher, ds, MODES, progress=True, k=100, metric_names=DEEP_METRICS)
        peak = peak_mb()
        row = {"passages": n, "sentences": timings["sentences"], "queries": len(ds.queries), "build_s": build_s,
               "bm25_build_s": timings["bm25_build_s"],
               "faiss_build_s": timings["faiss_build_s"] + timings["faiss_sentences_build_s"],
               "faiss_kind": timings["faiss_kind"], "rss_before_mb": before, "peak_rss_mb": peak,
               "peak_added_mb": peak - before, "encode_est_h": (n + timings["sentences"]) / rate / 3600}
        for m, s in res["modes"].items():
            row[f"{m}_qps"] = len(s["latencies_ms"]) / (sum(s["latencies_ms"]) / 1000)
            quality[f"{n:,} / {m}"] = {k: s[k] for k in ("ndcg@10", "recall@100", "mrr@10", "hit@1", "hit@5")}
        rows[f"{n:,}"] = row
        print(row, flush=True)
        enc.save()
        del searcher, index
    cols = ("sentences", "queries", "build_s", "bm25_build_s", "faiss_build_s", "faiss_kind", "rss_before_mb",
            "peak_rss_mb", "peak_added_mb", "encode_est_h", *(f"{m}_qps" for m in MODES))
    pool = sum(len(b.chunks) for b in bases)
    md = ["# BEIR-style runs at scale", "",
          f"Command: `{command}`. **The passages are synthetic**: {' and '.join(rows)} passages "
          f"(one per document, as in BEIR) drawn with replacement from the {pool:,} real JSQuAD and CMRC 2018 "
          "passages (`eval.scale.synthesize`, the scale target's generator): each copies a real passage's text and "
          "tokens (plus a tag token of its own) and a perturbed copy of its real e5-small vectors (passage and "
          "sentences). Nothing is encoded: `encode_est_h` is the hours the bundled encoder would need for the "
          f"passages and their sentences at the {rate:.1f} texts/s measured in this run. The queries are real: "
          f"{QUERIES} held-out (test-half) JSQuAD/CMRC questions; relevant = every copy of the question's own passage.", "",
          "`build_s` = making the copies + BM25 + FAISS (passages and sentences), no encoding; `rss_before_mb` = the "
          "process before the build (encoder and the two real indexes loaded); `peak_rss_mb` = the process's peak "
          "from the build to the last query (peak mark reset before each size), `peak_added_mb` = that peak less "
          "`rss_before_mb`. queries/s = sequential, warm, one query at a time; a query is a 10-deep search (the "
          "@10 figures) plus a 100-deep one (the rest of the 100-deep run, as `eval beir` does); query vectors "
          "computed beforehand (the encoder's cost is its rate above). 2 cores shared with other jobs: "
          "timings are noisy.", "",
          report.table(rows, cols, "passages"), "", "Quality on the synthetic sets (many near-copies per relevant "
          "passage, so these are not comparable with real BEIR figures):", "",
          report.table(quality, ("ndcg@10", "recall@100", "mrr@10", "hit@1", "hit@5"), "passages / mode"), ""]
    out.mkdir(parents=True, exist_ok=True)
    (out / "beir_scale.md").write_text("\n".join(md), encoding="utf-8")
    report.write_json(out / "beir_scale.json", {"encoder_texts_per_s": rate, "rows": rows, "quality": quality})
    print("\n".join(md))
    return 0
