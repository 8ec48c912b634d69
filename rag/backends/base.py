"""The index protocol every backend speaks, and the row it stores.

A backend holds one row per chunk (and one per unit: the lines and sentences dense retrieval
also searches): a dense vector, an optional sparse vector (BM25 term weights computed on our
side, so the scores are ours on every engine) and a JSON payload. It answers dense and
sparse top-k; fusion, names-first, reranking and answers run on top, in
:class:`rag.search.Searcher`, unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

CHUNKS, UNITS = "chunks", "units"
SPACES = (CHUNKS, UNITS)


@dataclass(frozen=True)
class Row:
    """One stored item: ``key`` is its row number in the index (a Qdrant point id must be an
    integer or a UUID, so keys are integers on every engine); ``lang``, a field dense searches
    can be limited by (a chunk's language)."""

    key: int
    doc_id: str
    dense: np.ndarray
    sparse: Mapping[int, float] | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    lang: str = ""

    def __post_init__(self):
        if not isinstance(self.key, int) or isinstance(self.key, bool) or self.key < 0:
            raise ValueError(f"key must be an integer >= 0, got {self.key!r}")
        if not isinstance(self.doc_id, str) or not self.doc_id:
            raise ValueError(f"doc_id must be a non-empty string, got {self.doc_id!r}")


@runtime_checkable
class IndexBackend(Protocol):
    """A store of :class:`Row` s in two spaces, ``chunks`` and ``units``."""

    uri: str

    def upsert(self, rows: Sequence[Row], *, space: str = CHUNKS) -> None:
        """Insert or replace ``rows`` (by key)."""

    def delete_document(self, doc_id: str) -> int:
        """Remove every row of ``doc_id`` in both spaces; the number of chunk rows removed."""

    def dense_top(self, vector: np.ndarray, k: int, *, space: str = CHUNKS) -> tuple[np.ndarray, np.ndarray]:
        """Keys and inner-product scores of the ``k`` nearest rows, best first."""

    def sparse_top(self, weights: Mapping[int, float], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Keys and scores (sparse dot product) of the ``k`` best chunk rows with a positive score."""

    def count(self, *, space: str = CHUNKS) -> int:
        """Rows stored in ``space``."""

    def describe(self) -> dict[str, Any]:
        """The index's manifest (encoder, analyzer, chunker, dense index kind, documents …)."""


def check_space(space: str) -> str:
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    return space


def check_k(k: int) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    return k


def as_top(keys: Sequence[int], scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(keys, dtype=np.int64), np.asarray(scores, dtype=np.float32)
