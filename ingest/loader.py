"""Load ``.txt`` / ``.md`` files into :class:`rag.Document` records.

YAML front matter gives title / source / tags; the text is kept byte-for-byte (only
decoded, BOM dropped and CRLF folded to LF) so chunk offsets point into it.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from pathlib import Path

import yaml

from rag.corpus import UnreadableFileError, corpus_files, decode
from rag.errors import CorpusError
from rag.lang import detect_lang
from rag.types import Document

__all__ = ["UnreadableFileError", "corpus_files", "decode", "load_corpus", "parse_document"]
_FRONT = re.compile(r"\A---[ \t]*\n(.*?\n)---[ \t]*(?:\n|\Z)", re.S)




def _front_matter(text: str) -> tuple[dict, int]:
    m = _FRONT.match(text)
    if not m:
        return {}, 0
    try:
        meta = yaml.safe_load(m.group(1))
    except yaml.YAMLError:
        return {}, 0
    return (meta if isinstance(meta, dict) else {}), m.end()


_NOT_A_TITLE = re.compile(r"^(目次|目录|contents|table of contents|toc|\d+(\.\d+)*\.?\s.*)$", re.I)


def _first_title(text: str, start: int) -> str:
    """The first line, unless it is a table-of-contents label or a numbered section heading
    (then the file name is the better title)."""
    for line in text[start:].splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return "" if _NOT_A_TITLE.match(line) else line[:120]
    return ""


def parse_document(doc_id: str, data: bytes) -> Document:
    """Make a Document from raw bytes (the one place file content becomes a record)."""
    text = decode(data, doc_id)
    meta, body_start = _front_matter(text)
    title = str(meta.get("title") or "").strip() or _first_title(text, body_start) or Path(doc_id).stem
    tags = meta.get("tags") or meta.get("topics") or ()
    if isinstance(tags, str):
        tags = (tags,)
    return Document(
        doc_id=doc_id,
        text=text,
        title=title,
        lang=detect_lang(text[body_start:]),
        sha256=hashlib.sha256(data).hexdigest(),
        source=str(meta.get("source") or ""),
        tags=tuple(str(t) for t in tags if t is not None),
        body_start=body_start,
    )




def load_corpus(root: Path) -> list[Document]:
    """Load every readable document under ``root``; unreadable files are skipped with a warning."""
    docs = []
    for path in corpus_files(root):
        doc_id = path.relative_to(root).as_posix()
        try:
            docs.append(parse_document(doc_id, path.read_bytes()))
        except (OSError, UnreadableFileError) as e:
            warnings.warn(f"skipped {doc_id}: {e}", stacklevel=2)
    if not docs:
        raise CorpusError(f"no readable .txt/.md documents in {root}")
    return docs
