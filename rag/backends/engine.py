"""An :class:`~rag.index.Index` stored on a vector engine (Milvus or Qdrant), versioned.

Rows live in two collections of a *generation*, ``PREFIX_GEN_chunks`` (chunk vector, BM25
sparse vector, the chunk record, its tokens, heading vector and unit spans) and
``PREFIX_GEN_units`` (one row per unit vector); each ingest writes a *version*,
``PREFIX_VERSION_meta`` (manifest and documents, in pieces), which names its generation and,
per document, the keys of its rows and a hash of their content. ``PREFIX_current`` (a one-row
collection) points at the live version.

A write sends only what changed: documents whose rows hash the same keep their keys; added
and changed documents get new keys (never a live row's), inserted; then the new meta, a wait
until the engine serves every row, the pointer switch, and only then are the removed and
replaced documents' rows deleted. An interrupted write leaves the previous version searchable
(the rows it added are not in the live layout, and searches drop keys the layout does not
name); its meta lists what it wrote, and the next write deletes that first. A new generation
(everything re-sent) is made on the first write, a ``--rebuild``, or when the encoder, the
analyzer or the dense index kind changes.

The sparse vectors' term ids are a hash of the term (:func:`term_id`), so they stay valid as the
vocabulary grows; the weights of unchanged rows are those of their own write (idf and mean
length move a little as documents come and go), so the engine proposes ``2n`` candidates and our
own BM25 scores pick the ``n`` — exactly the folder's scores.

On open the records (chunks, tokens, unit spans, documents) are read back into an
:class:`EngineIndex`, but not the vectors: the searcher's candidate legs — dense top-k over
chunks and units, BM25 top-k — are asked of the engine, and the stages that rescore
candidates read just their rows' vectors (:mod:`rag.backends.remote`).
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
from rag.backends.remote import RemoteRows, RowFetcher
from rag.bm25 import BM25Index, top_n
from rag.dense import HNSW_FROM, DenseIndex
from rag.errors import IndexCorruptError, IndexMissingError, IndexWriteError, RagError
from rag.index import Index, _check_manifest, _check_offsets
from rag.types import Chunk, Document

META, POINTER = "meta", "current"
PIECE = 4000  # characters of the manifest/documents blob per meta row (Milvus JSON fields hold 64 KB)
READ_BATCH = 512  # chunk records per read on open
_PROBE_DIM = 2


def new_version() -> str:
    return f"v{time.strftime('%Y%m%d%H%M%S')}{uuid.uuid4().hex[:6]}"


class EngineBackend:
    """:class:`~rag.backends.base.IndexBackend` over one version of an index on an engine. Keys
    are engine keys; ``chunk_keys`` / ``unit_keys`` (row -> key), when set, name the rows a
    version's layout holds (:meth:`rows` maps keys back and drops any other)."""

    def __init__(self, engine, *, uri: str, prefix: str, version: str, hnsw: bool = False,
                 manifest: dict | None = None, generation: str | None = None):
        self.engine, self.uri, self.prefix, self.version, self.hnsw = engine, uri, prefix, version, hnsw
        self.generation = generation if generation is not None else version
        self._manifest = manifest
        self.chunk_keys: np.ndarray | None = None
        self.unit_keys: np.ndarray | None = None
        self._sorted: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def name(self, space: str) -> str:
        return f"{self.prefix}_{self.version if space == META else self.generation}_{space}"

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

    def rows(self, keys: np.ndarray, space: str = CHUNKS) -> tuple[np.ndarray, np.ndarray]:
        """Row numbers of ``keys`` in this version's layout, and which of ``keys`` it holds."""
        table = self.chunk_keys if space == CHUNKS else self.unit_keys
        if table is None:
            keys = np.asarray(keys, np.int64)
            return keys, np.ones(len(keys), bool)
        if space not in self._sorted:
            order = np.argsort(table, kind="stable")
            self._sorted[space] = (table[order], order)
        sk, order = self._sorted[space]
        keys = np.asarray(keys, np.int64)
        at = np.minimum(np.searchsorted(sk, keys), max(len(sk) - 1, 0))
        held = (sk[at] == keys) if len(sk) else np.zeros(len(keys), bool)
        return order[at[held]], held

    def top_rows(self, search, k: int, space: str, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """``search(k)`` -> (keys, scores) as this layout's rows: asks for more while rows the
        layout does not hold (an unfinished or newer write's) crowd the ``k`` it holds out."""
        want = k
        while True:
            keys, scores = search(want)
            rows, held = self.rows(keys, space)
            if held.sum() >= k or len(keys) < want or want >= limit:
                return rows[:k], np.asarray(scores)[held][:k]
            want = min(limit, 2 * want + 16)


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


def _collections(engine, prefix: str, space: str) -> set[str]:
    out = set()
    for n in engine.names():
        parts = n.split("_")
        if n.startswith(prefix + "_") and len(parts) >= 3 and parts[-1] == space:
            out.add(parts[-2])
    return out


def _versions(engine, prefix: str) -> set[str]:
    """Versions that have a meta collection (the live one, and any an interrupted write left)."""
    return _collections(engine, prefix, META)


def _generations(engine, prefix: str) -> set[str]:
    return _collections(engine, prefix, CHUNKS) | _collections(engine, prefix, UNITS)


# --- write --------------------------------------------------------------------------------------------

SPARSE_IDS = "blake2b-31"  # how the sparse vectors' term ids are made (recorded in the manifest)


def term_id(term: str) -> int:
    """A term's id in the sparse vectors: 31 bits of its BLAKE2b hash, the same in every write
    (a collision only adds a candidate; the scores are recomputed by our BM25)."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "little") & 0x7FFFFFFF


def sparse_rows(bm25: BM25Index) -> list[dict[int, float]]:
    """Chunk ``i``'s BM25 term weights keyed by :func:`term_id`: its dot product with a query's
    term counts is :meth:`BM25Index.scores` (for the corpus as of this write)."""
    ids = np.array([term_id(t) for t in sorted(bm25._terms, key=bm25._terms.get)], dtype=np.int64)
    w = bm25._weights.tocsc()
    out = []
    for i in range(w.shape[1]):
        row: dict[int, float] = {}
        for t, v in zip(ids[w.indices[w.indptr[i] : w.indptr[i + 1]]].tolist(), w.data[w.indptr[i] : w.indptr[i + 1]].tolist()):
            row[t] = row.get(t, 0.0) + v
        out.append(row)
    return out


def _meta_rows(manifest: dict, documents: dict[str, Document]) -> list[Row]:
    blob = json.dumps({"manifest": manifest, "documents": [d.to_dict() for d in documents.values()]},
                      ensure_ascii=False)
    probe = np.array([1.0, 0.0], np.float32)
    return [Row(j, "_meta", probe, None, {"text": blob[i : i + PIECE]}) for j, i in enumerate(range(0, len(blob), PIECE))]


def _generation_signature(index: Index, hnsw: bool) -> dict[str, Any]:
    """What rows of one generation share: a change re-sends every row."""
    return {"encoder": index.manifest["encoder"], "analyzer": index.manifest["analyzer"], "hnsw": hnsw,
            "sparse_ids": SPARSE_IDS}


def _doc_groups(index: Index) -> list[tuple[str, int, int]]:
    """``(doc_id, first row, end row)`` of each document's chunks, in index order (contiguous)."""
    out: list[tuple[str, int, int]] = []
    for i, c in enumerate(index.chunks):
        if out and out[-1][0] == c.doc_id:
            out[-1] = (c.doc_id, out[-1][1], i + 1)
        else:
            if any(g[0] == c.doc_id for g in out):
                raise IndexWriteError(f"the chunks of {c.doc_id!r} are not contiguous in the index")
            out.append((c.doc_id, i, i + 1))
    return out


def _chunk_payload(index: Index, i: int, heads_set: np.ndarray) -> dict[str, Any]:
    return {"chunk": index.chunks[i].to_dict(), "tokens": list(index.bm25.tokens[i]),
            "head": index.heads[i].tolist() if heads_set[i] else None,
            "spans": index.chunk_unit_spans(i).tolist()}


def _doc_hash(index: Index, lo: int, hi: int, payloads: list[dict]) -> str:
    """A hash of everything a document's rows hold except the BM25 weights (which move with the corpus)."""
    h = hashlib.sha256(json.dumps(payloads, ensure_ascii=False, sort_keys=True).encode("utf-8"))
    h.update(np.ascontiguousarray(index.dense.vectors[lo:hi], np.float32).tobytes())
    h.update(np.ascontiguousarray(index.units[index.unit_offsets[lo] : index.unit_offsets[hi]], np.float32).tobytes())
    return h.hexdigest()[:32]


def _layout_keys(layout: list) -> tuple[np.ndarray, np.ndarray]:
    """Chunk and unit keys, in index order, of a manifest's layout ``[[doc, hash, key, n, ukey, nu], ...]``."""
    ck = [np.arange(k, k + n, dtype=np.int64) for _, _, k, n, _, _ in layout]
    uk = [np.arange(k, k + n, dtype=np.int64) for _, _, _, _, k, n in layout]
    empty = np.zeros(0, np.int64)
    return np.concatenate(ck + [empty]), np.concatenate(uk + [empty])


def _try_meta(engine, prefix: str, version: str, uri: str) -> dict | None:
    try:
        return read_meta(EngineBackend(engine, uri=uri, prefix=prefix, version=version))[0]
    except (IndexCorruptError, ValueError, KeyError, TypeError):
        return None


def _clear_leftovers(engine, prefix: str, live: str | None, live_manifest: dict | None, uri: str) -> None:
    """Delete what unfinished writes left: their rows in the live generation, their collections otherwise."""
    live_gen = (live_manifest or {}).get("generation")
    held_c, held_u = _layout_keys((live_manifest or {}).get("layout", []))
    held_c, held_u = set(held_c.tolist()), set(held_u.tolist())
    for v in _versions(engine, prefix) - {live}:
        m = _try_meta(engine, prefix, v, uri)
        if m is not None and m.get("generation") == live_gen and live_gen is not None:
            ck, uk = _layout_keys(m.get("layout", []))
            be = EngineBackend(engine, uri=uri, prefix=prefix, version=v, generation=live_gen)
            engine.delete_keys(be.name(CHUNKS), [k for k in ck.tolist() if k not in held_c])
            engine.delete_keys(be.name(UNITS), [k for k in uk.tolist() if k not in held_u])
        engine.drop(f"{prefix}_{v}_{META}")
    for g in _generations(engine, prefix) - {live_gen, live}:  # (an older layout named them by version)
        EngineBackend(engine, uri=uri, prefix=prefix, version=g).drop()


def save_index(index: Index, engine, *, uri: str, prefix: str, rebuild: bool = False) -> EngineBackend:
    """Write ``index`` as a new version, sending only the rows that changed, and switch the
    pointer to it (see the module docstring)."""
    hnsw = index.dense.kind == "hnsw"
    live = pointer(engine, prefix)
    live_m = _try_meta(engine, prefix, live, uri) if live is not None else None
    _clear_leftovers(engine, prefix, live, live_m, uri)
    sig = _generation_signature(index, hnsw)
    same_gen = (not rebuild and live_m is not None and live_m.get("generation_signature") == sig
                and live_m.get("generation") in _generations(engine, prefix))
    generation = live_m["generation"] if same_gen else new_version()
    version = new_version() if same_gen else generation
    reuse = {d[0]: d for d in live_m.get("layout", [])} if same_gen else {}
    next_key = int(live_m.get("next_key", 0)) if same_gen else 0
    next_ukey = int(live_m.get("next_unit_key", 0)) if same_gen else 0
    be = EngineBackend(engine, uri=uri, prefix=prefix, version=version, hnsw=hnsw, generation=generation)
    heads_set = np.abs(index.heads).sum(axis=1) > 0
    sparse = sparse_rows(index.bm25)
    layout, new_chunks, new_units = [], [], []
    for doc, lo, hi in _doc_groups(index):
        payloads = [_chunk_payload(index, i, heads_set) for i in range(lo, hi)]
        h = _doc_hash(index, lo, hi, payloads)
        old = reuse.get(doc)
        nu = int(index.unit_offsets[hi] - index.unit_offsets[lo])
        if old is not None and old[1] == h and old[3] == hi - lo and old[5] == nu:
            layout.append(list(old))
            continue
        layout.append([doc, h, next_key, hi - lo, next_ukey, nu])
        new_chunks += [Row(next_key + j, doc, index.dense.vectors[i], sparse[i], payloads[j]) for j, i in enumerate(range(lo, hi))]
        u0 = int(index.unit_offsets[lo])
        new_units += [Row(next_ukey + j, doc, index.units[u0 + j], None, {"owner": next_key + int(index.unit_owner[u0 + j]) - lo})
                      for j in range(nu)]
        next_key, next_ukey = next_key + hi - lo, next_ukey + nu
    manifest = {**index.manifest, "sparse": {"ids": SPARSE_IDS}, "units": int(len(index.units)), "generation": generation,
                "generation_signature": sig, "layout": layout, "next_key": next_key, "next_unit_key": next_ukey}
    be._manifest = manifest
    try:
        if same_gen:
            engine.create(be.name(META), dim=_PROBE_DIM, sparse=False, hnsw=False)
        else:
            be.create(index.dense.dim)
        meta = _meta_rows(manifest, index.documents)  # first: it names the keys this write adds
        engine.upsert(be.name(META), meta)
        before = {s: engine.count(be.name(s)) for s in (CHUNKS, UNITS)}
        engine.insert(be.name(CHUNKS), new_chunks)  # every key is new: never a live row's
        engine.insert(be.name(UNITS), new_units)
        probe = index.dense.vectors[0]
        engine.settle(be.name(CHUNKS), before[CHUNKS] + len(new_chunks), probe)
        engine.settle(be.name(UNITS), before[UNITS] + len(new_units), index.units[0] if len(index.units) else probe)
        engine.settle(be.name(META), len(meta), np.array([1.0, 0.0], np.float32))
        _set_pointer(engine, prefix, be.version)
    except BaseException as e:
        try:
            if same_gen:
                engine.delete_keys(be.name(CHUNKS), [r.key for r in new_chunks])
                engine.delete_keys(be.name(UNITS), [r.key for r in new_units])
                engine.drop(be.name(META))
            else:
                be.drop()
        except Exception:  # noqa: BLE001 -- the next write clears leftovers too
            pass
        if isinstance(e, (RagError, KeyboardInterrupt, SystemExit)):
            raise
        raise IndexWriteError(f"{type(e).__name__}: {' '.join(str(e).split())[:300]}") from None
    be.chunk_keys, be.unit_keys = _layout_keys(layout)
    if live is not None:  # the old version: the rows only it held, its meta, or its whole generation
        if same_gen:
            old_c, old_u = _layout_keys(live_m.get("layout", []))
            engine.delete_keys(be.name(CHUNKS), sorted(set(old_c.tolist()) - set(be.chunk_keys.tolist())))
            engine.delete_keys(be.name(UNITS), sorted(set(old_u.tolist()) - set(be.unit_keys.tolist())))
            if f"{prefix}_{live}_{META}" in engine.names():
                engine.drop(f"{prefix}_{live}_{META}")
        _clear_leftovers(engine, prefix, be.version, manifest, uri)
    be.sent = {CHUNKS: len(new_chunks), UNITS: len(new_units)}
    return be


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
    """The dense leg asked of the engine. ``vectors`` are in memory only for an index just
    written (:func:`attach`); an opened one reads them by rows (:class:`RemoteRows`)."""

    def __init__(self, vectors: np.ndarray | RemoteRows, *, kind: str, backend: EngineBackend, space: str):
        if isinstance(vectors, RemoteRows):
            self.vectors, self.kind, self.hnsw_m, self.ef_search, self._index = vectors, kind, 32, 128, None
        else:
            super().__init__(vectors, kind=kind)
        self.backend, self.space = backend, space

    @property
    def index(self):
        raise RuntimeError("an engine index is searched by the engine (top), not by FAISS")

    def top(self, query_vec: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(n, len(self))
        return self.backend.top_rows(lambda m: self.backend.dense_top(query_vec, m, space=self.space), k, self.space,
                                     limit=max(k, 16_384))


class EngineBM25(BM25Index):
    """BM25 whose candidates are asked of the engine (sparse vectors of our own weights); every
    chunk's score, for the candidates' order, the hits' displayed score and the document
    filter, is computed here."""

    def __init__(self, tokens: list[list[str]], *, analyzer: str, backend: EngineBackend, **kw):
        super().__init__(tokens, analyzer=analyzer, **kw)
        self.backend = backend

    def query_weights(self, query_tokens: list[str]) -> dict[int, float]:
        out: dict[int, float] = {}
        for t, c in Counter(t for t in query_tokens if t in self._terms).items():
            out[term_id(t)] = out.get(term_id(t), 0.0) + float(c)
        return out

    def leg(self, query_tokens: list[str], n: int) -> tuple[dict[int, float], np.ndarray]:
        scores = self.scores(query_tokens)
        weights = self.query_weights(query_tokens)
        k = min(2 * n, len(self))
        if not weights or k < 1:
            return {}, scores
        rows, _ = self.backend.top_rows(lambda m: self.backend.sparse_top(weights, m), k, CHUNKS, limit=max(k, 16_384))
        mask = np.zeros(len(scores), bool)
        mask[rows] = True
        idx, s = top_n(np.where(mask, scores, 0.0), n)
        return dict(zip(idx.tolist(), s.tolist())), scores


@dataclasses.dataclass
class EngineIndex(Index):
    backend: EngineBackend | None = None

    @functools.cached_property
    def unit_dense(self) -> DenseIndex:
        return EngineDense(self.units, kind=self.dense.kind, backend=self.backend, space=UNITS)

    def passage_similarity(self, rows: np.ndarray, qv: np.ndarray, *, whole_weight: float = 0.5) -> np.ndarray:
        """:meth:`Index.passage_similarity`, reading only ``rows``' vectors (one fetch per space)."""
        if not isinstance(self.units, RemoteRows):
            return super().passage_similarity(rows, qv, whole_weight=whole_weight)
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        whole = self.dense.vectors[rows] @ qv
        best = self.heads[rows] @ qv
        lo, hi = self.unit_offsets[rows], self.unit_offsets[rows + 1]
        flat = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)] + [np.zeros(0, np.int64)])
        sims = self.units[flat] @ qv if len(flat) else np.zeros(0, np.float32)
        at = np.concatenate([[0], np.cumsum(hi - lo)])
        for j in range(len(rows)):
            if at[j + 1] > at[j]:
                best[j] = max(best[j], float(sims[at[j] : at[j + 1]].max()))
        return whole_weight * whole + (1.0 - whole_weight) * best


def remote_vectors(be: EngineBackend, *, dim: int) -> tuple[RemoteRows, RemoteRows, RemoteRows]:
    """Chunk, heading and unit vectors of ``be``'s layout, read by rows."""
    zero = np.zeros(dim, np.float32)

    def chunk_rows(keys: list[int]) -> dict[int, tuple[np.ndarray, ...]]:
        got = be.engine.fetch(be.name(CHUNKS), keys)
        return {k: (r.dense, np.asarray(r.payload["head"], np.float32) if r.payload.get("head") is not None else zero)
                for k, r in got.items()}

    def unit_rows(keys: list[int]) -> dict[int, tuple[np.ndarray, ...]]:
        return {k: (r.dense,) for k, r in be.engine.fetch(be.name(UNITS), keys).items()}

    cf, uf = RowFetcher(chunk_rows), RowFetcher(unit_rows)
    return (RemoteRows(cf, be.chunk_keys, dim, column=0), RemoteRows(cf, be.chunk_keys, dim, column=1),
            RemoteRows(uf, be.unit_keys, dim))


def attach(index: Index, be: EngineBackend) -> EngineIndex:
    """``index`` (just written to ``be``) served by the engine, without reading it back."""
    bm25 = EngineBM25(index.bm25.tokens, analyzer=index.bm25.analyzer, backend=be, k1=index.bm25.k1, b=index.bm25.b)
    return EngineIndex(
        manifest=be.describe(), documents=index.documents, chunks=index.chunks, bm25=bm25,
        dense=EngineDense(index.dense.vectors, kind=index.dense.kind, backend=be, space=CHUNKS),
        heads=index.heads, units=index.units, unit_offsets=index.unit_offsets, unit_spans=index.unit_spans,
        path=None, facts=index.facts, backend=be,
    )


def _open_version(engine, *, uri: str, prefix: str) -> EngineBackend:
    version = pointer(engine, prefix)
    if version is None:
        raise IndexMissingError(f"no index at {uri}: build one with `python -m ingest --index {uri}`")
    be = EngineBackend(engine, uri=uri, prefix=prefix, version=version)
    m = be.describe()
    if m.get("sparse", {}).get("ids") != SPARSE_IDS or "layout" not in m:
        raise IndexCorruptError(f"index at {uri} was written by an older version of this program; "
                                "rebuild it with `python -m ingest --rebuild`")
    be.generation = m["generation"]
    be.chunk_keys, be.unit_keys = _layout_keys(m["layout"])
    be.hnsw = m.get("faiss") == "hnsw" or (m.get("faiss") == "auto" and m.get("chunks", 0) >= HNSW_FROM)
    return be


def live_backend(engine, *, uri: str, prefix: str) -> EngineBackend:
    """The live version through the protocol, without reading its records."""
    return _open_version(engine, uri=uri, prefix=prefix)


def load_index(engine, *, uri: str, prefix: str) -> EngineIndex:
    """The live version's index (records only; vectors read by rows); any inconsistency is an
    :class:`IndexCorruptError`."""
    be = _open_version(engine, uri=uri, prefix=prefix)
    try:
        manifest, documents = read_meta(be)
        _check_manifest(manifest, uri)
        n = manifest["chunks"]
        chunks, tokens, spans, counts = [], [], [], []
        dim = manifest["encoder"]["dim"]
        keys = be.chunk_keys.tolist()
        for lo in range(0, len(keys), READ_BATCH):  # records only: vectors stay on the engine
            part = keys[lo : lo + READ_BATCH]
            got = engine.fetch(be.name(CHUNKS), part, vectors=False)
            for k in part:
                p = got[k].payload
                chunks.append(Chunk.from_dict(p["chunk"]))
                tokens.append(list(p["tokens"]))
                spans.extend(p["spans"])
                counts.append(len(p["spans"]))
        if len(chunks) != n or manifest.get("units") != sum(counts) or len(be.unit_keys) != sum(counts):
            raise IndexCorruptError(f"index at {uri} holds {len(chunks)} of {n} chunks; run `python -m ingest --rebuild`")
        kind = ("hnsw" if n >= HNSW_FROM else "flat") if manifest["faiss"] == "auto" else manifest["faiss"]
        be.hnsw = kind == "hnsw"
        bm25 = EngineBM25(tokens, analyzer=manifest["analyzer"], backend=be)
        vectors, heads, units = remote_vectors(be, dim=dim)
        index = EngineIndex(
            manifest=manifest, documents=documents, chunks=chunks, bm25=bm25,
            dense=EngineDense(vectors, kind=kind, backend=be, space=CHUNKS),
            heads=heads, units=units,
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
