"""Adding a user's own documents: validate, save under ``corpus/uploads/``, re-index.

Every file is checked with :func:`ingest.loader.parse_document` (the same parser ingest
uses) *before* anything is written, so a binary, non-UTF-8, empty or oversized file is
refused with a message and the corpus and index are left as they were. Saved files are
never overwritten: a different file with a taken name gets ``-2``, ``-3`` … appended.

:func:`update_index` runs the incremental ingest under a process-wide lock (two browser
sessions adding files at once take turns) and reports progress through a callback; a
failed ingest removes the files it had just saved, so the corpus matches the live index.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import CorpusError, RagError

UPLOAD_DIR = "uploads"
SUFFIXES = (".md", ".txt")
MAX_UPLOAD_BYTES = 2_000_000
MAX_NAME_CHARS = 100

# One ingest at a time in this process (every Streamlit session shares it).
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
    """A plain file name for ``name``: no folders, no leading dot, only .md/.txt."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFKC", name or ""))[-1].strip()
    stem, dot, ext = base.rpartition(".")
    if not dot or f".{ext.lower()}" not in SUFFIXES:
        raise UploadError(f"{name or '(no name)'}: only .md and .txt files can be added")
    stem = re.sub(r"[^\w\-. ]+", "_", stem, flags=re.UNICODE).strip(" ._")
    stem = re.sub(r"\s+", "-", stem)[:MAX_NAME_CHARS] or "document"
    return f"{stem}.{ext.lower()}"


def check_upload(name: str, data: bytes):
    """Validate one upload; return ``(safe file name, Document)`` or raise :class:`UploadError`."""
    from ingest.loader import UnreadableFileError, parse_document

    fname = safe_name(name)
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(f"{name}: {len(data):,} bytes is over the {MAX_UPLOAD_BYTES:,}-byte limit for uploads")
    if not data.strip():
        raise UploadError(f"{name}: the file is empty")
    try:
        doc = parse_document(f"{UPLOAD_DIR}/{fname}", data)
    except UnreadableFileError as e:
        raise UploadError(f"{name}: {str(e).split(': ', 1)[-1]}") from None
    if not doc.text[doc.body_start :].strip():
        raise UploadError(f"{name}: there is no text after the front matter")
    return fname, doc


def _free_path(folder: Path, fname: str) -> Path:
    stem, _, ext = fname.rpartition(".")
    path, n = folder / fname, 2
    while path.exists():
        path = folder / f"{stem}-{n}.{ext}"
        n += 1
    return path


def _corpus_hashes(corpus_dir: Path) -> dict[str, str]:
    from ingest.loader import corpus_files

    out = {}
    try:
        files = corpus_files(corpus_dir)
    except CorpusError:
        return out
    for p in files:
        try:
            out[hashlib.sha256(p.read_bytes()).hexdigest()] = p.relative_to(corpus_dir).as_posix()
        except OSError:
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
    folder.mkdir(parents=True, exist_ok=True)
    known = _corpus_hashes(corpus)
    for _name, fname, doc, data in good:
        if doc.sha256 in known:
            result.unchanged.append(known[doc.sha256])
            continue
        path = _free_path(folder, fname)
        tmp = folder / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, path)
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
        return ingest(Path(corpus_dir), Path(index_dir), encoder=encoder, rebuild=rebuild, on_progress=progress)


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
