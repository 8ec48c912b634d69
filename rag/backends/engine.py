"""An :class:`~rag.index.Index` stored on a vector engine (Milvus or Qdrant), versioned.

Each ingest writes a new version — three collections, ``PREFIX_VERSION_chunks`` (chunk
vector, BM25 sparse vector, the chunk record, its tokens, heading vector and unit spans),
``PREFIX_VERSION_units`` (one row per unit vector) and ``PREFIX_VERSION_meta`` (manifest and
documents, in pieces) — waits until the engine serves every row, and only then points
``PREFIX_current`` (a one-row collection) at it: an interrupted ingest leaves the previous
version searchable, and its leftovers are dropped by the next one, as the folder's
``builds/`` + ``CURRENT`` do.

On open the records are read back into an :class:`EngineIndex`: the answer stages read
chunks, documents and vectors as before, while the searcher's candidate legs — dense top-k
over chunks and units, BM25 top-k — are asked of the engine. The BM25 weights are ours
(client-computed sparse vectors) and so is the fusion, so results match the folder's.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rag.backends.base import CHUNKS, UNITS, Row, check_k, check_space
from rag.bm25 import BM25Index
from rag.dense import HNSW_FROM, DenseIndex
from rag.errors import IndexCorruptError, IndexMissingError, IndexWriteError, RagError
from rag.index import Index, _check_manifest, _check_offsets
from rag.types import Chunk, Document

META, POINTER = "meta", "current"
PIECE = 4000  # characters of the manifest/documents blob per meta row (Milvus JSON fields hold 64 KB)
_PROBE_DIM = 2


def new_version() -> str:
    return f"v{time.strftime('%Y%m%d%H%M%S')}{uuid.uuid4().hex[:6]}"


class EngineBackend:
    """:class:`~rag.backends.base.IndexBackend` over one version of an index on an engine."""

    def __init__(self, engine, *, uri: str, prefix: str, version: str, hnsw: bool = False,
                 manifest: dict | None = None):
        self.engine, self.uri, self.prefix, self.version, self.hnsw = engine, uri, prefix, version, hnsw
        self._manifest = manifest

    def name(self, space: str) -> str:
        return f"{self.prefix}_{self.version}_{space}"

    def create(self, dim: int) -> None:
        self.engine.create(self.name(CHUNKS), dim=dim, sparse=True, hnsw=self.hnsw)
        self.engine.create(self.name(UNITS), dim=dim, sparse=False, hnsw=self.hnsw)
        self.engine.create(self.name(META), dim=_PROBE_DIM, sparse=False, hnsw=False)

    def drop(self) -> None:
        for space in (CHUNKS, UNITS, META):
            if self.name(space) in self.engine.names():
                self.engine.drop(self.name(space))

    def upsert(self, rows: Sequence[Row], *, space: str = CHUNKS) -> None:
        self.engine.upsert(self.name(check_space(space)), list(rows))

    def delete_document(self, doc_id: str) -> int:
        self.engine.delete_doc(self.name(UNITS), doc_id)
        return self.engine.delete_doc(self.name(CHUNKS), doc_id)

    def dense_top(self, vector: np.ndarray, k: int, *, space: str = CHUNKS) -> tuple[np.ndarray, np.ndarray]:
        return self.engine.dense_top(self.name(check_space(space)), vector, check_k(k), exact=not self.hnsw)

    def sparse_top(self, weights: Mapping[int, float], k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.engine.sparse_top(self.name(CHUNKS), weights, check_k(k))

    def count(self, *, space: str = CHUNKS) -> int:
        return self.engine.count(self.name(check_space(space)))

    def describe(self) -> dict[str, Any]:
        if self._manifest is None:
            self._manifest, _ = read_meta(self)
        return self._manifest


# --- the pointer ----------------------------------------------------------------------------------


def pointer(engine, prefix: str) -> str | None:
    name = f"{prefix}_{POINTER}"
    if name not in engine.names():
        return None
    rows = list(engine.scan(name, 1, vectors=False))
    version = rows[0].payload.get("version") if rows else None
    return version if isinstance(version, str) and version.isalnum() else None


def _set_pointer(engine, prefix: str, version: str) -> None:
    name = f"{prefix}_{POINTER}"
    if name not in engine.names():
        engine.create(name, dim=_PROBE_DIM, sparse=False, hnsw=False)
    engine.upsert(name, [Row(0, "_pointer", np.array([1.0, 0.0], np.float32), None, {"version": version})])
    engine.settle(name, 1, np.array([1.0, 0.0], np.float32))


def _versions(engine, prefix: str) -> set[str]:
    out = set()
    for n in engine.names():
        parts = n.split("_")
        if n.startswith(prefix + "_") and len(parts) >= 3 and parts[-1] in (CHUNKS, UNITS, META):
            out.add(parts[-2])
    return out


# --- write --------------------------------------------------------------------------------------------


def sparse_rows(bm25: BM25Index) -> list[dict[int, float]]:
    """Chunk ``i``'s BM25 term weights keyed by term id: its dot product with a query's term
    counts is exactly :meth:`BM25Index.scores`."""
    w = bm25._weights.tocsc()
    return [dict(zip(w.indices[w.indptr[i] : w.indptr[i + 1]].tolist(), w.data[w.indptr[i] : w.indptr[i + 1]].tolist()))
            for i in range(w.shape[1])]


def vocabulary_signature(bm25: BM25Index) -> dict[str, Any]:
    """Names the term ids of the sparse vectors (rebuilt from the tokens on load, checked)."""
    terms = sorted(bm25._terms, key=bm25._terms.get)
    return {"terms": len(terms), "sha256": hashlib.sha256("\n".join(terms).encode("utf-8")).hexdigest()}


def _meta_rows(manifest: dict, documents: dict[str, Document]) -> list[Row]:
    blob = json.dumps({"manifest": manifest, "documents": [d.to_dict() for d in documents.values()]},
                      ensure_ascii=False)
    probe = np.array([1.0, 0.0], np.float32)
    return [Row(j, "_meta", probe, None, {"text": blob[i : i + PIECE]}) for j, i in enumerate(range(0, len(blob), PIECE))]


def save_index(index: Index, engine, *, uri: str, prefix: str) -> EngineBackend:
    """Write ``index`` as a new version and switch the pointer to it (see the module docstring)."""
    hnsw = index.dense.kind == "hnsw"
    manifest = {**index.manifest, "sparse": vocabulary_signature(index.bm25), "units": int(len(index.units))}
    be = EngineBackend(engine, uri=uri, prefix=prefix, version=new_version(), hnsw=hnsw, manifest=manifest)
    try:
        be.create(index.dense.dim)
        sparse = sparse_rows(index.bm25)
        heads_set = np.abs(index.heads).sum(axis=1) > 0
        rows = [
            Row(i, c.doc_id, index.dense.vectors[i], sparse[i], {
                "chunk": c.to_dict(), "tokens": list(index.bm25.tokens[i]),
                "head": index.heads[i].tolist() if heads_set[i] else None,
                "spans": index.chunk_unit_spans(i).tolist(),
            })
            for i, c in enumerate(index.chunks)
        ]
        be.upsert(rows, space=CHUNKS)
        owner = index.unit_owner
        be.upsert([Row(u, index.chunks[owner[u]].doc_id, index.units[u], None, {"owner": int(owner[u])})
                   for u in range(len(index.units))], space=UNITS)
        meta = _meta_rows(manifest, index.documents)
        engine.upsert(be.name(META), meta)
        engine.settle(be.name(CHUNKS), len(rows), index.dense.vectors[0])
        engine.settle(be.name(UNITS), len(index.units), index.units[0] if len(index.units) else index.dense.vectors[0])
        engine.settle(be.name(META), len(meta), np.array([1.0, 0.0], np.float32))
        _set_pointer(engine, prefix, be.version)
    except BaseException as e:
        try:
            be.drop()
        except Exception:  # noqa: BLE001 -- the next write drops leftovers too
            pass
        if isinstance(e, (RagError, KeyboardInterrupt, SystemExit)):
            raise
        raise IndexWriteError(f"{type(e).__name__}: {' '.join(str(e).split())[:300]}") from None
    _prune(engine, prefix, keep={be.version})
    return be


def _prune(engine, prefix: str, keep: set[str]) -> None:
    live = keep | {pointer(engine, prefix)}
    for v in _versions(engine, prefix) - live:
        EngineBackend(engine, uri="", prefix=prefix, version=v).drop()


# --- read ---------------------------------------------------------------------------------------------


def read_meta(be: EngineBackend) -> tuple[dict, dict[str, Document]]:
    n = be.engine.count(be.name(META)) if be.name(META) in be.engine.names() else 0
    if not n:
        raise IndexCorruptError(f"index at {be.uri} version {be.version} has no manifest; "
                                "run `python -m ingest --rebuild`")
    blob = "".join(r.payload["text"] for r in be.engine.scan(be.name(META), n, vectors=False))
    d = json.loads(blob)
    docs = [Document.from_dict(x) for x in d["documents"]]
    return d["manifest"], {x.doc_id: x for x in docs}


class EngineDense(DenseIndex):
    """The dense leg asked of the engine; the vectors stay for the stages that rescore."""

    def __init__(self, vectors: np.ndarray, *, kind: str, backend: EngineBackend, space: str):
        super().__init__(vectors, kind=kind)
        self.backend, self.space = backend, space

    def top(self, query_vec: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        return self.backend.dense_top(query_vec, min(n, len(self)), space=self.space)


class EngineBM25(BM25Index):
    """BM25 whose top-n is asked of the engine (sparse vectors of our own weights); every
    chunk's score, for the hits' displayed score and the document filter, is computed here."""

    def __init__(self, tokens: list[list[str]], *, analyzer: str, backend: EngineBackend, **kw):
        super().__init__(tokens, analyzer=analyzer, **kw)
        self.backend = backend

    def query_weights(self, query_tokens: list[str]) -> dict[int, float]:
        return {self._terms[t]: float(c) for t, c in Counter(t for t in query_tokens if t in self._terms).items()}

    def leg(self, query_tokens: list[str], n: int) -> tuple[dict[int, float], np.ndarray]:
        keys, scores = self.backend.sparse_top(self.query_weights(query_tokens), min(n, len(self)))
        return dict(zip(keys.tolist(), scores.tolist())), self.scores(query_tokens)


@dataclasses.dataclass
class EngineIndex(Index):
    backend: EngineBackend | None = None

    @functools.cached_property
    def unit_dense(self) -> DenseIndex:
        return EngineDense(self.units, kind=self.dense.kind, backend=self.backend, space=UNITS)


def attach(index: Index, be: EngineBackend) -> EngineIndex:
    """``index`` (just written to ``be``) served by the engine, without reading it back."""
    bm25 = EngineBM25(index.bm25.tokens, analyzer=index.bm25.analyzer, backend=be, k1=index.bm25.k1, b=index.bm25.b)
    return EngineIndex(
        manifest=be.describe(), documents=index.documents, chunks=index.chunks, bm25=bm25,
        dense=EngineDense(index.dense.vectors, kind=index.dense.kind, backend=be, space=CHUNKS),
        heads=index.heads, units=index.units, unit_offsets=index.unit_offsets, unit_spans=index.unit_spans,
        path=None, facts=index.facts, backend=be,
    )


def live_backend(engine, *, uri: str, prefix: str) -> EngineBackend:
    """The live version through the protocol, without reading its records."""
    version = pointer(engine, prefix)
    if version is None:
        raise IndexMissingError(f"no index at {uri}: build one with `python -m ingest --index {uri}`")
    be = EngineBackend(engine, uri=uri, prefix=prefix, version=version)
    m = be.describe()
    be.hnsw = m.get("faiss") == "hnsw" or (m.get("faiss") == "auto" and m.get("chunks", 0) >= HNSW_FROM)
    return be


def load_index(engine, *, uri: str, prefix: str) -> EngineIndex:
    """The live version's index; any inconsistency is an :class:`IndexCorruptError`."""
    version = pointer(engine, prefix)
    if version is None:
        raise IndexMissingError(f"no index at {uri}: build one with `python -m ingest --index {uri}`")
    be = EngineBackend(engine, uri=uri, prefix=prefix, version=version)
    try:
        manifest, documents = read_meta(be)
        _check_manifest(manifest, uri)
        be._manifest, be.hnsw = manifest, None
        n = manifest["chunks"]
        chunks, tokens, vectors, heads, spans, counts = [], [], [], [], [], []
        dim = manifest["encoder"]["dim"]
        for r in engine.scan(be.name(CHUNKS), n):
            p = r.payload
            chunks.append(Chunk.from_dict(p["chunk"]))
            tokens.append(list(p["tokens"]))
            vectors.append(r.dense)
            heads.append(np.asarray(p["head"], np.float32) if p["head"] is not None else np.zeros(dim, np.float32))
            spans.extend(p["spans"])
            counts.append(len(p["spans"]))
        if len(chunks) != n or manifest.get("units") != sum(counts):
            raise IndexCorruptError(f"index at {uri} holds {len(chunks)} of {n} chunks; run `python -m ingest --rebuild`")
        units = [r.dense for r in engine.scan(be.name(UNITS), sum(counts))]
        if len(units) != sum(counts):
            raise IndexCorruptError(f"index at {uri} holds {len(units)} of {sum(counts)} unit vectors; "
                                    "run `python -m ingest --rebuild`")
        vectors = np.vstack(vectors).astype(np.float32)
        kind = ("hnsw" if len(vectors) >= HNSW_FROM else "flat") if manifest["faiss"] == "auto" else manifest["faiss"]
        be.hnsw = kind == "hnsw"
        bm25 = EngineBM25(tokens, analyzer=manifest["analyzer"], backend=be)
        if vocabulary_signature(bm25) != manifest.get("sparse"):
            raise IndexCorruptError(f"index at {uri}: the BM25 vocabulary does not match its sparse vectors; "
                                    "run `python -m ingest --rebuild`")
        index = EngineIndex(
            manifest=manifest, documents=documents, chunks=chunks, bm25=bm25,
            dense=EngineDense(vectors, kind=kind, backend=be, space=CHUNKS),
            heads=np.vstack(heads).astype(np.float32),
            units=np.vstack(units).astype(np.float32) if units else np.zeros((0, dim), np.float32),
            unit_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            unit_spans=np.asarray(spans, dtype=np.int64).reshape(-1, 2),
            path=None, backend=be,
        )
        _check_offsets(index)
        return index
    except (IndexCorruptError, IndexMissingError):
        raise
    except (ValueError, KeyError, TypeError) as e:
        raise IndexCorruptError(f"index at {uri} is unreadable ({type(e).__name__}: {str(e)[:200]}); "
                                "rebuild it with `python -m ingest --rebuild`") from None
