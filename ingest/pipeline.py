"""corpus/ -> index/: load, chunk, embed (only what changed), link translations, write atomically.

A file that fails to load or chunk, for any reason, is skipped with one message naming it
and the reason (:attr:`IngestReport.skipped_files`); the rest is indexed. The whole run
holds the index's cross-process write lock, so two ingests take turns. A build that cannot
be written (disk full) raises :class:`~rag.errors.IndexWriteError` and the old index keeps
serving.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time
import warnings
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from tqdm import tqdm

from ingest.chunker import chunk_document
from ingest.loader import Skipped, failure_reason, load_corpus
from ingest.readers.base import Limits
from rag import config, corpus
from rag.analyze import get_analyzer
from rag.bm25 import BM25Index
from rag.dense import DenseIndex
from rag.encoders import Encoder, batch_threads
from rag.errors import IndexWriteError, RagError
from rag.backends import open_index, write_index, write_lock
from rag.index import FORMAT_VERSION, Index
from rag.parallel import link_parallel
from rag.rules.structure import passage_rows, row_sentence
from rag.text import plain, unit_spans
from rag.types import Chunk, Document

CHUNKER_VERSION = 10  # 4: units are lines and sentences, with document spans; 5: a table row embedded as its named cells, a table's |---| line never dropped as a repeated line; 6: a table or fenced block longer than a passage cut between its lines (it was cut inside a row), and a row whose header is in the passage before embedded with its columns too; 7: an English sentence ending in a digit ("… instead of fp16.") is a unit of its own; 8: text with two English words or more per CJK character is English (a glossed term made English notes Chinese); 9: an English line wrapped inside its sentence runs on into the next (a unit was each wrapped line); 10: a line is share/follow boilerplate only when each of its sentences is (a conclusion sentence before 「欢迎分享这篇公众号文章」 was dropped with it)

# on_progress(stage, done, total): stages are chunks, headings, sentences, analyze.
OnProgress = Optional[Callable[[str, int, Optional[int]], None]]
OnSkip = Callable[[Skipped], None]


@dataclass
class IngestReport:
    documents: int = 0
    chunks: int = 0
    embedded_documents: list[str] = field(default_factory=list)
    reused_documents: list[str] = field(default_factory=list)
    removed_documents: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)  # one message per skipped file
    seconds: float = 0.0
    searchable_seconds: float | None = None  # keyword_first: when the keyword-only build went live
    written: bool = False
    path: Path | None = None

    @property
    def clean(self) -> bool:
        """No file was skipped."""
        return not self.skipped_files

    def summary(self) -> str:
        if not self.written:
            return f"index is up to date: {self.documents} documents, {self.chunks} chunks"
        return (
            f"indexed {self.documents} documents into {self.chunks} chunks in {self.seconds:.1f}s "
            f"(embedded {len(self.embedded_documents)}, reused {len(self.reused_documents)}, "
            f"removed {len(self.removed_documents)})"
        )


def _with_reader(entry: dict, reader: str) -> dict:
    """A manifest entry of a document (or a skipped file) with the reader that read it, if any."""
    return {**entry, "reader": reader} if reader else entry


def _entry(v) -> tuple[str | None, str]:
    """(sha256, reader) of a manifest entry: a file is read again when either differs."""
    return (v.get("sha256"), v.get("reader", "")) if isinstance(v, dict) else (None, "")


def settings(encoder: Encoder, analyzer: str, max_chars: int, faiss: str) -> dict:
    """The part of the manifest that must match for an old index's vectors to be reused."""
    return {
        "format_version": FORMAT_VERSION,
        "encoder": {"id": encoder.id, "dim": int(encoder.dim)},
        "analyzer": analyzer,
        "chunker": {"version": CHUNKER_VERSION, "max_chars": max_chars},
        "faiss": faiss,
    }


def _compatible(old: Index, want: dict) -> bool:
    return all(old.manifest.get(k) == v for k, v in want.items())


def unit_texts(chunks: list[Chunk], doc_texts: Mapping[str, str] | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Units of every chunk (lines and sentences: what dense retrieval and the answer
    extraction compare with a question), their per-chunk offsets and document spans.
    ``doc_texts`` (doc id -> text): a table row of a passage whose table began in the passage
    before is named by that table's header too (without it, only tables whole in a passage are)."""
    texts: list[str] = []
    spans: list[tuple[int, int]] = []
    offsets = [0]
    for c in chunks:
        rows = passage_rows(c.text, (doc_texts or {}).get(c.doc_id), c.start)
        for s, e in unit_spans(c.text):
            line = c.text.rfind("\n", 0, s) + 1
            if line in rows:  # a table row reads as its cells named by their columns
                texts.append(row_sentence(rows[line][1], rows[line][2]))
            else:
                texts.append(plain(c.text[s:e]) or c.text[s:e])
            spans.append((c.start + s, c.start + e))
        offsets.append(len(texts))
    return texts, np.asarray(offsets, dtype=np.int64), np.asarray(spans, dtype=np.int64).reshape(-1, 2)


def _embed(encoder: Encoder, texts: list[str], desc: str, progress: bool, on_progress: OnProgress = None,
           known: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Vectors of ``texts``; each distinct text is encoded once (``known`` carries the vectors
    of earlier stages: a heading line and its heading, a repeated list item)."""
    known = known if known is not None else {}
    todo = [t for t in dict.fromkeys(texts) if t not in known]
    step = getattr(encoder, "ingest_batch", 64)  # a RayEncoder takes bigger batches to split
    if on_progress:
        on_progress(desc, 0, len(todo))
    with tqdm(total=len(todo), desc=desc, unit="text", disable=not progress, leave=False) as bar:
        for i in range(0, len(todo), step):
            batch = todo[i : i + step]
            vecs = encoder.encode(batch, query=False)
            if not np.isfinite(vecs).all():  # the index would be refused as corrupt when loaded
                raise RagError(f"the encoder {encoder.id} returned NaN or infinite vectors; the index is unchanged")
            known.update(zip(batch, np.asarray(vecs, dtype=np.float32)))
            bar.update(len(batch))
            if on_progress:
                on_progress(desc, i + len(batch), len(todo))
    out = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    for i, t in enumerate(texts):
        out[i] = known[t]
    return out


@dataclass
class _DocPart:
    doc: Document
    chunks: list[Chunk]
    vectors: np.ndarray
    heads: np.ndarray
    units: np.ndarray
    unit_counts: np.ndarray
    unit_spans: np.ndarray


def _reuse(old: Index, doc: Document, rows: list[int]) -> _DocPart:
    old.prefetch(rows)
    units = [old.chunk_units(i) for i in rows]
    spans = [old.chunk_unit_spans(i) for i in rows]
    return _DocPart(
        doc,
        [old.chunks[i] for i in rows],
        old.dense.vectors[rows],
        old.heads[rows],
        np.vstack(units) if units else np.zeros((0, old.dense.dim), np.float32),
        np.array([len(u) for u in units], dtype=np.int64),
        np.vstack(spans) if spans else np.zeros((0, 2), np.int64),
    )


def _chunk_each(docs: list[Document], max_chars: int, skip: OnSkip) -> list[tuple[Document, list[Chunk]]]:
    """Chunk every document; one that fails is skipped (reported) and the rest go on."""
    out = []
    for d in docs:
        try:
            out.append((d, chunk_document(d, max_chars=max_chars)))
        except Exception as e:  # noqa: BLE001 -- one bad document must not stop the build
            skip(Skipped(d.doc_id, f"could not be chunked ({failure_reason(e)})", d.sha256))
    return out


def _embed_docs(
    chunked: list[tuple[Document, list[Chunk]]], encoder: Encoder, progress: bool, on_progress: OnProgress = None
) -> list[_DocPart]:
    all_chunks = [c for _, cs in chunked for c in cs]
    if not all_chunks:
        return [_DocPart(d, [], *_empty(encoder.dim)) for d, _ in chunked]
    known: dict[str, np.ndarray] = {}
    vecs = _embed(encoder, [c.text for c in all_chunks], "chunks", progress, on_progress, known)
    headings = sorted({c.heading for c in all_chunks if c.heading})
    head_vecs = dict(zip(headings, _embed(encoder, headings, "headings", progress, on_progress, known))) if headings else {}
    texts, unit_off, unit_span = unit_texts(all_chunks, {d.doc_id: d.text for d, _ in chunked})
    unit_vecs = _embed(encoder, texts, "sentences", progress, on_progress, known)
    parts, pos = [], 0
    for d, cs in chunked:
        n = len(cs)
        sl = slice(pos, pos + n)
        heads = np.array(
            [head_vecs[c.heading] if c.heading else np.zeros(encoder.dim, np.float32) for c in cs], dtype=np.float32
        ).reshape(n, encoder.dim)
        parts.append(
            _DocPart(
                d,
                cs,
                vecs[sl],
                heads,
                unit_vecs[unit_off[pos] : unit_off[pos + n]],
                np.diff(unit_off[pos : pos + n + 1]),
                unit_span[unit_off[pos] : unit_off[pos + n]],
            )
        )
        pos += n
    return parts


def _unembedded(doc: Document, chunks: list[Chunk], dim: int) -> _DocPart:
    """A document's part of a keyword-only build: its chunks and unit spans, zero vectors."""
    _, offsets, spans = unit_texts(chunks)
    n, units = len(chunks), int(offsets[-1]) if len(offsets) else 0
    z = np.zeros((n, dim), np.float32)
    return _DocPart(doc, chunks, z, z.copy(), np.zeros((units, dim), np.float32), np.diff(offsets), spans)


def _empty(dim: int):
    z = np.zeros((0, dim), np.float32)
    return z, z, z, np.zeros(0, np.int64), np.zeros((0, 2), np.int64)


def build(
    docs: list[Document],
    encoder: Encoder,
    *,
    analyzer: str = config.ANALYZER,
    max_chars: int = config.CHUNK_MAX_CHARS,
    faiss: str = "auto",
    old: Index | None = None,
    progress: bool = False,
    report: IngestReport | None = None,
    on_progress: OnProgress = None,
    skipped: list[Skipped] | None = None,
    on_skip: OnSkip | None = None,
    keyword_only: bool = False,
    known_tokens: dict[str, list[str]] | None = None,
) -> Index:
    """Build an in-memory index of ``docs``, reusing ``old``'s vectors for unchanged documents.

    ``keyword_only``: the new documents are chunked and analysed but not embedded (zero
    vectors) and listed in the manifest's ``pending``; the searcher then answers with BM25
    alone until the full build replaces this one (a big file is searchable in seconds).
    ``known_tokens`` (chunk id -> analysed terms) skips analysing chunks analysed before.

    A document that cannot be chunked is left out and reported to ``on_skip`` (default: a
    warning). ``skipped`` lists files left out before (by the loader); with the ones left
    out here they are recorded in the manifest, so an unchanged skipped file is not stale.
    """
    report = report if report is not None else IngestReport()
    skipped = list(skipped or [])

    def skip(s: Skipped) -> None:
        skipped.append(s)
        (on_skip or _warn)(s)

    want = settings(encoder, analyzer, max_chars, faiss)
    reusable = old is not None and _compatible(old, want)
    fresh, parts = [], {}
    old_rows: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(old.chunks if reusable else []):
        old_rows[c.doc_id].append(i)
    pending_before = set(old.manifest.get("pending", ())) if reusable else set()
    for d in docs:
        prev = old.documents.get(d.doc_id) if reusable else None
        if prev is not None and (prev.sha256, prev.reader) == (d.sha256, d.reader) and d.doc_id not in pending_before:
            parts[d.doc_id] = _reuse(old, d, old_rows[d.doc_id])
            report.reused_documents.append(d.doc_id)
        else:
            fresh.append(d)
    chunked = _chunk_each(fresh, max_chars, skip)
    if keyword_only:
        for d, cs in chunked:
            parts[d.doc_id] = _unembedded(d, cs, encoder.dim)
    else:
        report.embedded_documents.extend(d.doc_id for d, _ in chunked)
        for p in _embed_docs(chunked, encoder, progress, on_progress) if chunked else []:
            parts[p.doc.doc_id] = p
    ordered = [parts[d.doc_id] for d in docs if d.doc_id in parts]
    if not ordered:
        raise RagError("no document could be indexed (see the skipped files)")
    chunks = [c for p in ordered for c in p.chunks]
    if not chunks:
        raise RagError("the documents produced no text to index (all empty?)")
    heads = np.vstack([p.heads for p in ordered])
    chunks = link_parallel([dataclasses.replace(c, parallel=None) for c in chunks], heads)
    tokens_of = get_analyzer(analyzer)
    tokens = []
    for n, c in enumerate(tqdm(chunks, desc="analyze", disable=not progress, leave=False), start=1):
        tokens.append(known_tokens[c.id] if known_tokens and c.id in known_tokens else tokens_of(c.text))
        if on_progress and (n % 16 == 0 or n == len(chunks)):
            on_progress("analyze", n, len(chunks))
    manifest = {
        **want,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "documents": {p.doc.doc_id: _with_reader({"sha256": p.doc.sha256, "chunks": len(p.chunks)}, p.doc.reader)
                      for p in ordered},
        "chunks": len(chunks),
        "skipped": {s.doc_id: _with_reader({"sha256": s.sha256, "reason": s.reason}, corpus.reader_id(s.doc_id))
                    for s in skipped if s.sha256},
    }
    if keyword_only and chunked:
        manifest["pending"] = sorted(d.doc_id for d, _ in chunked)
    counts = np.concatenate([p.unit_counts for p in ordered])
    return Index(
        manifest=manifest,
        documents={p.doc.doc_id: p.doc for p in ordered},
        chunks=chunks,
        bm25=BM25Index(tokens, analyzer=analyzer),
        dense=DenseIndex(np.vstack([p.vectors for p in ordered]), kind=faiss),
        heads=heads,
        units=np.vstack([p.units for p in ordered]),
        unit_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        unit_spans=np.vstack([p.unit_spans for p in ordered]).astype(np.int64).reshape(-1, 2),
    )


def try_open(index_dir: str | Path) -> Index | None:
    """The current index, or None if there is none or it cannot be read (it will be rebuilt)."""
    try:
        return open_index(index_dir)
    except RagError:
        return None


def _warn(s: Skipped) -> None:
    warnings.warn(s.message(), stacklevel=3)


def _write(index: Index, index_dir: str | Path, *, rebuild: bool = False) -> Path | None:
    try:
        return write_index(index, index_dir, rebuild=rebuild)
    except OSError as e:
        raise IndexWriteError(
            f"could not write the new index under {index_dir} ({e.strerror or e}); the previous index is unchanged"
        ) from None


BACKGROUND_NICE = 19  # the lowest CPU priority: the embedding gets only what queries leave
BACKGROUND_THREADS = 1  # encoder threads for background embedding (a query keeps a core)


def lower_priority() -> bool:
    """Give the calling thread the lowest CPU priority. Linux keeps a nice value per thread,
    so ``os.setpriority`` on the thread's native id lowers this thread alone (and the threads
    it starts later); elsewhere the whole process would be lowered, so nothing is done.
    Returns whether the priority was lowered. (It cannot be raised again without privileges:
    call it only in a thread of its own.)"""
    if not sys.platform.startswith("linux"):
        return False
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
    except OSError:
        return False
    return True


def run_yielding(fn: Callable[[], object]) -> object:
    """``fn()`` in a thread of its own at the lowest CPU priority, its encoder batches on
    :data:`BACKGROUND_THREADS` thread(s): background embedding yields the cores to the app's
    queries. Returns ``fn``'s result or raises its error in the caller."""
    box: dict[str, object] = {}

    def work() -> None:
        try:
            lower_priority()
            with batch_threads(BACKGROUND_THREADS):
                box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 -- re-raised in the caller below
            box["error"] = e

    t = threading.Thread(target=work, name="studyrag-embed", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]


def ingest(
    corpus_dir: Path,
    index_dir: str | Path,
    *,
    encoder: Encoder,
    analyzer: str = config.ANALYZER,
    max_chars: int = config.CHUNK_MAX_CHARS,
    faiss: str = "auto",
    rebuild: bool = False,
    progress: bool = False,
    on_progress: OnProgress = None,
    limits: Limits | None = None,
    keyword_first: bool = False,
    uploads: Path | None = None,
) -> IngestReport:
    """Bring the index at ``index_dir`` (a folder or an engine URI, :mod:`rag.backends`) up to
    date with ``corpus_dir`` and the learner's ``uploads`` folder (its files indexed as
    ``uploads/<name>``; none when ``None``).

    ``progress`` shows tqdm bars on stderr; ``on_progress(stage, done, total)`` is called as
    each stage (chunks, headings, sentences, analyze) advances, for a UI's own progress bar.
    ``keyword_first``: when documents must be embedded, a keyword-only build (BM25 over all
    chunks, the new documents' vectors pending) is published first and the full build
    swapped in after it (``report.searchable_seconds`` says when the first was live); each
    switch is atomic, so a reader never sees a half-built index.

    Each skipped file is a warning and a line of ``report.skipped_files``; PDFs, slides, Word
    files and web pages are read under ``limits`` (time, memory, pages, unzipped size). Holds the index's
    write lock throughout (a second ingest, in any process, waits for this one).
    """
    t0 = time.perf_counter()
    report = IngestReport()
    skipped: list[Skipped] = []

    def skip(s: Skipped) -> None:
        skipped.append(s)
        report.skipped_files.append(s.message())
        _warn(s)

    started_ns = time.time_ns()  # files modified after this are not stamped (their bytes may be older)
    try:
        lock = write_lock(index_dir)
        lock.acquire()
    except OSError as e:
        raise IndexWriteError(f"cannot lock the index folder {index_dir} for writing ({e.strerror or e})") from None
    try:
        old = None if rebuild else try_open(index_dir)
        want = settings(encoder, analyzer, max_chars, faiss)
        known = old.manifest.get("skipped", {}) if old is not None and _compatible(old, want) else {}
        docs = load_corpus(Path(corpus_dir), uploads=uploads, on_skip=skip, limits=limits, known_skips=known)
        if old is not None and _compatible(old, want):
            # Files that failed to chunk last time and are unchanged are skipped again, unread.
            before = old.manifest.get("skipped", {})
            for d in [d for d in docs if _entry(before.get(d.doc_id)) == (d.sha256, d.reader)]:
                skip(Skipped(d.doc_id, str(before[d.doc_id].get("reason", "skipped by the last ingest")), d.sha256))
                docs.remove(d)
            current = {d.doc_id: (d.sha256, d.reader) for d in docs}
            unchanged = current == {k: _entry(v) for k, v in old.manifest["documents"].items()} and {
                s.doc_id: (s.sha256, corpus.reader_id(s.doc_id)) for s in skipped if s.sha256
            } == {k: _entry(v) for k, v in before.items()} and not old.manifest.get("pending")
            if unchanged:
                report.documents = len(docs)
                report.chunks = len(old.chunks)
                report.reused_documents = list(current)
                report.path = old.path
                return report
            report.removed_documents = sorted(set(old.documents) - set(current))
        if keyword_first:
            quick = build(
                docs, encoder, analyzer=analyzer, max_chars=max_chars, faiss=faiss, old=old, progress=progress,
                report=IngestReport(), on_progress=on_progress, skipped=list(skipped), on_skip=lambda s: None,
                keyword_only=True,
            )
            if quick.manifest.get("pending"):
                _write(quick, index_dir, rebuild=rebuild)
                report.searchable_seconds = time.perf_counter() - t0
                if on_progress:
                    on_progress("searchable", 1, 1)
        def full_build() -> Index:
            return build(
                docs, encoder, analyzer=analyzer, max_chars=max_chars, faiss=faiss, old=old, progress=progress,
                report=report, on_progress=on_progress, skipped=skipped, on_skip=skip,
                known_tokens={c.id: t for c, t in zip(quick.chunks, quick.bm25.tokens)} if keyword_first else None,
            )

        # After a keyword-only build went live, the embedding runs in the background: it yields to queries.
        index = run_yielding(full_build) if keyword_first and quick.manifest.get("pending") else full_build()
        index.manifest["stamps"] = corpus.file_stamps(
            Path(corpus_dir), [*index.manifest["documents"], *index.manifest["skipped"]], since_ns=started_ns,
            uploads=uploads,
        )
        report.path = _write(index, index_dir, rebuild=rebuild and not keyword_first)
    finally:
        lock.release()
    report.documents = len(index.documents)
    report.chunks = len(index.chunks)
    report.written = True
    report.seconds = time.perf_counter() - t0
    return report
