"""Readers: one module per file format, each turning a file's bytes into the same
:class:`~ingest.readers.base.Extract` — Markdown-like text plus the map from offsets back
to the file (:class:`rag.origin.Origin`). Chunking, search and answers never see the format.

=========  ==================  ===========================
suffix     module              library
=========  ==================  ===========================
.pdf       readers/pdf.py      pypdfium2 (+ Tesseract OCR)
.pptx      readers/slides.py   python-pptx
.docx      readers/word.py     python-docx
.html/.htm readers/web.py      trafilatura
.mhtml     readers/web.py      the email package (MIME) + the above
=========  ==================  ===========================

``.md``/``.txt`` stay with :mod:`ingest.loader` (the text is the file). Files of these
formats are read in a subprocess with time and memory limits (:mod:`ingest.readers.sandbox`).
"""

from __future__ import annotations

import importlib
import zipfile
from io import BytesIO

from ingest.readers.base import Extract, Limits, ReaderError
from rag import reasons
from rag.corpus import FILE_SUFFIXES

__all__ = ["READERS", "Extract", "Limits", "ReaderError", "check_kind", "extract", "reader_for", "sniff"]

# suffix -> (module, function): the registry. A new format is one more row (and its suffix with
# its reader's version in rag.corpus.READER_VERSIONS, which the stale-index check reads). A change
# to a reader that gives other text for some file raises that version (see there).
READERS: dict[str, tuple[str, str]] = {
    ".pdf": ("ingest.readers.pdf", "read_pdf"),
    ".pptx": ("ingest.readers.slides", "read_pptx"),
    ".docx": ("ingest.readers.word", "read_docx"),
    ".html": ("ingest.readers.web", "read_html"),
    ".htm": ("ingest.readers.web", "read_html"),
    ".mhtml": ("ingest.readers.web", "read_mhtml"),
    ".mht": ("ingest.readers.web", "read_mhtml"),
}
assert set(READERS) == set(FILE_SUFFIXES), "rag.corpus.FILE_SUFFIXES and the reader registry disagree"


def reader_for(name: str):
    """The reader function for a file name (by suffix), or None for text files."""
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    spec = READERS.get(suffix)
    if spec is None:
        return None
    return getattr(importlib.import_module(spec[0]), spec[1])


def extract(name: str, data: bytes, limits: Limits) -> Extract:
    """Read ``data`` (a file called ``name``) in this process. Raises :class:`ReaderError`."""
    read = reader_for(name)
    if read is None:
        raise ReaderError(f"no reader for {name.rsplit('.', 1)[-1]!r} files")
    return read(data, limits)


def sniff(data: bytes) -> str | None:
    """The suffix a file's first bytes say it should have (.pdf, .docx, .pptx, .html), or None."""
    head = data[:1024]
    if head.startswith(b"%PDF-"):
        return ".pdf"
    if head.startswith(b"PK\x03\x04"):
        try:
            names = zipfile.ZipFile(BytesIO(data)).namelist()  # the central directory only
        except (zipfile.BadZipFile, EOFError, ValueError):
            return None
        for suffix, part in ((".docx", "word/"), (".pptx", "ppt/")):
            if any(n.startswith(part) for n in names):
                return suffix
        return None
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return ".html" if start.startswith((b"<!doctype html", b"<html")) else None


def check_kind(name: str, data: bytes) -> None:
    """Refuse a file whose name says one format and whose bytes another (a Word file saved as
    ``notes.pdf``), naming both; a text file is refused only when its bytes are a PDF or an
    Office file. Raises :class:`ReaderError`."""
    named = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    named = ".html" if named == ".htm" else named
    actual = sniff(data)
    if actual is None or actual == named or (named not in READERS and actual == ".html"):
        return
    raise ReaderError(reasons.reason("wrong_kind", actual=reasons.KINDS[actual], named=named, suffix=actual))
