"""The search pipeline: BM25 and dense legs, fusion, reranking, parallel-passage order.

``mode`` sets how deep a query goes: ``bm25`` | ``dense`` | ``hybrid`` (fused) |
``rerank`` (fused, then reranked). Every hit carries the score each stage gave it.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rag import config
from rag.analyze import get_analyzer
from rag.bm25 import top_n
from rag.encoders import Encoder, load_encoder
from rag.errors import EncoderMismatchError, QueryError
from rag.fusion import rrf, wsum
from rag.index import Index, open_index
from rag.lang import detect_lang
from rag.rerank import CrossEncoderReranker, FeatureReranker, Reranker
from rag.types import Hit

MODES = ("bm25", "dense", "hybrid", "rerank")
MAX_QUERY_CHARS = 2000
MAX_K = 200


def check_query(query: str) -> str:
    """Return the stripped query or raise :class:`QueryError`."""
    if not isinstance(query, str):
        raise QueryError(f"query must be text, got {type(query).__name__}")
    q = query.strip()
    if not q:
        raise QueryError("query is empty: type a question or keywords")
    if len(q) > MAX_QUERY_CHARS:
        raise QueryError(f"query is {len(q):,} characters; the limit is {MAX_QUERY_CHARS:,}. Shorten it to the question itself")
    return q


def prefer_query_language(hits: list[Hit], qlang: str) -> list[Hit]:
    """Where a passage and its translation are both hit, put the asker's language first."""
    out = list(hits)
    pos = {h.chunk.id: i for i, h in enumerate(out)}
    for i in range(len(out)):
        h = out[i]
        j = pos.get(h.chunk.parallel) if h.chunk.parallel else None
        if j is not None and j > i and h.chunk.lang != qlang and out[j].chunk.lang == qlang:
            out[i], out[j] = out[j], out[i]
            pos[out[i].chunk.id], pos[out[j].chunk.id] = i, j
    return [dataclasses.replace(h, rank=r) for r, h in enumerate(out, start=1)]


class Searcher:
    """Query an :class:`Index`. Build with :meth:`open`; reuse across queries (it caches)."""

    def __init__(
        self,
        index: Index,
        *,
        encoder: Encoder,
        reranker: str | Reranker = "features",
        fusion: str = config.FUSION,
        fusion_weights: tuple[float, float] = config.FUSION_WEIGHTS,
        rrf_k: int = config.RRF_K,
        adaptive: bool = config.ADAPTIVE_FUSION,
        candidates: int = config.CANDIDATES,
    ):
        if encoder.id != index.encoder_id:
            raise EncoderMismatchError(
                f"the index was built with encoder {index.encoder_id!r} but the query encoder is {encoder.id!r}; "
                f"search with the same encoder, or rebuild: python -m ingest --rebuild --encoder {encoder.id.split('@')[0]}"
            )
        if fusion not in ("wsum", "rrf"):
            raise ValueError(f"fusion must be 'wsum' or 'rrf', got {fusion!r}")
        if candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {candidates}")
        self.index = index
        self.encoder = encoder
        self.analyze: Callable[[str], list[str]] = get_analyzer(index.manifest["analyzer"])
        self.fusion, self.fusion_weights, self.rrf_k = fusion, tuple(fusion_weights), rrf_k
        self.candidates = candidates
        self.adaptive = adaptive
        self.reranker: Reranker | None = self._make_reranker(reranker)

    def _make_reranker(self, spec: str | Reranker) -> Reranker | None:
        if not isinstance(spec, str):
            return spec
        if spec == "features":
            return FeatureReranker(self)
        if spec == "none":
            return None
        if spec.startswith("cross:"):
            return CrossEncoderReranker(spec[len("cross:") :])
        raise ValueError(f"reranker must be 'features', 'none' or 'cross:<model>', got {spec!r}")

    @classmethod
    def open(cls, index_dir: str | Path, *, encoder: str | None = None, **kwargs) -> Searcher:
        """Load the index under ``index_dir`` and the encoder that built it (or ``encoder``)."""
        index = open_index(Path(index_dir))
        return cls(index, encoder=load_encoder(encoder or index.encoder_id), **kwargs)

    @functools.lru_cache(maxsize=256)
    def query_vector(self, query: str) -> np.ndarray:
        return self.encoder.encode([query], query=True)[0]

    @functools.lru_cache(maxsize=256)
    def query_tokens(self, query: str) -> tuple[str, ...]:
        return tuple(self.analyze(query))

    def _legs(self, q: str, n: int, mode: str) -> tuple[dict[int, float], dict[int, float], np.ndarray | None]:
        """Top-n of each leg the mode uses, and every chunk's BM25 score (for display)."""
        bm25: dict[int, float] = {}
        dense: dict[int, float] = {}
        all_bm25 = None
        if mode != "dense":
            all_bm25 = self.index.bm25.scores(list(self.query_tokens(q)))
            idx, s = top_n(all_bm25, n)
            bm25 = dict(zip(idx.tolist(), s.tolist()))
        if mode != "bm25":
            dense = self.dense_leg(q, n)
        return bm25, dense, all_bm25

    def dense_leg(self, q: str, n: int) -> dict[int, float]:
        """Multi-vector dense retrieval: nearest chunks and nearest sentences (pooled to their
        chunks), each candidate scored by :meth:`Index.passage_similarity`; top ``n``."""
        qv = self.query_vector(q)
        ci, _ = self.index.dense.top(qv, n)
        ui, _ = self.index.unit_dense.top(qv, 3 * n)
        rows = np.unique(np.concatenate([ci, self.index.unit_owner[ui]]))
        sims = self.index.passage_similarity(rows, qv)
        best = np.argsort(-sims, kind="stable")[:n]
        return {int(rows[j]): float(sims[j]) for j in best}

    def vocabulary_coverage(self, q: str) -> float:
        """Share of the query's distinct tokens that occur in the index at all. English words
        asked of a Japanese corpus mostly do not: then the keyword leg should count less."""
        toks = set(self.query_tokens(q))
        if not toks:
            return 0.0
        return sum(1 for t in toks if t in self.index.bm25.vocabulary) / len(toks)

    def _fuse(self, q: str, bm25: dict[int, float], dense: dict[int, float]) -> dict[int, float]:
        w_bm25, w_dense = self.fusion_weights
        if self.adaptive:
            # The keyword leg gets the share of the query it can see; the rest goes to the
            # dense leg (an English question over Japanese notes is mostly dense).
            w_bm25 *= self.vocabulary_coverage(q)
            w_dense = 1.0 - w_bm25
        if self.fusion == "rrf":
            return rrf([bm25, dense], k=self.rrf_k, weights=(w_bm25, w_dense))
        return wsum([bm25, dense], (w_bm25, w_dense))

    def search(self, query: str, *, k: int = 10, mode: str = "rerank") -> list[Hit]:
        """The ``k`` best chunks for ``query``, best first."""
        q = check_query(query)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        if not 1 <= k <= MAX_K:
            raise ValueError(f"k must be between 1 and {MAX_K}, got {k}")
        n = max(k, self.candidates)
        bm25, dense, all_bm25 = self._legs(q, n, mode)
        if mode == "bm25":
            primary = bm25
        elif mode == "dense":
            primary = dense
        else:
            primary = self._fuse(q, bm25, dense)
        order = sorted(primary, key=lambda i: -primary[i])
        fused = mode in ("hybrid", "rerank")
        keep = order[: n if mode == "rerank" and self.reranker else k]
        dense_of = (
            dict(zip(keep, self.index.passage_similarity(np.array(keep, dtype=np.int64), self.query_vector(q)).tolist()))
            if mode != "bm25" and keep
            else {}
        )
        hits = [
            Hit(
                chunk=self.index.chunks[i],
                rank=r,
                score=float(primary[i]),
                scores={
                    "bm25": None if all_bm25 is None else float(all_bm25[i]),
                    "dense": dense_of.get(i),
                    "fused": primary[i] if fused else None,
                    "rerank": None,
                },
            )
            for r, i in enumerate(keep, start=1)
        ]
        if mode == "rerank" and self.reranker is not None:
            hits = self.reranker.rerank(q, hits, k)
        return prefer_query_language(hits, detect_lang(q))

    def timed_search(self, query: str, **kwargs) -> tuple[list[Hit], float]:
        """``search`` plus its wall time in milliseconds."""
        t = time.perf_counter()
        hits = self.search(query, **kwargs)
        return hits, (time.perf_counter() - t) * 1000
