"""Second-stage rerankers behind one protocol: ``rerank(query, hits, k) -> hits``.

* :class:`FeatureReranker` works offline with what ships: a linear model over a few
  retrieval features of each candidate (:data:`FEATURE_FUNCTIONS`), fitted pairwise by
  ``python -m eval tune`` on several sources of questions and kept only if it beats the
  fused ranking on sources it was not fitted to (see ``rag/tuned.json``).
* :class:`CrossEncoderReranker` scores (query, passage) pairs with a sentence-transformers
  ``CrossEncoder`` (hub id or local folder), for users who have a multilingual one
  (e.g. ``BAAI/bge-reranker-v2-m3``).

Features are pure functions of the index, the :class:`~rag.types.Query` (computed once by
the searcher) and the hits; nothing here calls back into the searcher.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from rag.errors import ModelLoadError
from rag.index import Index
from rag.types import Hit, Query


@runtime_checkable
class Reranker(Protocol):
    id: str

    def rerank(self, query: Query, hits: list[Hit], k: int) -> list[Hit]: ...


def reorder(hits: list[Hit], scores: np.ndarray, k: int) -> list[Hit]:
    """``hits`` by ``scores`` (best first, stable), the score recorded as the ``rerank`` stage."""
    order = np.argsort(-scores, kind="stable")[:k]
    return [
        dataclasses.replace(hits[i], rank=r, score=float(scores[i]), scores={**hits[i].scores, "rerank": float(scores[i])})
        for r, i in enumerate(order, start=1)
    ]


# --- features ------------------------------------------------------------------------------
# Each takes (index, query, hits, rows) where rows[i] is hit i's row in the index, and
# returns one float per hit.


def _stage(name: str):
    def f(index: Index, query: Query, hits: Sequence[Hit], rows: np.ndarray) -> np.ndarray:
        v = np.array([h.scores.get(name) or 0.0 for h in hits], dtype=np.float32)
        top = float(v.max()) if len(v) else 0.0
        return v / top if top > 0 else np.zeros_like(v)

    return f


def _whole(index: Index, query: Query, hits, rows) -> np.ndarray:
    return index.dense.vectors[rows] @ query.vector


def _heading(index: Index, query: Query, hits, rows) -> np.ndarray:
    return index.heads[rows] @ query.vector


def _unit(index: Index, query: Query, hits, rows) -> np.ndarray:
    out = np.zeros(len(rows), dtype=np.float32)
    for j, i in enumerate(rows):
        u = index.chunk_units(int(i))
        if len(u):
            out[j] = float((u @ query.vector).max())
    return out


def _idf(index: Index, query: Query) -> dict[str, float]:
    return {t: max(index.bm25.idf(t), 0.0) for t in set(query.tokens)}


def _coverage(index: Index, query: Query, hits, rows) -> np.ndarray:
    """idf-weighted share of the query's terms that occur in the passage."""
    idf = _idf(index, query)
    total = sum(idf.values()) or 1.0
    return np.array([sum(w for t, w in idf.items() if t in index.token_set(int(i))) / total for i in rows], np.float32)


FEATURE_FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "fused": _stage("fused"),
    "bm25": _stage("bm25"),
    "dense": _stage("dense"),
    "whole": _whole,
    "unit": _unit,
    "heading": _heading,
    "coverage": _coverage,
}
GATE = "*unknown"  # a feature times the share of query terms the index does not know


def feature_matrix(index: Index, query: Query, hits: Sequence[Hit], names: Sequence[str]) -> np.ndarray:
    """One row per hit, one column per name in ``names`` (``x`` or ``x*unknown``)."""
    rows = np.array([index.by_id[h.chunk.id] for h in hits], dtype=np.int64)
    unknown = np.float32(1.0 - query.coverage)
    base: dict[str, np.ndarray] = {}
    cols = []
    for name in names:
        key = name[: -len(GATE)] if name.endswith(GATE) else name
        if key not in FEATURE_FUNCTIONS:
            raise ValueError(f"unknown reranker feature {name!r}; known: {sorted(FEATURE_FUNCTIONS)}")
        if key not in base:
            base[key] = np.asarray(FEATURE_FUNCTIONS[key](index, query, hits, rows), dtype=np.float32)
        cols.append(base[key] * unknown if name.endswith(GATE) else base[key])
    return np.stack(cols, axis=1) if cols else np.zeros((len(hits), 0), np.float32)


class FeatureReranker:
    """Linear reranker over :func:`feature_matrix`; ``weights`` align with ``features``."""

    def __init__(self, index: Index, *, features: Sequence[str], weights: Sequence[float]):
        if len(features) != len(weights):
            raise ValueError(f"need one weight per feature: {len(weights)} weights for {len(features)} features")
        for f in features:
            if f.removesuffix(GATE) not in FEATURE_FUNCTIONS:
                raise ValueError(f"unknown reranker feature {f!r}; known: {sorted(FEATURE_FUNCTIONS)}")
        self.index = index
        self.features = tuple(features)
        self.weights = np.asarray(weights, dtype=np.float32)
        self.id = "features"

    def rerank(self, query: Query, hits: list[Hit], k: int) -> list[Hit]:
        if not hits:
            return []
        return reorder(hits, feature_matrix(self.index, query, hits, self.features) @ self.weights, k)


class CrossEncoderReranker:
    """sentence-transformers ``CrossEncoder`` over (query, passage) pairs."""

    def __init__(self, model: str, *, device: str = "cpu", batch_size: int = 16, max_length: int = 512):
        try:
            from sentence_transformers import CrossEncoder
        except ImportError as e:
            raise ModelLoadError("sentence-transformers is not installed: pip install 'studyrag[st]'") from e
        try:
            self._model = CrossEncoder(model, device=device, max_length=max_length)
        except Exception as e:
            raise ModelLoadError(
                f"could not load cross-encoder {model!r}: {type(e).__name__}: {str(e)[:300]}. "
                "Give a local model folder, or a hub id on a machine that can download it."
            ) from None
        self.batch_size = batch_size
        self.id = f"cross:{model}"

    def rerank(self, query: Query, hits: list[Hit], k: int) -> list[Hit]:
        if not hits:
            return []
        scores = self._model.predict(
            [(query.text, h.chunk.text) for h in hits], batch_size=self.batch_size, show_progress_bar=False
        )
        return reorder(hits, np.asarray(scores, dtype=np.float32).reshape(len(hits)), k)
