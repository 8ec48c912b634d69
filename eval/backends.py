"""``python -m eval backends``: the same seed-corpus index on every backend, same answers?

The seed index (bundled encoder, exact/flat dense search) is written to the folder, Milvus
Lite and Qdrant local; every seed gold question is asked in each mode through the same
:class:`~rag.search.Searcher`. Reported per backend: hit@1 / MRR@10 (ranx) and how many
top-10 lists are identical to the folder's. Then HNSW against flat: recall@10 of the dense
chunk leg on the seed index and on 10k synthetic chunks (:func:`eval.scale.synthesize`),
FAISS and Milvus Lite. Writes ``eval/results/backends.{md,json}``.
"""

from __future__ import annotations

import importlib.util
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from eval import metrics, report
from eval.datasets import load_seed
from eval.runner import CachingEncoder, run_mode
from ingest.pipeline import build
from rag.backends import open_index, write_index
from rag.dense import DenseIndex
from rag.encoders import load_encoder
from rag.search import MODES, Searcher

NEEDS = {"folder": (), "milvus-lite": ("pymilvus", "milvus_lite"), "qdrant-local": ("qdrant_client",)}


def setting_for(kind: str, folder: Path) -> str:
    """Where a benchmark puts backend ``kind``'s index inside ``folder``."""
    return {"folder": str(folder / "index"), "milvus-lite": str(folder / "index.db"),
            "qdrant-local": f"qdrant+local://{folder.resolve() / 'qdrant'}"}[kind]


def available(kind: str) -> str | None:
    """``None`` if backend ``kind`` can run here, else why not."""
    if kind not in NEEDS:
        raise ValueError(f"backend must be one of {', '.join(NEEDS)}, got {kind!r}")
    missing = [m for m in NEEDS[kind] if importlib.util.find_spec(m) is None]
    return f"{', '.join(missing)} not installed" if missing else None


def recall_at(approx: list[list[int]], exact: list[list[int]], k: int = 10) -> float:
    """Mean share of the exact top ``k`` that the approximate top ``k`` found."""
    return float(np.mean([len(set(a[:k]) & set(e[:k])) / max(1, len(e[:k])) for a, e in zip(approx, exact)]))


def _hnsw_recall(vectors: np.ndarray, queries: np.ndarray, tmp: Path, label: str) -> dict:
    flat = DenseIndex(vectors, kind="flat")
    exact = [flat.top(q, 10)[0].tolist() for q in queries]
    hnsw = DenseIndex(vectors, kind="hnsw")
    out = {"vectors": len(vectors), "queries": len(queries),
           "faiss_hnsw_recall@10": recall_at([hnsw.top(q, 10)[0].tolist() for q in queries], exact)}
    if available("milvus-lite") is None:
        from rag.backends import new_backend
        from rag.backends.base import Row

        be = new_backend(str(tmp / f"hnsw-{label}.db"), dim=vectors.shape[1], manifest={}, hnsw=True)
        be.upsert([Row(i, "d", v, {}) for i, v in enumerate(vectors)])
        be.engine.settle(be.name("chunks"), len(vectors), vectors[0])
        out["milvus_lite_hnsw_recall@10"] = recall_at([be.dense_top(q, 10)[0].tolist() for q in queries], exact)
        be.drop()
    return out


def main(*, out: Path, encoder: str = "e5-small", backends: tuple[str, ...] = tuple(NEEDS)) -> int:
    warnings.simplefilter("ignore")
    enc = CachingEncoder(load_encoder(encoder))
    ds = load_seed()
    index = build(ds.docs, enc, faiss="flat", progress=False)
    enc.save()
    qrels = ds.qrels(index.chunks)
    rows, runs, skipped = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="eval-backends-") as tmp:
        tmp = Path(tmp)
        for kind in backends:
            why = available(kind)
            if why:
                skipped[kind] = why
                continue
            setting = setting_for(kind, tmp)
            t = time.perf_counter()
            write_index(index, setting)
            write_s = time.perf_counter() - t
            t = time.perf_counter()
            s = Searcher(open_index(setting), encoder=enc)
            open_s = time.perf_counter() - t
            row = {"write_s": write_s, "open_s": open_s}
            runs[kind] = {}
            for mode in MODES:
                hits = {q.qid: [h.chunk.id for h in s.search(q.text, k=10, mode=mode)] for q in ds.queries}
                runs[kind][mode] = hits
                run = {qid: {c: float(10 - r) for r, c in enumerate(ids)} for qid, ids in hits.items()}
                sc = metrics.score(qrels, run)
                row[f"{mode}_hit@1"] = sc["hit@1"]
                row[f"{mode}_mrr@10"] = sc["mrr@10"]
                base = runs.get("folder", {}).get(mode)
                row[f"{mode}_same_top10"] = (sum(hits[q] == base[q] for q in hits) / len(hits)) if base else None
            mr = run_mode(s, ds, s.default_mode, progress=False)
            row["default_mode"] = s.default_mode
            row["default_p50_ms"] = float(np.percentile(mr.latencies_ms, 50))
            rows[kind] = row
            print(kind, row, flush=True)
        qv = np.vstack([enc.encode([q.text], query=True)[0] for q in ds.queries])
        hnsw = {"seed": _hnsw_recall(index.dense.vectors, qv, tmp, "seed")}
        from eval.scale import synthesize

        big, _ = synthesize([index], 10_000)
        hnsw["synthetic-10k"] = _hnsw_recall(big.dense.vectors, qv, tmp, "10k")
        print(hnsw, flush=True)
    enc.save()
    cols = ["write_s", "open_s", "default_p50_ms"] + [f"{m}_{x}" for m in MODES for x in ("hit@1", "same_top10")]
    md = ["# Backends: the same index on every engine", "",
          f"Command: `python -m eval backends`. Seed gold set ({len(ds.queries)} questions), encoder {enc.id}, "
          "exact (flat) dense search; `same_top10` = share of questions whose top-10 chunk list equals the folder's "
          "(order included). Timings on a shared 2-core machine (noisy).", "",
          report.table(rows, tuple(cols), "backend"), ""]
    if skipped:
        md += [f"Skipped: {', '.join(f'{k} ({v})' for k, v in skipped.items())}", ""]
    md += ["## HNSW against flat (recall@10 of the dense chunk leg, seed questions as queries)", "",
           "| vectors | FAISS HNSW (M=32, efSearch=128) | Milvus Lite HNSW (M=32, ef=128) |", "|---|---|---|"]
    for name, h in hnsw.items():
        md.append(f"| {name} ({h['vectors']:,}) | {h['faiss_hnsw_recall@10']:.4f} | "
                  f"{h.get('milvus_lite_hnsw_recall@10', float('nan')):.4f} |")
    md.append("")
    out.mkdir(parents=True, exist_ok=True)
    (out / "backends.md").write_text("\n".join(md), encoding="utf-8")
    report.write_json(out / "backends.json", {"encoder": enc.id, "rows": rows, "hnsw": hnsw, "skipped": skipped})
    print("\n".join(md))
    return 0
