"""Word ``.docx`` → document text, through python-docx (MIT): headings become Markdown
headings, list paragraphs bullets (numbered lists ``1.``), tables Markdown rows; body order
is kept (paragraphs and tables as they come).

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
from io import BytesIO

from ingest.readers import omml
from ingest.readers.base import Extract, Limits, ReaderError, TextBuilder, joiner, metadata_title, open_zip
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
_NOTE_REFS = {f"{_W}footnoteReference": "footnote", f"{_W}endnoteReference": "endnote"}


def _outline(ppr) -> int | None:
    el = ppr.find(f"{_W}outlineLvl") if ppr is not None else None
    value = el.get(f"{_W}val") if el is not None else None
    return int(value) if value is not None and value.isdigit() else None


def _heading_level(paragraph) -> int:
    """1–6 for a heading, 0 for body text: the paragraph's outline level, else its style's
    (a heading style by name, or an outline level), else the style it is based on."""
    own = _outline(paragraph._p.pPr)
    if own is not None:
        return min(own + 1, 6) if own < 9 else 0
    style, seen = paragraph.style, 0
    while style is not None and seen < 10:
        name = (style.name or "").strip()
        if name.lower() == "title":
            return 1
        m = _HEADING.match(name)
        if m:
            return min(int(m.group(1)), 6)
        level = _outline(style.element.pPr)
        if level is not None:
            return min(level + 1, 6) if level < 9 else 0
        style, seen = style.base_style, seen + 1
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


def _kind(paragraph) -> tuple[str, int]:
    level = _heading_level(paragraph)
    if level:
        return "heading", level
    name = (paragraph.style.name if paragraph.style is not None else "") or ""
    ppr = paragraph._p.pPr
    numbered = ppr is not None and ppr.numPr is not None
    if "list number" in name.lower():
        return "number", 0
    if "list" in name.lower() or numbered:
        return "bullet", 0
    return "text", 0


def _walk(el, out: list[str], boxes: list, notes: list[tuple[str, str]]) -> None:
    """Collect the shown text under ``el`` into ``out``; text-box paragraphs into ``boxes``,
    footnote/endnote references ``(kind, id)`` into ``notes``."""
    for child in el:
        tag = child.tag
        if not isinstance(tag, str) or tag in _HIDDEN:
            continue
        if tag == f"{_W}t":
            out.append(child.text or "")
        elif tag == f"{_W}tab":
            out.append(" ")
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
            _walk(child, out, boxes, notes)


def _text(el) -> tuple[str, list, list[tuple[str, str]]]:
    """``(text, text-box paragraphs, note references)`` of a paragraph (whitespace folded)."""
    out: list[str] = []
    boxes: list = []
    notes: list[tuple[str, str]] = []
    _walk(el, out, boxes, notes)
    text = ""
    for line in "".join(out).split("\n"):  # a line break joins as wrapped lines do: no space in CJK text
        line = " ".join(line.split())
        text += joiner(text, line) + line
    return text, boxes, notes


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
    n, counter, title = 0, 0, ""

    def paragraph_of_its_own(text: str) -> None:
        nonlocal n
        n += 1
        out.blank_line()
        out.add(text + "\n\n", n)

    blocks = list(_blocks(document.element.body))
    last_level = 1  # the level of the last heading: a heading made by hand (bold) goes below it
    for i, child in enumerate(blocks):
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            p = Paragraph(child, document)
            if _TOC_STYLE.match((p.style.name if p.style is not None else "") or ""):
                continue  # an entry of a table of contents outside a content control
            text, boxes, refs = _text(child)
            if text:
                n += 1
                kind, level = _kind(p)
                if kind == "text" and _by_hand_heading(p, text, blocks[i + 1] if i + 1 < len(blocks) else None,
                                                       document):
                    kind, level = "heading", min(last_level + 1, 6)
                elif kind == "heading":
                    last_level = level
                if kind == "heading":
                    out.blank_line()
                    out.add("#" * level + " ", n)
                    out.add(text + "\n\n", n)
                    title = title or text
                    counter = 0
                elif kind in ("bullet", "number"):
                    counter = counter + 1 if kind == "number" else 0
                    out.newline()
                    out.add(f"{counter}. " if kind == "number" else "- ", n)
                    out.add(text + "\n", n)
                else:
                    counter = 0
                    out.blank_line()
                    out.add(text + "\n\n", n)
            for extra in [_text(b)[0] for b in boxes] + [notes.get(r, "") for r in refs]:
                if extra:
                    paragraph_of_its_own(extra)
        elif tag == "tbl":
            n += 1
            out.blank_line()
            for i, row in enumerate(Table(child, document).rows):
                cells, seen = [], None
                for c in row.cells:  # a merged cell is listed once per column it spans: its text once
                    cells.append("" if c._tc is seen else _cell_text(c._tc).replace("|", "\\|"))
                    seen = c._tc
                out.add("| " + " | ".join(cells) + " |\n", n)
                if i == 0:
                    out.add("|" + " --- |" * len(cells) + "\n", n)
            out.add("\n", n)
    return out.extract(metadata_title(document.core_properties.title) or title)
