"""Dense leg: FAISS inner-product search over L2-normalised vectors (= cosine).

``flat`` is exact and right for small corpora; ``hnsw`` (graph, approximate) is for
large ones; ``auto`` picks HNSW from :data:`HNSW_FROM` vectors on. The vectors are also
kept as ``vectors.npy`` (no pickle) so an incremental ingest can reuse them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

FAISS_KINDS = ("auto", "flat", "hnsw")
HNSW_FROM = 50_000


def _faiss():
    import faiss

    return faiss


class DenseIndex:
    in_memory = True  # every vector in this process (an engine's are read by rows)
    max_top = 2**62  # the largest k that top() answers

    def __init__(self, vectors: np.ndarray, *, kind: str = "auto", hnsw_m: int = 32, ef_search: int = 128):
        if kind not in FAISS_KINDS:
            raise ValueError(f"kind must be one of {FAISS_KINDS}, got {kind!r}")
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.vectors.ndim != 2 or len(self.vectors) == 0:
            raise ValueError(f"vectors must be a non-empty 2-D array, got shape {self.vectors.shape}")
        self.kind = ("hnsw" if len(self.vectors) >= HNSW_FROM else "flat") if kind == "auto" else kind
        self.hnsw_m, self.ef_search = hnsw_m, ef_search
        self._index = None

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.vectors)

    def _build(self):
        faiss = _faiss()
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        if self.kind == "flat":
            index = faiss.IndexFlatIP(self.dim)
        else:
            index = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 80
        index.add(self.vectors)
        return index

    @property
    def index(self):
        if self._index is None:
            self._index = self._build()
            if self.kind == "hnsw":
                self._index.hnsw.efSearch = self.ef_search
        return self._index

    def top(self, query_vec: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices and cosine scores of the ``n`` nearest chunks, best first."""
        q = np.ascontiguousarray(query_vec, dtype=np.float32).reshape(1, -1)
        index = self.index
        # One query gains nothing from OpenMP threads and loses a lot when cores are busy
        # (measured: 36 ms -> 10 ms for 46k vectors on a loaded 2-core machine).
        _faiss().omp_set_num_threads(1)
        scores, idx = index.search(q, min(n, len(self)))
        keep = idx[0] >= 0
        return idx[0][keep].astype(np.int64), scores[0][keep]

    def save(self, folder: Path) -> None:
        np.save(folder / "vectors.npy", self.vectors, allow_pickle=False)
        if self.kind == "hnsw":
            _faiss().write_index(self.index, str(folder / "dense.faiss"))

    @classmethod
    def load(cls, folder: Path, *, kind: str, vectors: np.ndarray | None = None) -> DenseIndex:
        """Load from ``folder`` (``vectors``: the already loaded and checked ``vectors.npy``)."""
        if vectors is None:
            vectors = np.load(folder / "vectors.npy", allow_pickle=False)
        dense = cls(vectors, kind=kind)
        if dense.kind == "hnsw" and (folder / "dense.faiss").exists():
            index = _faiss().read_index(str(folder / "dense.faiss"))
            if index.ntotal != len(dense) or index.d != dense.dim:
                raise ValueError(
                    f"dense.faiss holds {index.ntotal} vectors of dimension {index.d}, "
                    f"vectors.npy {len(dense)} of dimension {dense.dim}"
                )
            dense._index = index
            dense._index.hnsw.efSearch = dense.ef_search
        return dense
