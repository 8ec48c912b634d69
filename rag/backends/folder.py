"""The embedded implementation of the index protocol: FAISS (flat inner product) for the dense
spaces and a sparse dot product for BM25, in memory.

The searcher reads a folder index through :class:`rag.index.Index` directly (its own FAISS
and BM25 matrix, unchanged); this class gives the same answers through the protocol, so one
contract test module covers the folder, Milvus and Qdrant alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rag.backends.base import CHUNKS, SPACES, UNITS, Row, as_top, check_k, check_space
from rag.dense import DenseIndex


class FolderBackend:
    def __init__(self, *, uri: str, manifest: dict[str, Any] | None = None):
        self.uri = uri
        self._manifest = dict(manifest or {})
        self._rows: dict[str, dict[int, Row]] = {s: {} for s in SPACES}
        self._dense: dict[str, tuple[np.ndarray, DenseIndex] | None] = {s: None for s in SPACES}

    @classmethod
    def from_index(cls, index, *, uri: str) -> FolderBackend:
        """The rows of a loaded :class:`~rag.index.Index` (what a folder build holds)."""
        from rag.backends.engine import sparse_rows

        be = cls(uri=uri, manifest=index.manifest)
        sparse = sparse_rows(index.bm25)
        be.upsert([Row(i, c.doc_id, index.dense.vectors[i], sparse[i], {"chunk": c.to_dict()})
                   for i, c in enumerate(index.chunks)])
        owner = index.unit_owner
        be.upsert([Row(u, index.chunks[owner[u]].doc_id, index.units[u], None, {"owner": int(owner[u])})
                   for u in range(len(index.units))], space=UNITS)
        return be

    def upsert(self, rows: Sequence[Row], *, space: str = CHUNKS) -> None:
        table = self._rows[check_space(space)]
        for r in rows:
            table[r.key] = r
        self._dense[space] = None

    def delete_document(self, doc_id: str) -> int:
        gone = 0
        for space in SPACES:
            keys = [k for k, r in self._rows[space].items() if r.doc_id == doc_id]
            for k in keys:
                del self._rows[space][k]
            self._dense[space] = None
            gone = len(keys) if space == CHUNKS else gone
        return gone

    def _faiss(self, space: str) -> tuple[np.ndarray, DenseIndex] | None:
        if self._dense[space] is None and self._rows[space]:
            keys = np.array(sorted(self._rows[space]), dtype=np.int64)
            vecs = np.vstack([self._rows[space][int(k)].dense for k in keys])
            self._dense[space] = (keys, DenseIndex(vecs, kind="flat"))
        return self._dense[space]

    def dense_top(self, vector: np.ndarray, k: int, *, space: str = CHUNKS) -> tuple[np.ndarray, np.ndarray]:
        got = self._faiss(check_space(space))
        if got is None:
            return as_top([], [])
        keys, dense = got
        idx, scores = dense.top(vector, check_k(k))
        return keys[idx], scores

    def sparse_top(self, weights: Mapping[int, float], k: int) -> tuple[np.ndarray, np.ndarray]:
        check_k(k)
        scored = []
        for key, r in self._rows[CHUNKS].items():
            s = sum(w * r.sparse.get(t, 0.0) for t, w in weights.items()) if r.sparse else 0.0
            if s > 0:
                scored.append((-s, key))
        scored.sort()
        return as_top([key for _, key in scored[:k]], [-s for s, _ in scored[:k]])

    def count(self, *, space: str = CHUNKS) -> int:
        return len(self._rows[check_space(space)])

    def describe(self) -> dict[str, Any]:
        return self._manifest
