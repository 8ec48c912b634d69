"""``python -m eval scale``: cost of the index at 1k / 10k / 100k chunks.

The synthetic corpus is generated from the real chunks of the three benchmark corpora:
chunk ``i`` copies a real chunk's text and tokens (plus a tag token of its own) and a
perturbed copy of its vectors, so the BM25 postings and the vector geometry look like real
data. Encoding is measured separately (texts per second of the bundled encoder) rather
than re-encoding 100k near-duplicates. Writes ``eval/results/scale.{md,json,png}``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
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
QDRANT_LOCAL_SIZE = 10_000  # local mode is pure Python: 100k is hours (see scale-backends.md)


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


def with_documents(index: Index) -> Index:
    """A synthetic ``index`` an app can open: one document per ``doc_id`` holding its chunks'
    texts (offsets rebased onto it), and a manifest that lists them."""
    import hashlib

    from rag.types import Document

    groups: dict[str, list[int]] = {}
    for i, c in enumerate(index.chunks):
        groups.setdefault(c.doc_id, []).append(i)
    chunks, spans, docs, listed = list(index.chunks), index.unit_spans.copy(), {}, {}
    for doc, rows in groups.items():
        at = 0
        for i in rows:
            c = index.chunks[i]
            spans[index.unit_offsets[i] : index.unit_offsets[i + 1]] += at - c.start
            chunks[i] = dataclasses.replace(c, start=at, end=at + len(c.text))
            at += len(c.text) + 2
        text = "\n\n".join(index.chunks[i].text for i in rows)
        sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
        docs[doc] = Document(doc, text, title=doc, lang=chunks[rows[0]].lang, sha256=sha)
        listed[doc] = {"sha256": sha, "chunks": len(rows)}
    manifest = {**index.manifest, "chunks": len(chunks), "documents": listed, "skipped": {}, "pending": []}
    return Index(manifest=manifest, documents=docs, chunks=chunks, bm25=index.bm25, dense=index.dense, heads=index.heads,
                 units=index.units, unit_offsets=index.unit_offsets, unit_spans=spans, facts=index.facts)


@contextlib.contextmanager
def milvus_lite_server(data_dir: Path):
    """``milvus-lite server`` on a free local port, in a process of its own: yields
    ``(address, pid)``; the address is a ``milvus://`` index setting."""
    import socket
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("milvus-lite")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(exe), "server", "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("milvus-lite server did not start") from None
                time.sleep(0.3)
        yield f"milvus://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _cpu_s(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(pid: int, *, quiet_s: float = 10.0, limit_s: float = 3600.0) -> float:
    """Seconds until process ``pid`` used under 2% of a core for ``quiet_s`` running (a server
    whose index build runs in the background after it answered the writes)."""
    t0 = time.monotonic()
    last, since = _cpu_s(pid), time.monotonic()
    while time.monotonic() - t0 < limit_s:
        time.sleep(1.0)
        now = _cpu_s(pid)
        if now - last > 0.02 * (time.monotonic() - since):
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            break
    return time.monotonic() - t0 - quiet_s


def _pid_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def app_process(setting: str, encoder: str = "e5-small", questions: int = QUERIES) -> dict:
    """What one app process costs: open the index at ``setting`` as the app does, ask the
    first ``questions`` seed questions (hybrid; query vectors from the cache); its memory
    before and after."""
    from eval.datasets import load_seed
    from rag.backends import open_index

    warnings.simplefilter("ignore")
    enc = CachingEncoder(load_encoder(encoder))
    queries = [q.text for q in load_seed().queries][:questions]
    rss0 = _rss_mb()
    t = time.perf_counter()
    s = Searcher(open_index(setting), encoder=enc)
    open_s = time.perf_counter() - t
    t = time.perf_counter()
    s.search(queries[0], k=10, mode="hybrid")
    first_s = time.perf_counter() - t
    lat = [s.timed_search(q, k=10, mode="hybrid")[1] for q in queries]
    return {"app_open_s": open_s, "app_first_query_s": first_s, "app_rss_mb": _rss_mb(), "app_index_mb": _rss_mb() - rss0,
            "hybrid_p50_ms": float(np.percentile(lat, 50)), "hybrid_p95_ms": float(np.percentile(lat, 95)),
            "queries": len(lat)}


def in_fresh_process(call: str, module: str = "eval.scale") -> dict:
    """``module.call`` (a Python expression, ``Path`` at hand) run in a fresh interpreter: its
    JSON result, or :class:`RuntimeError` with the end of its error output."""
    import json
    import subprocess
    import sys

    code = f"import json; from pathlib import Path; import {module} as m; print('RESULT ' + json.dumps(m.{call}))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode != 0 or not line:
        raise RuntimeError(f"{call.split('(')[0]} failed: {' '.join(proc.stderr.split()[-40:])}")
    return json.loads(line[-1][len("RESULT "):])


def measure_backend(kind: str, n: int, folder: Path, encoder: str = "e5-small", questions: int = QUERIES) -> dict:
    """Build ``n`` synthetic chunks on backend ``kind`` in ``folder`` (this process), then open
    the index in a fresh process as an app does and time hybrid search there. Milvus Lite runs
    as a server process of its own (``milvus-lite server``, reached as ``milvus://``), so the
    app process holds only what it fetches; Qdrant local mode runs inside whoever opens it."""
    from eval.backends import setting_for
    from eval.datasets import load_seed
    from ingest.pipeline import build
    from rag.backends import write_index

    warnings.simplefilter("ignore")
    enc = CachingEncoder(load_encoder(encoder))
    seed = load_seed()
    base = build(seed.docs, enc, faiss="flat", progress=False)
    for q in [q.text for q in seed.queries][:QUERIES]:  # query vectors first: the timings below are search only
        enc.encode([q], query=True)
    enc.save()
    index = with_documents(synthesize([base], n, faiss=False)[0])
    del base
    row = {"backend": kind, "chunks": n, "sentences": int(len(index.units)), "dense_kind": index.dense.kind}
    with contextlib.ExitStack() as stack:
        server = None
        if kind == "milvus-lite":
            setting, server = stack.enter_context(milvus_lite_server(folder / "milvus"))
        else:
            setting = setting_for(kind, folder)
        rss0 = _rss_mb()
        t = time.perf_counter()
        if kind == "folder":
            _ = index.dense.index, index.unit_dense.index  # FAISS builds
        write_index(index, setting)
        row["write_s"] = time.perf_counter() - t
        row["engine_idle_wait_s"] = wait_idle(server) if server else 0.0
        row["build_s"] = row["write_s"] + row["engine_idle_wait_s"]
        row["writer_rss_added_mb"] = _rss_mb() - rss0
        del index
        if kind == "qdrant-local":  # local mode locks its folder: the app process opens it next
            from rag.backends import qdrant

            for c in qdrant._CLIENTS.values():
                c.close()
            qdrant._CLIENTS.clear()
        row.update(in_fresh_process(f"app_process({setting!r}, {encoder!r}, {questions})"))
        row["engine_process_rss_mb"] = _pid_rss_mb(server) if server else 0.0
    row["disk_mb"] = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20
    return row


def compare_backends(*, out: Path, backends: tuple[str, ...], quick: bool = False, encoder: str = "e5-small",
                     size: int | None = None) -> int:
    """``python -m eval scale --backend …``: each backend in its own process, one table. An item
    ``KIND:SIZE`` (``qdrant-local:10000``) sets that backend's size, ``KIND:SIZE:QUESTIONS`` also
    how many seed questions the app process asks (default :data:`QUERIES`)."""
    import tempfile

    from eval.backends import available

    n = size if size is not None else (10_000 if quick else BACKEND_SIZE)
    rows, notes = {}, []
    for item in backends:
        kind, _, own = item.partition(":")
        own, _, asked = own.partition(":")
        questions = int(asked) if asked else QUERIES
        why = available(kind)
        if why:
            notes.append(f"{kind}: skipped ({why})")
            continue
        m = int(own) if own else min(n, QDRANT_LOCAL_SIZE) if kind == "qdrant-local" else n
        with tempfile.TemporaryDirectory(prefix=f"scale-{kind}-") as tmp:
            t = time.perf_counter()
            try:
                row = in_fresh_process(f"measure_backend({kind!r}, {m}, Path({tmp!r}), {encoder!r}, {questions})")
            except RuntimeError as e:
                notes.append(f"{kind}: {e}")
                continue
            row["wall_s"] = time.perf_counter() - t
        row["build_ms_per_item"] = 1000 * row["build_s"] / (row["chunks"] + row["sentences"])
        row["command"] = f"python -m eval scale --backend {item}"
        rows[f"{kind} ({m:,})"] = row
        print(kind, row, flush=True)
    write_backends_report(rows, notes, backends, out)
    return 0


def merge_backend_rows(old: dict, rows: dict, old_notes: list[str], notes: list[str]) -> tuple[dict, list[str]]:
    """The report's rows after a run: each backend and size (the row key) keeps its last
    measurement, rows of other backends and sizes stay; notes are kept, new ones added."""
    merged = {k: rows.get(k, v) for k, v in old.items()}
    merged.update({k: v for k, v in rows.items() if k not in merged})
    return merged, list(old_notes) + [x for x in notes if x not in old_notes]


def write_backends_report(rows: dict, notes: list[str], backends: tuple[str, ...], out: Path) -> None:
    """``scale-backends.{md,json}`` from :func:`measure_backend` rows (one per backend and size),
    merged into the rows already there (:func:`merge_backend_rows`)."""
    import json

    try:
        before = json.loads((out / "scale-backends.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        before = {}
    rows, notes = merge_backend_rows(before.get("rows", {}), rows, before.get("notes", []), notes)
    cols = ("chunks", "sentences", "dense_kind", "build_s", "build_ms_per_item", "engine_idle_wait_s", "app_open_s",
            "app_first_query_s", "app_rss_mb", "app_index_mb", "engine_process_rss_mb", "disk_mb", "queries",
            "hybrid_p50_ms", "hybrid_p95_ms")
    md = ["# Scale: the same synthetic chunks on each index backend", "",
          f"Command: `python -m eval scale --backend {','.join(backends)}`; rows of other backends and sizes are "
          "kept from earlier runs (each row's own command is `command` in the JSON). Synthetic chunks from the seed index "
          "(`synthesize`: real chunk texts and tokens, perturbed copies of their vectors). Each backend in a fresh "
          "process that writes the index; then a second fresh process opens it as an app does and asks "
          f"`queries` seed questions ({QUERIES} unless the row's command says fewer), hybrid mode, query vectors cached (search only). `build_s`: making the written "
          "records searchable (folder: FAISS builds + save; engines: insert, flush, wait for the engine's index "
          "builds — for the Milvus Lite server, `engine_idle_wait_s` until its process stops using CPU). "
          "Milvus Lite runs as `milvus-lite server` in its own process (`milvus://127.0.0.1:PORT`); Qdrant local "
          "mode runs inside the process that opens it. `app_first_query_s`: the app process's first question "
          "(anything built on first use). `app_rss_mb`: the app process after the questions "
          "(encoder included); `app_index_mb`: what opening the index and searching added to it; "
          "`engine_process_rss_mb`: the engine's own process. Shared 2-core machine with other work running: "
          "timings are noisy and above an idle machine's.", "",
          report.table(rows, cols, "backend"), ""]
    md += [f"- {x}" for x in notes] + [""]
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale-backends.md").write_text("\n".join(md), encoding="utf-8")
    report.write_json(out / "scale-backends.json", {"rows": rows, "notes": notes})
    print("\n".join(md))
