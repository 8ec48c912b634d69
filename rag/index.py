"""The hybrid index: a folder of plain files plus a versioned ``manifest.json``.

Layout of one build folder::

    manifest.json       format version, encoder id/dim, analyzer, chunker settings, per-document hashes
    documents.jsonl     one Document per line (full text: the source browser shows it)
    chunks.jsonl        one Chunk per line, in index order
    bm25.json, bm25_tokens.jsonl
    vectors.npy         chunk vectors (float32, L2-normalised)
    heads.npy           vectors of each chunk's question/heading (zeros where none)
    units.npy, unit_offsets.npy   vectors of the chunks' units (lines and sentences, see
                        rag.rules.sentences.unit_spans); chunk i owns rows offsets[i]:offsets[i+1]
    unit_spans.npy      (start, end) of each unit in its document's text
    unit_kinds.npy, facts.json   what queries need, computed at build time (rag.facts):
                        unit kinds, vocabulary per language, question lists, quotable text;
                        facts derived by older rules (``rag.facts.RULES_VERSION``) are derived
                        again when the build is opened and saved back into it (atomically),
                        unless its folder is read-only: then on every open, with a warning
    bm25_matrix.npz, bm25_vocab.json, bm25_idf.npy   BM25's term x chunk score matrix,
                        its vocabulary and idf: loading reads them, nothing is recomputed
    dense.faiss         only for HNSW: the chunk vectors' graph
    units.faiss         only for HNSW: the unit vectors' graph, recorded in the manifest as
                        ``unit_graph``; a missing, unreadable or stale one is rebuilt on first
                        use with a warning (minutes at 100k chunks), never an error

An index root holds build folders under ``builds/`` and a ``CURRENT`` file naming the live
one. :func:`write_index` writes a new build completely, then replaces ``CURRENT`` with an
atomic rename, so a failed build leaves the old index serving. Writers take the root's
cross-process lock (:func:`write_lock`, the file ``.write.lock``) so two ingests never
interleave, and old builds are removed only when finished and not the one ``CURRENT``
names.

:meth:`Index.load` trusts nothing it reads: every manifest key, every array's dtype and
shape (the :data:`ARRAYS` table), finite vectors, every chunk's document and offsets are
checked, and any failure is the one :class:`~rag.errors.IndexCorruptError` that says
"rebuild".
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import time
import types
import typing
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from rag.analyze import ANALYZERS
from rag.bm25 import BM25Index
from rag.dense import FAISS_KINDS, DenseIndex
from rag.errors import IndexCorruptError, IndexMissingError
from rag.facts import FACTS_FILE, KINDS_FILE, IndexFacts, StaleFacts, derive_facts
from rag.files import atomic_write
from rag.rules.script import notes_languages
from rag.types import Chunk, Document
from rag.units import UNIT_KINDS

FORMAT_VERSION = 3  # 3: BM25 matrix and the derived facts saved with the index
LOCK_FILE = ".write.lock"
UNIT_GRAPH = "units.faiss"
STALE_BUILD_SECONDS = 3600  # an unfinished build older than this is a killed ingest's leftovers
log = logging.getLogger(__name__)
_BUILD_NAME = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_.-]*$")


@dataclass
class Index:
    """Everything search needs, in memory. Row ``i`` of every array belongs to ``chunks[i]``."""

    manifest: dict[str, Any]
    documents: dict[str, Document]
    chunks: list[Chunk]
    bm25: BM25Index
    dense: DenseIndex
    heads: np.ndarray
    units: np.ndarray
    unit_offsets: np.ndarray
    unit_spans: np.ndarray
    path: Path | None = None
    facts: IndexFacts | None = field(default=None, repr=False)  # derived at build time when not given
    # the manifest's ``unit_graph`` record of the saved units.faiss (kept out of ``manifest``:
    # it describes this folder's files, not the index's settings)
    unit_graph: dict | None = field(default=None, repr=False)
    by_id: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self):
        n = len(self.chunks)
        if not (len(self.bm25) == len(self.dense) == len(self.heads) == n == len(self.unit_offsets) - 1) or not (
            len(self.units) == len(self.unit_spans) == (self.unit_offsets[-1] if len(self.unit_offsets) else -1)
        ):
            raise IndexCorruptError(
                f"index parts disagree: {n} chunks, {len(self.bm25)} BM25 rows, {len(self.dense)} vectors, "
                f"{len(self.heads)} heading vectors, {len(self.unit_offsets) - 1} unit groups, "
                f"{len(self.units)} unit vectors, {len(self.unit_spans)} unit spans"
            )
        self.by_id = {c.id: i for i, c in enumerate(self.chunks)}
        if self.facts is None:
            self.facts = derive_facts(self.documents, self.chunks, self.bm25.tokens, self.unit_spans, self.unit_offsets)

    @property
    def encoder_id(self) -> str:
        return self.manifest["encoder"]["id"]

    @functools.cached_property
    def token_sets(self) -> tuple[frozenset[str], ...]:
        """The distinct analyzed terms of every chunk."""
        return tuple(frozenset(t) for t in self.bm25.tokens)

    def token_set(self, i: int) -> frozenset[str]:
        """The distinct analyzed terms of chunk ``i``."""
        return self.token_sets[i]

    def vocabulary_of(self, lang: str) -> frozenset[str]:
        """The analyzed terms of the chunks written in ``lang`` (computed at build time)."""
        return self.facts.vocabulary.get(lang, frozenset())

    def prefetch(self, rows) -> None:
        """Read chunks ``rows`` together before they are used one by one (an engine index reads
        its records by rows; here they are in memory)."""

    def pin(self, rows) -> None:
        """Keep the vectors of chunks ``rows`` at hand: every question reads them (an engine
        index then keeps them beside its recently used rows; here all are in memory)."""

    def table(self, name: str):
        """Table ``name`` of :mod:`rag.pages` (what a page listing the whole corpus shows),
        computed from the chunks and documents held here."""
        from rag import pages

        return pages.build(name, self)

    def chunk_languages(self) -> list[str]:
        """The detected language of every chunk, in index order."""
        return [c.lang for c in self.chunks]

    def notes_languages(self) -> frozenset[str]:
        """The languages the notes are written in (:func:`rag.rules.script.notes_languages`: a
        language of too few passages is none of them); cached while the chunks stay the same."""
        n = len(self.chunks)
        if getattr(self, "_notes_langs", (None,))[0] != n:
            self._notes_langs = (n, frozenset(notes_languages(self.chunk_languages())))
        return self._notes_langs[1]

    def parallel_rows(self) -> dict[int, int]:
        """Row -> row of its translation (``Chunk.parallel``), for the chunks that have one."""
        return {i: self.by_id[c.parallel] for i, c in enumerate(self.chunks) if c.parallel in self.by_id}

    def rows_of_documents(self, doc_ids) -> np.ndarray:
        """The rows of the chunks of ``doc_ids``, in index order."""
        keep = set(doc_ids)
        return np.flatnonzero(np.array([c.doc_id in keep for c in self.chunks], dtype=bool)).astype(np.int64)

    def chunk_units(self, i: int) -> np.ndarray:
        return self.units[self.unit_offsets[i] : self.unit_offsets[i + 1]]

    def chunk_unit_spans(self, i: int) -> np.ndarray:
        """``(start, end)`` rows, in document offsets, of chunk ``i``'s units."""
        return self.unit_spans[self.unit_offsets[i] : self.unit_offsets[i + 1]]

    @functools.cached_property
    def unit_owner(self) -> np.ndarray:
        """Chunk index of every sentence vector."""
        return np.repeat(np.arange(len(self.chunks)), np.diff(self.unit_offsets))

    @functools.cached_property
    def unit_dense(self) -> DenseIndex:
        """FAISS over sentence vectors, on first use: the graph saved with the index
        (``units.faiss``) when there is a good one, otherwise built here."""
        dense = DenseIndex(self.units, kind=self.dense.kind)
        if dense.kind == "hnsw" and self.path is not None:
            try:
                if self.unit_graph is None:
                    raise ValueError("the manifest records no unit_graph (an index written before it was saved)")
                dense.adopt_graph(self.path / UNIT_GRAPH, self.unit_graph)
            except ValueError as e:
                log.warning("index at %s: not using the saved units' graph (%s); building it now, which takes "
                            "minutes for a large index (`python -m ingest --rebuild` saves a new one)", self.path, e)
        return dense

    def passage_similarity(self, rows: np.ndarray, qv: np.ndarray, *, whole_weight: float = 0.5) -> np.ndarray:
        """Multi-vector dense score of chunks ``rows``: ``whole_weight`` x the whole-chunk cosine
        plus the rest x the best cosine among its units and its heading (the weight is tuned,
        see rag/tuned.json)."""
        whole = self.dense.vectors[rows] @ qv
        best = self.heads[rows] @ qv
        sent = self.units @ qv if len(rows) * 8 > len(self.units) else None
        planted = self.planted_units
        for j, i in enumerate(rows):
            a, b = self.unit_offsets[i], self.unit_offsets[i + 1]
            u = sent[a:b] if sent is not None else self.chunk_units(i) @ qv
            u = u[~planted[a:b]]  # a sentence ordering the reader is never quoted: it matches nothing
            if len(u):
                best[j] = max(best[j], float(u.max()))
        return whole_weight * whole + (1.0 - whole_weight) * best

    @functools.cached_property
    def planted_units(self) -> np.ndarray:
        """Per sentence vector: whether it is a planted sentence (rag.units), one that gives the
        reader orders ("ignore previous instructions …")."""
        return self.facts.unit_kinds == UNIT_KINDS.index("planted")

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "documents.jsonl", "w", encoding="utf-8") as f:
            for d in self.documents.values():
                f.write(json.dumps(d.to_dict(), ensure_ascii=False) + "\n")
        with open(folder / "chunks.jsonl", "w", encoding="utf-8") as f:
            for c in self.chunks:
                f.write(json.dumps(c.to_dict(), ensure_ascii=False) + "\n")
        self.bm25.save(folder)
        self.dense.save(folder)
        manifest = dict(self.manifest)
        self.unit_graph = self.unit_dense.save_graph(folder / UNIT_GRAPH)
        if self.unit_graph is not None:
            manifest["unit_graph"] = self.unit_graph
        np.save(folder / "heads.npy", self.heads.astype(np.float32), allow_pickle=False)
        np.save(folder / "units.npy", self.units.astype(np.float32), allow_pickle=False)
        np.save(folder / "unit_offsets.npy", self.unit_offsets.astype(np.int64), allow_pickle=False)
        np.save(folder / "unit_spans.npy", self.unit_spans.astype(np.int64).reshape(-1, 2), allow_pickle=False)
        self.facts.save(folder)
        manifest["checksums"] = {p.name: _digest(p) for p in sorted(folder.iterdir()) if p.name not in UNCHECKED}
        # The manifest goes last: a folder without one is an unfinished build.
        (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> Index:
        """Load and check a build folder; any problem is an :class:`IndexCorruptError`."""
        folder = Path(folder)
        try:
            manifest = _check_manifest(json.loads((folder / "manifest.json").read_text(encoding="utf-8")), folder)
            unit_graph = manifest.pop("unit_graph", None)
            _check_checksums(folder, manifest.pop("checksums", None))
            docs = _read_records(folder / "documents.jsonl", Document)
            chunks = _read_records(folder / "chunks.jsonl", Chunk)
            sizes = {"chunks": len(chunks), "dim": manifest["encoder"]["dim"]}
            _check_counts(manifest, docs, chunks)
            arrays = _load_arrays(folder, sizes)
            bm25 = BM25Index.load(folder)
            dense = DenseIndex.load(folder, kind=manifest["faiss"], vectors=arrays["vectors.npy"])
            if bm25.analyzer != manifest["analyzer"]:
                raise _Invalid(f"bm25.json names analyzer {bm25.analyzer!r}, the manifest {manifest['analyzer']!r}")
            try:
                facts = IndexFacts.load(folder, units=len(arrays["units.npy"]), chunk_ids=frozenset(c.id for c in chunks))
                save_facts = False
            except StaleFacts as e:  # derived again from the parts below (seconds; minutes at 100k chunks)
                facts, save_facts = None, _stale_facts_warning(folder, e)
            index = cls(
                manifest=manifest,
                documents={d.doc_id: d for d in docs},
                chunks=chunks,
                bm25=bm25,
                dense=dense,
                heads=arrays["heads.npy"],
                units=arrays["units.npy"],
                unit_offsets=arrays["unit_offsets.npy"],
                unit_spans=arrays["unit_spans.npy"],
                path=folder,
                facts=facts,
                unit_graph=unit_graph,
            )
            _check_offsets(index)
            if save_facts:
                _save_derived_facts(index.facts, folder)
            return index
        except IndexCorruptError:
            raise
        except RecursionError:
            reason = "RecursionError: nested too deeply"
        except (_Invalid, OSError, EOFError, ValueError, KeyError, TypeError, RuntimeError, UnicodeError) as e:
            # EOFError: an empty .npy; RuntimeError: FAISS cannot read dense.faiss
            reason = e.args[0] if isinstance(e, _Invalid) else f"{type(e).__name__}: {e}"
        reason = " ".join(str(reason).split())
        raise IndexCorruptError(
            f"index at {folder} is unreadable ({reason[:300]}); rebuild it with `python -m ingest --rebuild`"
        ) from None


def _stale_facts_warning(folder: Path, e: StaleFacts) -> bool:
    """Say that the facts are derived again; whether they will be saved (the folder is writable)."""
    writable = os.access(folder, os.W_OK)
    if writable:
        log.warning("index at %s: %s; deriving them again and saving them in the index", folder, e)
    else:
        log.warning("index at %s: %s; deriving them again, on every open while the folder is read-only "
                    "(`python -m ingest --rebuild` saves them)", folder, e)
    return writable


def _save_derived_facts(facts: IndexFacts, folder: Path) -> None:
    """Write facts derived again on opening into the build folder they were derived for, so the
    next open reads them. Never an error: a folder that cannot take them (read-only, full, or
    removed meanwhile by a newer build) is opened as it is and derives them again next time.
    The facts follow from the build's own files, which never change, so two readers saving them
    at once write the same bytes."""
    try:
        facts.save(folder)
    except OSError as e:
        log.warning("index at %s: the facts derived again could not be saved (%s); they are derived again "
                    "on the next open", folder, e)


# --- Checks made by Index.load ---------------------------------------------------------


class _Invalid(ValueError):
    """One thing in a build folder that is not as written."""


@dataclass(frozen=True)
class ArrayFile:
    """One ``.npy`` file of a build: dtype kind(s) allowed on disk, the dtype it is held in,
    and its shape in named sizes (``chunks``, ``dim``, ``units``) or numbers.

    ``sizes`` derives further named sizes from the array (checked first), for the files
    after it in :data:`ARRAYS`.
    """

    name: str
    kinds: str  # numpy dtype kinds: "f" float, "i"/"u" integer
    dtype: type
    shape: tuple[str | int, ...]
    finite: bool = True
    sizes: Callable[[np.ndarray], dict[str, int]] | None = None


# Every file of a build but these has its checksum in the manifest: the manifest itself, the
# facts, which a newer version derives again and saves in place (rag.facts), and the units graph,
# a cache checked against its own record and rebuilt when bad.
UNCHECKED = frozenset({"manifest.json", FACTS_FILE, KINDS_FILE, UNIT_GRAPH})


def _digest(path: Path) -> str:
    h = hashlib.blake2b()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_checksums(folder: Path, sums: Any) -> None:
    """Each file the manifest lists has the checksum it had when built: a flipped byte in
    ``vectors.npy`` still loads as finite floats and would be served as altered scores. An
    index built before checksums (no list) is read as it is."""
    if sums is None:
        return
    if not isinstance(sums, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in sums.items()):
        raise _Invalid("manifest.json: checksums must map file names to digests")
    for name, want in sums.items():
        if Path(name).name != name or name in UNCHECKED:
            raise _Invalid(f"manifest.json lists a checksum for {name!r}")
        if _digest(folder / name) != want:
            raise _Invalid(f"{name} was changed since the index was built (its checksum differs)")


def _offset_sizes(a: np.ndarray) -> dict[str, int]:
    if a[0] != 0 or (np.diff(a) < 0).any():
        raise _Invalid("unit_offsets.npy must start at 0 and never decrease")
    return {"units": int(a[-1])}


# One entry per array file, in load order. A new array in the index format is one more row.
ARRAYS: tuple[ArrayFile, ...] = (
    ArrayFile("vectors.npy", "f", np.float32, ("chunks", "dim")),
    ArrayFile("heads.npy", "f", np.float32, ("chunks", "dim")),
    ArrayFile("unit_offsets.npy", "iu", np.int64, ("chunks+1",), sizes=_offset_sizes),
    ArrayFile("units.npy", "f", np.float32, ("units", "dim")),
    ArrayFile("unit_spans.npy", "iu", np.int64, ("units", 2)),
)


def _load_arrays(folder: Path, sizes: dict[str, int]) -> dict[str, np.ndarray]:
    sizes = {**sizes, "chunks+1": sizes["chunks"] + 1}
    out = {}
    for spec in ARRAYS:
        a = np.load(folder / spec.name, allow_pickle=False)
        want = tuple(sizes[d] if isinstance(d, str) else d for d in spec.shape)
        if a.dtype.kind not in spec.kinds:
            raise _Invalid(f"{spec.name} holds {a.dtype}, not {np.dtype(spec.dtype).name}")
        if a.shape != want:
            raise _Invalid(f"{spec.name} has shape {a.shape}, expected {want} (index parts disagree)")
        if spec.finite and a.dtype.kind == "f" and not np.isfinite(a).all():
            raise _Invalid(f"{spec.name} holds NaN or infinite values")
        a = a.astype(spec.dtype, copy=False)
        if spec.sizes is not None:
            sizes.update(spec.sizes(a))
        out[spec.name] = a
    return out


def _check_manifest(m: Any, folder: Path) -> dict[str, Any]:
    if not isinstance(m, dict):
        raise _Invalid(f"manifest.json holds a {type(m).__name__}, not an object")
    if m.get("format_version") != FORMAT_VERSION:
        raise IndexCorruptError(
            f"index at {folder} has format {m.get('format_version')!r}, this version reads "
            f"{FORMAT_VERSION}: rebuild it with `python -m ingest --rebuild`"
        )
    enc = m.get("encoder")
    if not isinstance(enc, dict) or not isinstance(enc.get("id"), str) or not enc["id"]:
        raise _Invalid("manifest.json has no encoder id")
    if not _is_int(enc.get("dim")) or enc["dim"] < 1:
        raise _Invalid(f"manifest.json has encoder dim {enc.get('dim')!r}")
    if m.get("analyzer") not in ANALYZERS:
        raise _Invalid(f"manifest.json names analyzer {m.get('analyzer')!r}")
    if m.get("faiss") not in FAISS_KINDS:
        raise _Invalid(f"manifest.json names FAISS kind {m.get('faiss')!r}")
    pending = m.get("pending", [])
    if not isinstance(pending, list) or not all(isinstance(d, str) for d in pending):
        raise _Invalid("manifest.json: pending must be a list of document ids")
    if not _is_int(m.get("chunks")) or m["chunks"] < 1:
        raise _Invalid(f"manifest.json has chunk count {m.get('chunks')!r}")
    for key, needs_count in (("documents", True), ("skipped", False)):
        entries = m.get(key, {} if key == "skipped" else None)
        if not isinstance(entries, dict) or (key == "documents" and not entries):
            raise _Invalid(f"manifest.json has no {key} table")
        for doc_id, info in entries.items():
            if not isinstance(info, dict) or not isinstance(info.get("sha256"), str):
                raise _Invalid(f"manifest.json: {key} entry {doc_id!r} has no sha256")
            if not isinstance(info.get("reader", ""), str):
                raise _Invalid(f"manifest.json: {key} entry {doc_id!r} names reader {info.get('reader')!r}")
            if needs_count and not _is_int(info.get("chunks")):
                raise _Invalid(f"manifest.json: document {doc_id!r} has no chunk count")
    return m


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _conforms(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a record field's type hint (str, int, X | None, tuple[str, ...])."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        return any(_conforms(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return isinstance(value, list) and all(_conforms(v, item) for v in value)
    if hint is int:
        return _is_int(value)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if dataclasses.is_dataclass(hint):  # a nested record: its from_dict checks the rest
        return isinstance(value, dict)
    return isinstance(value, hint)


@functools.cache
def _schema(cls: type) -> tuple[dict[str, Any], frozenset[str]]:
    hints = typing.get_type_hints(cls)
    fs = [f for f in fields(cls) if f.init]
    required = frozenset(f.name for f in fs if f.default is MISSING and f.default_factory is MISSING)
    return {f.name: hints[f.name] for f in fs}, required


def _read_records(path: Path, cls: type) -> list:
    """Every line of a JSONL file as a ``cls`` record, each field type-checked."""
    hints, required = _schema(cls)
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            d = json.loads(line)
            if not isinstance(d, dict) or not required <= d.keys() <= hints.keys():
                raise _Invalid(f"{path.name} line {n} is not a {cls.__name__} record")
            bad = [k for k, v in d.items() if not _conforms(v, hints[k])]
            if bad:
                raise _Invalid(f"{path.name} line {n}: {', '.join(bad)} of the wrong type")
            out.append(cls.from_dict(d))
    return out


def _check_counts(manifest: dict[str, Any], docs: list[Document], chunks: list[Chunk]) -> None:
    if manifest["chunks"] != len(chunks):
        raise _Invalid(f"index parts disagree: the manifest lists {manifest['chunks']} chunks, chunks.jsonl has {len(chunks)}")
    by_doc = Counter(c.doc_id for c in chunks)
    listed = {k: v["chunks"] for k, v in manifest["documents"].items()}
    ids = [d.doc_id for d in docs]
    if len(set(ids)) != len(ids) or set(ids) != set(listed):
        raise _Invalid("index parts disagree: documents.jsonl and the manifest list different documents")
    missing = sorted(set(by_doc) - set(ids))
    if missing:
        raise _Invalid(f"chunks of a document that is not in documents.jsonl ({missing[0]!r})")
    if any(by_doc.get(k, 0) != v for k, v in listed.items()):
        raise _Invalid("index parts disagree: chunk counts per document differ from the manifest")
    if len({c.id for c in chunks}) != len(chunks):
        raise _Invalid("two chunks share an id")


def _check_offsets(index: Index) -> None:
    """Every document's body start, every chunk's offsets and text, every unit's span."""
    for d in index.documents.values():
        if not 0 <= d.body_start <= len(d.text):
            raise _Invalid(f"document {d.doc_id!r} has body start {d.body_start} outside its text")
        if d.origin is not None and d.origin.extent > len(d.text):
            raise _Invalid(f"document {d.doc_id!r} has an origin map beyond its text")
    for c in index.chunks:
        text = index.documents[c.doc_id].text
        if not (0 <= c.start <= c.end <= len(text)) or text[c.start : c.end] != c.text:
            raise _Invalid(f"chunk {c.id} offsets {c.start}:{c.end} do not point at its text in {c.doc_id!r}")
        if c.parallel is not None and c.parallel not in index.by_id:
            raise _Invalid(f"chunk {c.id} names a parallel chunk that does not exist")
    owner = index.unit_owner
    starts = np.array([c.start for c in index.chunks], dtype=np.int64)[owner]
    ends = np.array([c.end for c in index.chunks], dtype=np.int64)[owner]
    s, e = index.unit_spans[:, 0], index.unit_spans[:, 1]
    if not ((starts <= s) & (s <= e) & (e <= ends)).all():
        raise _Invalid("unit_spans.npy has spans outside their chunks")


def _build_folder(root: Path) -> Path:
    return root / "builds" / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"


def write_lock(root: Path) -> FileLock:
    """The cross-process lock (a file inside ``root``) that every index writer holds.

    Re-entrant within a thread (one instance per lock file), exclusive between threads and
    processes; released by the operating system if its holder dies.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    return FileLock(str((root / LOCK_FILE).resolve()), is_singleton=True)


def _pointer(root: Path) -> str | None:
    """The build name ``CURRENT`` holds (``None`` when there is no ``CURRENT``)."""
    try:
        name = (root / "CURRENT").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeError) as e:
        raise IndexCorruptError(f"index at {root}: CURRENT is unreadable ({e}); run `python -m ingest --rebuild`") from None
    if not _BUILD_NAME.match(name):
        raise IndexCorruptError(f"index at {root}: CURRENT does not name a build; run `python -m ingest --rebuild`")
    return name


def current_folder(root: Path) -> Path:
    """The live build folder of an index root (or the root itself if it is a plain build folder)."""
    root = Path(root)
    if (root / "manifest.json").exists():
        return root
    name = _pointer(root)
    if name is None:
        raise IndexMissingError(f"no index at {root}: build one with `python -m ingest`")
    folder = root / "builds" / name
    if not (folder / "manifest.json").exists():
        raise IndexCorruptError(f"index at {root} points to a missing build ({folder.name}); run `python -m ingest --rebuild`")
    return folder


def open_index(root: Path) -> Index:
    """Load the live index under ``root``.

    If the build being read is switched out and removed meanwhile (an ingest finished), the
    new ``CURRENT`` is read instead.
    """
    for attempt in range(3):
        folder = current_folder(root)
        try:
            return Index.load(folder)
        except IndexCorruptError:
            if attempt == 2 or current_folder(root) == folder:
                raise
    raise AssertionError("unreachable")


def _switch(root: Path, name: str) -> None:
    """Point ``CURRENT`` at build ``name`` with one atomic rename."""
    atomic_write(root / "CURRENT", name)


def _prune(root: Path, keep: int, new: str) -> None:
    """Remove old builds: finished ones beyond the ``keep`` most recent (the live one counts),
    and unfinished ones only when older than :data:`STALE_BUILD_SECONDS` (a killed ingest's).

    Never the build ``CURRENT`` names (read again here) or the one just written.
    """
    live = {_pointer(root), new}
    builds = sorted((p for p in (root / "builds").iterdir() if p.is_dir() and p.name not in live), key=lambda p: p.name)
    finished = [p for p in builds if (p / "manifest.json").exists()]
    for old in finished[: max(0, len(finished) - keep + 1)]:
        shutil.rmtree(old, ignore_errors=True)
    now = time.time()
    for p in builds:
        try:
            unfinished_and_old = not (p / "manifest.json").exists() and now - p.stat().st_mtime > STALE_BUILD_SECONDS
        except OSError:
            continue
        if unfinished_and_old:
            shutil.rmtree(p, ignore_errors=True)


def write_index(index: Index, root: Path, *, keep: int = 1) -> Path:
    """Save ``index`` as a new build under ``root`` and switch ``CURRENT`` to it atomically.

    Holds the root's :func:`write_lock` throughout. A failed save removes the partial build
    and leaves ``CURRENT`` as it was. Older finished builds beyond the ``keep`` most recent
    are removed after the switch.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    root = Path(root)
    with write_lock(root):
        folder = _build_folder(root)
        try:
            index.save(folder)
            _switch(root, folder.name)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        index.path = folder
        _prune(root, keep, folder.name)
    return folder
