"""Encoding on a Ray cluster: ``python -m ingest --ray auto|ADDRESS``.

:class:`RayEncoder` is an :class:`~rag.encoders.Encoder` whose batches are split across
Ray actors, each holding one copy of the encoder (loaded once on its worker, on the
``device`` given: ``st:`` models take ``cuda``). The ingest pipeline is unchanged — it
calls ``encode`` — so the index written is the one the plain loop writes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from rag.encoders import l2_normalize
from rag.errors import RagError


class _Worker:
    """One encoder on one Ray worker (wrapped by ``ray.remote`` in :class:`RayEncoder`)."""

    def __init__(self, name: str, device: str, threads: int):
        from rag.encoders import load_encoder

        self.enc = load_encoder(name, device=device)
        if hasattr(self.enc, "batch_threads"):
            self.enc.batch_threads = threads  # the CPUs Ray gave this worker, not the machine's

    def describe(self) -> tuple[str, int]:
        return self.enc.id, int(self.enc.dim)

    def encode(self, texts: list[str], query: bool) -> np.ndarray:
        return np.asarray(self.enc.encode(texts, query=query), dtype=np.float32)


class RayEncoder:
    """``encode`` splits each batch into one contiguous shard per worker.

    ``address``: ``auto`` (the running cluster), ``local`` (start one in this process) or
    ``ray://HOST:PORT``; a cluster already initialised in this process is used as it is.
    """

    def __init__(self, name: str, *, address: str = "auto", device: str = "cpu", workers: int | None = None,
                 cpus_per_worker: int = 1, gpus_per_worker: float = 0.0):
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if cpus_per_worker < 1:
            raise ValueError(f"cpus_per_worker must be >= 1, got {cpus_per_worker}")
        try:
            import ray
        except ImportError:
            raise RagError("--ray needs Ray: pip install ray") from None
        if not ray.is_initialized():
            try:
                ray.init(address=None if address == "local" else address, log_to_driver=False,
                         include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}})
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise RagError(f"cannot reach the Ray cluster at {address!r} ({' '.join(str(e).split())[:200]})") from None
        if gpus_per_worker == 0 and device.startswith("cuda"):
            gpus_per_worker = 1.0
        total = int(ray.cluster_resources().get("GPU" if gpus_per_worker else "CPU", 1) // max(gpus_per_worker, cpus_per_worker))
        self.workers = workers if workers is not None else max(1, total)
        remote = ray.remote(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker)(_Worker)
        self._actors = [remote.remote(name, device, cpus_per_worker) for _ in range(self.workers)]
        self._ray = ray
        self.id, self.dim = ray.get(self._actors[0].describe.remote())
        self.ingest_batch = 64 * self.workers * 4  # texts per encode call from the ingest loop

    def encode(self, texts: Sequence[str], *, query: bool) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        n = len(self._actors)
        bounds = np.linspace(0, len(texts), n + 1).astype(int)
        futures = [a.encode.remote(texts[lo:hi], query) for a, lo, hi in zip(self._actors, bounds, bounds[1:]) if hi > lo]
        return l2_normalize(np.vstack(self._ray.get(futures)))

    def close(self) -> None:
        for a in self._actors:
            self._ray.kill(a)
        self._actors = []
