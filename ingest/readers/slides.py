"""PowerPoint ``.pptx`` → document text, through python-pptx (MIT): one section per
slide — its title as a heading, then its text, then its speaker notes.

The body keeps the structure a slide shows, written as Markdown so the chunker sees it as
it sees a Markdown file: bulleted paragraphs become ``- `` items and automatically numbered
ones ``12. `` (PowerPoint's numbering: ``startAt``, else one more than the last number at
that level), each at its nesting level; paragraphs without a mark are paragraphs (indented
under a list item they continue); bold runs are ``**bold**``; line breaks stay line breaks;
text in a monospace font is a code block; tables are rows. A slide with the title of the
slide before it (PowerPoint's "continue on a new slide") continues that section.

Shapes are read top to bottom, then left to right (groups too), not in drawing order; a
SmartArt diagram's text, kept in its own data part, is read as a list; a text box holding an
equation (kept in ``mc:AlternateContent``) is read, the equation on one line. A
slide without a title placeholder, or with an empty one (a blank layout with text boxes),
takes as its title the one short line in the upper part of the slide set in the largest font.
"""

from __future__ import annotations

from io import BytesIO

from ingest.readers import omml
from ingest.readers.base import (
    Extract, Limits, ReaderError, TextBuilder, header_row, markdown_table, metadata_title, monospace, open_zip,
)
from rag import reasons

_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_A14 = "{http://schemas.microsoft.com/office/drawing/2010/main}"
_MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"
_DGM = "{http://schemas.openxmlformats.org/drawingml/2006/diagram}"
_R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
# Placeholders whose paragraphs are bulleted unless they say otherwise (the slide master's body style).
_BULLETED_PLACEHOLDERS = {"BODY", "OBJECT"}
# A text box is a slide's title when it is its topmost text, one line of at most this many
# characters, starting in this top share of the slide.
TITLE_BOX_CHARS = 80
TITLE_BOX_TOP = 0.25


def _mark(paragraph, bulleted: bool) -> tuple[str, int | None]:
    """``("bullet" | "number" | "none", startAt)`` of a paragraph, from its own properties or,
    when it sets none, from the shape kind (a body placeholder is bulleted)."""
    ppr = paragraph._p.pPr
    if ppr is not None:
        if ppr.find(f"{_A}buNone") is not None:
            return "none", None
        auto = ppr.find(f"{_A}buAutoNum")
        if auto is not None:
            start = auto.get("startAt")
            return "number", int(start) if start and start.isdigit() else None
        if ppr.find(f"{_A}buChar") is not None or ppr.find(f"{_A}buBlip") is not None:
            return "bullet", None
    return ("bullet" if bulleted else "none"), None


def _runs(paragraph) -> tuple[str, bool]:
    """The paragraph as Markdown-like text (bold runs in ``**``, line breaks kept) and whether
    all its text is in a monospace font."""
    pieces: list[tuple[str, bool]] = []  # (text, bold); "\n" for a line break
    mono = True
    for child in paragraph._p:
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "br":
            pieces.append(("\n", False))
        elif tag == "m" and child.tag.startswith(_A14):  # an equation (Office Math) in the line
            pieces.append((omml.text(child), False))
        elif tag in ("r", "fld"):
            t = child.find(f"{_A}t")
            text = t.text if t is not None and t.text else ""
            if not text:
                continue
            rpr = child.find(f"{_A}rPr")
            bold = rpr is not None and rpr.get("b") in ("1", "true")
            latin = rpr.find(f"{_A}latin") if rpr is not None else None
            face = (latin.get("typeface") if latin is not None else "") or ""
            mono = mono and monospace(face)
            pieces.append((text.replace("\v", "\n"), bold))
    out, bold_open = [], False
    for text, bold in pieces:
        if text == "\n":
            if bold_open:
                out.append("**")
                bold_open = False
            out.append("\n")
            continue
        if bold != bold_open and text.strip():
            out.append("**")
            bold_open = bold
        out.append(text)
    if bold_open:
        out.append("**")
    text = "".join(out).replace("****", "")
    lines = [" ".join(ln.split()) for ln in text.split("\n")]
    return "\n".join(ln for ln in lines if ln), mono and bool(pieces)


def _frame_text(frame, n: int, out: TextBuilder, bulleted: bool) -> None:
    expect: dict[int, int] = {}  # the number the next numbered paragraph gets, per level
    prev, prev_level = "", 0  # what the last paragraph was ("", "list", "para") and its level
    for p in frame.paragraphs:
        level = p.level
        kind, start = _mark(p, bulleted)
        text, mono = _runs(p)
        if not text:  # an empty paragraph shows no mark and takes no number
            continue
        if kind == "number":
            number = start if start is not None else expect.get(level, 1)
            expect = {lv: k for lv, k in expect.items() if lv < level}
            expect[level] = number + 1
        else:
            expect = {lv: k for lv, k in expect.items() if lv < level}
        if mono:
            indent = "    " * level
            out.blank_line()
            out.add(indent + "```\n", n)
            out.add("".join(f"{indent}{ln}\n" for ln in text.split("\n")), n)
            out.add(indent + "```\n", n)
            out.add("\n", n)
            prev = "para"
        elif kind in ("bullet", "number"):
            mark = "- " if kind == "bullet" else f"{number}. "
            indent = "    " * level
            if prev == "para" or (prev == "list" and prev_level > level):
                out.blank_line()
            else:
                out.newline()
            lines = text.split("\n")
            out.add(indent + mark + lines[0] + "\n", n)
            for ln in lines[1:]:
                out.add(indent + " " * len(mark) + ln + "\n", n)
            prev = "list"
        else:
            indent = "    " * level
            out.blank_line()
            out.add("".join(f"{indent}{ln}\n" for ln in text.split("\n")), n)
            out.add("\n", n)
            prev = "para"
        prev_level = level


def _is_title_slide(title_shape) -> bool:
    """Whether a slide's title is a title slide's (centred) title: the deck's own heading."""
    try:
        kind = title_shape.placeholder_format.type if title_shape is not None else None
    except (AttributeError, ValueError):
        return False
    return kind is not None and kind.name == "CENTER_TITLE"


def _shape_text(shape, n: int, out: TextBuilder) -> None:
    if shape.has_text_frame:
        kind = ""
        if shape.is_placeholder:
            try:
                kind = shape.placeholder_format.type.name if shape.placeholder_format.type is not None else ""
            except (AttributeError, ValueError):
                kind = ""
        _frame_text(shape.text_frame, n, out, kind in _BULLETED_PLACEHOLDERS)
    if getattr(shape, "has_table", False) and shape.has_table:
        out.blank_line()
        rows = [[" ".join(c.text.split()).replace("|", "\\|") for c in row.cells] for row in shape.table.rows]
        if rows:
            # PowerPoint's "Header Row" option (on for a table it inserts): the first row as the header
            header = header_row(rows, True if shape.table.first_row else None)
            out.add("\n".join(markdown_table(rows, header)) + "\n", n)
        out.add("\n", n)
    steps = _diagram_text(shape)
    if steps:  # SmartArt: its points, in the diagram's order
        out.blank_line()
        for step in steps:
            out.add(f"- {step}\n", n)
    if shape.shape_type == 6:  # a group: its shapes in reading order
        for s in _reading_order(shape.shapes):
            _shape_text(s, n, out)


def _diagram_text(shape) -> list[str]:
    """The text of a SmartArt diagram: its data part's points (``dgm:pt`` of the node kind;
    connectors and the diagram itself have none), one string each. Not in the slide's XML."""
    ids = shape._element.find(f".//{_DGM}relIds")
    if ids is None:
        return []
    from lxml import etree

    try:
        blob = shape.part.related_part(ids.get(f"{_R}dm", "")).blob
        root = etree.fromstring(blob, etree.XMLParser(resolve_entities=False, no_network=True))
    except (KeyError, ValueError, etree.XMLSyntaxError):
        return []
    out = []
    for pt in root.iter(f"{_DGM}pt"):
        body = pt.find(f"{_DGM}t")
        if pt.get("type", "node") != "node" or body is None:
            continue
        text = " ".join(" ".join("".join(t.text or "" for t in p.iter(f"{_A}t")).split()) for p in body.iter(f"{_A}p"))
        if text.strip():
            out.append(text.strip())
    return out


def _alternate_shapes(slide) -> list:
    """Shapes PowerPoint keeps inside ``mc:AlternateContent`` (a text box holding an equation,
    with a picture of it for older readers), which python-pptx does not list: the first
    choice's."""
    from pptx.shapes.shapetree import SlideShapeFactory

    out = []
    for alt in slide.shapes._spTree.iterchildren(f"{_MC}AlternateContent"):
        choice = alt.find(f"{_MC}Choice")
        for el in choice if choice is not None else ():
            if el.tag.rsplit("}", 1)[-1] in ("sp", "grpSp", "graphicFrame"):
                out.append(SlideShapeFactory(el, slide.shapes))
    return out


def _reading_order(shapes) -> list:
    """Shapes top to bottom, then left to right (positions python-pptx does not know last)."""
    return sorted(shapes, key=lambda sh: (sh.top if sh.top is not None else 1 << 40,
                                          sh.left if sh.left is not None else 0))


def _title_box(shapes, slide_height: int):
    """The text box that serves as the title of a slide without a title placeholder: of the
    one-line texts of at most :data:`TITLE_BOX_CHARS` characters starting in the top
    :data:`TITLE_BOX_TOP` of the slide, the one in the largest font (a small label a template
    puts above the title is not it), the topmost of equals."""
    candidates = []
    for sh in shapes:
        if not sh.has_text_frame or sh.top is None or sh.top > TITLE_BOX_TOP * slide_height:
            continue
        lines = [ln for ln in sh.text_frame.text.replace("\v", "\n").splitlines() if ln.strip()]
        if len(lines) == 1 and len(lines[0].strip()) <= TITLE_BOX_CHARS:
            sizes = [r.font.size.pt for p in sh.text_frame.paragraphs for r in p.runs if r.font.size is not None]
            candidates.append((-max(sizes, default=18.0), sh.top, sh))
    return min(candidates, key=lambda c: c[:2])[2] if candidates else None


def read_pptx(data: bytes, limits: Limits) -> Extract:
    from pptx import Presentation
    from pptx.exc import PackageNotFoundError

    open_zip(data, limits, "PowerPoint")
    try:
        deck = Presentation(BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError) as e:
        raise ReaderError(reasons.reason("office_damaged", kind="PowerPoint", detail=f"{type(e).__name__}: {e}")) from None
    slides = list(deck.slides)
    if len(slides) > limits.max_pages:
        raise ReaderError(f"{len(slides):,} slides; the limit is {limits.max_pages:,} per file")
    out = TextBuilder("slide", max_chars=limits.max_text_chars)
    first_title = last_title = ""
    for n, slide in enumerate(slides, start=1):
        shapes = _reading_order(list(slide.shapes) + _alternate_shapes(slide))
        title_shape = slide.shapes.title
        if title_shape is None or not title_shape.has_text_frame or not title_shape.text.strip():
            title_shape = _title_box(shapes, deck.slide_height or 6_858_000)
        title = " ".join(title_shape.text.split()) if title_shape is not None and title_shape.has_text_frame else ""
        first_title = first_title or title
        out.blank_line()
        if not title or title != last_title:  # a slide continuing the one before adds no heading
            out.add(f"{'#' if _is_title_slide(title_shape) else '##'} {title or f'Slide {n}'}\n\n", n)
        last_title = title
        for shape in shapes:
            if title_shape is not None and shape.shape_id == title_shape.shape_id:
                continue
            _shape_text(shape, n, out)
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame
            text = notes.text.strip() if notes is not None else ""
            if text:
                out.blank_line()
                for para in text.splitlines():
                    if para.strip():
                        out.add(para.strip() + "\n", n)
    return out.extract(metadata_title(deck.core_properties.title) or first_title)
