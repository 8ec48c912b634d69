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
        self.save_graph(folder / "dense.faiss")

    def save_graph(self, path: Path) -> dict | None:
        """Write the HNSW graph (with FAISS's copy of the vectors) to ``path`` and return what
        :meth:`adopt_graph` checks it against; a flat index has no graph to save (``None``)."""
        if self.kind != "hnsw":
            return None
        _faiss().write_index(self.index, str(path))
        return {"file": path.name, "vectors": len(self), "dim": self.dim, "hnsw_m": self.hnsw_m}

    def adopt_graph(self, path: Path, record: dict | None = None) -> None:
        """Search with the graph saved at ``path`` instead of building one. ``ValueError`` if
        the file is missing, unreadable, or not a graph over exactly these vectors with these
        settings (``record``: what :meth:`save_graph` returned when it was written)."""
        want = {"file": path.name, "vectors": len(self), "dim": self.dim, "hnsw_m": self.hnsw_m}
        if record is not None and record != want:
            raise ValueError(f"{path.name} was saved for {record}, this index needs {want}")
        try:
            index = _faiss().read_index(str(path))
        except RuntimeError as e:  # FAISS: missing, truncated or not an index file
            raise ValueError(f"{path.name} is unreadable ({' '.join(str(e).split())[:200]})") from None
        if index.ntotal != len(self) or index.d != self.dim:
            raise ValueError(f"{path.name} holds {index.ntotal} vectors of dimension {index.d}, "
                             f"the index {len(self)} of dimension {self.dim}")
        hnsw = getattr(index, "hnsw", None)
        if hnsw is None or hnsw.nb_neighbors(1) != self.hnsw_m:
            raise ValueError(f"{path.name} is not an HNSW graph with M={self.hnsw_m}")
        # the graph's own copy of the vectors must be these vectors (a sample of rows, exactly)
        rows = np.unique(np.linspace(0, len(self) - 1, num=min(len(self), 64)).astype(np.int64))
        if not np.array_equal(np.vstack([index.reconstruct(int(i)) for i in rows]), self.vectors[rows]):
            raise ValueError(f"{path.name} holds other vectors than the index (a stale graph)")
        index.hnsw.efSearch = self.ef_search
        self._index = index

    @classmethod
    def load(cls, folder: Path, *, kind: str, vectors: np.ndarray | None = None) -> DenseIndex:
        """Load from ``folder`` (``vectors``: the already loaded and checked ``vectors.npy``)."""
        if vectors is None:
            vectors = np.load(folder / "vectors.npy", allow_pickle=False)
        dense = cls(vectors, kind=kind)
        if dense.kind == "hnsw" and (folder / "dense.faiss").exists():
            dense.adopt_graph(folder / "dense.faiss")
        return dense
