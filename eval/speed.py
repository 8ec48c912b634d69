"""``python -m eval speed``: how fast the default pipeline is on the seed corpus, on this machine.

* ingest of ``corpus/`` from scratch and a re-run with nothing changed (``python -m ingest``
  in a fresh process, model load included);
* encoding throughput of the default encoder (passages and units in batches, all cores);
* warm latency per question of the default search mode and of ``ask`` (every query encoded:
  nothing cached), idle and **while a second process encodes** with every core (an ingest
  running beside the app).

Writes ``eval/results/speed.{md,json}``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from eval import report
from eval.answers import load_items
from eval.datasets import ROOT, load_seed
from rag.context import DEFAULT_K
from rag.encoders import DEFAULT_ENCODER

BUSY = """
import sys, time
from rag.encoders import load_encoder
enc = load_encoder(sys.argv[1])
texts = [l for l in open(sys.argv[2], encoding="utf-8").read().split("\\n\\n") if len(l) > 80][:64]
print("ready", flush=True)
while True:
    enc.encode(texts, query=False)
"""


BUSY_WARMUP_S = 5.0  # let the second process get going


def _settle(max_wait_s: float = 90.0) -> None:
    """Wait (up to ``max_wait_s``) for the 1-minute load average to fall below one busy core."""
    t = time.time()
    while os.getloadavg()[0] > 0.75 and time.time() - t < max_wait_s:
        time.sleep(3.0)


def _run(args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - t


def _pcts(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {"p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95)), "n": len(ms)}


def _latencies(searcher, questions: list[str]) -> dict:
    from rag.answer import ask

    out = {}
    for name, fn in (("search", lambda q: searcher.search(q, k=DEFAULT_K)), ("ask", lambda q: ask(searcher, q))):
        fn(questions[0] + " ")  # warm
        ms = []
        for q in questions:
            searcher.clear_query_cache()
            t = time.perf_counter()
            fn(q)
            ms.append((time.perf_counter() - t) * 1000)
        out[name] = _pcts(ms)
    return out


def main(*, out: Path, encoder: str = DEFAULT_ENCODER) -> int:
    warnings.simplefilter("ignore")
    from rag.encoders import load_encoder
    from rag.search import Searcher

    t0 = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="studyrag-speed-"))
    try:
        idx = tmp / "index"
        ingest = ["-m", "ingest", "--corpus", str(ROOT / "corpus"), "--index", str(idx), "--quiet", "--encoder", encoder]
        scratch = _run(ingest)
        rerun = _run(ingest)
        searcher = Searcher.open(idx)
        index = searcher.index
        enc = load_encoder(encoder)
        chunks = [c.text for c in index.chunks]
        units = [index.documents[index.chunks[int(np.searchsorted(index.unit_offsets, i, "right") - 1)].doc_id]
                 .text[s:e] for i, (s, e) in enumerate(index.unit_spans.tolist())]
        enc.encode(chunks[:8], query=False)
        t = time.perf_counter()
        enc.encode(chunks, query=False)
        chunk_rate = len(chunks) / (time.perf_counter() - t)
        t = time.perf_counter()
        enc.encode(units, query=False)
        unit_rate = len(units) / (time.perf_counter() - t)
        questions = [q.text for q in load_seed().subset("test").queries][:60]
        questions += [i.question for i in load_items() if i.split == "test" and not i.previous][:60]
        _settle()
        idle = _latencies(searcher, questions)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        busy = subprocess.Popen([sys.executable, "-c", BUSY, encoder, str(ROOT / "corpus" / "zenn-mondo-llm-ja.md")],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        try:
            busy.stdout.readline()  # "ready": the second process is encoding
            time.sleep(BUSY_WARMUP_S)
            loaded = _latencies(searcher, questions)
        finally:
            busy.kill()
            busy.wait()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res = {
        "encoder": enc.id, "cores": len(os.sched_getaffinity(0)), "default_mode": searcher.default_mode,
        "documents": len(index.documents), "chunks": len(index.chunks), "units": len(index.units),
        "ingest_from_scratch_s": scratch, "ingest_no_change_s": rerun,
        "encode_chunks_per_s": chunk_rate, "encode_units_per_s": unit_rate,
        "avg_chunk_chars": float(np.mean([len(c) for c in chunks])), "avg_unit_chars": float(np.mean([len(u) for u in units])),
        "idle": idle, "while_another_process_encodes": loaded, "seconds": time.time() - t0,
    }
    md = ["# Speed on the seed corpus", "",
          f"Command: `python -m eval speed` ({res['seconds']:.0f} s). Encoder `{res['encoder']}`, {res['cores']} cores, "
          f"default mode `{res['default_mode']}`; {res['documents']} documents, {res['chunks']} passages, "
          f"{res['units']} units (lines and sentences).", "",
          "| measure | value |", "|---|---|",
          f"| ingest from scratch (fresh process, model load included) | {scratch:.1f} s |",
          f"| ingest re-run, nothing changed | {rerun:.2f} s |",
          f"| encoding, passages (avg {res['avg_chunk_chars']:.0f} chars), all cores | {chunk_rate:.1f} /s |",
          f"| encoding, units (avg {res['avg_unit_chars']:.0f} chars), all cores | {unit_rate:.1f} /s |", "",
          f"Warm latency per question ({len(questions)} questions, every query encoded; a query uses two OpenMP "
          "threads while the machine is otherwise idle and one while another process keeps the cores busy — "
          f"measured {BUSY_WARMUP_S:.0f} s after that process started):", "",
          "| | search p50 | search p95 | ask p50 | ask p95 |", "|---|---|---|---|---|"]
    for name, r in (("idle", idle), ("while a second process encodes on all cores", loaded)):
        md.append(f"| {name} | {r['search']['p50_ms']:.1f} ms | {r['search']['p95_ms']:.1f} ms | "
                  f"{r['ask']['p50_ms']:.1f} ms | {r['ask']['p95_ms']:.1f} ms |")
    out.mkdir(parents=True, exist_ok=True)
    (out / "speed.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    report.write_json(out / "speed.json", res)
    print("\n".join(md))
    return 0


