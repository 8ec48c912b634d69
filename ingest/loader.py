"""Load ``.txt`` / ``.md`` files into :class:`rag.Document` records.

YAML front matter gives title / source / tags; the text is kept byte-for-byte (only
decoded, BOM dropped and CRLF folded to LF) so chunk offsets point into it.

Front matter is untrusted input: it is parsed by a safe loader that refuses aliases (a
few hundred bytes of ``&a [*a, *a …]`` would otherwise expand to gigabytes) and nesting
deeper than :data:`MAX_FRONT_MATTER_DEPTH`; the block and every field have size limits.
A file that breaks them is refused with the reason (:class:`FrontMatterError`).
"""

from __future__ import annotations

import datetime
import hashlib
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rag.corpus import (
    FRONT_MATTER,
    UnreadableFileError,
    corpus_files,
    decode,
    document_files,
    is_file_format,
    printable,
    read_file,
    reader_id,
)
from ingest.readers import check_kind
from ingest.readers.base import Limits, ReaderError
from ingest.readers.sandbox import read_isolated
from rag import reasons
from rag.rules.structure import CONTENTS_LABEL
from rag.errors import CorpusError
from rag.lang import detect_lang
from rag.types import Document

__all__ = [
    "FrontMatterError",
    "Skipped",
    "UnreadableFileError",
    "corpus_files",
    "decode",
    "load_corpus",
    "parse_document",
]

MAX_FRONT_MATTER_CHARS = 16_384
MAX_FRONT_MATTER_DEPTH = 8
MAX_TITLE_CHARS = 300
MAX_SOURCE_CHARS = 2_000
MAX_TAGS = 50
MAX_TAG_CHARS = 100
MAX_REASON_CHARS = 300


class FrontMatterError(UnreadableFileError):
    """The front matter breaks a limit (size, depth, aliases, a field's type or length)."""


@dataclass(frozen=True)
class Skipped:
    """A corpus file that was not indexed, and why. ``sha256`` is the hash of its bytes when
    they were read (the index remembers it, so an unchanged skipped file is not "stale")."""

    doc_id: str
    reason: str
    sha256: str | None = None

    def message(self) -> str:
        return f"skipped {printable(self.doc_id)}: {self.reason}"


def failure_reason(e: BaseException) -> str:
    """A one-line, bounded reason for a failure on one file (the exception type is named
    when it is not one of our own messages)."""
    text = e.reason if isinstance(e, UnreadableFileError) else f"{type(e).__name__}: {e}"
    text = printable(" ".join(text.split()))
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


class _FrontMatterLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` without aliases and with a nesting limit."""

    def __init__(self, stream, name: str):
        super().__init__(stream)
        self._name = name
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise FrontMatterError(self._name, "front matter: YAML aliases (*name) are not allowed")
        self._depth += 1
        try:
            if self._depth > MAX_FRONT_MATTER_DEPTH:
                raise FrontMatterError(
                    self._name, f"front matter: nested deeper than {MAX_FRONT_MATTER_DEPTH} levels"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _front_matter(text: str, name: str) -> tuple[dict, int]:
    m = FRONT_MATTER.match(text)
    if not m:
        return {}, 0
    if len(m.group(1)) > MAX_FRONT_MATTER_CHARS:
        raise FrontMatterError(
            name, f"front matter: {len(m.group(1)):,} characters; the limit is {MAX_FRONT_MATTER_CHARS:,}"
        )
    loader = _FrontMatterLoader(m.group(1), name)
    try:
        meta = loader.get_single_data()
    except (yaml.YAMLError, ValueError, TypeError, OverflowError):
        # Not YAML (or an impossible date): the block is read as ordinary text.
        return {}, 0
    finally:
        loader.dispose()
    return (meta if isinstance(meta, dict) else {}), m.end()


_SCALARS = (str, int, float, datetime.date)


def _text_field(meta: dict, key: str, limit: int, name: str) -> str:
    value = meta.get(key)
    if value is None:
        return ""
    if not isinstance(value, _SCALARS):
        raise FrontMatterError(name, f"front matter: {key} must be text, not a {type(value).__name__}")
    text = str(value).strip()
    if len(text) > limit:
        raise FrontMatterError(name, f"front matter: {key} is {len(text):,} characters; the limit is {limit:,}")
    return text


def _tags(meta: dict, name: str) -> tuple[str, ...]:
    key = "tags" if meta.get("tags") is not None else "topics"
    value = meta.get(key)
    if value is None:
        return ()
    items = [value] if isinstance(value, _SCALARS) else value
    if not isinstance(items, list):
        raise FrontMatterError(name, f"front matter: {key} must be a list of words, not a {type(value).__name__}")
    if len(items) > MAX_TAGS:
        raise FrontMatterError(name, f"front matter: {len(items):,} {key}; the limit is {MAX_TAGS}")
    tags = []
    for t in items:
        if t is None:
            continue
        if not isinstance(t, _SCALARS):
            raise FrontMatterError(name, f"front matter: each of {key} must be a word, not a {type(t).__name__}")
        t = str(t).strip()
        if len(t) > MAX_TAG_CHARS:
            raise FrontMatterError(name, f"front matter: a tag of {len(t):,} characters; the limit is {MAX_TAG_CHARS}")
        if t:
            tags.append(t)
    return tuple(tags)


_NUMBERED_LINE = re.compile(r"^\d+(\.\d+)*\.?\s")
_LINE = re.compile(r"[^\n]*")


def _first_title(text: str, start: int) -> str:
    """The first line, unless it is a table-of-contents label or a numbered section heading
    (then the file name is the better title)."""
    for m in _LINE.finditer(text, start):
        line = m.group().strip().lstrip("#").strip()
        if line:
            return "" if CONTENTS_LABEL.match(line) or _NUMBERED_LINE.match(line) else line[:120]
    return ""


def _check_kind(doc_id: str, data: bytes) -> None:
    """Refuse a file whose bytes are another format than its name says (a PDF saved as
    ``notes.md`` is not indexed as PDF syntax; a Word file named ``.pptx`` is named as such)."""
    try:
        check_kind(doc_id, data)
    except ReaderError as e:
        raise UnreadableFileError(doc_id, str(e)) from None


def parse_document(doc_id: str, data: bytes, *, limits: Limits | None = None) -> Document:
    """Make a Document from raw bytes (the one place file content becomes a record).

    ``.md``/``.txt`` are decoded here; PDFs, slides, Word files and web pages are read by
    their reader (``ingest/readers``) in a subprocess under ``limits``. Raises
    :class:`UnreadableFileError` (binary, not UTF-8, empty, encrypted, a bomb …) or
    :class:`FrontMatterError`, whose ``reason`` says why.
    """
    _check_kind(doc_id, data)
    if is_file_format(doc_id):
        return _read_format(doc_id, data, limits if limits is not None else Limits())
    return _document(doc_id, data, decode(data, doc_id))


# The last few files read (suffix, sha256) -> Extract: an upload is checked, then ingested;
# a 300-page PDF is read once, not twice.
_RECENT: dict[tuple[str, str], Any] = {}
_RECENT_MAX = 4


def _read_format(doc_id: str, data: bytes, limits: Limits, sha: str | None = None) -> Document:
    if not data:  # a 0-byte PDF or Word file is empty, not damaged
        raise UnreadableFileError(doc_id, reasons.reason("empty"))
    sha = sha or hashlib.sha256(data).hexdigest()
    key = (Path(doc_id).suffix.lower(), sha)
    got = _RECENT.get(key)
    if got is None:
        try:
            got = read_isolated(doc_id, data, limits)
        except ReaderError as e:
            raise UnreadableFileError(doc_id, str(e)) from None
        _RECENT[key] = got
        while len(_RECENT) > _RECENT_MAX:
            _RECENT.pop(next(iter(_RECENT)))
    return Document(
        doc_id=doc_id,
        text=got.text,
        title=got.title or _first_title(got.text, 0) or Path(doc_id).stem,
        lang=detect_lang(got.text),
        sha256=sha,
        origin=got.origin,
        reader=reader_id(doc_id),
    )


def _document(doc_id: str, data: bytes, text: str, sha: str | None = None) -> Document:
    meta, body_start = _front_matter(text, doc_id)
    title = _text_field(meta, "title", MAX_TITLE_CHARS, doc_id)
    source = _text_field(meta, "source", MAX_SOURCE_CHARS, doc_id)
    tags = _tags(meta, doc_id)
    return Document(
        doc_id=doc_id,
        text=text,
        title=title or _first_title(text, body_start) or Path(doc_id).stem,
        lang=detect_lang(text[body_start:]),
        sha256=sha or hashlib.sha256(data).hexdigest(),
        source=source,
        tags=tags,
        body_start=body_start,
    )


def _warn(s: Skipped) -> None:
    warnings.warn(s.message(), stacklevel=3)


def load_corpus(
    root: Path,
    *,
    uploads: Path | None = None,
    on_skip: Callable[[Skipped], None] | None = None,
    limits: Limits | None = None,
    known_skips: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Document]:
    """Load every readable document under ``root`` (and the ``uploads`` folder, as
    ``uploads/<name>``: see :func:`rag.corpus.document_files`).

    A file that cannot be read or parsed — for any reason — is skipped and reported to
    ``on_skip`` (default: a warning naming it and the reason); the others still load.
    ``known_skips`` (the last index's ``skipped`` table: ``doc_id -> {sha256, reason}``)
    lets a PDF, slide deck, Word file or web page skipped before be skipped again unread
    while its bytes are unchanged (a bomb costs its time limit once, not every ingest).
    """
    root = Path(root)
    skip = on_skip if on_skip is not None else _warn
    docs = []
    for doc_id, path, base in document_files(
        root, uploads=uploads, on_skip=lambda name, reason: skip(Skipped(name, reason))
    ):
        try:
            data = read_file(path, base)
        except Exception as e:  # noqa: BLE001 -- one bad file must not stop the others
            skip(Skipped(doc_id, failure_reason(e)))  # not a document for the stale check either
            continue
        sha = hashlib.sha256(data).hexdigest()
        try:
            _check_kind(doc_id, data)
        except UnreadableFileError as e:  # another format than its name says: known by its bytes
            skip(Skipped(doc_id, e.reason, sha))
            continue
        try:
            text = None if is_file_format(doc_id) else decode(data, doc_id)
        except Exception as e:  # noqa: BLE001
            skip(Skipped(doc_id, failure_reason(e)))  # binary, undecodable, empty: no document
            continue
        known = (known_skips or {}).get(doc_id)
        if (text is None and known and known.get("sha256") == sha
                and known.get("reader", "") == reader_id(doc_id)):  # a newer reader tries it again
            skip(Skipped(doc_id, str(known.get("reason", "skipped by the last ingest")), known["sha256"]))
            continue
        try:
            if text is None:
                docs.append(_read_format(doc_id, data, limits if limits is not None else Limits(), sha))
            else:
                docs.append(_document(doc_id, data, text, sha))
        except Exception as e:  # noqa: BLE001 -- a parse failure skips this file only
            skip(Skipped(doc_id, failure_reason(e), sha))
    if not docs:
        raise CorpusError(f"no readable documents (.md, .txt, .pdf, .pptx, .docx, .html, .mhtml) in {root}")
    return docs
