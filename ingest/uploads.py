"""Adding a user's own documents: validate, save under ``corpus/uploads/``, re-index.

Every file is checked with :func:`ingest.loader.parse_document` and the chunker (what
ingest runs) *before* anything is written, so a binary, non-UTF-8, empty, oversized or
otherwise unreadable file is refused with a message — never a traceback — and the corpus
and index are left as they were. Saved files are never overwritten: each name is reserved
with ``O_CREAT | O_EXCL`` (atomic, also between processes), and a taken name gets ``-2``,
``-3`` … appended, so every save reported is on disk.

:func:`update_index` runs the incremental ingest, which holds the index's cross-process
write lock (two browser sessions, or the app and ``python -m ingest``, take turns), and
reports progress through a callback; a failed ingest removes the files it had just saved,
so the corpus matches the live index.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import threading
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rag.corpus import corpus_files, printable, read_file
from rag.errors import CorpusError, RagError

UPLOAD_DIR = "uploads"
SUFFIXES = (".md", ".txt")
MAX_UPLOAD_BYTES = 2_000_000
MAX_NAME_CHARS = 100
MAX_NAME_BYTES = 200  # file systems allow 255 bytes per name; leaves room for "-12.md"

# One ingest at a time in this process (every Streamlit session shares it); the ingest
# itself also holds the index's cross-process write lock.
INGEST_LOCK = threading.Lock()

Progress = Callable[[str, int, int | None], None]


class UploadError(CorpusError):
    """An uploaded file cannot be added (wrong type, empty, too large, unreadable)."""


@dataclass
class UploadResult:
    saved: list[str] = field(default_factory=list)  # doc ids (paths relative to the corpus)
    unchanged: list[str] = field(default_factory=list)  # already in the corpus, byte for byte
    refused: list[tuple[str, str]] = field(default_factory=list)  # (file name, why)

    @property
    def changed(self) -> bool:
        return bool(self.saved)


def safe_name(name: str) -> str:
    """A plain file name for ``name``: no folders, no leading dot, only .md/.txt, short
    enough for any file system (at most :data:`MAX_NAME_BYTES` bytes of UTF-8)."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFKC", name or ""))[-1].strip()
    stem, dot, ext = base.rpartition(".")
    if not dot or f".{ext.lower()}" not in SUFFIXES:
        raise UploadError(f"{printable(name) if name else '(no name)'}: only .md and .txt files can be added")
    stem = re.sub(r"[^\w\-. ]+", "_", stem, flags=re.UNICODE).strip(" ._")
    stem = re.sub(r"\s+", "-", stem)[:MAX_NAME_CHARS]
    while len(stem.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return f"{stem or 'document'}.{ext.lower()}"


def check_upload(name: str, data: bytes):
    """Validate one upload; return ``(safe file name, Document)`` or raise :class:`UploadError`
    whose message names the file and says why (whatever went wrong)."""
    from ingest.chunker import chunk_document
    from ingest.loader import failure_reason, parse_document

    fname = safe_name(name)
    shown = printable(name)
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(f"{shown}: {len(data):,} bytes is over the {MAX_UPLOAD_BYTES:,}-byte limit for uploads")
    try:
        doc = parse_document(f"{UPLOAD_DIR}/{fname}", data)
        chunk_document(doc)  # what ingest will do: a file it would skip is refused now
    except Exception as e:  # noqa: BLE001 -- any failure on this one file is a refusal with its reason
        raise UploadError(f"{shown}: {failure_reason(e)}") from None
    return fname, doc


def _save_new(folder: Path, fname: str, data: bytes) -> Path:
    """Write ``data`` as ``folder/fname`` — or ``stem-2.ext``, ``stem-3.ext`` … when taken.

    The name is reserved with ``O_CREAT | O_EXCL``, atomic between threads and processes,
    so two uploads of one name never replace each other; the bytes are then moved into the
    reserved name with an atomic rename (readers see the whole file or an empty one).
    """
    stem, _, ext = fname.rpartition(".")
    for n in itertools.count(1):
        path = folder / (fname if n == 1 else f"{stem}-{n}.{ext}")
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            continue
        tmp = folder / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            path.unlink(missing_ok=True)
            raise
        return path
    raise AssertionError("unreachable")


def _corpus_hashes(corpus_dir: Path) -> dict[str, str]:
    out = {}
    try:
        files = corpus_files(corpus_dir)
    except CorpusError:
        return out
    for p in files:
        try:
            out[hashlib.sha256(read_file(p, corpus_dir)).hexdigest()] = p.relative_to(corpus_dir).as_posix()
        except (OSError, CorpusError):
            continue
    return out


def save_uploads(files: Iterable[tuple[str, bytes]], corpus_dir: str | Path) -> UploadResult:
    """Check every ``(name, bytes)``; save the good ones under ``corpus_dir/uploads/``.

    Nothing is written for a refused file. A file identical to one already in the corpus
    is listed as unchanged, not saved twice.
    """
    corpus = Path(corpus_dir)
    result = UploadResult()
    good = []
    for name, data in files:
        try:
            good.append((name, *check_upload(name, data), data))
        except UploadError as e:
            result.refused.append((name, str(e)))
    if not good:
        return result
    folder = corpus / UPLOAD_DIR
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        result.refused.extend((g[0], f"{printable(g[0])}: could not be saved ({e.strerror or e})") for g in good)
        return result
    known = _corpus_hashes(corpus)
    for name, fname, doc, data in good:
        if doc.sha256 in known:
            result.unchanged.append(known[doc.sha256])
            continue
        try:
            path = _save_new(folder, fname, data)
        except OSError as e:
            result.refused.append((name, f"{printable(name)}: could not be saved ({e.strerror or e})"))
            continue
        doc_id = path.relative_to(corpus).as_posix()
        known[doc.sha256] = doc_id
        result.saved.append(doc_id)
    return result


def remove_saved(doc_ids: Iterable[str], corpus_dir: str | Path) -> None:
    """Undo :func:`save_uploads` (after a failed ingest)."""
    for d in doc_ids:
        try:
            (Path(corpus_dir) / d).unlink()
        except OSError:
            pass


# --- Incremental ingest with progress ---------------------------------------------------

# Where each ingest stage sits on one 0..1 bar.
STAGES = {"chunks": (0.0, 0.35), "headings": (0.35, 0.45), "sentences": (0.45, 0.85), "analyze": (0.85, 0.98)}


def overall_fraction(desc: str, n: int, total: int | None) -> float:
    """Position on a single progress bar for stage ``desc`` at ``n`` of ``total``."""
    lo, hi = STAGES.get(desc, (0.0, 0.98))
    frac = min(1.0, n / total) if total else 0.0
    return lo + (hi - lo) * frac


def update_index(
    corpus_dir: str | Path, index_dir: str | Path, encoder, *, progress: Progress | None = None, rebuild: bool = False
):
    """Bring the index up to date with the corpus (incremental); one ingest at a time.

    The index writes a new build and swaps its ``CURRENT`` pointer atomically, so searchers
    loaded from the old build keep working. Returns the :class:`~ingest.pipeline.IngestReport`.
    """
    import warnings

    from ingest.pipeline import ingest

    with INGEST_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ingest(Path(corpus_dir), index_dir, encoder=encoder, rebuild=rebuild, on_progress=progress)


def add_documents(
    files: Iterable[tuple[str, bytes]],
    corpus_dir: str | Path,
    index_dir: str | Path,
    encoder,
    *,
    progress: Progress | None = None,
):
    """Save valid uploads and re-index; returns ``(UploadResult, IngestReport | None)``.

    If the ingest fails the saved files are removed again and the error is re-raised;
    the live index is untouched.
    """
    result = save_uploads(files, corpus_dir)
    if not result.saved:
        return result, None
    try:
        report = update_index(corpus_dir, index_dir, encoder, progress=progress)
    except (RagError, ValueError, OSError):
        remove_saved(result.saved, corpus_dir)
        raise
    return result, report
