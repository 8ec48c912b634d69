"""Adding a user's own documents: validate, save in the uploads folder, re-index.

The app saves them in the data folder (``$STUDYRAG_DATA/uploads``, passed as ``uploads=``),
never in the checkout; they are indexed as ``uploads/<name>``. Without ``uploads=`` the
folder is ``corpus/uploads/`` (a corpus of one's own, on the command line).

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
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rag import reasons
from rag.corpus import MAX_BYTES, UPLOADS, convert_reason, document_files, is_file_format, printable, read_file
from rag.corpus import SUFFIXES as CORPUS_SUFFIXES
from rag.errors import CorpusError, RagError
from rag.files import create_new

UPLOAD_DIR = UPLOADS
SUFFIXES = (".md", ".txt") + tuple(s for s in CORPUS_SUFFIXES if is_file_format(s))
MAX_UPLOAD_BYTES = 2_000_000  # a text file
MAX_FILE_UPLOAD_BYTES = MAX_BYTES  # a PDF, slide deck, Word file or saved web page
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
    """A plain file name for ``name``: no folders, no leading dot, only :data:`SUFFIXES`, short
    enough for any file system (at most :data:`MAX_NAME_BYTES` bytes of UTF-8)."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFKC", name or ""))[-1].strip()
    stem, dot, ext = base.rpartition(".")
    if dot and (why := convert_reason(base)):
        raise UploadError(f"{printable(name)}: {why}")
    if not dot or f".{ext.lower()}" not in SUFFIXES:
        raise UploadError(
            f"{printable(name) if name else '(no name)'}: {reasons.reason('not_allowed', suffixes=', '.join(SUFFIXES))}"
        )
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
    limit = MAX_FILE_UPLOAD_BYTES if is_file_format(fname) else MAX_UPLOAD_BYTES
    if len(data) > limit:
        raise UploadError(f"{shown}: {reasons.reason('too_big_upload', size=f'{len(data):,}', limit=f'{limit:,}')}")
    try:
        doc = parse_document(f"{UPLOAD_DIR}/{fname}", data)
        chunk_document(doc)  # what ingest will do: a file it would skip is refused now
    except Exception as e:  # noqa: BLE001 -- any failure on this one file is a refusal with its reason
        raise UploadError(f"{shown}: {failure_reason(e)}") from None
    return fname, doc


def _save_new(folder: Path, fname: str, data: bytes) -> Path:
    """Write ``data`` as ``folder/fname`` — or ``stem-2.ext``, ``stem-3.ext`` … when taken.

    Each name is tried with :func:`rag.files.create_new` (reserved with ``O_CREAT | O_EXCL``,
    atomic between threads and processes, then the bytes moved in with an atomic rename), so
    two uploads of one name never replace each other and readers see the whole file or an
    empty one.
    """
    stem, _, ext = fname.rpartition(".")
    for n in itertools.count(1):
        try:
            return create_new(folder / (fname if n == 1 else f"{stem}-{n}.{ext}"), data)
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def _corpus_hashes(corpus_dir: Path, uploads: Path | None = None) -> dict[str, str]:
    out = {}
    try:
        files = document_files(corpus_dir, uploads=uploads)
    except CorpusError:
        return out
    for doc_id, p, root in files:
        try:
            out[hashlib.sha256(read_file(p, root)).hexdigest()] = doc_id
        except (OSError, CorpusError):
            continue
    return out


def _folder(corpus_dir: str | Path, uploads: str | Path | None) -> Path:
    return Path(uploads) if uploads is not None else Path(corpus_dir) / UPLOAD_DIR


def save_uploads(
    files: Iterable[tuple[str, bytes]], corpus_dir: str | Path, *, uploads: str | Path | None = None
) -> UploadResult:
    """Check every ``(name, bytes)``; save the good ones in ``uploads`` (default
    ``corpus_dir/uploads/``) as documents ``uploads/<name>``.

    Nothing is written for a refused file. A file identical to one already in the corpus
    or the uploads is listed as unchanged, not saved twice.
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
    folder = _folder(corpus, uploads)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        result.refused.extend((g[0], f"{printable(g[0])}: could not be saved ({e.strerror or e})") for g in good)
        return result
    known = _corpus_hashes(corpus, Path(uploads) if uploads is not None else None)
    for name, fname, doc, data in good:
        if doc.sha256 in known:
            result.unchanged.append(known[doc.sha256])
            continue
        try:
            path = _save_new(folder, fname, data)
        except OSError as e:
            result.refused.append((name, f"{printable(name)}: could not be saved ({e.strerror or e})"))
            continue
        doc_id = f"{UPLOAD_DIR}/{path.relative_to(folder).as_posix()}"
        known[doc.sha256] = doc_id
        result.saved.append(doc_id)
    return result


def remove_saved(doc_ids: Iterable[str], corpus_dir: str | Path, *, uploads: str | Path | None = None) -> None:
    """Undo :func:`save_uploads` (after a failed ingest)."""
    folder = _folder(corpus_dir, uploads)
    for d in doc_ids:
        try:
            (folder / d.removeprefix(f"{UPLOAD_DIR}/")).unlink()
        except OSError:
            pass


# --- Incremental ingest with progress ---------------------------------------------------

# Where each ingest stage sits on one 0..1 bar.
STAGES = {"chunks": (0.0, 0.35), "headings": (0.35, 0.45), "sentences": (0.45, 0.85), "analyze": (0.85, 0.98),
          "searchable": (0.0, 0.0)}


def overall_fraction(desc: str, n: int, total: int | None) -> float:
    """Position on a single progress bar for stage ``desc`` at ``n`` of ``total``."""
    lo, hi = STAGES.get(desc, (0.0, 0.98))
    frac = min(1.0, n / total) if total else 0.0
    return lo + (hi - lo) * frac


def update_index(
    corpus_dir: str | Path,
    index_dir: str | Path,
    encoder,
    *,
    progress: Progress | None = None,
    rebuild: bool = False,
    keyword_first: bool = False,
    uploads: str | Path | None = None,
):
    """Bring the index up to date with the corpus and the ``uploads`` folder (incremental);
    one ingest at a time.

    The index writes a new build and swaps its ``CURRENT`` pointer atomically, so searchers
    loaded from the old build keep working. Returns the :class:`~ingest.pipeline.IngestReport`.
    """
    import warnings

    from ingest.pipeline import ingest

    with INGEST_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ingest(
            Path(corpus_dir),
            index_dir if isinstance(index_dir, Path) else str(index_dir),
            encoder=encoder,
            rebuild=rebuild,
            on_progress=progress,
            keyword_first=keyword_first,
            uploads=Path(uploads) if uploads is not None else None,
        )


def add_documents(
    files: Iterable[tuple[str, bytes]],
    corpus_dir: str | Path,
    index_dir: str | Path,
    encoder,
    *,
    progress: Progress | None = None,
    keyword_first: bool = False,
    uploads: str | Path | None = None,
):
    """Save valid uploads (in ``uploads``, default ``corpus_dir/uploads/``) and re-index;
    returns ``(UploadResult, IngestReport | None)``.

    If the ingest fails the saved files are removed again and the error is re-raised;
    the live index is untouched.
    """
    result = save_uploads(files, corpus_dir, uploads=uploads)
    if not result.saved:
        return result, None
    try:
        report = update_index(
            corpus_dir, index_dir, encoder, progress=progress, keyword_first=keyword_first, uploads=uploads
        )
    except (RagError, ValueError, OSError):
        remove_saved(result.saved, corpus_dir, uploads=uploads)
        raise
    return result, report


# --- Adding in the background ------------------------------------------------------------


@dataclass
class AddJob:
    """One upload being read and indexed in a background thread; the page polls it.

    ``stage``/``done``/``total`` follow ingest's progress; ``searchable_s`` is set when the
    keyword-only build went live (the files can be searched by keyword from then on).
    """

    names: list[str]
    started: float = field(default_factory=time.perf_counter)
    stage: str = "checking"
    done: int = 0
    total: int | None = None
    searchable_s: float | None = None
    finished: bool = False
    error: str = ""
    result: UploadResult | None = None
    report: object | None = None

    def progress(self, stage: str, n: int, total: int | None) -> None:
        if stage == "searchable":
            self.searchable_s = time.perf_counter() - self.started
            return
        self.stage, self.done, self.total = stage, n, total


_JOB_LOCK = threading.Lock()
_JOB: AddJob | None = None


def current_job() -> AddJob | None:
    return _JOB


def start_adding(
    files: list[tuple[str, bytes]],
    corpus_dir: str | Path,
    index_dir: str | Path,
    encoder,
    *,
    uploads: str | Path | None = None,
) -> AddJob:
    """Check, save (in ``uploads``, the app's data folder) and index ``files`` in a background
    thread (keyword-only build first); returns the job at once. One job at a time: a second
    call while one runs raises."""
    global _JOB
    with _JOB_LOCK:
        if _JOB is not None and not _JOB.finished:
            raise UploadError("another upload is still being read; wait until it is done")
        job = _JOB = AddJob([n for n, _ in files])

    def run() -> None:
        try:
            job.result, job.report = add_documents(
                files, corpus_dir, index_dir, encoder, progress=job.progress, keyword_first=True, uploads=uploads
            )
        except (RagError, ValueError, OSError) as e:
            job.error = " ".join(str(e).split())
        except Exception as e:  # noqa: BLE001 -- the page must learn of any failure
            job.error = f"{type(e).__name__}: {e}"
        finally:
            job.finished = True

    threading.Thread(target=run, name="studyrag-add", daemon=True).start()
    return job
