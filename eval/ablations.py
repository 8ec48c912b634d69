"""``python -m eval ablations``: the analyzers and chunk sizes considered, side by side, on the
dev halves (every mode), plus BM25's k1/b. Writes ``eval/results/ablations.{md,json}``."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

from eval import metrics, report
from eval.datasets import default_sets
from eval.runner import CachingEncoder, build_index, evaluate_modes
from rag import config
from rag.analyze import ANALYZERS
from rag.bm25 import BM25Index
from rag.encoders import DEFAULT_ENCODER, load_encoder
from rag.search import MODES, Searcher

CHUNK_SIZES = (400, 800, 1200)
BM25_PARAMS = ((0.9, 0.4), (1.2, 0.75), (1.5, 0.75), (2.0, 0.75), (1.2, 0.9))
SQUAD_LIMIT = 600  # dev queries per SQuAD set: enough to separate settings, quick to run


def _row(res: dict) -> dict:
    return {m: {k: v for k, v in r.items() if k not in ("by", "latencies_ms")} for m, r in res["modes"].items()}


def main(*, limit: int | None = None, out: Path, encoder: str = DEFAULT_ENCODER) -> int:
    warnings.simplefilter("ignore")
    t0 = time.time()
    enc = CachingEncoder(load_encoder(encoder))
    sets = default_sets()
    results: dict[str, dict] = {}
    for ds in sets:
        dev = ds.subset("dev", limit if limit is not None else (None if ds.name == "seed" else SQUAD_LIMIT))
        sizes = CHUNK_SIZES if ds.name != "jsquad" else (config.CHUNK_MAX_CHARS,)  # JSQuAD contexts are short
        for analyzer in ANALYZERS:
            for size in sizes:
                if analyzer != config.ANALYZER and size != config.CHUNK_MAX_CHARS:
                    continue  # one factor at a time around the default
                built = build_index(ds, enc, analyzer=analyzer, max_chars=size, progress=False)
                res = evaluate_modes(Searcher(built.index, encoder=enc), dev, list(MODES), progress=True)
                results[f"{ds.name} | {analyzer} | {size}"] = {"modes": _row(res), "chunks": len(built.index.chunks)}
                enc.save()
                if analyzer == config.ANALYZER and size == config.CHUNK_MAX_CHARS:
                    base = built
        qrels = dev.qrels(base.index.chunks)
        for k1, b in BM25_PARAMS:
            idx = base.index
            idx.bm25 = BM25Index(idx.bm25.tokens, analyzer=idx.bm25.analyzer, k1=k1, b=b)
            s = Searcher(idx, encoder=enc, reranker="none")
            from eval.runner import run_mode

            run = run_mode(s, dev, "bm25", progress=False).run
            results[f"{ds.name} | bm25 k1={k1} b={b}"] = {"modes": {"bm25": metrics.score(qrels, run)}}
    md = ["# Ablations on the dev halves", "",
          f"Command: `python -m eval ablations --encoder {encoder}` ({time.time() - t0:.0f} s). Default: analyzer "
          f"`{config.ANALYZER}`, chunks ≤ {config.CHUNK_MAX_CHARS} characters; one factor varied at a time. "
          f"SQuAD sets: {SQUAD_LIMIT} dev queries each.", ""]
    rows = {f"{k} | {m}": v for k, r in results.items() for m, v in r["modes"].items()}
    md.append(report.table(rows, ("hit@1", "hit@5", "mrr@10", "ndcg@10", "latency_p50_ms"), "set | setting | mode"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablations.md").write_text("\n".join(md) + "\n")
    report.write_json(out / "ablations.json", results)
    print("\n".join(md))
    return 0
