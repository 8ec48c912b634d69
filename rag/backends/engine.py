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

On open only the manifest is read: the layout (keys per document), and the global statistics
written with the version (:func:`global_stats`: BM25's idf per term, mean length and
parameters; per chunk a packed unit count and language code; parallel links; the vocabulary
per language and the question lists). Everything per chunk stays on the engine: the candidate
legs (dense top-k over chunks and units, BM25 top-k) are asked of it, and a chunk's record,
tokens, unit spans and unit kinds, its vectors and a document's text are read when a stage asks
for them, the recently used ones kept (:mod:`rag.backends.remote`); the facts' corpus-wide texts
are searched piece by piece (:class:`PagedText`), and the pages that list the whole corpus read
the tables of :mod:`rag.pages` stored with the version (:meth:`EngineIndex.table`). The candidates' BM25 scores are computed from their tokens with
the same arithmetic as the folder's score matrix, so the scores are the folder's.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import json
import logging
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from rag import pages
from rag.analyze import get_analyzer
from rag.backends.base import CHUNKS, UNITS, Row, check_k, check_space
from rag.backends.remote import CACHE_ROWS, KeyRanges, RemoteColumn, RemoteRows, RowFetcher, UnitColumn, UnitOwner
from rag.bm25 import BM25Index, BM25Terms, length_norm, term_weight, top_n
from rag.dense import HNSW_FROM, DenseIndex
from rag.errors import IndexCorruptError, IndexMissingError, IndexWriteError, RagError
from rag.facts import RULES_VERSION, char_grams, may_occur
from rag.index import Index, _check_manifest
from rag.types import Chunk, Document

log = logging.getLogger(__name__)

META, POINTER = "meta", "current"
PIECE = 4000  # characters of a meta blob per meta row (Milvus JSON fields hold 64 KB)
BLOB_BATCH = 256  # meta rows per request when reading a part (256 x 4,000 characters)
PARTS_FROM = 1 << 40  # meta keys of the parts read on demand (documents' texts, facts' texts)
FORMAT = 3  # 3: per-chunk data only in the rows (and a chunk language field); the meta: global statistics
RECORD_CACHE = 1024  # chunk records (text, tokens, spans) kept per opened index
DOCUMENT_CACHE = 64  # documents (full text) kept per opened index
TEXT_ANSWERS = 4096  # answers of "does the corpus text contain ..." kept per text
# Up to this many chunks, the keyword leg picks its top n from a transient array of one score
# per chunk (4 bytes each, not kept), so chunks with equal scores come in the folder's order
TIE_ORDER_UP_TO = 1_000_000
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
        self.chunk_keys: KeyRanges | None = None
        self.unit_keys: KeyRanges | None = None

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

    def dense_top(self, vector: np.ndarray, k: int, *, space: str = CHUNKS,
                  langs: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(``langs``: only the chunks in those languages.)"""
        return self.engine.dense_top(self.name(check_space(space)), vector, check_k(k), exact=not self.hnsw,
                                     **({} if langs is None else {"langs": list(langs)}))

    def sparse_top(self, weights: Mapping[int, float], k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.engine.sparse_top(self.name(CHUNKS), weights, check_k(k))

    def count(self, *, space: str = CHUNKS) -> int:
        return self.engine.count(self.name(check_space(space)))

    def describe(self) -> dict[str, Any]:
        if self._manifest is None:
            self._manifest = read_meta(self)
        return self._manifest

    def rows(self, keys: np.ndarray, space: str = CHUNKS) -> tuple[np.ndarray, np.ndarray]:
        """Row numbers of ``keys`` in this version's layout, and which of ``keys`` it holds."""
        table = self.chunk_keys if space == CHUNKS else self.unit_keys
        if table is None:
            keys = np.asarray(keys, np.int64)
            return keys, np.ones(len(keys), bool)
        return table.rows_of(keys)

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


def _pieces(blob: str, first: int) -> list[Row]:
    probe = np.array([1.0, 0.0], np.float32)
    n = max(1, -(-len(blob) // PIECE))
    return [Row(first + j, "_meta", probe, None, {"text": blob[j * PIECE : (j + 1) * PIECE], "of": n})
            for j in range(n)]


def _meta_rows(manifest: dict, parts: Mapping[str, str]) -> tuple[dict, list[Row]]:
    """The meta rows of a version: the manifest (keys ``0 …``, read on open) and ``parts``,
    text blobs read only when asked for (keys from :data:`PARTS_FROM`, listed in the manifest's
    ``meta_parts``); the manifest as stored."""
    rows, at, where = [], PARTS_FROM, {}
    for name, blob in parts.items():
        got = _pieces(blob, at)
        where[name] = [at, len(got)]
        rows += got
        at += len(got)
    manifest = {**manifest, "meta_parts": where}
    return manifest, _pieces(json.dumps(manifest, ensure_ascii=False), 0) + rows


def _pack(a: np.ndarray, dtype) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype).tobytes()).decode("ascii")


def _unpack(s: str, dtype) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s.encode("ascii")), dtype=dtype).copy()


def global_stats(index: Index) -> tuple[dict, dict[str, str]]:
    """What an opened engine index keeps in memory, computed at write time: BM25's document
    frequencies as idf, the mean length and parameters; per chunk only its unit count and a
    language code (packed); the parallel links and the rows they point at; the facts' small
    parts (vocabulary per language, question lists). And the parts read on demand: each
    document (with its text), the facts' texts and the pages' tables (:mod:`rag.pages`)."""
    bm = index.bm25
    lens = [len(t) or 1 for t in bm.tokens]  # rank_bm25 counts an empty chunk as one empty token
    names = sorted({c.lang for c in index.chunks})
    code = {x: i for i, x in enumerate(names)}
    parallel = [[i, index.by_id[c.parallel]] for i, c in enumerate(index.chunks) if c.parallel in index.by_id]
    stats = {
        "format": FORMAT,
        "bm25": {"k1": bm.k1, "b": bm.b, "avgdl": sum(lens) / len(lens), "idf": {t: bm.idf(t) for t in bm.vocabulary}},
        "unit_counts": _pack(np.diff(index.unit_offsets), np.uint32),
        "langs": {"names": names, "codes": _pack(np.array([code[c.lang] for c in index.chunks]), np.uint8)},
        "parallel": parallel,
        "ids": {index.chunks[j].id: j for _, j in parallel},
        "question_lists": sorted(index.facts.question_lists),
        "vocabulary": {x: sorted(v) for x, v in sorted(index.facts.vocabulary.items())},
        "facts_rules": RULES_VERSION,
        "doc_records": {d.doc_id: {**d.to_dict(), "text": None, "origin": None} for d in index.documents.values()},
    }
    parts = {f"doc:{d.doc_id}": json.dumps(d.to_dict(), ensure_ascii=False) for d in index.documents.values()}
    for name in ("quotable_text", "squashed_notes", "answer_text"):
        parts[f"facts:{name}"] = getattr(index.facts, name)
        parts[f"facts:{name}:grams"] = _pack(char_grams(getattr(index.facts, name)), np.uint8)
    parts.update(pages.stored_tables(index))
    return stats, parts


def _generation_signature(index: Index, hnsw: bool) -> dict[str, Any]:
    """What rows of one generation share: a change re-sends every row."""
    return {"encoder": index.manifest["encoder"], "analyzer": index.manifest["analyzer"], "hnsw": hnsw,
            "sparse_ids": SPARSE_IDS, "format": FORMAT}


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
    a, b = int(index.unit_offsets[i]), int(index.unit_offsets[i + 1])
    return {"chunk": index.chunks[i].to_dict(), "tokens": list(index.bm25.tokens[i]),
            "head": index.heads[i].tolist() if heads_set[i] else None,
            "spans": index.chunk_unit_spans(i).tolist(), "kinds": np.asarray(index.facts.unit_kinds[a:b]).tolist()}


def _doc_hash(index: Index, lo: int, hi: int, payloads: list[dict]) -> str:
    """A hash of everything a document's rows hold except the BM25 weights (which move with the corpus)."""
    h = hashlib.sha256(json.dumps(payloads, ensure_ascii=False, sort_keys=True).encode("utf-8"))
    h.update(np.ascontiguousarray(index.dense.vectors[lo:hi], np.float32).tobytes())
    h.update(np.ascontiguousarray(index.units[index.unit_offsets[lo] : index.unit_offsets[hi]], np.float32).tobytes())
    return h.hexdigest()[:32]


def _layout_keys(layout: list) -> tuple[KeyRanges, KeyRanges]:
    """Chunk and unit keys, in index order, of a manifest's layout ``[[doc, hash, key, n, ukey, nu], ...]``
    (held per document: each document's keys are consecutive)."""
    return (KeyRanges([d[2] for d in layout], [d[3] for d in layout]),
            KeyRanges([d[4] for d in layout], [d[5] for d in layout]))


def _try_meta(engine, prefix: str, version: str, uri: str) -> dict | None:
    try:
        return read_meta(EngineBackend(engine, uri=uri, prefix=prefix, version=version))
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
        new_chunks += [Row(next_key + j, doc, index.dense.vectors[i], sparse[i], payloads[j], lang=index.chunks[i].lang)
                       for j, i in enumerate(range(lo, hi))]
        u0 = int(index.unit_offsets[lo])
        new_units += [Row(next_ukey + j, doc, index.units[u0 + j], None, {"owner": next_key + int(index.unit_owner[u0 + j]) - lo})
                      for j in range(nu)]
        next_key, next_ukey = next_key + hi - lo, next_ukey + nu
    stats, parts = global_stats(index)
    manifest = {**index.manifest, "sparse": {"ids": SPARSE_IDS}, "units": int(len(index.units)), "generation": generation,
                "generation_signature": sig, "layout": layout, "next_key": next_key, "next_unit_key": next_ukey,
                "engine": stats}
    manifest, meta = _meta_rows(manifest, parts)
    be._manifest = manifest
    try:
        if same_gen:
            engine.create(be.name(META), dim=_PROBE_DIM, sparse=False, hnsw=False)
        else:
            be.create(index.dense.dim)
        engine.upsert(be.name(META), meta)  # first: it names the keys this write adds
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


def _read_blob(be: EngineBackend, first: int, n: int | None = None) -> str:
    name = be.name(META)
    if n is None:  # the manifest: its first row says how many there are
        got = be.engine.fetch(name, [first], vectors=False)
        if first not in got:
            raise IndexCorruptError(f"index at {be.uri} version {be.version} has no manifest; "
                                    "run `python -m ingest --rebuild`")
        n = int(got[first].payload.get("of", 0))
    keys = list(range(first, first + n))
    got = {}
    for lo in range(0, n, BLOB_BATCH):  # a large part (a page's table) in several requests
        got.update(be.engine.fetch(name, keys[lo : lo + BLOB_BATCH], vectors=False))
    if len(got) != n:
        raise IndexCorruptError(f"index at {be.uri} version {be.version} misses meta rows; "
                                "run `python -m ingest --rebuild`")
    return "".join(got[k].payload["text"] for k in keys)


def read_meta(be: EngineBackend) -> dict:
    """The version's manifest (the global statistics included; the parts stay on the engine)."""
    if be.name(META) not in be.engine.names():
        raise IndexCorruptError(f"index at {be.uri} version {be.version} has no manifest; "
                                "run `python -m ingest --rebuild`")
    return json.loads(_read_blob(be, 0))


def read_part(be: EngineBackend, manifest: dict, name: str) -> str:
    """A text part of the meta (a document, a facts text, a page's table), read from the engine."""
    first, n = manifest["meta_parts"][name]
    return _read_blob(be, int(first), int(n))


class PagedText:
    """A corpus-wide text of the meta (the facts' texts) that answers ``needle in text`` by
    reading its pieces a batch at a time, none kept: only the last :data:`TEXT_ANSWERS`
    answers are, and the text's runs of 2–4 characters (:attr:`grams`), which answer most absent
    needles without reading. A needle found stops the read there; an absent one whose runs all
    occur reads every piece, once (:meth:`contains` asks for several needles in one pass).
    ``read`` counts the pieces read."""

    def __init__(self, be: EngineBackend, manifest: dict, name: str, *, batch: int = 64):
        first, n = manifest["meta_parts"][name]
        self._be, self._manifest, self._name = be, manifest, name
        self._first, self._n, self._batch = int(first), int(n), batch
        self._answers: OrderedDict[str, bool] = OrderedDict()
        self.read = 0

    @functools.cached_property
    def grams(self) -> np.ndarray | None:
        """The text's runs of 2–4 characters (:func:`rag.facts.char_grams`, 2 MB, read once): a
        needle with a run the text lacks is absent without reading the text. ``None`` for a
        version written without them."""
        part = f"{self._name}:grams"
        if part not in self._manifest["meta_parts"]:
            return None
        return _unpack(read_part(self._be, self._manifest, part), np.uint8)

    def _pieces(self) -> Iterator[str]:
        name = self._be.name(META)
        for lo in range(self._first, self._first + self._n, self._batch):
            keys = list(range(lo, min(self._first + self._n, lo + self._batch)))
            got = self._be.engine.fetch(name, keys, vectors=False)
            if len(got) != len(keys):
                raise IndexCorruptError(f"index at {self._be.uri} version {self._be.version} misses meta rows; "
                                        "run `python -m ingest --rebuild`")
            self.read += len(keys)
            yield from (got[k].payload["text"] for k in keys)

    def contains(self, needles) -> list[bool]:
        """Whether each of ``needles`` occurs in the text, in one pass over the pieces for
        those not answered lately (a needle may span two pieces: each piece is searched with
        the end of the one before)."""
        needles = [str(x) for x in needles]
        todo = {x for x in needles if x not in self._answers}
        found = {x for x in todo if not x}
        todo -= found
        if todo and self.grams is not None:
            todo = {x for x in todo if may_occur(self.grams, x)}  # the others are absent
        if todo:
            keep = max(len(x) for x in todo) - 1
            tail = ""
            for piece in self._pieces():
                window = tail + piece
                found |= {x for x in todo if x in window}
                todo -= found
                if not todo:
                    break
                tail = window[len(window) - keep :] if keep else ""
        for x in dict.fromkeys(needles):
            if x not in self._answers:
                self._answers[x] = x in found
            self._answers.move_to_end(x)
        while len(self._answers) > TEXT_ANSWERS:
            self._answers.popitem(last=False)
        return [self._answers[x] if x in self._answers else x in found for x in needles]

    def __contains__(self, needle) -> bool:
        return self.contains([needle])[0]


class EngineDense(DenseIndex):
    """The dense leg asked of the engine; the vectors are read by rows (:class:`RemoteRows`)."""

    in_memory = False
    max_top = 16_384  # Milvus's limit on one search's k

    def __init__(self, vectors: RemoteRows, *, kind: str, backend: EngineBackend, space: str):
        self.vectors, self.kind, self.hnsw_m, self.ef_search, self._index = vectors, kind, 32, 128, None
        self.backend, self.space = backend, space

    @property
    def index(self):
        raise RuntimeError("an engine index is searched by the engine (top), not by FAISS")

    def top(self, query_vec: np.ndarray, n: int, *, langs: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows and scores of the ``n`` nearest (among the chunks in ``langs``, if given)."""
        k = min(n, len(self))
        return self.backend.top_rows(lambda m: self.backend.dense_top(query_vec, m, space=self.space, langs=langs), k,
                                     self.space, limit=max(k, 16_384))


class RowScores:
    """BM25 scores of a query, computed for the rows asked (``s[i]``) from their tokens; rows
    outside ``within`` (a document filter) score 0."""

    def __init__(self, bm25: EngineBM25, counts: Counter, within: set[int] | None = None):
        self.bm25, self.counts, self.within = bm25, counts, within
        self.known: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self.bm25)

    def __getitem__(self, i) -> np.float32:
        i = int(i)
        if self.within is not None and i not in self.within:
            return np.float32(0.0)
        if i not in self.known:
            self.bm25.score_rows(self, [i])
        return np.float32(self.known[i])


class EngineBM25(BM25Terms):
    """BM25 on an engine: the candidates come from the engine's sparse search (our own
    weights), and each candidate's score is computed here from its tokens (read from its row)
    and the global statistics written with the version (idf of every term, mean length, k1, b),
    with the same arithmetic as :class:`BM25Index`'s matrix — so the same scores. Holds no
    per-chunk data."""

    def __init__(self, tokens: RemoteColumn, *, analyzer: str, stats: Mapping, backend: EngineBackend):
        self.tokens, self.analyzer, self.analyze = tokens, analyzer, get_analyzer(analyzer)
        self.k1, self.b, self.avgdl = float(stats["k1"]), float(stats["b"]), float(stats["avgdl"])
        self._idf: dict[str, float] = stats["idf"]
        self.backend = backend

    def query_weights(self, query_tokens: Sequence[str]) -> dict[int, float]:
        out: dict[int, float] = {}
        for t, c in self.counts(query_tokens).items():
            out[term_id(t)] = out.get(term_id(t), 0.0) + float(c)
        return out

    def score_rows(self, scores: RowScores, rows: Sequence[int]) -> np.ndarray:
        """The scores of ``rows`` (kept in ``scores``): per query term, in the query's order,
        idf x tf x (k1 + 1) / (tf + k1 x (1 - b + b x length / mean length)) x its count,
        summed in float64 as the folder's matrix product does, then float32."""
        todo = [int(r) for r in rows if int(r) not in scores.known]
        k1, b, avgdl = self.k1, self.b, self.avgdl
        for r, toks in zip(todo, self.tokens.many(todo)):
            tf = Counter(toks)
            norm = length_norm(len(toks) or 1, avgdl, k1, b)
            s = 0.0
            for t, c in scores.counts.items():
                f = tf.get(t)
                if f:
                    s += term_weight(self._idf[t], f, norm, k1) * float(c)
            scores.known[r] = s
        return np.array([scores.known[int(r)] for r in rows], dtype=np.float64).astype(np.float32)

    def scores(self, query_tokens: Sequence[str]) -> RowScores:
        return RowScores(self, self.counts(query_tokens))

    def leg(self, query_tokens: Sequence[str], n: int, *,
            rows: np.ndarray | None = None) -> tuple[dict[int, float], RowScores]:
        """The top ``n`` chunks (among ``rows`` if given) and the query's scores: the engine
        proposes ``2n`` candidates (its weights may be an older write's), scored here."""
        counts = self.counts(query_tokens)
        scores = RowScores(self, counts, None if rows is None else set(np.asarray(rows).tolist()))
        if not counts:
            return {}, scores
        if rows is None:
            weights = self.query_weights(query_tokens)
            k = min(2 * n, len(self))
            rows, _ = self.backend.top_rows(lambda m: self.backend.sparse_top(weights, m), k, CHUNKS,
                                            limit=max(k, 16_384))
        rows = np.sort(np.asarray(rows, np.int64))
        if not len(rows):
            return {}, scores
        got = self.score_rows(scores, rows)
        if len(self) <= TIE_ORDER_UP_TO:  # equal scores in the folder's order: top_n over a whole-length array
            full = np.zeros(len(self), np.float32)
            full[rows] = got
            idx, s = top_n(full, n)
            return dict(zip(idx.tolist(), s.tolist())), scores
        idx, s = top_n(got, n)
        return dict(zip(rows[idx].tolist(), s.tolist())), scores

    def top(self, query_tokens: Sequence[str], n: int) -> tuple[np.ndarray, np.ndarray]:
        got, _ = self.leg(query_tokens, n)
        return np.array(list(got), dtype=np.int64), np.array(list(got.values()), dtype=np.float32)


class EngineFacts:
    """:class:`~rag.facts.IndexFacts` of an engine index: vocabulary and question lists from
    the manifest, unit kinds from the chunk rows, and the three corpus-wide texts (the topic
    gate's and the drill's) searched on the engine piece by piece (:class:`PagedText`), not held."""

    def __init__(self, be: EngineBackend, manifest: dict, unit_kinds: UnitColumn):
        stats = manifest["engine"]
        self._be, self._manifest, self.unit_kinds = be, manifest, unit_kinds
        self.question_lists = frozenset(stats["question_lists"])
        self.vocabulary = {lang: frozenset(terms) for lang, terms in stats["vocabulary"].items()}

    def _part(self, name: str) -> PagedText:
        return PagedText(self._be, self._manifest, f"facts:{name}")

    @functools.cached_property
    def quotable_text(self) -> PagedText:
        return self._part("quotable_text")

    @functools.cached_property
    def squashed_notes(self) -> PagedText:
        return self._part("squashed_notes")

    @functools.cached_property
    def answer_text(self) -> PagedText:
        return self._part("answer_text")


class EngineDocuments(Mapping):
    """The documents of an engine index by id, in index order; a document (with its full
    text) is read from the engine when asked for, the last :data:`DOCUMENT_CACHE` kept."""

    def __init__(self, be: EngineBackend, manifest: dict):
        self._be, self._manifest = be, manifest
        self._ids = list(manifest["engine"]["doc_records"])
        self._known = set(self._ids)
        self._lru: OrderedDict[str, Document] = OrderedDict()

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __contains__(self, doc_id) -> bool:
        return doc_id in self._known

    def record(self, doc_id: str) -> dict:
        """A document's fields but its text (and origin map), without reading it."""
        return self._manifest["engine"]["doc_records"][doc_id]

    def __getitem__(self, doc_id: str) -> Document:
        if doc_id not in self._known:
            raise KeyError(doc_id)
        if doc_id not in self._lru:
            self._lru[doc_id] = Document.from_dict(json.loads(read_part(self._be, self._manifest, f"doc:{doc_id}")))
            while len(self._lru) > DOCUMENT_CACHE:
                self._lru.popitem(last=False)
        self._lru.move_to_end(doc_id)
        return self._lru[doc_id]


class EngineIds(Mapping):
    """Chunk id -> row of an engine index: the rows parallel links point at (in the manifest)
    and the chunks read lately (a hit's chunk, found by id); any other id makes it read every
    chunk's id once and keep them (no page does: the quiz's card vectors are a stored table,
    :mod:`rag.pages`)."""

    def __init__(self, linked: Mapping[str, int], chunks: RemoteColumn):
        self._linked, self._chunks = dict(linked), chunks
        self._seen: OrderedDict[str, int] = OrderedDict()
        self._all: dict[str, int] | None = None

    def saw(self, chunk_id: str, row: int) -> None:
        self._seen[chunk_id] = row
        self._seen.move_to_end(chunk_id)
        while len(self._seen) > 4 * CACHE_ROWS:
            self._seen.popitem(last=False)

    def _find(self, chunk_id) -> int | None:
        for table in (self._linked, self._seen):
            if chunk_id in table:
                return table[chunk_id]
        if self._all is None:
            self._all = {c.id: i for i, c in enumerate(self._chunks)}
        return self._all.get(chunk_id)

    def __getitem__(self, chunk_id) -> int:
        row = self._find(chunk_id)
        if row is None:
            raise KeyError(chunk_id)
        return row

    def __contains__(self, chunk_id) -> bool:
        return chunk_id is not None and self._find(chunk_id) is not None

    def __len__(self) -> int:
        return len(self._chunks)

    def __iter__(self):
        return (c.id for c in self._chunks)


@dataclasses.dataclass
class EngineIndex(Index):
    """An :class:`Index` whose per-chunk data stays on the engine: records, tokens, spans and
    unit kinds are read per row (:class:`RemoteColumn`, the last :data:`RECORD_CACHE` kept),
    vectors per row (:class:`RemoteRows`); in memory only the global statistics of the
    manifest, the unit offsets and a language code per chunk."""

    backend: EngineBackend | None = None

    def __post_init__(self):
        if not (len(self.bm25) == len(self.dense) == len(self.heads) == len(self.chunks) == len(self.unit_offsets) - 1
                and len(self.units) == len(self.unit_spans) == self.unit_offsets[-1]):
            raise IndexCorruptError(f"index at {self.backend.uri}: its parts disagree; "
                                    "run `python -m ingest --rebuild`")
        stats = self.manifest["engine"]
        self.by_id = EngineIds(stats["ids"], self.chunks)

    @functools.cached_property
    def unit_dense(self) -> DenseIndex:
        return EngineDense(self.units, kind=self.dense.kind, backend=self.backend, space=UNITS)

    @functools.cached_property
    def unit_owner(self) -> UnitOwner:
        return UnitOwner(self.unit_offsets)

    def token_set(self, i: int) -> frozenset[str]:
        return frozenset(self.bm25.tokens[i])

    def prefetch(self, rows) -> None:
        self.chunks.many(list(rows))

    def pin(self, rows) -> None:
        rows = np.asarray(rows, np.int64)
        self.dense.vectors.fetcher.pin(self.backend.chunk_keys[rows].tolist())
        units = np.concatenate([np.arange(self.unit_offsets[r], self.unit_offsets[r + 1]) for r in rows.tolist()]
                               + [np.zeros(0, np.int64)])
        self.units.fetcher.pin(self.backend.unit_keys[units].tolist())

    def table(self, name: str):
        """Table ``name`` of :mod:`rag.pages`: the one stored with the version (a meta part), or,
        for a version written before the tables were stored, computed by reading every row."""
        part = pages.PART + name
        if part in self.manifest.get("meta_parts", {}):
            return json.loads(read_part(self.backend, self.manifest, part))
        return super().table(name)

    def chunk_languages(self) -> list[str]:
        langs = self.manifest["engine"]["langs"]
        return [langs["names"][c] for c in _unpack(langs["codes"], np.uint8).tolist()]

    def parallel_rows(self) -> dict[int, int]:
        return {int(i): int(j) for i, j in self.manifest["engine"]["parallel"]}

    def rows_of_documents(self, doc_ids) -> np.ndarray:
        keep = set(doc_ids)
        at = self.backend.chunk_keys
        layout = self.manifest["layout"]
        parts = [np.arange(at.starts[d], at.starts[d + 1]) for d, item in enumerate(layout) if item[0] in keep]
        return np.concatenate(parts + [np.zeros(0, np.int64)]).astype(np.int64)

    def passage_similarity(self, rows: np.ndarray, qv: np.ndarray, *, whole_weight: float = 0.5) -> np.ndarray:
        """:meth:`Index.passage_similarity`, reading only ``rows``' vectors (one fetch per space)."""
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


def _fetchers(be: EngineBackend, *, dim: int, ids: list) -> tuple[RowFetcher, RowFetcher, RowFetcher, Any, Any]:
    """Row readers of ``be``'s layout: chunk vectors (with the heading vector), chunk records
    (record, tokens, unit spans, unit kinds; no vector), unit vectors; and the bulk readers of
    just the vectors (for a pass over every row)."""
    zero = np.zeros(dim, np.float32)
    chunks, units = be.name(CHUNKS), be.name(UNITS)

    def vector_rows(keys: list[int]) -> dict[int, tuple[np.ndarray, ...]]:
        got = be.engine.fetch(chunks, keys)
        return {k: (r.dense, np.asarray(r.payload["head"], np.float32) if r.payload.get("head") is not None else zero)
                for k, r in got.items()}

    def record_rows(keys: list[int]) -> dict[int, tuple]:
        got = be.engine.fetch(chunks, keys, vectors=False)
        rows, held = be.rows(np.asarray(list(got), np.int64))
        out = {}
        for (k, r), row in zip([x for x, h in zip(got.items(), held) if h], rows.tolist()):
            p = r.payload
            c = Chunk.from_dict(p["chunk"])
            ids[0].saw(c.id, row)
            out[k] = (c, tuple(p["tokens"]), np.asarray(p["spans"], np.int64).reshape(-1, 2),
                      np.asarray(p["kinds"], np.uint8))
        return out

    def bulk(name: str):
        return lambda keys: {k: r.dense for k, r in be.engine.fetch(name, keys, payload=False).items()}

    return (RowFetcher(vector_rows), RowFetcher(record_rows, cache=RECORD_CACHE),
            RowFetcher(lambda keys: {k: (v,) for k, v in bulk(units)(keys).items()}), bulk(chunks), bulk(units))


def _open_version(engine, *, uri: str, prefix: str) -> EngineBackend:
    version = pointer(engine, prefix)
    if version is None:
        raise IndexMissingError(f"no index at {uri}: build one with `python -m ingest --index {uri}`")
    be = EngineBackend(engine, uri=uri, prefix=prefix, version=version)
    try:
        m = be.describe()
    except (ValueError, KeyError, TypeError):
        m = {}
    if m.get("sparse", {}).get("ids") != SPARSE_IDS or "layout" not in m or m.get("engine", {}).get("format") != FORMAT:
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
    """The live version's index: its manifest and global statistics only (records and vectors
    read by rows); any inconsistency is an :class:`IndexCorruptError`."""
    be = _open_version(engine, uri=uri, prefix=prefix)
    try:
        manifest = be.describe()
        _check_manifest(manifest, uri)
        stats, n, dim = manifest["engine"], manifest["chunks"], manifest["encoder"]["dim"]
        if stats.get("facts_rules", 1) != RULES_VERSION:
            log.warning("index at %s: its unit kinds were derived by rules version %s, this version derives them "
                        "by %s; answers quote by the old ones until `python -m ingest --rebuild`",
                        uri, stats.get("facts_rules", 1), RULES_VERSION)
        counts = _unpack(stats["unit_counts"], np.uint32).astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        if len(counts) != n or len(be.chunk_keys) != n or manifest.get("units") != offsets[-1] \
                or len(be.unit_keys) != offsets[-1] or set(stats["doc_records"]) != set(manifest["documents"]):
            raise IndexCorruptError(f"index at {uri}: its layout does not match its {n} chunks; "
                                    "run `python -m ingest --rebuild`")
        kind = ("hnsw" if n >= HNSW_FROM else "flat") if manifest["faiss"] == "auto" else manifest["faiss"]
        be.hnsw = kind == "hnsw"
        ids: list = [None]
        vf, rf, uf, chunk_bulk, unit_bulk = _fetchers(be, dim=dim, ids=ids)
        chunks = RemoteColumn(rf, be.chunk_keys, 0)
        spans = UnitColumn(RemoteColumn(rf, be.chunk_keys, 2), offsets, width=2)
        kinds = UnitColumn(RemoteColumn(rf, be.chunk_keys, 3), offsets, dtype=np.uint8)
        index = EngineIndex(
            manifest=manifest, documents=EngineDocuments(be, manifest), chunks=chunks,
            bm25=EngineBM25(RemoteColumn(rf, be.chunk_keys, 1), analyzer=manifest["analyzer"], stats=stats["bm25"],
                            backend=be),
            dense=EngineDense(RemoteRows(vf, be.chunk_keys, dim, column=0, bulk=chunk_bulk), kind=kind, backend=be,
                              space=CHUNKS),
            heads=RemoteRows(vf, be.chunk_keys, dim, column=1),
            units=RemoteRows(uf, be.unit_keys, dim, bulk=unit_bulk),
            unit_offsets=offsets, unit_spans=spans, path=None, facts=EngineFacts(be, manifest, kinds), backend=be,
        )
        ids[0] = index.by_id
        return index
    except (IndexCorruptError, IndexMissingError):
        raise
    except (ValueError, KeyError, TypeError) as e:
        raise IndexCorruptError(f"index at {uri} is unreadable ({type(e).__name__}: {str(e)[:200]}); "
                                "rebuild it with `python -m ingest --rebuild`") from None
