"""Which files are corpus documents, how their bytes become text, and whether an index is stale.

One home for the file rules that ingest (loading), uploads and search (the stale-index
warning) all apply:

* a document is a ``.txt``/``.md``/``.markdown`` file, or a PDF, ``.pptx``, ``.docx`` or saved
  ``.html`` page (:data:`FILE_SUFFIXES`, read by ``ingest/readers``), under the corpus folder;
  hidden files and folders are skipped, folder links are not followed;
* it is read only when its resolved path is inside the resolved corpus folder: a link to a
  file elsewhere (``x.md -> /etc/passwd``) is skipped with a reason, and the check is made
  again when the file is opened;
* its name must be valid UTF-8 (names are stored in the index as text);
* its bytes must be UTF-8 text without NUL bytes, at most :data:`MAX_BYTES`, with some text
  after any front matter (empty files are not documents).
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import stat
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from rag import reasons
from rag.errors import CorpusError

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
# The version of the reader (ingest/readers) of each file format. Raise a format's number in the
# same change that makes its reader give other text for some file (a fix, a new layout rule, another
# library call): an index keeps, per document, the version that read it, so the next update reads
# those files again instead of keeping the old text, and the app and the command line say which
# files wait for it (:func:`read_by_older_readers`). A change that gives the same text for every file
# (a refactoring, a faster path) keeps the number.
READER_VERSIONS: dict[str, int] = {".pdf": 6, ".pptx": 3, ".docx": 4, ".html": 4, ".htm": 4, ".mhtml": 4, ".mht": 4}
FILE_SUFFIXES = tuple(READER_VERSIONS)  # ingest/readers has one reader each
SUFFIXES = TEXT_SUFFIXES + FILE_SUFFIXES
# Document formats no reader reads, each with the kind it is and what to save it as instead: a
# learner's old .doc or a Keynote deck is named with that advice, not passed over in silence.
CONVERTIBLE: dict[str, tuple[str, str]] = {
    ".doc": ("Word 97–2003", ".docx"), ".ppt": ("PowerPoint 97–2003", ".pptx"),
    ".odt": ("OpenDocument text", ".docx"), ".odp": ("OpenDocument presentation", ".pptx"),
    ".rtf": ("Rich Text", ".docx"), ".pages": ("Pages", ".docx"), ".key": ("Keynote", ".pptx"),
    ".epub": ("EPUB", ".pdf"),
}


def convert_reason(name: str) -> str | None:
    """Why ``name`` is not read and what to save it as (:data:`CONVERTIBLE`), or ``None``.

    >>> convert_reason("notes.DOC")
    'Word 97–2003 files are not read: save it as .docx and add that'
    >>> convert_reason("notes.md") is None
    True
    """
    suffix = Path(name).suffix.lower()
    if suffix not in CONVERTIBLE:
        return None
    kind, target = CONVERTIBLE[suffix]
    return reasons.reason("convert", kind=kind, suffix=target)


MAX_BYTES = 20_000_000
# A leading ``---`` … ``---`` block (YAML front matter; ingest/loader.py parses it).
FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)---[ \t]*(?:\n|\Z)", re.DOTALL)

# on_skip(name, reason): a file under the corpus folder that is not read as a document.
OnSkip = Callable[[str, str], None]


def _check_folder(root: Path) -> None:
    """Refuse a corpus folder that is not one: missing, or a file (the notes go in a folder)."""
    if root.is_file():
        raise CorpusError(f"corpus folder {root} is a file; give the folder that holds your notes")
    if not root.is_dir():
        raise CorpusError(f"corpus folder {root} does not exist")


def printable(name: str) -> str:
    """``name`` as one printable line, for messages: bytes that are not UTF-8 as ``\\xff``,
    control characters escaped (a newline in a file name cannot split a warning line).

    >>> printable("bad\\udcff\\nname.md")
    'bad\\\\xff\\\\nname.md'
    """
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = name.encode("utf-8", "backslashreplace")
    text = raw.decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class UnreadableFileError(CorpusError):
    """A file is not a readable document (binary, not UTF-8, too large, empty, outside the
    corpus …). ``reason`` says why, without the name."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{printable(name)}: {reason}")
        self.name = name
        self.reason = reason


def front_matter_end(text: str) -> int:
    """Offset where the body starts: after a leading ``---`` block, else 0."""
    m = FRONT_MATTER.match(text)
    return m.end() if m else 0


# The encodings notes were saved in before UTF-8 (Windows Notepad's "ANSI" in Japan, China and
# Taiwan; EUC-JP on older Unix): a text file that is not UTF-8 is read in the one of them that
# charset-normalizer finds coherent, and refused (with the reason) when none is.
LEGACY_CJK_ENCODINGS = ("cp932", "euc_jp", "gb18030", "big5")


def _legacy_cjk(data: bytes) -> str | None:
    """``data`` decoded from a legacy CJK encoding (:data:`LEGACY_CJK_ENCODINGS`), or ``None``.

    >>> _legacy_cjk("検索の基本".encode("cp932")), _legacy_cjk("检索入门".encode("gbk"))
    ('検索の基本', '检索入门')
    >>> _legacy_cjk("café crème".encode("latin-1")) is None
    True
    """
    from charset_normalizer import from_bytes

    best = from_bytes(data, cp_isolation=list(LEGACY_CJK_ENCODINGS)).best()
    return str(best) if best is not None else None


def decode_text(data: bytes, name: str) -> str:
    r"""A text file's bytes as text with ``\n`` line ends: UTF-16 by its byte-order mark
    (Notepad's "Unicode"), else UTF-8 (its mark dropped), else a legacy CJK encoding (Shift_JIS,
    GBK …); binary, undecodable or oversized bytes refused with a clear reason
    (:class:`UnreadableFileError`). Notes and question files alike.

    >>> decode_text("# 注意\r\n".encode("utf-16"), "a.txt"), decode_text(b"\xef\xbb\xbfQ1\r\n", "q.txt")
    ('# 注意\n', 'Q1\n')
    """
    if len(data) > MAX_BYTES:
        raise UnreadableFileError(name, reasons.reason("too_big", size=f"{len(data):,}", limit=f"{MAX_BYTES:,}"))
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise UnreadableFileError(name, reasons.reason("not_utf8", detail=f"UTF-16: {e.reason} at byte {e.start}")) from None
        if "\x00" in text:  # UTF-32, or binary behind the mark
            raise UnreadableFileError(name, reasons.reason("binary"))
    elif b"\x00" in data:  # anywhere, not only in the first block
        raise UnreadableFileError(name, reasons.reason("binary"))
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            legacy = _legacy_cjk(data)
            if legacy is None:
                raise UnreadableFileError(name, reasons.reason("not_utf8", detail=f"{e.reason} at byte {e.start}")) from None
            text = legacy
    return text.replace("\r\n", "\n").replace("\r", "\n")


def decode(data: bytes, name: str) -> str:
    """Decode a text document's bytes (:func:`decode_text`); refuse an empty one, or one of
    front matter only, with a clear reason (:class:`UnreadableFileError`)."""
    text = decode_text(data, name)
    if not text.strip():
        raise UnreadableFileError(name, reasons.reason("empty"))
    if not text[front_matter_end(text) :].strip():
        raise UnreadableFileError(name, reasons.reason("front_matter_only"))
    return text


def is_file_format(name: str) -> bool:
    """Whether ``name`` is read by a format reader (PDF, slides, Word, web page), not as text."""
    return name.lower().endswith(FILE_SUFFIXES)


def reader_id(name: str) -> str:
    """The reader that reads a file called ``name`` now, as an index records it (``"pdf/2"``:
    the format and its reader's version); ``""`` for a text file (its text is its bytes).

    >>> reader_id("notes/week1.DOCX") == f"docx/{READER_VERSIONS['.docx']}", reader_id("a.md")
    (True, '')
    """
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    version = READER_VERSIONS.get(suffix)
    return "" if version is None else f"{suffix[1:]}/{version}"


def read_by_older_readers(manifest: Mapping[str, Any], besides: Collection[str] = ()) -> list[str]:
    """Documents of the index with ``manifest`` that an older version of their reader read (or
    an index that did not record it), but for those in ``besides`` (files that changed, said
    once as such): the next update reads them again (see :data:`READER_VERSIONS`)."""
    docs = manifest.get("documents", {})
    return sorted(k for k, v in docs.items()
                  if k not in besides and isinstance(v, Mapping) and v.get("reader", "") != reader_id(k))


def _inside(path: Path, base: Path) -> bool:
    return path == base or base in path.parents


def corpus_files(root: Path, *, on_skip: OnSkip | None = None) -> list[Path]:
    """The document files (:data:`SUFFIXES`) under ``root``, sorted; hidden files and folders skipped.

    Folder links are not followed. A file whose resolved path leaves the (resolved) corpus
    folder, a broken link, something that is not a regular file, or a name that is not
    valid UTF-8 is left out and reported to ``on_skip(name, reason)``; so is a document in a
    format no reader reads (:data:`CONVERTIBLE`: .doc, .ppt, Keynote …), with what to save it as.
    """
    root = Path(root)
    _check_folder(root)
    base = root.resolve()
    out: list[Path] = []
    for folder, dirs, files in os.walk(root):  # followlinks=False
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for fname in files:
            if fname.startswith("."):
                continue
            path = Path(folder) / fname
            rel = path.relative_to(root).as_posix()
            if not fname.lower().endswith(SUFFIXES):
                if on_skip is not None and (why := convert_reason(fname)):
                    on_skip(rel, why)
                continue
            _, reason = _resolve(path, rel, base)
            if reason is None:
                out.append(path)
            elif on_skip is not None:
                on_skip(rel, reason)
    return sorted(out)


def _resolve(path: Path, rel: str, base: Path) -> tuple[Path | None, str | None]:
    """``(resolved path, None)`` for a readable corpus file, else ``(None, reason)``."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return None, "the file name is not valid UTF-8; rename the file"
    try:
        real = path.resolve(strict=True)
        mode = real.stat().st_mode
    except (OSError, RuntimeError):  # RuntimeError: a link loop
        return None, "a broken link" if path.is_symlink() else "cannot be opened"
    if not _inside(real, base):
        return None, "a link to a file outside the corpus folder; not read"
    if not stat.S_ISREG(mode):
        return None, "not a regular file"
    return real, None


def read_file(path: Path, root: Path) -> bytes:
    """The bytes of corpus file ``path`` (at most :data:`MAX_BYTES` + 1).

    The corpus policy is checked again as the file is opened, so a file swapped for a link
    after :func:`corpus_files` listed it is not followed out of the corpus folder either.
    """
    path, root = Path(path), Path(root)
    rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
    real, reason = _resolve(path, rel, root.resolve())
    if reason is not None:
        raise UnreadableFileError(rel, reason)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(real, flags)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise UnreadableFileError(rel, "not a regular file")
        if st.st_size > MAX_BYTES:
            raise UnreadableFileError(rel, reasons.reason("too_big", size=f"{st.st_size:,}", limit=f"{MAX_BYTES:,}"))
        return f.read(MAX_BYTES + 1)


# The learner's own documents live in the data folder (``$STUDYRAG_DATA/uploads``), not in the
# checkout; the index reads them as ``uploads/<name>`` next to the corpus folder's files.
UPLOADS = "uploads"


def uploads_folder(data: Path) -> Path:
    """The uploads folder of a data folder (the data folder comes from :func:`rag.context.resolve`)."""
    return Path(data) / UPLOADS


def document_files(
    corpus_dir: Path, *, uploads: Path | None = None, on_skip: OnSkip | None = None
) -> list[tuple[str, Path, Path]]:
    """``(doc_id, path, root)`` of every document: the corpus folder's files (ids relative to
    it), then the ``uploads`` folder's (ids ``uploads/<name>``) when it exists. An upload whose
    id the corpus folder already has (an older ``corpus/uploads/``) is left out, named to
    ``on_skip``. Only the corpus folder must exist."""
    corpus_dir = Path(corpus_dir)
    out = [(p.relative_to(corpus_dir).as_posix(), p, corpus_dir) for p in corpus_files(corpus_dir, on_skip=on_skip)]
    if uploads is None or not Path(uploads).is_dir():
        return out
    uploads = Path(uploads)
    taken = {d for d, _, _ in out}

    def skip_upload(name: str, reason: str) -> None:
        if on_skip is not None:
            on_skip(f"{UPLOADS}/{name}", reason)

    for p in corpus_files(uploads, on_skip=skip_upload):
        doc_id = f"{UPLOADS}/{p.relative_to(uploads).as_posix()}"
        if doc_id in taken:
            skip_upload(p.relative_to(uploads).as_posix(), f"the corpus folder has a file of this name ({doc_id})")
            continue
        out.append((doc_id, p, uploads))
    return out


def document_location(corpus_dir: Path, doc_id: str, *, uploads: Path | None = None) -> tuple[Path, Path]:
    """``(path, root)`` of document ``doc_id``: in the corpus folder, or (``uploads/<name>``
    that the corpus folder does not have) in the ``uploads`` folder — as :func:`document_files`."""
    corpus_dir = Path(corpus_dir)
    path = corpus_dir / doc_id
    prefix = f"{UPLOADS}/"
    if uploads is not None and doc_id.startswith(prefix) and not path.exists():
        return Path(uploads) / doc_id[len(prefix) :], Path(uploads)
    return path, corpus_dir


def _document_hash(path: Path, root: Path) -> str | None:
    """The sha256 of document file ``path`` (under ``root``) when it is a readable document, else ``None``."""
    try:
        data = read_file(path, root)
        if not is_file_format(path.name):
            decode(data, path.name)  # files ingest skips (binary, not UTF-8, empty) are not documents
    except (OSError, UnreadableFileError):
        return None
    return hashlib.sha256(data).hexdigest()


def document_hashes(corpus_dir: Path, *, uploads: Path | None = None) -> dict[str, str]:
    """``doc_id -> sha256`` of every readable document under ``corpus_dir`` (and ``uploads``)."""
    out = {}
    for doc_id, p, root in document_files(Path(corpus_dir), uploads=uploads):
        h = _document_hash(p, root)
        if h is not None:
            out[doc_id] = h
    return out


# --- stamps: the stale check reads only files whose size or modification time changed ----------

STAMP_MARGIN_NS = 2_000_000_000  # a file modified this close to the build's start is hashed every time


def file_stamps(corpus_dir: Path, doc_ids, *, since_ns: int, uploads: Path | None = None) -> dict[str, list[int]]:
    """``doc_id -> [size, mtime_ns]`` of the regular (not linked) files ``doc_ids`` last modified
    well before ``since_ns`` (when their bytes were read): what the manifest keeps so that
    :func:`stale_documents` can skip unchanged files without reading them."""
    out = {}
    for doc_id in doc_ids:
        path, _ = document_location(Path(corpus_dir), doc_id, uploads=uploads)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mtime_ns < since_ns - STAMP_MARGIN_NS:
            out[doc_id] = [st.st_size, st.st_mtime_ns]
    return out


def _walk_stamps(root: Path) -> dict[str, tuple[str, list[int] | None]]:
    """Every candidate document under ``root`` (the names :func:`corpus_files` considers):
    ``rel -> (path, [size, mtime_ns])``, the stamp ``None`` for anything but a regular file."""
    out: dict[str, tuple[str, list[int] | None]] = {}
    stack = [(str(root), "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            if e.name.startswith("."):
                continue
            try:
                if e.is_dir(follow_symlinks=False):
                    stack.append((e.path, prefix + e.name + "/"))
                    continue
                if not e.name.lower().endswith(SUFFIXES):
                    continue
                stamp = None
                if not e.is_symlink():
                    st = e.stat(follow_symlinks=False)
                    if stat.S_ISREG(st.st_mode):
                        stamp = [st.st_size, st.st_mtime_ns]
            except OSError:
                stamp = None
            out[prefix + e.name] = (e.path, stamp)
    return out


def stale_documents(manifest: Mapping[str, Any], corpus_dir: Path, *, uploads: Path | None = None) -> list[str]:
    """Documents added, changed or removed in ``corpus_dir`` (and ``uploads``) since the index
    with ``manifest`` was built. A file the build skipped (its ``skipped`` entry) counts as
    known while it is unchanged.

    O(changed files): a file whose size and modification time match the manifest's ``stamps``
    is taken as unchanged without being read; only the others are read and hashed (every file,
    for an index built before stamps were kept). 20,000 unchanged files: ``python -m eval.stale_check``."""
    corpus_dir = Path(corpus_dir)
    docs = {k: v["sha256"] for k, v in manifest.get("documents", {}).items()}
    known = {**{k: v["sha256"] for k, v in manifest.get("skipped", {}).items()}, **docs}
    stamps = manifest.get("stamps")
    if not isinstance(stamps, dict) or not stamps:
        now = document_hashes(corpus_dir, uploads=uploads)
        return sorted(k for k in set(now) | set(docs) if now.get(k) != known.get(k))
    _check_folder(corpus_dir)
    found = {rel: (path, stamp, rel, corpus_dir) for rel, (path, stamp) in _walk_stamps(corpus_dir).items()}
    if uploads is not None and Path(uploads).is_dir():  # as document_files: the corpus folder's name wins
        for rel, (path, stamp) in _walk_stamps(Path(uploads)).items():
            found.setdefault(f"{UPLOADS}/{rel}", (path, stamp, rel, Path(uploads)))
    now, bases = {}, {}
    for doc_id, (path, stamp, rel, root) in found.items():
        if stamp is not None and doc_id in known and stamps.get(doc_id) == stamp:  # a bad entry never equals
            now[doc_id] = known[doc_id]
            continue
        base = bases.setdefault(root, root.resolve())
        _, reason = _resolve(Path(path), rel, base)
        h = None if reason is not None else _document_hash(Path(path), root)
        if h is not None:
            now[doc_id] = h
    return sorted(k for k in set(now) | set(docs) if now.get(k) != known.get(k))
