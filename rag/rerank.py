"""Second-stage rerankers behind one protocol: ``rerank(query, hits, k) -> hits``.

* :class:`FeatureReranker` works offline with what ships: a linear model over features
  a cross-encoder would otherwise have to learn — best sentence-level similarity inside
  the passage, similarity to the passage's own question/heading, idf-weighted query-term
  coverage of passage, best sentence and heading, and the BM25, dense and fused scores;
  each also gated by the share of query terms the corpus does not know.
  (Which language to show first is decided after ranking, by the parallel-passage rule.)
  Weights are fitted on the dev halves of the benchmarks by
  ``python -m eval tune`` and stored in ``rag/reranker_weights.json``.
* :class:`CrossEncoderReranker` scores (query, passage) pairs with a sentence-transformers
  ``CrossEncoder`` (hub id or local folder), for users who have a multilingual one
  (e.g. ``BAAI/bge-reranker-v2-m3``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from rag.errors import ModelLoadError
from rag.text import sentence_spans
from rag.types import Hit

if TYPE_CHECKING:
    from rag.search import Searcher

WEIGHTS_FILE = Path(__file__).with_name("reranker_weights.json")
BASE_FEATURES = (
    "dense",
    "sentence",
    "heading",
    "bm25",
    "coverage",
    "sentence_coverage",
    "heading_coverage",
    "fused",
)
# Each base feature again, times the share of the query's terms the corpus does not know
# (1 - vocabulary coverage): lets one linear model weigh the evidence differently for a
# lexical question and for, say, English asked of Japanese text (where only embeddings help).
GATED_FEATURES = tuple(f"{f}*unknown" for f in BASE_FEATURES)
FEATURES = BASE_FEATURES + GATED_FEATURES


@runtime_checkable
class Reranker(Protocol):
    id: str

    def rerank(self, query: str, hits: list[Hit], k: int) -> list[Hit]: ...


def _reorder(hits: list[Hit], scores: np.ndarray, k: int) -> list[Hit]:
    order = np.argsort(-scores, kind="stable")[:k]
    return [
        dataclasses.replace(hits[i], rank=r, score=float(scores[i]), scores={**hits[i].scores, "rerank": float(scores[i])})
        for r, i in enumerate(order, start=1)
    ]


def load_weights(path: Path = WEIGHTS_FILE) -> dict[str, float]:
    data = json.loads(Path(path).read_text())
    weights = data["weights"]
    missing = set(FEATURES) - set(weights)
    if missing:
        raise ValueError(f"reranker weights in {path} lack features {sorted(missing)}")
    return {f: float(weights[f]) for f in FEATURES}


class FeatureReranker:
    """Linear reranker over retrieval features; needs the searcher's index and encoder."""

    def __init__(self, searcher: Searcher, *, weights: dict[str, float] | None = None):
        self.searcher = searcher
        self.weights = weights if weights is not None else load_weights()
        self._w = np.array([self.weights[f] for f in FEATURES], dtype=np.float32)
        self.id = "features"

    @functools.lru_cache(maxsize=4096)
    def _heading_tokens(self, i: int) -> frozenset[str]:
        return frozenset(self.searcher.analyze(self.searcher.index.chunks[i].heading))

    @functools.lru_cache(maxsize=8192)
    def _sentence_tokens(self, i: int) -> tuple[frozenset[str], ...]:
        text = self.searcher.index.chunks[i].text
        return tuple(frozenset(self.searcher.analyze(text[s:e])) for s, e in sentence_spans(text))

    def features(self, query: str, hits: list[Hit]) -> np.ndarray:
        """One row of :data:`FEATURES` per hit."""
        s = self.searcher
        idx = s.index
        qv = s.query_vector(query)
        qtok = set(s.query_tokens(query))
        idf = {t: max(idx.bm25.idf(t), 0.0) for t in qtok}
        idf_total = sum(idf.values()) or 1.0
        bm25 = np.array([h.scores.get("bm25") or 0.0 for h in hits], dtype=np.float32)
        fused = np.array([h.scores.get("fused") or 0.0 for h in hits], dtype=np.float32)
        rows = []
        for h in hits:
            i = idx.by_id[h.chunk.id]
            units = idx.chunk_units(i)
            ctok = set(idx.bm25.tokens[i])
            rows.append(
                [
                    float(idx.dense.vectors[i] @ qv),
                    float((units @ qv).max()) if len(units) else 0.0,
                    float(idx.heads[i] @ qv),
                    0.0,
                    sum(idf[t] for t in qtok & ctok) / idf_total,
                    max((sum(idf[t] for t in qtok & st) for st in self._sentence_tokens(i)), default=0.0) / idf_total,
                    sum(idf[t] for t in qtok & self._heading_tokens(i)) / idf_total,
                    0.0,
                ]
            )
        f = np.array(rows, dtype=np.float32).reshape(len(hits), len(BASE_FEATURES))
        if len(hits):
            f[:, BASE_FEATURES.index("bm25")] = bm25 / bm25.max() if bm25.max() > 0 else 0.0
            f[:, BASE_FEATURES.index("fused")] = fused / fused.max() if fused.max() > 0 else 0.0
        unknown = 1.0 - s.vocabulary_coverage(query)
        return np.hstack([f, f * np.float32(unknown)])

    def rerank(self, query: str, hits: list[Hit], k: int) -> list[Hit]:
        if not hits:
            return []
        return _reorder(hits, self.features(query, hits) @ self._w, k)


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

    def rerank(self, query: str, hits: list[Hit], k: int) -> list[Hit]:
        if not hits:
            return []
        scores = self._model.predict(
            [(query, h.chunk.text) for h in hits], batch_size=self.batch_size, show_progress_bar=False
        )
        return _reorder(hits, np.asarray(scores, dtype=np.float32).reshape(len(hits)), k)
