"""Word ``.docx`` → document text, through python-docx (MIT): headings become Markdown
headings, list paragraphs bullets or numbered items as Word numbers them (the file's numbering
definitions; a level below indented), code (a code style, or text wholly in a monospace font)
one fenced block with its lines and indentation, tables Markdown rows; body order is kept
(paragraphs and tables as they come).

A heading is what Word's navigation pane shows as one: a "Heading N"/"Title" style, a style
based on one, or an outline level (the paragraph's own or its style's) — or one made by hand,
a short bold paragraph before one that is not bold (a level below the heading before it). A paragraph's text
is what Word shows with its tracked changes accepted (insertions in, deletions out), its line
breaks joined as wrapped lines are (no space between CJK characters), its equations (Office
Math) written on one line; the text
of a text box anchored in it and of the footnotes it refers to follow it as paragraphs of
their own; a table nested in a cell is written into that cell, a merged cell's text once.
Content controls (a cover page) are read; a table of contents is not (its entries repeat the
headings with page numbers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from io import BytesIO

from ingest.readers import omml
from ingest.readers.base import (
    Extract, Limits, ReaderError, TextBuilder, header_row, joiner, markdown_table, metadata_title, monospace, open_zip,
)
from rag import reasons
from rag.rules.structure import bold_heading

_HEADING = re.compile(r"^(?:heading|見出し|标题)\s*(\d)$", re.I)
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"
# Not shown as text: deleted or moved-away runs, field codes, a shape's fallback copy
# (mc:Fallback repeats mc:Choice), formatting.
_HIDDEN = frozenset({f"{_W}del", f"{_W}moveFrom", f"{_W}instrText", f"{_W}delText", f"{_W}pPr", f"{_W}rPr",
                     f"{_MC}Fallback"})
_TOC_STYLE = re.compile(r"^toc\s*\d$", re.I)
# A paragraph style for code by its name: Word's "HTML Preformatted", "Macro Text" and "Plain Text",
# pandoc's "Source Code", the "Code" people make.
_CODE_STYLE = re.compile(r"code|preformatted|verbatim|macro text|plain text|ソースコード|コード|代码", re.I)
_NOTE_REFS = {f"{_W}footnoteReference": "footnote", f"{_W}endnoteReference": "endnote"}


def _outline(ppr) -> int | None:
    el = ppr.find(f"{_W}outlineLvl") if ppr is not None else None
    value = el.get(f"{_W}val") if el is not None else None
    return int(value) if value is not None and value.isdigit() else None


def _styles(style):
    """``style`` and the styles it is based on, nearest first."""
    seen = 0
    while style is not None and seen < 10:
        yield style
        style, seen = style.base_style, seen + 1


def _heading_level(paragraph) -> int:
    """1–6 for a heading, 0 for body text: the paragraph's outline level, else its style's
    (a heading style by name, or an outline level), else the style it is based on."""
    own = _outline(paragraph._p.pPr)
    if own is not None:
        return min(own + 1, 6) if own < 9 else 0
    for style in _styles(paragraph.style):
        name = (style.name or "").strip()
        if name.lower() == "title":
            return 1
        m = _HEADING.match(name)
        if m:
            return min(int(m.group(1)), 6)
        level = _outline(style.element.pPr)
        if level is not None:
            return min(level + 1, 6) if level < 9 else 0
    return 0


def _all_bold(paragraph) -> bool:
    """Whether every run with text is bold (its own setting, else its paragraph style's)."""
    style = paragraph.style.font.bold if paragraph.style is not None else None
    runs = [r for r in paragraph.runs if r.text.strip()]
    return bool(runs) and all(r.bold if r.bold is not None else bool(style) for r in runs)


def _by_hand_heading(paragraph, text: str, nxt, document) -> bool:
    """A heading made by hand: a short bold paragraph (:func:`rag.rules.structure.bold_heading`)
    followed by a paragraph that is not bold (one of a run of bold lines is not)."""
    from docx.text.paragraph import Paragraph

    if not bold_heading(text) or not _all_bold(paragraph):
        return False
    return nxt is not None and nxt.tag == f"{_W}p" and not _all_bold(Paragraph(nxt, document))


_LIST_STYLE_LEVEL = re.compile(r"^list(?: bullet| number| continue)?\s*(\d)$", re.I)


@dataclass
class _Numbering:
    """A file's list numbering (``word/numbering.xml``): per list (``numId``) and level, its
    number format ("bullet", "decimal", "lowerLetter" …) and first number."""

    levels: dict[tuple[str, int], tuple[str, int]]
    counters: dict[str, dict[int, int]] = field(default_factory=dict)

    @classmethod
    def of(cls, document) -> _Numbering:
        try:
            root = document.part.numbering_part.element
        except (KeyError, NotImplementedError, AttributeError):  # no numbering part
            return cls({})
        abstract: dict[str, dict[int, tuple[str, int]]] = {}
        for a in root.iterchildren(f"{_W}abstractNum"):
            abstract[a.get(f"{_W}abstractNumId", "")] = {
                int(lvl.get(f"{_W}ilvl", "0")): (_val(lvl, "numFmt") or "decimal", _int(_val(lvl, "start"), 1))
                for lvl in a.iterchildren(f"{_W}lvl") if (lvl.get(f"{_W}ilvl") or "0").isdigit()}
        levels = {}
        for num in root.iterchildren(f"{_W}num"):
            num_id = num.get(f"{_W}numId", "")
            for ilvl, (fmt, start) in abstract.get(_val(num, "abstractNumId"), {}).items():
                levels[(num_id, ilvl)] = (fmt, start)
            for o in num.iterchildren(f"{_W}lvlOverride"):  # "restart at": a list that starts again
                ilvl, start = _int(o.get(f"{_W}ilvl"), 0), _val(o, "startOverride")
                if start is not None and (num_id, ilvl) in levels:
                    levels[(num_id, ilvl)] = (levels[(num_id, ilvl)][0], _int(start, 1))
        return cls(levels)

    def mark(self, num_id: str, ilvl: int) -> str:
        """The mark of the next item of list ``num_id`` at level ``ilvl``: "- " or "3. " — as
        Word numbers it, continuing the list across the paragraphs between its items, and a
        level's count starting again after an item of a level above it."""
        fmt, start = self.levels.get((num_id, ilvl), ("decimal" if num_id == "#number" else "bullet", 1))
        counts = self.counters.setdefault(num_id, {})
        for deeper in [lv for lv in counts if lv > ilvl]:
            del counts[deeper]
        if fmt in ("bullet", "none"):
            return "- "
        counts[ilvl] = counts.get(ilvl, start - 1) + 1
        return f"{counts[ilvl]}. "


def _val(el, child: str) -> str | None:
    found = el.find(f"{_W}{child}")
    return found.get(f"{_W}val") if found is not None else None


def _int(value: str | None, default: int) -> int:
    return int(value) if value and value.lstrip("-").isdigit() else default


def _list_item(paragraph) -> tuple[str, int] | None:
    """``(numId, level)`` of a list paragraph — its numbering, its own or its style's — or
    ``None``. A list style without numbering ("List Bullet" made by hand) is a bullet list
    (``numId`` ""); its level, without one set, is the style's number ("List Bullet 2": 1)."""
    own = paragraph._p.pPr.numPr if paragraph._p.pPr is not None else None
    num_id, ilvl = (_val(own, "numId"), _val(own, "ilvl")) if own is not None else (None, None)
    names = []
    for style in _styles(paragraph.style):
        names.append(style.name or "")
        ppr = style.element.pPr
        if ppr is not None and ppr.numPr is not None:
            num_id = num_id if num_id is not None else _val(ppr.numPr, "numId")
            ilvl = ilvl if ilvl is not None else _val(ppr.numPr, "ilvl")
    if num_id == "0":  # numbering switched off
        return None
    by_name = next((m for m in map(_LIST_STYLE_LEVEL.match, names) if m), None)
    level = _int(ilvl, int(by_name.group(1)) - 1 if by_name else 0)
    if num_id is not None:
        return num_id, min(level, 8)
    by_hand = re.match(r"list (bullet|number)", names[0] if names else "", re.I)
    if by_hand:
        return ("#number" if by_hand.group(1).lower() == "number" else ""), min(level, 8)
    return None


def _is_code(paragraph, body_face: str | None) -> bool:
    """A line of code: a paragraph in a code style (:data:`_CODE_STYLE`, or a style set in a
    monospace font), or one whose every run with text is set in a monospace font (its own, its
    character style's or its paragraph style's) — code pasted into Word, a Google Docs code block.
    The body's own font (``body_face``, the Normal style's) is never code's, whatever it is."""
    styles = list(_styles(paragraph.style))

    def mono(face):
        return monospace(face) and face != body_face

    if any(_CODE_STYLE.search(s.name or "") or mono(s.font.name) for s in styles):
        return True
    runs = [r for r in paragraph.runs if r.text.strip()]
    face = next((s.font.name for s in styles if s.font.name), None)

    def run_face(r):
        return r.font.name or next((s.font.name for s in _styles(r.style) if s.font.name), None) or face

    return bool(runs) and all(mono(run_face(r)) for r in runs)


def _walk(el, out: list[str], boxes: list, notes: list[tuple[str, str]], tab: str = " ") -> None:
    """Collect the shown text under ``el`` into ``out`` (a tab as ``tab``); text-box paragraphs
    into ``boxes``, footnote/endnote references ``(kind, id)`` into ``notes``."""
    for child in el:
        tag = child.tag
        if not isinstance(tag, str) or tag in _HIDDEN:
            continue
        if tag == f"{_W}t":
            out.append(child.text or "")
        elif tag == f"{_W}tab":
            out.append(tab)
        elif tag in (f"{_W}br", f"{_W}cr"):
            out.append("\n")
        elif tag == f"{_W}noBreakHyphen":
            out.append("-")
        elif tag in _NOTE_REFS:
            notes.append((_NOTE_REFS[tag], child.get(f"{_W}id", "")))
        elif tag == f"{_W}txbxContent":
            boxes.extend(child.iter(f"{_W}p"))
        elif tag in (f"{omml.M}oMathPara", f"{omml.M}oMath"):
            out.append(omml.text(child))
        else:
            _walk(child, out, boxes, notes, tab)


def _collected(el, tab: str = " ") -> tuple[str, list, list[tuple[str, str]]]:
    """``(shown text as written, text-box paragraphs, note references)`` under ``el`` (:func:`_walk`)."""
    out: list[str] = []
    boxes: list = []
    notes: list[tuple[str, str]] = []
    _walk(el, out, boxes, notes, tab)
    return "".join(out), boxes, notes


def _text(el) -> tuple[str, list, list[tuple[str, str]]]:
    """``(text, text-box paragraphs, note references)`` of a paragraph (whitespace folded)."""
    raw, boxes, notes = _collected(el)
    text = ""
    for line in raw.split("\n"):  # a line break joins as wrapped lines do: no space in CJK text
        line = " ".join(line.split())
        text += joiner(text, line) + line
    return text, boxes, notes


def _code_lines(el) -> tuple[list[str], list, list[tuple[str, str]]]:
    """``(lines, text-box paragraphs, note references)`` of a code paragraph: its line breaks
    and indentation as written (a tab as four spaces)."""
    raw, boxes, notes = _collected(el, tab="\t")
    return [ln.rstrip().expandtabs(4) for ln in raw.split("\n")], boxes, notes


def _marked_header(tr) -> bool | None:
    """``True`` when a table's first row ``tr`` is marked as its header — repeated on each page
    (``w:tblHeader``) or all bold — else ``None`` (unmarked: :func:`header_row` decides)."""
    props = tr.find(f"{_W}trPr")
    if props is not None and props.find(f"{_W}tblHeader") is not None:
        return True
    runs = [r for r in tr.iter(f"{_W}r") if "".join(x.text or "" for x in r.iter(f"{_W}t")).strip()]
    bold = lambda r: (b := r.find(f"{_W}rPr/{_W}b")) is not None and b.get(f"{_W}val") not in ("0", "false")
    return True if runs and all(bold(r) for r in runs) else None


def _cell_text(tc) -> str:
    """A table cell's text, with the text of a table nested in it, on one line."""
    pieces = []
    for child in tc:
        if child.tag == f"{_W}p":
            pieces.append(_text(child)[0])
        elif child.tag == f"{_W}tbl":
            pieces += [_cell_text(inner) for inner in child.iter(f"{_W}tc")]
    return " ".join(p for p in pieces if p)


def _notes(document) -> dict[tuple[str, str], str]:
    """``(kind, id) -> text`` of the file's footnotes and endnotes."""
    from lxml import etree

    out = {}
    for rel in document.part.rels.values():
        kind = rel.reltype.rsplit("/", 1)[-1]
        if kind not in ("footnotes", "endnotes") or rel.is_external:
            continue
        root = etree.fromstring(rel.target_part.blob, etree.XMLParser(resolve_entities=False, no_network=True))
        for note in root.iter(f"{_W}{kind[:-1]}"):
            text = " ".join(_text(p)[0] for p in note.iter(f"{_W}p")).strip()
            if text:
                out[(kind[:-1], note.get(f"{_W}id", ""))] = text
    return out


def _blocks(parent):
    """The paragraphs and tables of the body in order, those inside content controls
    (``w:sdt``: a cover page's title) included — but not a table of contents (its entries
    repeat the headings, with page numbers)."""
    for child in parent.iterchildren():
        if child.tag in (f"{_W}p", f"{_W}tbl"):
            yield child
        elif child.tag == f"{_W}sdt":
            gallery = child.find(f"{_W}sdtPr/{_W}docPartObj/{_W}docPartGallery")
            content = child.find(f"{_W}sdtContent")
            if content is not None and (gallery is None or gallery.get(f"{_W}val") != "Table of Contents"):
                yield from _blocks(content)


def read_docx(data: bytes, limits: Limits) -> Extract:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    open_zip(data, limits, "Word")
    try:
        document = docx.Document(BytesIO(data))
        notes = _notes(document)
    except Exception as e:  # noqa: BLE001 -- python-docx raises many kinds on a damaged package
        raise ReaderError(reasons.reason("office_damaged", kind="Word", detail=f"{type(e).__name__}: {e}")) from None
    out = TextBuilder("paragraph", max_chars=limits.max_text_chars)
    n, title = 0, ""
    numbering = _Numbering.of(document)

    def shown_beside(boxes, refs) -> list[str]:
        """The text of a paragraph's text boxes and of the notes it refers to."""
        return [x for x in [_text(b)[0] for b in boxes] + [notes.get(r, "") for r in refs] if x]

    def paragraph_of_its_own(text: str) -> None:
        nonlocal n
        n += 1
        out.blank_line()
        out.add(text + "\n\n", n)

    body_face = document.styles["Normal"].font.name if "Normal" in document.styles else None
    code: list[tuple[str, int]] = []  # the lines of the code block being read, each with its paragraph
    code_extras: list[str] = []  # text boxes and notes of its paragraphs: paragraphs after it

    def end_code() -> None:
        """Write the code block read so far as one fenced block (blank lines at its ends left out)."""
        while code and not code[-1][0]:
            code.pop()
        while code and not code[0][0]:
            code.pop(0)
        if code:
            out.blank_line()
            out.add("```\n", code[0][1])
            for line, k in code:
                out.add(line + "\n", k)
            out.add("```\n\n", code[-1][1])
        code.clear()
        for extra in code_extras:
            paragraph_of_its_own(extra)
        code_extras.clear()

    blocks = list(_blocks(document.element.body))
    last_level = 1  # the level of the last heading: a heading made by hand (bold) goes below it
    for i, child in enumerate(blocks):
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            p = Paragraph(child, document)
            if _TOC_STYLE.match((p.style.name if p.style is not None else "") or ""):
                continue  # an entry of a table of contents outside a content control
            heading = _heading_level(p)
            if not heading and _is_code(p, body_face):
                lines, boxes, refs = _code_lines(child)
                if any(lines):
                    n += 1
                if code or any(lines):  # a block starts at its first line with text
                    code.extend((line, n) for line in lines)
                code_extras.extend(shown_beside(boxes, refs))
                continue
            text, boxes, refs = _text(child)
            if not text and not boxes and not refs and code:
                code.append(("", n))  # an empty paragraph inside a code block: a blank line of it
                continue
            end_code()
            if text:
                n += 1
                level = heading
                item = None if level else _list_item(p)
                if level:
                    last_level = level
                elif item is None and _by_hand_heading(p, text, blocks[i + 1] if i + 1 < len(blocks) else None,
                                                       document):
                    level = min(last_level + 1, 6)
                if level:
                    out.blank_line()
                    out.add("#" * level + " ", n)
                    out.add(text + "\n\n", n)
                    title = title or text
                elif item is not None:
                    out.newline()
                    out.add("    " * item[1] + numbering.mark(*item), n)
                    out.add(text + "\n", n)
                else:
                    out.blank_line()
                    out.add(text + "\n\n", n)
            for extra in shown_beside(boxes, refs):
                paragraph_of_its_own(extra)
        elif tag == "tbl":
            end_code()
            n += 1
            out.blank_line()
            table = Table(child, document)
            rows = []
            for row in table.rows:
                cells, seen = [], None
                for c in row.cells:  # a merged cell is listed once per column it spans: its text once
                    cells.append("" if c._tc is seen else _cell_text(c._tc).replace("|", "\\|"))
                    seen = c._tc
                rows.append(cells)
            if rows:
                header = header_row(rows, _marked_header(table.rows[0]._tr))
                out.add("\n".join(markdown_table(rows, header)) + "\n", n)
            out.add("\n", n)
    end_code()
    return out.extract(metadata_title(document.core_properties.title) or title)
