"""``python -m eval scale``: cost of the index at 1k / 10k / 100k chunks.

The synthetic corpus is generated from the real chunks of the three benchmark corpora:
chunk ``i`` copies a real chunk's text and tokens (plus a tag token of its own) and a
perturbed copy of its vectors, so the BM25 postings and the vector geometry look like real
data. Encoding is measured separately (texts per second of the bundled encoder) rather
than re-encoding 100k near-duplicates. Writes ``eval/results/scale.{md,json,png}``.
"""

from __future__ import annotations

import dataclasses
import resource
import time
import warnings
from pathlib import Path

import numpy as np

from eval import report
from eval.datasets import default_sets
from eval.runner import CachingEncoder, build_index
from rag.bm25 import BM25Index
from rag.dense import DenseIndex
from rag.encoders import DEFAULT_ENCODER, load_encoder
from rag.facts import IndexFacts, vocabulary_by_language
from rag.index import Index
from rag.search import MODES, Searcher

SIZES = (1_000, 10_000, 100_000)
QUERIES = 200


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _perturb(v: np.ndarray, rng: np.random.Generator, scale: float = 0.35) -> np.ndarray:
    x = v + rng.normal(0, scale / np.sqrt(v.shape[-1]), v.shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def sources(bases: list[Index], n: int, seed: int = 0) -> list[tuple[int, int]]:
    """``(base number, chunk row)`` that synthetic chunk ``j`` copies (the same draw as :func:`synthesize`)."""
    pool = [(k, i) for k, b in enumerate(bases) for i in range(len(b.chunks))]
    return [pool[p] for p in np.random.default_rng(seed).integers(0, len(pool), n)]


def synthesize(bases: list[Index], n: int, seed: int = 0, *, per_doc: int = 20) -> tuple[Index, dict]:
    """``n`` synthetic chunks, ``per_doc`` to a document (1: every passage its own document, as in BEIR)."""
    rng = np.random.default_rng(seed)
    pool = [(b, i) for b in bases for i in range(len(b.chunks))]
    picks = rng.integers(0, len(pool), n)
    chunks, tokens, vecs, heads, units, counts, spans, kinds = [], [], [], [], [], [], [], []
    for j, p in enumerate(picks):
        b, i = pool[p]
        c = b.chunks[i]
        chunks.append(dataclasses.replace(c, id=f"s{j:06d}", doc_id=f"synthetic/{j // per_doc:05d}", parallel=None))
        tokens.append(b.bm25.tokens[i] + [f"syn{j % 997}"])
        vecs.append(b.dense.vectors[i])
        heads.append(b.heads[i])
        u = b.chunk_units(i)
        units.append(u)
        spans.append(b.chunk_unit_spans(i))
        kinds.append(b.facts.unit_kinds[b.unit_offsets[i] : b.unit_offsets[i + 1]])
        counts.append(len(u))
    timings = {}
    t = time.perf_counter()
    bm25 = BM25Index(tokens, analyzer=bases[0].bm25.analyzer)
    timings["bm25_build_s"] = time.perf_counter() - t
    t = time.perf_counter()
    dense = DenseIndex(_perturb(np.vstack(vecs), rng), kind="auto")
    _ = dense.index
    timings["faiss_build_s"] = time.perf_counter() - t
    all_units = _perturb(np.vstack(units), rng)
    index = Index(
        manifest={**bases[0].manifest, "faiss": dense.kind},
        documents={},
        chunks=chunks,
        bm25=bm25,
        dense=dense,
        heads=np.vstack(heads),
        units=all_units,
        unit_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        unit_spans=np.vstack(spans),
        # synthetic chunks have no documents: the facts come from the chunks they copy
        facts=IndexFacts(unit_kinds=np.concatenate(kinds), question_lists=frozenset(),
                         vocabulary=vocabulary_by_language(chunks, tokens),
                         quotable_text="", squashed_notes="", answer_text=""),
    )
    t = time.perf_counter()
    _ = index.unit_dense.index
    timings["faiss_sentences_build_s"] = time.perf_counter() - t
    timings["faiss_kind"] = dense.kind
    timings["sentences"] = int(len(all_units))
    return index, timings


def main(*, out: Path, quick: bool = False, encoder: str = DEFAULT_ENCODER) -> int:
    warnings.simplefilter("ignore")
    enc = CachingEncoder(load_encoder(encoder))
    sets = default_sets()
    seed = sets[0]
    bases = [build_index(ds, enc, progress=False).index for ds in sets]
    enc.save()
    raw = enc.inner
    sample = [c.text for c in bases[0].chunks[:64]]
    raw.encode(sample[:8], query=False)  # warm-up
    t = time.perf_counter()
    raw.encode(sample, query=False)
    enc_rate = len(sample) / (time.perf_counter() - t)
    queries = [q.text for q in seed.queries][:QUERIES]
    sizes = SIZES[:2] if quick else SIZES
    rows = {}
    for n in sizes:
        before = _rss_mb()
        t = time.perf_counter()
        index, timings = synthesize(bases, n)
        build_s = time.perf_counter() - t
        s = Searcher(index, encoder=enc)
        row = {"chunks": n, "build_s": build_s, **timings, "rss_mb_delta": _rss_mb() - before,
               "encode_est_s": (n + timings["sentences"]) / enc_rate}
        for mode in MODES:
            s.search(queries[0], k=10, mode=mode)
            lat = [s.timed_search(q, k=10, mode=mode)[1] for q in queries]
            row[f"{mode}_p50_ms"] = float(np.percentile(lat, 50))
            row[f"{mode}_p95_ms"] = float(np.percentile(lat, 95))
        rows[f"{n:,}"] = row
        print(rows[f"{n:,}"], flush=True)
        del s, index
    cols = ("build_s", "bm25_build_s", "faiss_build_s", "faiss_sentences_build_s", "faiss_kind", "rss_mb_delta",
            "encode_est_s") + tuple(f"{m}_{p}_ms" for m in MODES for p in ("p50", "p95"))
    md = ["# Scale check", "", "Command: `python -m eval scale`. Synthetic chunks generated from the real ones "
          f"(see `eval/scale.py`); {len(queries)} seed queries per mode, warm; 2 cores. `encode_est_s` = chunks and "
          f"sentences at the bundled encoder's measured {enc_rate:.0f} texts/s (encoding is the dominant ingest cost).", "",
          report.table(rows, cols, "chunks"), "", "![scale](scale.png)", ""]
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale.md").write_text("\n".join(md))
    report.write_json(out / "scale.json", {"encoder_texts_per_s": enc_rate, "rows": rows})
    _plot(rows, out / "scale.png")
    print("\n".join(md))
    return 0


def _plot(rows: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [r["chunks"] for r in rows.values()]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for m in MODES:
        axes[0].plot(ns, [r[f"{m}_p50_ms"] for r in rows.values()], marker="o", label=f"{m} p50")
    axes[0].set(xscale="log", yscale="log", xlabel="chunks", ylabel="ms per query", title="search latency")
    axes[0].legend(fontsize=7)
    axes[1].plot(ns, [r["build_s"] for r in rows.values()], marker="o", label="index build (no encoding)")
    axes[1].plot(ns, [r["encode_est_s"] for r in rows.values()], marker="s", label="encoding (estimated)")
    axes[1].set(xscale="log", yscale="log", xlabel="chunks", ylabel="seconds", title="build cost")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
