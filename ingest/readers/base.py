"""What every reader returns, the limits it runs under, and the text builder that keeps
the offset map while a reader writes its Markdown-like text."""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from io import BytesIO

from rag import reasons
from rag.origin import Line, Origin
from rag.text import CJK_CLASS


class ReaderError(Exception):
    """A file cannot be read; ``str(e)`` is the reason, one line, without the file name."""


@dataclass(frozen=True)
class Limits:
    """Limits for reading one file (hostile files: bombs, endless pages, huge XML).

    ``seconds`` and ``memory_mb`` bound the reading subprocess; the others are checked
    by the readers before they expand anything.
    """

    max_pages: int = 2_000
    max_unzipped_bytes: int = 200_000_000
    max_zip_ratio: int = 200
    max_text_chars: int = 5_000_000
    seconds: float = 120.0
    memory_mb: int = 2_048

    def __post_init__(self):
        for name in ("max_pages", "max_unzipped_bytes", "max_zip_ratio", "max_text_chars", "memory_mb"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive whole number, got {value!r}")
        if not self.seconds > 0:
            raise ValueError(f"seconds must be > 0, got {self.seconds!r}")


@dataclass(frozen=True)
class Extract:
    """A file read: the document text (Markdown-like), a title ('' when the file has none)
    and the map from text offsets back to the file."""

    text: str
    title: str
    origin: Origin

    def to_dict(self) -> dict:
        return {"text": self.text, "title": self.title, "origin": self.origin.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> Extract:
        return cls(text=str(d["text"]), title=str(d.get("title", "")), origin=Origin.from_dict(d["origin"]))


@dataclass
class TextBuilder:
    """Appends text pieces and remembers, for each, the unit (page, slide, paragraph) and —
    for PDFs — the character edges it came from."""

    kind: str
    max_chars: int = 5_000_000
    parts: list[str] = field(default_factory=list)
    size: int = 0
    units: list[list[int]] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)

    def add(self, text: str, unit: int | None = None, *, top: float = 0.0, bottom: float = 0.0,
            xs: tuple[float, ...] | None = None) -> None:
        if not text:
            return
        start = self.size
        self.parts.append(text)
        self.size += len(text)
        if self.size > self.max_chars:
            raise ReaderError(f"more than {self.max_chars:,} characters of text; the limit is {self.max_chars:,}")
        if unit is None:
            return
        if self.units and self.units[-1][2] == unit:
            self.units[-1][1] = self.size
        else:
            self.units.append([start, self.size, unit])
        if xs is not None:
            self.lines.append(Line(start, self.size, unit, round(top, 2), round(bottom, 2), tuple(round(x, 2) for x in xs)))

    def ends_with(self, suffix: str) -> bool:
        tail = "".join(self.parts[-3:])
        return tail.endswith(suffix)

    def blank_line(self) -> None:
        """End the current paragraph (one empty line), unless at the start."""
        if not self.size:
            return
        tail = "".join(self.parts[-3:])
        if tail.endswith("\n\n"):
            return
        self.add("\n\n" if not tail.endswith("\n") else "\n")

    def newline(self) -> None:
        if self.size and not self.ends_with("\n"):
            self.add("\n")

    def extract(self, title: str, sizes: tuple[tuple[float, float], ...] = ()) -> Extract:
        text = "".join(self.parts)
        if not text.strip():
            raise ReaderError(reasons.reason("no_text"))
        return Extract(text, title, Origin(self.kind, tuple(tuple(u) for u in self.units), tuple(self.lines), sizes))


# A title the writing program filled in, not the author: "Untitled", "Document1", the file's own
# name ("notes.html" when a browser prints a page without a title, "Microsoft Word - notes.docx").
_PLACEHOLDER_TITLE = re.compile(
    r"^(?:untitled|no title|document\d*|presentation\d*|slide \d+|無題|无标题|タイトルなし)$"
    r"|^(?:microsoft (?:word|powerpoint|excel) - )?\S[^/\\]*\.(?:html?|mhtml?|pdf|docx?|pptx?|txt|md|rtf|odt|pages|key)$",
    re.I)


def metadata_title(raw: str | None) -> str:
    """A file's title property, one line, or '' when it is a placeholder the writing program
    put there (then the document's first heading names it)."""
    title = " ".join(str(raw or "").split())[:200]
    return "" if not title or _PLACEHOLDER_TITLE.match(title) else title


def open_zip(data: bytes, limits: Limits, what: str) -> zipfile.ZipFile:
    """An Office file's zip container, after checking it cannot expand past the limits
    (the sizes it declares bound what :mod:`zipfile` will inflate)."""
    try:
        z = zipfile.ZipFile(BytesIO(data))
        infos = z.infolist()
    except (zipfile.BadZipFile, EOFError, ValueError) as e:
        raise ReaderError(reasons.reason("office_damaged", kind=what, detail=f"not a readable zip container: {e}")) from None
    if any(i.flag_bits & 0x1 for i in infos) or "EncryptedPackage" in z.namelist():
        raise ReaderError(reasons.reason("office_password", kind=what))
    total = sum(i.file_size for i in infos)
    if total > limits.max_unzipped_bytes:
        raise ReaderError(
            f"expands to {total:,} bytes when unzipped; the limit is {limits.max_unzipped_bytes:,} (a zip bomb?)"
        )
    for i in infos:
        if i.file_size > 1_000_000 and i.file_size > limits.max_zip_ratio * max(i.compress_size, 1):
            raise ReaderError(
                f"{i.filename} expands {i.file_size // max(i.compress_size, 1):,}-fold when unzipped; "
                f"the limit is {limits.max_zip_ratio} (a zip bomb?)"
            )
    return z


# Written without spaces between words: kana, Han (rag.text's classes), CJK punctuation, full-width forms.
_NO_SPACE = re.compile(f"[{CJK_CLASS}\u3000-\u303f\uff00-\uffef]")


def is_cjk(ch: str) -> bool:
    return bool(_NO_SPACE.match(ch))


def joiner(left: str, right: str) -> str:
    """What goes between two wrapped lines: nothing between CJK characters, else a space."""
    if not left or not right:
        return ""
    return "" if is_cjk(left[-1]) or is_cjk(right[0]) else " "


# A font face whose name says it is fixed-pitch (Courier New, Consolas, Menlo, Source Code Pro,
# Roboto Mono …): text set wholly in one is a code block in Word files and slides.
_MONOSPACE = ("courier", "consolas", "menlo", "monaco", "mono", "code")


def monospace(face: str | None) -> bool:
    """Whether the font face ``face`` is a fixed-pitch one.

    >>> monospace("Courier New"), monospace("Roboto Mono"), monospace("Calibri"), monospace(None)
    (True, True, False, False)
    """
    return bool(face) and any(m in face.lower() for m in _MONOSPACE)


# --- tables ----------------------------------------------------------------------------------------
MAX_LABEL_CHARS = 30  # a cell naming a column is a label, not a sentence: at most this many characters …
MAX_LABEL_WORDS = 4  # … and words
_SENTENCE_STOP = re.compile(r"[。．！？!?]|\.(?:\s|$)")
_NUMBER = re.compile(r"^[\s\d.,%x×~〜\-–+<>≈$¥€]+[A-Za-z%]{0,3}$")


def header_row(rows: list[list[str]], marked: bool | None = None) -> bool:
    """Whether a table's first row names its columns: as the file marks it (``marked``: Word's
    repeated header row or an all-bold first row, HTML's ``<th>``, PowerPoint's header row), or,
    unmarked (``None``), when each of its cells is a short label — no sentence, at most
    :data:`MAX_LABEL_CHARS` characters and :data:`MAX_LABEL_WORDS` words — and none is a number
    where the rows below have numbers.
    A table of facts with no header ("BPE | starts from characters and merges …") keeps its
    first row as a row (it became the other rows' column names, and was lost).

    >>> header_row([["Method", "Bits"], ["GPTQ", "4"]]), header_row([["BPE", "starts from characters and merges pairs."], ["Unigram", "prunes"]])
    (True, False)
    >>> header_row([["GPT-3", "175B"], ["LLaMA", "65B"]]), header_row([["BPE", "merges"]], marked=True)
    (False, True)
    """
    if marked is not None:
        return marked
    if len(rows) < 2 or not rows[0]:
        return False
    first = rows[0]
    if any(len(c) > MAX_LABEL_CHARS or len(c.split()) > MAX_LABEL_WORDS or _SENTENCE_STOP.search(c) for c in first):
        return False
    numeric = lambda c: bool(_NUMBER.match(c)) and any(ch.isdigit() for ch in c)
    for k, cell in enumerate(first):
        below = [r[k] for r in rows[1:] if k < len(r) and r[k].strip()]
        if numeric(cell) and below and all(numeric(c) for c in below):
            return False
    return True


def markdown_table(rows: list[list[str]], header: bool) -> list[str]:
    """``rows`` (cells already escaped) as Markdown table lines; with no ``header``, a header of
    blank cells, so every row is a row (:func:`rag.rules.structure.row_sentence` keeps their
    cells bare)."""
    width = max(len(r) for r in rows)
    head, body = (rows[0], rows[1:]) if header else ([""] * width, rows)
    return (["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
            + ["| " + " | ".join(r) + " |" for r in body])
