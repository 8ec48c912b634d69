"""``python -m eval ray``: ingest encoding on a local Ray cluster against the plain loop.

The texts are the seed corpus's chunks and units (what an ingest encodes). Three runs over
the same texts: the plain loop (one process, the encoder's own threads on every core), and
:class:`ingest.distributed.RayEncoder` with 1 and 2 workers (one CPU each) on
``ray.init(num_cpus=2)``. Reported: texts per second, start-up (cluster + loading the
encoder in each worker) and the largest absolute difference from the plain loop's vectors.
Writes ``eval/results/ray.{md,json}``.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import numpy as np

from eval import report
from eval.datasets import load_seed
from ingest.chunker import chunk_document
from ingest.pipeline import unit_texts
from rag.encoders import load_encoder

TEXTS = 512


def _texts(n: int) -> list[str]:
    chunks = [c for d in load_seed().docs for c in chunk_document(d)]
    texts = list(dict.fromkeys([c.text for c in chunks] + unit_texts(chunks)[0]))
    return texts[:n]


def _rate(encode, texts: list[str], step: int) -> tuple[np.ndarray, float]:
    t = time.perf_counter()
    out = np.vstack([encode(texts[i : i + step], query=False) for i in range(0, len(texts), step)])
    return out, len(texts) / (time.perf_counter() - t)


def main(*, out: Path, encoder: str = "e5-small", n: int = TEXTS) -> int:
    import ray

    from ingest.distributed import RayEncoder

    warnings.simplefilter("ignore")
    texts = _texts(n)
    plain = load_encoder(encoder)
    plain.encode(texts[:8], query=False)  # warm-up
    ref, plain_rate = _rate(plain.encode, texts, 64)
    rows = {"plain loop": {"workers": 0, "texts_per_s": plain_rate, "startup_s": 0.0, "max_abs_diff": 0.0}}
    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}})
    cluster_s = time.perf_counter() - t
    try:
        for workers in (1, 2):
            t = time.perf_counter()
            enc = RayEncoder(encoder, workers=workers)
            enc.encode(texts[:8], query=False)  # each worker has loaded its encoder
            startup = time.perf_counter() - t
            got, rate = _rate(enc.encode, texts, enc.ingest_batch)
            rows[f"ray, {workers} worker{'s' if workers > 1 else ''}"] = {
                "workers": workers, "texts_per_s": rate, "startup_s": startup,
                "max_abs_diff": float(np.abs(got - ref).max())}
            enc.close()
            print(rows, flush=True)
    finally:
        ray.shutdown()
    for r in rows.values():
        r["vs_plain"] = r["texts_per_s"] / plain_rate
    md = ["# Encoding on Ray", "",
          f"Command: `python -m eval ray`. {len(texts)} seed-corpus texts (chunks, then units), encoder {plain.id}; "
          f"local cluster `ray.init(num_cpus=2)` (started in {cluster_s:.1f} s), one CPU per worker; the plain "
          "loop is the ingest's own (batches of 64, the encoder's threads on both cores). Shared 2-core machine "
          "with other work running: rates are noisy, the ratio within this run is the figure.", "",
          report.table(rows, ("workers", "texts_per_s", "vs_plain", "startup_s", "max_abs_diff"), "run"), ""]
    out.mkdir(parents=True, exist_ok=True)
    (out / "ray.md").write_text("\n".join(md), encoding="utf-8")
    report.write_json(out / "ray.json", {"encoder": plain.id, "texts": len(texts), "cluster_start_s": cluster_s,
                                         "rows": rows})
    print("\n".join(md))
    return 0
