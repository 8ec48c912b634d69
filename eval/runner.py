"""Run the pipeline modes over a dataset: build the index, ask every query, time it, score it."""

from __future__ import annotations

import hashlib
import json
import re
import resource
import shutil
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
from rag.errors import IndexCorruptError
from rag.files import atomic_write, replace_folder
from rag.index import Index
from rag.search import MAX_K, Searcher

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

            def write(tmp: Path) -> None:
                with open(tmp, "wb") as f:  # a file, not a name: np.savez would add ".npz" to the name
                    np.savez(f, keys=np.array(keys), vecs=np.array([self._mem[k] for k in keys], dtype=np.float32))

            atomic_write(self.path, write)  # another run may be reading it
            self._dirty = False


@dataclass
class BuiltIndex:
    index: Index
    seconds: float
    peak_rss_mb: float
    cached: bool = False  # read from the content-hash cache instead of built


def data_cache() -> Path:
    """``$STUDYRAG_DATA/cache`` (default ./data/cache): where throw-away benchmark indexes live."""
    from rag.context import data_dir

    return data_dir() / "cache"


def content_key(ds: Dataset, encoder_id: str, analyzer: str, max_chars: int) -> str:
    """A hash of everything an index of ``ds`` depends on: the passages (id and bytes) and the settings."""
    h = hashlib.sha256(json.dumps([encoder_id, analyzer, max_chars]).encode())
    for d in ds.docs:
        h.update(f"\0{d.doc_id}\0{d.sha256}".encode())
    return h.hexdigest()


def cached_index(ds: Dataset, encoder: Encoder, *, root: Path | None = None, analyzer: str = config.ANALYZER,
                 max_chars: int = config.CHUNK_MAX_CHARS, progress: bool = True) -> BuiltIndex:
    """:func:`build_index`, kept under ``root/<name>-<content hash>``: a second run over the same
    passages with the same encoder and settings reads the index instead of building it."""
    root = root if root is not None else data_cache()
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", ds.name)[:40] or "set"
    folder = root / "eval-index" / f"{safe}-{content_key(ds, encoder.id, analyzer, max_chars)[:16]}"
    if (folder / "manifest.json").is_file():
        t = time.perf_counter()
        try:
            index = Index.load(folder)
        except IndexCorruptError:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            return BuiltIndex(index, time.perf_counter() - t, _peak_mb(), cached=True)
    built = build_index(ds, encoder, analyzer=analyzer, max_chars=max_chars, progress=progress)
    replace_folder(folder, built.index.save)
    return built


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_index(ds: Dataset, encoder: Encoder, *, analyzer: str = config.ANALYZER,
                max_chars: int = config.CHUNK_MAX_CHARS, progress: bool = True) -> BuiltIndex:
    t = time.perf_counter()
    index = build(ds.docs, encoder, analyzer=analyzer, max_chars=max_chars, progress=progress)
    secs = time.perf_counter() - t
    return BuiltIndex(index, secs, _peak_mb())


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


HEAD = 10  # a run's first HEAD units come from a search this deep, however deep the run goes


def ranked_units(ds: Dataset, hits, k: int) -> list[str]:
    """The first ``k`` distinct units of ``hits``: chunk ids, or document ids for a per-document set."""
    out: dict[str, None] = {}
    for h in hits:
        out.setdefault(h.chunk.id if ds.level == "chunk" else h.chunk.doc_id)
        if len(out) == k:
            break
    return list(out)


def extend_run(head: list[str], deep: list[str], k: int) -> list[str]:
    """``head`` as ranked, then ``deep``'s other units, ``k`` in all.

    >>> extend_run(["b", "a"], ["a", "c", "b", "d"], 3)
    ['b', 'a', 'c']
    """
    seen = set(head)
    return (head + [u for u in deep if u not in seen])[:k]


def _depth(ds: Dataset, k: int) -> int:
    """Chunks to ask for so that ``k`` documents survive collapsing chunk hits to documents."""
    return k if ds.level == "chunk" else min(3 * k, MAX_K)


def run_mode(searcher: Searcher, ds: Dataset, mode: str, *, k: int = 10, progress: bool = True) -> ModeRun:
    """Ask every query; collapse chunk hits to documents when the dataset is judged per document.

    A run deeper than :data:`HEAD` (BEIR-style, ``k=100`` for recall@100) keeps the ``HEAD``-deep
    search's ranking for its first ``HEAD`` units and goes on with a ``k``-deep search's: the
    fused candidate pool grows with the depth asked for, and the @10 figures must not depend on
    how deep the run goes (they equal the SQuAD-format path's). Latency is both searches'."""
    out = ModeRun(mode, {})
    for q in tqdm(ds.queries, desc=f"{ds.name}:{mode}", disable=not progress, leave=False):
        hits, ms = searcher.timed_search(q.text, k=_depth(ds, min(k, HEAD)), mode=mode)
        units = ranked_units(ds, hits, min(k, HEAD))
        if k > HEAD:
            deep, more_ms = searcher.timed_search(q.text, k=_depth(ds, k), mode=mode)
            units, ms = extend_run(units, ranked_units(ds, deep, k), k), ms + more_ms
        out.latencies_ms.append(ms)
        # scored by rank so ties never reorder: ranx sorts by score
        out.run[q.qid] = {u: float(len(units) - r) for r, u in enumerate(units)}
    return out


def warm_up(searcher: Searcher, ds: Dataset, modes) -> None:
    """One query per mode first, so latencies are warm (models loaded, caches filled)."""
    if ds.queries:
        for m in modes:
            searcher.search(ds.queries[0].text + " ", k=5, mode=m)


def evaluate_modes(searcher: Searcher, ds: Dataset, modes, *, progress: bool = True, k: int = 10,
                   metric_names=metrics.METRICS) -> dict:
    """Scores per mode (overall, per language, per query type) plus latency, with runs and qrels.
    Runs keep the top ``k`` units per query (100 for BEIR-style sets, so recall@100 is defined)."""
    qrels = ds.qrels(searcher.index.chunks)
    warm_up(searcher, ds, modes)
    result = {"qrels": qrels, "modes": {}, "runs": {}}
    groups = {
        "lang": {q.qid: q.lang for q in ds.queries},
        "type": {q.qid: q.type for q in ds.queries},
    }
    for mode in modes:
        searcher.clear_query_cache()  # every mode pays for its own query encoding
        mr = run_mode(searcher, ds, mode, k=k, progress=progress)
        result["runs"][mode] = mr.run
        scores = metrics.score(qrels, mr.run, metric_names)
        scores.update(metrics.latency(mr.latencies_ms))
        scores["latencies_ms"] = mr.latencies_ms
        scores["by"] = {name: metrics.score_groups(qrels, mr.run, g) for name, g in groups.items()}
        result["modes"][mode] = scores
    return result
