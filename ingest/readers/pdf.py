"""PDF → document text, through pypdfium2 (PDFium, Apache-2.0/BSD; PyMuPDF is AGPL).

Per page, every character with its box and font size comes from PDFium's text page, the box
taken to the page as it is shown (a page drawn turned and set to show turned back,
``/Rotate``, reads and highlights like an upright one).
Characters become lines; lines are put in reading order (two columns: the left column,
then the right, between full-width lines); running headers and footers (the same text,
digits aside, in the top or bottom margin of most pages) and page numbers are dropped;
lines larger than the body font become Markdown headings (level by size); wrapped lines
are joined — a hyphen at a line end is removed before a lower-case letter, and nothing is
put between two CJK characters — while a line that ends early (the next line's first word
would have fitted, by the text's right edge, running headers and footers aside; a CJK line
that ends a sentence with room for one more character) keeps its line break. Pages without text are read by OCR
(:mod:`ingest.readers.ocr`) when Tesseract is installed.

Files made elsewhere: the PDF's bookmarks make headings of the lines they name, and so does a
bold font at the body size (known by the font's name: a word processor's TrueType fonts have
one, Chromium's CJK fonts have none) on a short line of its own; a contents
page's entries (a dot leader and a page number) are left out, so an answer cannot cite the
contents page for a section; a footnote mark (a small raised number after CJK text or
punctuation) is left out of the sentence; the space PDFium reports inside a justified CJK
line is dropped; footnotes at the foot of a page whose last paragraph goes on over the page
break are read after that paragraph.

Code and tables: a run of lines whose characters all advance by one width (a fixed-pitch font,
known by its widths: Chromium's CJK-aware fonts name none) is a fenced code block with its
indents; lines whose gaps hold drawn vertical rules at the same places are the rows of a
Markdown table; a small square-ish shape drawn left of a line (a browser's list bullet, which
leaves no character in the text) or a bullet character starting it (Word's export writes its
Symbol-font bullets as private-use characters) makes that line a ``- `` list item, nested by the
bullets' places.
"""

from __future__ import annotations

import bisect
import ctypes
import dataclasses
import os
import re
from collections import Counter
from dataclasses import dataclass

from ingest.readers.base import Extract, Limits, ReaderError, TextBuilder, is_cjk, joiner, metadata_title
from rag import reasons
from rag.rules.structure import CONTENTS_LABEL, bold_heading

MARGIN = 0.08  # share of the page height where running headers and footers sit
HEADING_RATIO = 1.15  # a line this much larger than the body font is a heading
_PAGE_NUMBER = re.compile(
    r"^[-–—\s]*(?:page\s*|p\.\s*|第\s*)?\d{1,5}(?:\s*(?:/|of|／)\s*\d{1,5})?(?:\s*(?:页|頁|ページ))?[-–—\s]*$", re.I
)
_NUMBERED_QUESTION = re.compile(r"^(\d{1,3}[.)．]\s*)(\S.*[？?])$")
# A contents entry: a title, a dot leader, a page number (arabic or roman).
_CONTENTS_ENTRY = re.compile(r"^\S.*?\s*(?:[.…‥·・．･]\s?){3,}\s*(?:\d{1,4}|[ivxlc]{1,6})$", re.I)
_SENTENCE_END = frozenset("。．！？!?")
_PAGE_REF = re.compile(r"^\S.*\s(?:\d{1,4}|[ivxlc]{1,6})$", re.I)  # a title, a space, a page number
# A font's name that says it is bold: "…-Bold", "MS-Gothic,Bold", Hiragino's "…-W6".
_BOLD_FONT = re.compile(r"bold|black|heavy|-w[6-9]$", re.I)
NOTE_RATIO = 0.9  # footnotes and note marks are set at most this share of the body font size
_NOTE_MARK = re.compile(r"^(?:\d{1,3}|[*†‡§※]|注\s*\d{1,3}|\(\d{1,3}\)|[\u2460-\u2473])\s*\S")
_NOTE_REF = frozenset("0123456789*†‡")
# After these a small raised number is a footnote mark; after a letter or digit it may be an exponent.
_BEFORE_NOTE_REF = frozenset(".,;:!?)]}\"'”’。、，．：；！？）」』】〕")
_WORD = re.compile(r"[A-Za-z0-9\u00C0-\u024F'’.,;:()\-]+")
# A hyphen the layout added (a soft hyphen, Chromium's U+2010) goes when a word is joined
# again; an ASCII "-" at a line end (PDFium reports it as 0x02) belongs to the word
# ("N-gram") and stays, joined without a space.
_SOFT_HYPHENS = ("\u00ad", "\u2010")
# Code: a line whose characters all advance by one width (two for a CJK one), with a narrow
# ASCII letter among them (a proportional font sets "i", "l", "." and "(" far narrower than
# "m"). Chromium's CJK-aware fonts name no font, so the width, not the name, tells.
_NARROW = frozenset("iIl1.,:;'()[]!|tf")
MONO_STEPS = 5  # at least this many steps between neighbouring ASCII characters
MONO_SLACK = 0.03  # the steps differ by at most this share
# A table: lines one under the other whose gaps (CELL_GAP of the font size wide at least) each
# hold a drawn vertical rule (at most RULE_WIDTH points wide) beside the line, at the same places
# in every row: the column borders. Text without drawn borders stays as it was.
CELL_GAP = 0.15
RULE_WIDTH = 3.0
# A list bullet a browser or word processor draws instead of writing a character (Chromium's
# disc, circle and square): a small, square-ish shape left of a line, inside its height, its
# side DOT_SIZE of the line's font size, at most DOT_GAP font sizes before the line's text.
# A page whose characters are this share or more control characters (or U+FFFD), of at least
# GARBLED_MIN_CHARS: a font without a character map (old Japanese PDF makers write such files),
# read by PDFium as mojibake ("ÆàçÏÞ¼Þ…"). Read as an image (OCR) like a scanned page.
GARBLED_SHARE = 0.1
GARBLED_MIN_CHARS = 20
DOT_SIZE = (0.15, 0.7)
DOT_GAP = 2.5
# A bullet written as a character at the start of a line, then a space: the marks word processors
# put before list items; Word's PDF export writes its Symbol/Wingdings bullets as private-use
# characters (U+F0B7 "•", U+F0A7 "▪", U+F0D8 "➢", U+F0FC "✓" …), with or without a space after.
_GLYPH_BULLET = re.compile("^(?:[•●○◦▪■□◆◇►▶➢✓✔]\\s+|[\uf06e\uf071\uf076\uf0a7\uf0a8\uf0b7\uf0d8\uf0e0\uf0fc]\\s*)(?=\\S)")


@dataclass
class PdfLine:
    """One line of characters on a page (coordinates in points from the top left)."""

    page: int
    text: str
    xs: list[float]  # len(text) + 1 edges
    top: float
    bottom: float
    size: float
    column: int = 0  # 0 full width, 1 left, 2 right
    right: float = 0.0  # right edge of its column on this page
    heading: int = 0  # a heading's level from the PDF's bookmarks
    bold: bool = False  # set in a bold font (known by the font's name)
    mono: float = 0.0  # set in a fixed-pitch font: its advance (0 in any other font)
    note: bool = False  # footnotes read after the paragraph they interrupted

    @property
    def x0(self) -> float:
        return self.xs[0]

    @property
    def x1(self) -> float:
        return self.xs[-1]


def _page_lines(page, number: int, tally: Counter | None = None) -> list[PdfLine]:
    """The lines of one page, in PDFium's order; ``tally`` counts its characters ("chars") and
    those that are no text ("odd": control characters, U+FFFD) — a font without a character map."""
    import pypdfium2.raw as raw

    w, h = page.get_size()  # as the page is shown (its /Rotate applied)
    turn = page.get_rotation() % 360
    tp = page.get_textpage()
    try:
        n = tp.count_chars()
        l, r, b, t = (ctypes.c_double() for _ in range(4))
        lines: list[PdfLine] = []
        chars: list[str] = []
        lefts: list[float] = []
        rights: list[float] = []
        tops: list[float] = []
        bottoms: list[float] = []
        sizes: list[float] = []
        small: dict[int, float] = {}  # index -> font size of digits and marks (possible note marks)
        ks: list[int] = []  # PDFium's index of each character that is not a space
        band_top = band_bottom = 0.0
        name = ctypes.create_string_buffer(256)
        ox, oy = ctypes.c_double(), ctypes.c_double()
        origins: list[tuple[int, float]] = []  # (index in chars, x of the origin) of each character

        def bold(k: int) -> bool:
            raw.FPDFText_GetFontInfo(handle, k, name, len(name), None)
            return bool(_BOLD_FONT.search(name.value.decode("latin-1")))

        def flush():
            heavy = bool(ks) and bold(ks[0]) and bold(ks[len(ks) // 2]) and bold(ks[-1])
            mono = _advance(chars, origins)
            if small:
                _drop_note_marks(chars, lefts, rights, bottoms, small, sizes[0], band_bottom)
            text = "".join(chars)
            lead, trail = len(text) - len(text.lstrip()), len(text.rstrip())
            if trail > lead and tops:
                edges = lefts[lead:trail] + [rights[trail - 1]]
                lines.append(PdfLine(number, text[lead:trail], edges, band_top, band_bottom, sizes[0], bold=heavy,
                                     mono=mono))
            for a in (chars, lefts, rights, tops, bottoms, sizes, small, ks, origins):
                a.clear()

        get_unicode, get_box, get_size = raw.FPDFText_GetUnicode, raw.FPDFText_GetCharBox, raw.FPDFText_GetFontSize
        handle = tp.raw
        for k in range(n):
            u = get_unicode(handle, k)
            if u == 10 or u == 13:
                flush()
                continue
            if u == 32 or u == 9:  # spaces (PDFium's own between words too): no box of their own
                x = rights[-1] if rights else 0.0
                chars.append(" ")
                lefts.append(x)
                rights.append(x)
                bottoms.append(0.0)
                continue
            control = u < 32 and u != 2
            if tally is not None:
                tally["chars"] += 1
                tally["odd"] += control or u == 0xFFFD
            if control or 0xD800 <= u <= 0xDFFF:
                continue
            if u == 2 or u == 0xFFFE:  # PDFium's marks for a hyphen ending a line: the hyphen itself
                u = 0x2D
            get_box(handle, k, l, r, b, t)
            if turn:
                x0, x1, top, bottom = _shown_box(turn, w, h, l.value, r.value, b.value, t.value)
            else:  # upright: the common case, without a call per character
                x0, x1, top, bottom = l.value, r.value, h - t.value, h - b.value
            if tops and (top >= band_bottom or bottom <= band_top):
                # A character wholly below or above the line starts a new one, unless it goes
                # on rightwards just under or over it: a comma, period or underscore hangs
                # below the letters' boxes ("4,096", "W_Value").
                near = 0.5 * (band_bottom - band_top)
                if not (x0 >= rights[-1] - 0.5 and top - band_bottom < near and band_top - bottom < near):
                    flush()
            if not tops:
                band_top, band_bottom = top, bottom
                sizes.append(get_size(handle, k))  # a line's size: its first character's
            else:
                band_top = top if top < band_top else band_top
                band_bottom = bottom if bottom > band_bottom else band_bottom
            ch = chr(u)
            if u != 0x2D:
                raw.FPDFText_GetCharOrigin(handle, k, ox, oy)
                origins.append((len(chars), ox.value))
            if ch in _NOTE_REF and chars:
                small[len(chars)] = get_size(handle, k)
            chars.append(ch)
            lefts.append(x0)
            rights.append(x1)
            tops.append(top)
            bottoms.append(bottom)
            ks.append(k)
        flush()
        return [_unspaced(ln) for ln in _merge_same_line(lines)]
    finally:
        tp.close()


def _advance(chars: list[str], origins: list[tuple[int, float]]) -> float:
    """The advance of a fixed-pitch line (code), else 0: every step between neighbouring
    characters, a narrow letter's too, is one width per character passed (a CJK one counts two)."""
    if len(origins) < MONO_STEPS + 1:
        return 0.0
    steps, narrow = [], False
    for (i, x), (j, y) in zip(origins, origins[1:]):
        steps.append((y - x) / sum(2 if is_cjk(c) else 1 for c in chars[i:j]))
        narrow = narrow or chars[i] in _NARROW
    steps.sort()
    if not narrow or len(steps) < MONO_STEPS or steps[0] <= 0 or steps[-1] > steps[0] * (1 + MONO_SLACK):
        return 0.0
    return steps[len(steps) // 2]


def _shown_box(turn: int, w: float, h: float, left: float, right: float, bottom: float, top: float):
    """``(x0, x1, top, bottom)`` of a character box given in PDF space (origin at the bottom
    left of the page as drawn), on the page as it is shown — turned by its ``/Rotate``
    (clockwise; ``w``, ``h``: the size shown) — from the top left: what the page's image shows."""
    if turn == 90:
        return bottom, top, left, right
    if turn == 180:
        return w - right, w - left, bottom, top
    if turn == 270:
        return w - top, w - bottom, h - right, h - left
    return left, right, h - top, h - bottom


def _drop_note_marks(chars: list[str], lefts: list[float], rights: list[float], bottoms: list[float],
                     small: dict[int, float], size: float, band_bottom: float) -> None:
    """Take footnote marks out of a line (in place): digits or ``*†‡`` in a font smaller than
    :data:`NOTE_RATIO` of the line's, raised a quarter of it, after CJK text or punctuation."""
    keep, last = [], ""  # last: the last character kept that is not a space
    for i, ch in enumerate(chars):
        if i in small and small[i] < size * NOTE_RATIO and bottoms[i] < band_bottom - 0.25 * size \
                and last and (is_cjk(last) or last in _BEFORE_NOTE_REF):
            continue
        keep.append(i)
        if ch != " ":
            last = ch
    if len(keep) < len(chars):
        for a in (chars, lefts, rights, bottoms):
            a[:] = [a[i] for i in keep]


def _unspaced(ln: PdfLine) -> PdfLine:
    """A letter-spaced (justified) CJK line without the spaces PDFium reports between its
    characters: when most neighbouring CJK characters have a space between them, every space
    beside a CJK character goes (a real space in CJK text, between the words of a menu,
    stays). A character's box then reaches the next one's."""
    text = ln.text
    if text.count(" ") < 3 or max(text) < "\u2e80":  # few spaces, or no CJK character
        return ln
    cjk = [is_cjk(c) for c in text]
    before, after = [None] * len(text), [None] * len(text)  # CJK-ness of the nearest non-space character
    last = None
    for j, ch in enumerate(text):
        before[j] = last
        if ch != " ":
            last = cjk[j]
    last = None
    for j in range(len(text) - 1, -1, -1):
        after[j] = last
        if text[j] != " ":
            last = cjk[j]
    spaces = [j for j, ch in enumerate(text) if ch == " " and before[j] is not None and after[j] is not None]
    spaced = sum(1 for j in spaces if before[j] and after[j])
    solid = sum(1 for j in range(len(text) - 1) if cjk[j] and cjk[j + 1])
    if spaced < 3 or spaced < solid:
        return ln
    gone = {j for j in spaces if before[j] or after[j]}
    kept = "".join(ch for j, ch in enumerate(text) if j not in gone)
    xs = [x for j, x in enumerate(ln.xs) if j not in gone]  # a space's left edge is its neighbour's right
    return dataclasses.replace(ln, text=kept, xs=xs)


def _merge_same_line(lines: list[PdfLine]) -> list[PdfLine]:
    """Join pieces PDFium split on one visual line (a bullet in another font, a run of
    Latin inside CJK): the next piece starts right of the previous one, at its height."""
    out: list[PdfLine] = []
    for ln in lines:
        prev = out[-1] if out else None
        mid = (ln.top + ln.bottom) / 2
        if prev is not None and prev.top <= mid <= prev.bottom and ln.x0 >= prev.x1 - 1:
            gap = " " if ln.x0 - prev.x1 > 0.15 * max(prev.size, ln.size) else ""
            xs = prev.xs[:-1] + ([prev.x1] if gap else []) + ln.xs
            big = prev if len(prev.text) >= len(ln.text) else ln
            out[-1] = PdfLine(prev.page, prev.text + gap + ln.text, xs, min(prev.top, ln.top),
                              max(prev.bottom, ln.bottom), big.size, bold=prev.bold and ln.bold,
                              mono=prev.mono if prev.mono and ln.mono else 0.0)
        else:
            out.append(ln)
    return out


def _columns(lines: list[PdfLine], width: float) -> list[PdfLine]:
    """Reading order: on a two-column page, full-width lines split the page into bands and
    each band is read left column first, then right; otherwise PDFium's order is kept."""
    mid, slack = width / 2, width * 0.02
    for ln in lines:
        ln.column = 1 if ln.x1 <= mid + slack else 2 if ln.x0 >= mid - slack else 0
    left = sum(1 for ln in lines if ln.column == 1)
    right = sum(1 for ln in lines if ln.column == 2)
    if right < 4 or left < 4 or right < 0.2 * len(lines):
        for ln in lines:
            ln.column = 0
        right_edge = max((ln.x1 for ln in lines), default=width)
        for ln in lines:
            ln.right = right_edge
        return lines
    for col in (0, 1, 2):
        edge = max((ln.x1 for ln in lines if ln.column == col), default=width)
        for ln in lines:
            if ln.column == col:
                ln.right = edge
    ordered: list[PdfLine] = []
    band: list[PdfLine] = []
    for ln in sorted(lines, key=lambda x: (x.top, x.x0)):
        if ln.column == 0:
            ordered += sorted(band, key=lambda x: (x.column, x.top))
            band = []
            ordered.append(ln)
        else:
            band.append(ln)
    return ordered + sorted(band, key=lambda x: (x.column, x.top))


def _page_number(ln: PdfLine, total: int) -> bool:
    """A page number: "12", "- 12 -", "p. 12", "12 / 300", "第12页" — or a line ending in
    "page/total" (a browser's printed footer)."""
    if _PAGE_NUMBER.match(ln.text):
        return True
    m = re.search(r"(\d{1,5})\s*/\s*(\d{1,5})$", ln.text)
    return bool(m) and int(m.group(1)) == ln.page and int(m.group(2)) == total


def _drop_running(pages: list[list[PdfLine]], heights: list[float]) -> list[list[PdfLine]]:
    """Without running headers/footers (same text, digits aside, in the margins of at least
    half the pages, two or more) and page numbers. Text that comes back on several lines of one
    margin of a page is the body's (list items that differ by their numbers), never a header."""
    def key(ln: PdfLine) -> str:
        return re.sub(r"\d+", "#", ln.text.strip())

    def marginal(ln: PdfLine, h: float) -> bool:
        return ln.top < MARGIN * h or ln.bottom > (1 - MARGIN) * h

    counts: Counter = Counter()
    body: set[str] = set()
    for lines, h in zip(pages, heights):
        here = Counter((key(ln), ln.top < MARGIN * h) for ln in lines if marginal(ln, h))  # per margin
        counts.update({k for k, _ in here})
        body.update(k for (k, _), n in here.items() if n > 1)
    need = max(2, (len(pages) + 1) // 2)
    counts = Counter({k: n for k, n in counts.items() if k not in body})
    out = []
    for lines, h in zip(pages, heights):
        out.append([
            ln for ln in lines
            if not (marginal(ln, h) and (counts[key(ln)] >= need or _page_number(ln, len(pages))))
        ])
    return out


def _body_size(lines: list[PdfLine]) -> float:
    sizes = Counter()
    for ln in lines:
        sizes[round(ln.size * 2) / 2] += len(ln.text)
    return sizes.most_common(1)[0][0] if sizes else 0.0


def _first_word_width(ln: PdfLine) -> float:
    """Width of the next line's first word (a CJK line: its first character)."""
    m = _WORD.match(ln.text)
    return ln.xs[m.end() if m else 1] - ln.xs[0]


def _cjk_advance(ln: PdfLine) -> float:
    """The width of one CJK character on the line (the median step between their edges)."""
    steps = sorted(ln.xs[i + 1] - ln.xs[i] for i, ch in enumerate(ln.text) if is_cjk(ch) and ch not in _SENTENCE_END)
    return steps[len(steps) // 2] if steps else ln.size


def _soft_wrap(prev: PdfLine, nxt: PdfLine) -> bool:
    """Whether ``nxt`` continues ``prev``'s sentence (``prev`` was wrapped, not broken)."""
    room = prev.right - prev.x1
    if is_cjk(nxt.text[0]) and is_cjk(prev.text[-1]):  # line-breaking rules move up to two characters
        if prev.text[-1] in _SENTENCE_END and room >= 0.9 * _cjk_advance(prev):
            return False  # a sentence ended where the next character would still have fitted
        return room < prev.size * 2.5
    return room < _first_word_width(nxt) + prev.size * 0.6


def _paragraph_gap(prev: PdfLine, ln: PdfLine) -> bool:
    """Whether ``ln`` starts a new paragraph after ``prev`` by the space between them."""
    return prev.page == ln.page and prev.column == ln.column and ln.top - prev.bottom > max(ln.size, prev.size) * 0.6


def _drop_contents_entries(pages: list[list[PdfLine]]) -> list[list[PdfLine]]:
    """Without a contents page: its entries (a title, then a page number after a dot leader —
    or, below a contents label ("目次", "Contents"), after a space) and that label."""
    out = []
    for lines in pages:
        keep, listing = [], False  # listing: below a contents label, in its entries
        for i, ln in enumerate(lines):
            text = ln.text.strip()
            if _CONTENTS_ENTRY.match(text) or (listing and _PAGE_REF.match(text)):
                listing = True
                continue
            nxt = lines[i + 1].text.strip() if i + 1 < len(lines) else ""
            if CONTENTS_LABEL.match(text) and (_CONTENTS_ENTRY.match(nxt) or _PAGE_REF.match(nxt)):
                listing = True
                continue
            listing = False
            keep.append(ln)
        out.append(keep)
    return out


def _bookmark_headings(pdf, pages: list[list[PdfLine]]) -> None:
    """Mark the lines each bookmark names, on its page, as headings of the bookmark's depth + 1."""
    try:
        toc = list(pdf.get_toc(max_depth=6))
    except Exception:  # noqa: BLE001 -- a damaged outline only costs its headings
        return
    for item in toc:
        dest = item.get_dest()
        page = dest.get_index() if dest is not None else None
        title = "".join(item.get_title().split())
        if page is not None and title and 0 <= page < len(pages):
            _mark_heading(pages[page], title, min(item.level + 1, 6))


def _mark_heading(lines: list[PdfLine], title: str, level: int) -> None:
    """The first run of up to three lines whose text is ``title`` (spaces aside) becomes a
    heading of ``level`` (a long heading wraps)."""
    for i in range(len(lines)):
        joined = ""
        for k in range(i, min(i + 3, len(lines))):
            joined += "".join(lines[k].text.split())
            if joined == title:
                for ln in lines[i : k + 1]:
                    ln.heading = level
                return
            if not title.startswith(joined):
                break


def _notes_after_runs_on(pages: list[list[PdfLine]], heights: list[float]) -> list[list[PdfLine]]:
    """Footnotes at the foot of a page (lines below the middle, smaller than the body text,
    the first starting with a mark) move after the paragraph that goes on over the page
    break to the next page, so that paragraph is read whole."""
    body = _body_size([ln for lines in pages for ln in lines])
    out = [list(lines) for lines in pages]
    for k in range(len(out) - 1):
        lines, nxt = out[k], out[k + 1]
        j = len(lines)
        while j > 0 and lines[j - 1].size < body * NOTE_RATIO and lines[j - 1].top > heights[k] / 2:
            j -= 1
        if j in (0, len(lines)) or not nxt or not _NOTE_MARK.match(lines[j].text):
            continue
        last, first = lines[j - 1], nxt[0]
        if first.size < body * NOTE_RATIO or last.heading or first.heading or not _soft_wrap(last, first):
            continue
        i = 1
        while i < len(nxt) and not nxt[i].heading and abs(nxt[i].size - first.size) < 0.5 \
                and not _paragraph_gap(nxt[i - 1], nxt[i]):
            i += 1
        notes = lines[j:]
        for ln in notes:
            ln.note = True
        out[k], out[k + 1] = lines[:j], nxt[:i] + notes + nxt[i:]
    return out


def _bold_headings(flat: list[PdfLine], levels: dict[float, int]) -> set[int]:
    """``id`` of the lines that are headings by their weight: bold (the font's name says so),
    at a size that makes no heading, a paragraph of their own (no bold line runs on from or
    into them) that reads as a heading (:func:`rag.rules.structure.bold_heading`)."""
    out = set()
    for i, ln in enumerate(flat):
        if not ln.bold or ln.heading or levels.get(round(ln.size * 2) / 2) or not bold_heading(ln.text):
            continue
        prev, nxt = flat[i - 1] if i else None, flat[i + 1] if i + 1 < len(flat) else None
        if prev is not None and prev.bold and prev.page == ln.page and not _paragraph_gap(prev, ln):
            continue
        if nxt is not None and nxt.bold and nxt.page == ln.page and not _paragraph_gap(ln, nxt):
            continue
        out.add(id(ln))
    return out


def _levels(lines: list[PdfLine], body: float) -> dict[float, int]:
    big = sorted({round(ln.size * 2) / 2 for ln in lines if ln.size >= body * HEADING_RATIO}, reverse=True)
    return {s: min(i + 1, 4) for i, s in enumerate(big)}


def compose(pages: list[list[PdfLine]], sizes: list[tuple[float, float]], title: str, limits: Limits,
            rules: dict[int, list[Box]] | None = None, dots: dict[int, list[Box]] | None = None) -> Extract:
    """The document text from ordered body lines of every page; ``rules`` and ``dots``: what
    :func:`_drawn` found on each page (table borders, list bullets)."""
    flat = [ln for lines in pages for ln in lines]
    body = _body_size(flat)
    levels = _levels(flat, body)
    out = TextBuilder("page", max_chars=limits.max_text_chars)
    prev: PdfLine | None = None
    heading_title = ""
    by_weight = _bold_headings(flat, levels)
    bold_level = min(max(levels.values(), default=0) + 1, 6)

    def level_of(ln: PdfLine) -> int:
        size_level = levels.get(round(ln.size * 2) / 2, 0) if len(ln.text) <= 150 else 0
        return ln.heading or size_level or (bold_level if id(ln) in by_weight else 0)

    code = _code_indents(flat, level_of)
    tables = _table_rows(flat, level_of, code, rules or {})

    def no_item(ln: PdfLine) -> bool:  # a heading, a code line or a table row is never a list item
        return bool(level_of(ln)) or id(ln) in code or id(ln) in tables

    items = _bullet_items(flat, dots or {}, no_item)
    item_x = None  # the text's left edge of the list item being read (its wrapped lines start there)
    for ln in flat:
        level = level_of(ln)
        if no_item(ln):
            item_x = None
        if prev is not None and id(prev) in tables and id(ln) not in tables:
            out.blank_line()
        if id(ln) in tables:
            row, cuts = tables[id(ln)]
            if row == 0:
                out.blank_line()
            else:
                out.newline()
            out.add("| ")
            for k, (a, b) in enumerate(zip((0, *(c + 1 for c in cuts)), (*cuts, len(ln.text)))):
                out.add(" | " if k else "")
                _line(out, ln, ln.text[a:b], a)
            out.add(" |")
            if row == 0:
                out.add("\n|" + " --- |" * (len(cuts) + 1))
            prev = ln
            continue
        if prev is not None and id(prev) in code and id(ln) not in code:
            out.add("\n```")
            out.blank_line()
        if id(ln) in code:
            if prev is None or id(prev) not in code:
                out.blank_line()
                out.add("```\n")
            else:
                out.newline()
            out.add(" " * code[id(ln)])
            _line(out, ln, ln.text, 0)
            prev = ln
            continue
        if level:
            same_heading = prev is not None and level_of(prev) == level and prev.page == ln.page \
                and ln.top - prev.bottom < ln.size * 0.8
            if same_heading:
                out.add(joiner(prev.text, ln.text))
            else:
                out.blank_line()
                out.add("#" * level + " ")
                heading_title = heading_title or ln.text
            _line(out, ln, ln.text, 0)
            prev = ln
            continue
        if id(ln) in items:
            if prev is not None and (item_x is not None or prev.text.endswith((":", "："))):
                out.newline()  # the next item, or the first after its lead-in
            elif prev is not None:
                out.blank_line()
            level, start = items[id(ln)]
            out.add("    " * level + "- ")
            item_x = ln.xs[start]
            _line(out, ln, ln.text[start:], start)
            prev = ln
            continue
        if item_x is not None and (ln.x0 < item_x - 0.25 * ln.size or prev.page != ln.page):
            item_x = None  # left of the item's text (or on the next page): the list has ended
            out.blank_line()
        elif prev is not None and (level_of(prev) or prev.note != ln.note):
            out.blank_line()
        elif prev is not None:
            if _paragraph_gap(prev, ln):
                out.blank_line()
            elif _soft_wrap(prev, ln):
                if prev.text.endswith(_SOFT_HYPHENS) and len(prev.text) > 1 and prev.text[-2].isalpha() \
                        and ln.text[:1].islower():
                    out.parts[-1] = out.parts[-1][:-1]  # the hyphen goes; its edge stays in the map
                    out.size -= 1
                    _trim_last_line(out)
                elif prev.text.endswith("-") and ln.text[:1].isalnum():
                    pass  # a word's own hyphen at the line end ("N-gram"): kept, no space
                else:
                    out.add(joiner(prev.text, ln.text))
            elif prev.page != ln.page or prev.column != ln.column:
                out.blank_line()
            else:
                out.newline()
        m = _NUMBERED_QUESTION.match(ln.text) if not out.size or out.ends_with("\n") else None
        if m:
            _line(out, ln, m.group(1), 0)
            out.add("**")
            _line(out, ln, m.group(2), len(m.group(1)))
            out.add("**")
        else:
            _line(out, ln, ln.text, 0)
        prev = ln
    if prev is not None and id(prev) in code:
        out.add("\n```")
    return out.extract(title or heading_title, tuple(sizes))


def _table_rows(flat: list[PdfLine], level_of, code: dict[int, int],
                rules: dict[int, list[tuple[float, float, float, float]]]) -> dict[int, tuple[int, list[int]]]:
    """``id`` of each line that is a table row -> (its row number, the offsets of the spaces
    between its cells). Rows: at least two lines one under the other on a page, each with gaps
    that hold a drawn vertical rule (``rules``: page -> (x0, x1, top, bottom)) beside it, at the
    same places in every row. Any other run of lines is left as it was."""
    out: dict[int, tuple[int, list[int]]] = {}
    run: list[tuple[PdfLine, list[tuple[int, float, float]]]] = []

    def ruled(ln: PdfLine) -> list[tuple[int, float, float]]:  # (offset of the space, left, right)
        page = rules.get(ln.page, ())
        return [(i, ln.xs[i], ln.xs[i + 1]) for i, c in enumerate(ln.text)
                if c == " " and ln.xs[i + 1] - ln.xs[i] > CELL_GAP * ln.size
                and any(ln.xs[i] - 0.5 <= x0 and x1 <= ln.xs[i + 1] + 0.5 and top < ln.bottom and bottom > ln.top
                        for x0, x1, top, bottom in page)]

    def close():
        if len(run) >= 2:
            borders = [(a, b) for _, a, b in run[0][1]]
            for _, gaps in run[1:]:
                borders = [(max(a, c), min(b, d)) for a, b in borders for _, c, d in gaps if max(a, c) < min(b, d)]
            rows = [[next((i for i, c, d in gaps if c <= a and b <= d), -1) for a, b in borders] for _, gaps in run]
            if borders and all(-1 not in cuts and len(set(cuts)) == len(cuts) for cuts in rows) \
                    and not any("|" in ln.text for ln, _ in run):
                for k, ((ln, _), cuts) in enumerate(zip(run, rows)):
                    out[id(ln)] = (k, sorted(cuts))
        run.clear()

    for ln in flat:
        gaps = [] if level_of(ln) or id(ln) in code else ruled(ln)
        if not gaps or (run and (run[-1][0].page != ln.page or ln.top - run[-1][0].bottom > 1.5 * ln.size)):
            close()
        if gaps:
            run.append((ln, gaps))
    close()
    return out


Box = tuple[float, float, float, float]  # (x0, x1, top, bottom) from the page's top left


def _drawn(page) -> tuple[list[Box], list[Box]]:
    """What is drawn on an upright page, not written: its thin vertical rules (table borders)
    and its small square-ish shapes (list bullets, once sized against a line)."""
    import pypdfium2.raw as raw

    if page.get_rotation() % 360:
        return [], []
    _, h = page.get_size()
    rules, dots = [], []
    for obj in page.get_objects(filter=[raw.FPDF_PAGEOBJ_PATH], max_depth=2):
        left, bottom, right, top = obj.get_bounds()
        w, tall = right - left, top - bottom
        if w <= RULE_WIDTH and tall > 2 * w:
            rules.append((left, right, h - top, h - bottom))
        elif 1.0 <= w <= 12.0 and abs(w - tall) <= 0.25 * max(w, tall):
            dots.append((left, right, h - top, h - bottom))
    return rules, dots


def _bullet_items(flat: list[PdfLine], dots: dict[int, list[Box]], skip) -> dict[int, tuple[int, int]]:
    """``id`` of each line that starts a list item -> (its nesting level, where its text starts).
    Its bullet is drawn (:data:`DOT_SIZE`, :data:`DOT_GAP`) or written (:data:`_GLYPH_BULLET`);
    a bullet further right than the one before it in the same list goes a level down, one
    further left back up to the level at its place."""
    out: dict[int, tuple[int, int]] = {}
    stack: list[float] = []  # the bullets' left edges of the list being read, one per level
    # each page's shapes by their middle's height: a line looks only at those beside it (a chart
    # of ten thousand markers costs a search per line, not a pass)
    by_page = {page: sorted(((d[2] + d[3]) / 2, d) for d in ds) for page, ds in dots.items()}
    middles = {page: [m for m, _ in ds] for page, ds in by_page.items()}
    for ln in flat:
        if skip(ln):
            continue
        glyph = _GLYPH_BULLET.match(ln.text)
        dot = None
        if not glyph and ln.page in by_page:
            lo = bisect.bisect_left(middles[ln.page], ln.top - 1)
            hi = bisect.bisect_right(middles[ln.page], ln.bottom + 1)
            dot = next((d for _, d in by_page[ln.page][lo:hi]
                        if DOT_SIZE[0] * ln.size <= d[1] - d[0] <= DOT_SIZE[1] * ln.size
                        and d[1] <= ln.x0 and ln.x0 - d[1] <= DOT_GAP * ln.size), None)
        if glyph is None and dot is None:
            continue
        x, slack = (ln.x0 if glyph else dot[0]), 0.5 * ln.size
        while stack and x < stack[-1] - slack:
            stack.pop()
        if not stack or x > stack[-1] + slack:
            stack.append(x)
        out[id(ln)] = (len(stack) - 1, glyph.end() if glyph else 0)
    return out


def _code_indents(flat: list[PdfLine], level_of) -> dict[int, int]:
    """``id`` of each line of code (a fixed-pitch line that is no heading) -> its indent in
    spaces, from its left edge against the block's leftmost line (blocks are runs of such lines
    on one page)."""
    out: dict[int, int] = {}
    run: list[PdfLine] = []

    def close():
        if run:
            left = min(ln.x0 for ln in run)
            for ln in run:
                out[id(ln)] = max(0, round((ln.x0 - left) / ln.mono))
            run.clear()

    for ln in flat:
        if not ln.mono or level_of(ln) or (run and (run[-1].page != ln.page or ln.top - run[-1].bottom > 2 * ln.size)):
            close()
        if ln.mono and not level_of(ln):
            run.append(ln)
    close()
    return out


def _line(out: TextBuilder, ln: PdfLine, text: str, offset: int) -> None:
    out.add(text, ln.page, top=ln.top, bottom=ln.bottom, xs=tuple(ln.xs[offset : offset + len(text) + 1]))


def _trim_last_line(out: TextBuilder) -> None:
    last = out.lines[-1]
    out.lines[-1] = type(last)(last.start, last.end - 1, last.page, last.top, last.bottom, last.xs[:-1])
    out.units[-1][1] = min(out.units[-1][1], out.size)


def open_pdf(data: bytes):
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as e:
        msg = str(e)
        if "password" in msg.lower():
            raise ReaderError(reasons.reason("pdf_encrypted")) from None
        detail = re.search(r"PDFium: ([^)]+)", msg)
        raise ReaderError(reasons.reason("pdf_damaged", detail=detail.group(1).strip() if detail else msg.rstrip("."))) from None


PARALLEL_FROM_PAGES = 24  # a longer PDF is read by one process per core, a range of pages each


def _read_range(data: bytes, start: int, stop: int):
    """Lines, sizes, the scanned (textless) and the garbled (:data:`GARBLED_SHARE`) page
    indexes of pages ``start:stop``."""
    pdf = open_pdf(data)
    try:
        pages, sizes, scanned, garbled = [], [], [], []
        for i in range(start, stop):
            page = pdf[i]
            tally: Counter = Counter()
            try:
                w, h = page.get_size()
                lines = _page_lines(page, i + 1, tally)
            finally:
                page.close()
            if sum(len(ln.text.strip()) for ln in lines) < 5:
                scanned.append(i)
            elif tally["chars"] >= GARBLED_MIN_CHARS and tally["odd"] >= GARBLED_SHARE * tally["chars"]:
                garbled.append(i)
            sizes.append((round(w, 2), round(h, 2)))
            pages.append(lines)
        return pages, sizes, scanned, garbled
    finally:
        pdf.close()


def _read_all(data: bytes, n: int):
    workers = min(os.cpu_count() or 1, 4)
    if n < PARALLEL_FROM_PAGES or workers < 2:
        return _read_range(data, 0, n)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    bounds = [n * k // workers for k in range(workers + 1)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        parts = list(pool.map(_read_range, [data] * workers, bounds[:-1], bounds[1:]))
    return tuple([x for p in parts for x in p[k]] for k in range(4))


def read_pdf(data: bytes, limits: Limits) -> Extract:
    pdf = open_pdf(data)
    try:
        n = len(pdf)
        if n > limits.max_pages:
            raise ReaderError(f"{n:,} pages; the limit is {limits.max_pages:,} pages per file")
        if n == 0:
            raise ReaderError(reasons.reason("pdf_no_pages"))
        meta = pdf.get_metadata_dict()
        pages, sizes, scanned, garbled = _read_all(data, n)
        if scanned or garbled:
            from ingest.readers import ocr

            if len(scanned) + len(garbled) == n and not ocr.available():
                raise ReaderError(reasons.reason("pdf_garbled" if garbled else "pdf_scanned"))
            for i in garbled:
                pages[i] = []  # its text is not the page's: read as an image, or not at all
            if ocr.available():
                for i in scanned + garbled:
                    pages[i] = ocr.read_page(pdf, i, limits)
            scanned = sorted(scanned + garbled)
        # running headers and footers go first: printed in the margins, they would widen the
        # text's right edge that tells a wrapped line from one that ends early
        pages = _drop_contents_entries(_drop_running(pages, [h for _, h in sizes]))
        pages = [_columns(lines, w) for lines, (w, _) in zip(pages, sizes)]
        _bookmark_headings(pdf, pages)
        pages = _notes_after_runs_on(pages, [h for _, h in sizes])
        drawn = {i + 1: _drawn(pdf[i]) for i in range(n) if i not in scanned}
        return compose(pages, sizes, metadata_title(meta.get("Title")), limits,
                       {k: v[0] for k, v in drawn.items()}, {k: v[1] for k, v in drawn.items()})
    finally:
        pdf.close()
