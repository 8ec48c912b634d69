"""Run the pipeline modes over a dataset: build the index, ask every query, time it, score it."""

from __future__ import annotations

import hashlib
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from eval import metrics
from eval.datasets import Dataset
from ingest.pipeline import build
from rag import config
from rag.encoders import Encoder
from rag.index import Index
from rag.search import Searcher

CACHE = Path(__file__).resolve().parent / "runs" / "cache"


class CachingEncoder:
    """Wraps an encoder with an on-disk vector cache keyed by text (speeds up repeated runs).

    Queries are cached only with ``cache_queries`` (tuning); the benchmark's searches encode
    every query, so the latency it reports includes the encoder.
    """

    def __init__(self, inner: Encoder, cache_dir: Path = CACHE, *, cache_queries: bool = True):
        self.inner, self.id, self.dim = inner, inner.id, inner.dim
        self.cache_queries = cache_queries
        self.path = cache_dir / f"vectors-{hashlib.sha1(inner.id.encode()).hexdigest()[:10]}.npz"
        self._mem: dict[str, np.ndarray] = {}
        self._dirty = False
        if self.path.exists():
            with np.load(self.path, allow_pickle=False) as z:
                self._mem = dict(zip(z["keys"].tolist(), z["vecs"]))

    @staticmethod
    def _key(text: str, query: bool) -> str:
        return hashlib.sha1(f"{int(query)}\0{text}".encode()).hexdigest()

    def encode(self, texts, *, query: bool) -> np.ndarray:
        if query and not self.cache_queries:
            return self.inner.encode(texts, query=True)
        keys = [self._key(t, query) for t in texts]
        todo = sorted({k: t for k, t in zip(keys, texts) if k not in self._mem}.items())
        if todo:
            vecs = self.inner.encode([t for _, t in todo], query=query)
            self._mem.update(zip([k for k, _ in todo], vecs))
            self._dirty = True
        return np.array([self._mem[k] for k in keys], dtype=np.float32).reshape(len(texts), self.dim)

    def save(self) -> None:
        if self._dirty:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            keys = list(self._mem)
            np.savez(self.path, keys=np.array(keys), vecs=np.array([self._mem[k] for k in keys], dtype=np.float32))
            self._dirty = False


@dataclass
class BuiltIndex:
    index: Index
    seconds: float
    peak_rss_mb: float


def build_index(ds: Dataset, encoder: Encoder, *, analyzer: str = config.ANALYZER,
                max_chars: int = config.CHUNK_MAX_CHARS, progress: bool = True) -> BuiltIndex:
    t = time.perf_counter()
    index = build(ds.docs, encoder, analyzer=analyzer, max_chars=max_chars, progress=progress)
    secs = time.perf_counter() - t
    return BuiltIndex(index, secs, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def fused_run(ds: Dataset, chunks, scores: dict[int, float], k: int = 10) -> dict[str, float]:
    """``{chunk row: score}`` -> the dataset's run for one query (chunk ids, or document ids
    for a per-document set): the top ``k`` units, scored by rank so ranx never reorders ties."""
    out: dict[str, float] = {}
    for i in sorted(scores, key=lambda i: -scores[i]):
        c = chunks[i]
        u = c.id if ds.level == "chunk" else c.doc_id
        if u not in out:
            out[u] = float(100 - len(out))
            if len(out) == k:
                break
    return out


@dataclass
class ModeRun:
    mode: str
    run: dict[str, dict[str, float]]  # qid -> {unit id: score}
    latencies_ms: list[float] = field(default_factory=list)


def run_mode(searcher: Searcher, ds: Dataset, mode: str, *, k: int = 10, progress: bool = True) -> ModeRun:
    """Ask every query; collapse chunk hits to documents when the dataset is judged per document."""
    out = ModeRun(mode, {})
    depth = k if ds.level == "chunk" else 3 * k
    for q in tqdm(ds.queries, desc=f"{ds.name}:{mode}", disable=not progress, leave=False):
        hits, ms = searcher.timed_search(q.text, k=depth, mode=mode)
        out.latencies_ms.append(ms)
        scores: dict[str, float] = {}
        n = len(hits)
        for h in hits:
            unit = h.chunk.id if ds.level == "chunk" else h.chunk.doc_id
            # score by rank so ties never reorder: ranx sorts by score
            scores.setdefault(unit, float(n - h.rank + 1))
            if len(scores) == k:
                break
        out.run[q.qid] = scores
    return out


def warm_up(searcher: Searcher, ds: Dataset, modes) -> None:
    """One query per mode first, so latencies are warm (models loaded, caches filled)."""
    if ds.queries:
        for m in modes:
            searcher.search(ds.queries[0].text + " ", k=5, mode=m)


def evaluate_modes(searcher: Searcher, ds: Dataset, modes, *, progress: bool = True) -> dict:
    """Scores per mode (overall, per language, per query type) plus latency, with runs and qrels."""
    qrels = ds.qrels(searcher.index.chunks)
    warm_up(searcher, ds, modes)
    result = {"qrels": qrels, "modes": {}, "runs": {}}
    groups = {
        "lang": {q.qid: q.lang for q in ds.queries},
        "type": {q.qid: q.type for q in ds.queries},
    }
    for mode in modes:
        searcher.clear_query_cache()  # every mode pays for its own query encoding
        mr = run_mode(searcher, ds, mode, progress=progress)
        result["runs"][mode] = mr.run
        scores = metrics.score(qrels, mr.run)
        scores.update(metrics.latency(mr.latencies_ms))
        scores["latencies_ms"] = mr.latencies_ms
        scores["by"] = {name: metrics.score_groups(qrels, mr.run, g) for name, g in groups.items()}
        result["modes"][mode] = scores
    return result
