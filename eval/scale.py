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


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _rss_mb() -> float:
    rss = _status_mb("VmRSS")
    return rss if rss is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> bool:
    """Start the process's peak-memory mark (VmHWM) afresh, so one step's peak can be read on its own."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_mb() -> float:
    """The process's peak resident memory since the last :func:`reset_peak` (since it started, if none)."""
    hwm = _status_mb("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _perturb(v: np.ndarray, rng: np.random.Generator, scale: float = 0.35) -> np.ndarray:
    x = v + rng.normal(0, scale / np.sqrt(v.shape[-1]), v.shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def sources(bases: list[Index], n: int, seed: int = 0) -> list[tuple[int, int]]:
    """``(base number, chunk row)`` that synthetic chunk ``j`` copies (the same draw as :func:`synthesize`)."""
    pool = [(k, i) for k, b in enumerate(bases) for i in range(len(b.chunks))]
    return [pool[p] for p in np.random.default_rng(seed).integers(0, len(pool), n)]


def synthesize(bases: list[Index], n: int, seed: int = 0, *, per_doc: int = 20, faiss: bool = True) -> tuple[Index, dict]:
    """``n`` synthetic chunks, ``per_doc`` to a document (1: every passage its own document, as in BEIR);
    ``faiss`` builds the folder's FAISS indexes now (timed), otherwise they are left to whoever
    serves the index."""
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
    if faiss:
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
    if faiss:
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


# --- the same 100k chunks on each index backend -------------------------------------------------

BACKEND_SIZE = 100_000
QDRANT_LOCAL_SIZE = 2_000  # local mode commits every point to SQLite on its own (measured below)


def _tree_rss_mb(pid: int) -> float:
    """RSS of a process's descendants (an engine's server process, if it runs one)."""
    total = 0.0
    try:
        kids = [int(k) for t in Path(f"/proc/{pid}/task").iterdir()
                for k in (t / "children").read_text().split()]
    except OSError:
        return 0.0
    for k in kids:
        try:
            for line in Path(f"/proc/{k}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
        total += _tree_rss_mb(k)
    return total


def measure_backend(kind: str, n: int, folder: Path, encoder: str = "e5-small") -> dict:
    """Build ``n`` synthetic chunks on backend ``kind`` in ``folder`` and time hybrid search
    (run in a fresh process per backend, so memory figures do not mix)."""
    import os

    from eval.backends import setting_for
    from eval.datasets import load_seed
    from ingest.pipeline import build
    from rag.backends import write_index
    from rag.backends.engine import attach

    warnings.simplefilter("ignore")
    enc = CachingEncoder(load_encoder(encoder))
    seed = load_seed()
    base = build(seed.docs, enc, faiss="flat", progress=False)
    queries = [q.text for q in seed.queries][:QUERIES]
    for q in queries:  # query vectors first: the timings below are search, not encoding
        enc.encode([q], query=True)
    enc.save()
    index, _ = synthesize([base], n, faiss=False)
    del base
    rss0 = _rss_mb()
    setting = setting_for(kind, folder)
    t = time.perf_counter()
    if kind == "folder":
        _ = index.dense.index, index.unit_dense.index  # FAISS builds
        write_index(index, setting)
        served = index
    else:
        from rag.backends import backend

        write_index(index, setting)
        served = attach(index, backend(setting))
    build_s = time.perf_counter() - t
    s = Searcher(served, encoder=enc)
    s.search(queries[0], k=10, mode="hybrid")
    lat = [s.timed_search(q, k=10, mode="hybrid")[1] for q in queries]
    disk = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return {"backend": kind, "chunks": n, "sentences": int(len(index.units)), "dense_kind": index.dense.kind,
            "build_s": build_s, "client_rss_mb": _rss_mb(), "client_rss_added_mb": _rss_mb() - rss0,
            "engine_process_rss_mb": _tree_rss_mb(os.getpid()), "disk_mb": disk / 2**20,
            "hybrid_p50_ms": float(np.percentile(lat, 50)), "hybrid_p95_ms": float(np.percentile(lat, 95)),
            "queries": len(lat)}


def compare_backends(*, out: Path, backends: tuple[str, ...], quick: bool = False, encoder: str = "e5-small",
                     size: int | None = None) -> int:
    """``python -m eval scale --backend …``: each backend in its own process, one table."""
    import json
    import subprocess
    import sys
    import tempfile

    from eval.backends import available

    n = size if size is not None else (10_000 if quick else BACKEND_SIZE)
    rows, notes = {}, []
    for kind in backends:
        why = available(kind)
        if why:
            notes.append(f"{kind}: skipped ({why})")
            continue
        m = min(n, QDRANT_LOCAL_SIZE) if kind == "qdrant-local" else n
        if m < n:
            notes.append(f"{kind}: {m:,} chunks, not {n:,} — local mode writes each point in its own SQLite "
                         "transaction (see the per-point figure in this row); `qdrant://` (a server) is the "
                         "path past that size")
        with tempfile.TemporaryDirectory(prefix=f"scale-{kind}-") as tmp:
            code = (f"import json, sys; from pathlib import Path; from eval.scale import measure_backend; "
                    f"print('RESULT ' + json.dumps(measure_backend({kind!r}, {m}, Path({tmp!r}), {encoder!r})))")
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            wall = time.perf_counter() - t
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode != 0 or not line:
            notes.append(f"{kind}: failed ({' '.join(proc.stderr.split()[-30:])})")
            continue
        row = json.loads(line[-1][len("RESULT "):])
        row["wall_s"] = wall
        row["build_ms_per_item"] = 1000 * row["build_s"] / (row["chunks"] + row["sentences"])
        rows[f"{kind} ({m:,})"] = row
        print(kind, row, flush=True)
    write_backends_report(rows, notes, backends, out)
    return 0


def write_backends_report(rows: dict, notes: list[str], backends: tuple[str, ...], out: Path) -> None:
    """``scale-backends.{md,json}`` from :func:`measure_backend` rows (one per backend and size)."""
    cols = ("chunks", "sentences", "dense_kind", "build_s", "build_ms_per_item", "client_rss_mb",
            "engine_process_rss_mb", "disk_mb", "hybrid_p50_ms", "hybrid_p95_ms")
    md = ["# Scale: the same synthetic chunks on each index backend", "",
          f"Command: `python -m eval scale --backend {','.join(backends)}`. Synthetic chunks from the seed index "
          "(`synthesize`: real chunk texts and tokens, perturbed copies of their vectors); each backend in a "
          f"fresh process; {QUERIES} seed questions, hybrid mode, query vectors cached (search only). `build_s`: "
          "making the written records searchable (folder: FAISS builds + save; engines: insert, index, wait "
          "until served). `client_rss_mb`: the searching process (records and vectors for rescoring are held "
          "there on every backend; Milvus Lite and Qdrant local run inside it, so their memory is counted there); "
          "`engine_process_rss_mb`: engine processes of their own, if any. Shared 2-core machine with other work "
          "running (load average ~20): timings are noisy and far above an idle machine's.", "",
          report.table(rows, cols, "backend"), ""]
    md += [f"- {x}" for x in notes] + [""]
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale-backends.md").write_text("\n".join(md), encoding="utf-8")
    report.write_json(out / "scale-backends.json", {"rows": rows, "notes": notes})
    print("\n".join(md))
