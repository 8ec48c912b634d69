"""PowerPoint ``.pptx`` → document text, through python-pptx (MIT): one section per
slide — its title as a heading, then its text (paragraph levels as nested bullets, tables
as rows), then its speaker notes."""

from __future__ import annotations

from io import BytesIO

from ingest.readers.base import Extract, Limits, ReaderError, TextBuilder, open_zip

MAX_SLIDES_FACTOR = 1  # slides count against Limits.max_pages


def _shape_text(shape, n: int, out: TextBuilder) -> None:
    if shape.has_text_frame:
        for p in shape.text_frame.paragraphs:
            text = " ".join("".join(r.text for r in p.runs).split()) or " ".join(p.text.split())
            if text:
                out.add("  " * p.level + "- ", n)
                out.add(text, n)
                out.add("\n", n)
    if getattr(shape, "has_table", False) and shape.has_table:
        for row in shape.table.rows:
            cells = [" ".join(c.text.split()).replace("|", "\\|") for c in row.cells]
            out.add("| " + " | ".join(cells) + " |\n", n)
    if shape.shape_type == 6:  # a group: its shapes in order
        for s in shape.shapes:
            _shape_text(s, n, out)


def read_pptx(data: bytes, limits: Limits) -> Extract:
    from pptx import Presentation
    from pptx.exc import PackageNotFoundError

    open_zip(data, limits, "PowerPoint")
    try:
        deck = Presentation(BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError) as e:
        raise ReaderError(f"damaged PowerPoint file ({type(e).__name__}: {e})") from None
    slides = list(deck.slides)
    if len(slides) > limits.max_pages:
        raise ReaderError(f"{len(slides):,} slides; the limit is {limits.max_pages:,} per file")
    out = TextBuilder("slide", max_chars=limits.max_text_chars)
    first_title = ""
    for n, slide in enumerate(slides, start=1):
        title_shape = slide.shapes.title
        title = " ".join(title_shape.text.split()) if title_shape is not None and title_shape.has_text_frame else ""
        first_title = first_title or title
        out.blank_line()
        out.add(f"## {title or f'Slide {n}'}\n\n", n)
        for shape in slide.shapes:
            if title_shape is not None and shape.shape_id == title_shape.shape_id:
                continue
            _shape_text(shape, n, out)
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame
            text = notes.text.strip() if notes is not None else ""
            if text:
                out.add("\n", n)
                for para in text.splitlines():
                    if para.strip():
                        out.add(para.strip() + "\n", n)
    core_title = (deck.core_properties.title or "").strip()
    return out.extract(core_title or first_title)
