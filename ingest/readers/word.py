"""Word ``.docx`` → document text, through python-docx (MIT): heading styles become
Markdown headings, list paragraphs bullets (numbered lists ``1.``), tables Markdown rows;
body order is kept (paragraphs and tables as they come)."""

from __future__ import annotations

import re
from io import BytesIO

from ingest.readers.base import Extract, Limits, ReaderError, TextBuilder, open_zip

_HEADING = re.compile(r"^(?:heading|見出し|标题)\s*(\d)$", re.I)


def _kind(paragraph) -> tuple[str, int]:
    name = (paragraph.style.name if paragraph.style is not None else "") or ""
    if name.lower() == "title":
        return "heading", 1
    m = _HEADING.match(name.strip())
    if m:
        return "heading", min(int(m.group(1)), 6)
    ppr = paragraph._p.pPr
    numbered = ppr is not None and ppr.numPr is not None
    if "list number" in name.lower():
        return "number", 0
    if "list" in name.lower() or numbered:
        return "bullet", 0
    return "text", 0


def read_docx(data: bytes, limits: Limits) -> Extract:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    open_zip(data, limits, "Word")
    try:
        document = docx.Document(BytesIO(data))
    except Exception as e:  # noqa: BLE001 -- python-docx raises many kinds on a damaged package
        raise ReaderError(f"damaged Word file ({type(e).__name__}: {e})") from None
    out = TextBuilder("paragraph", max_chars=limits.max_text_chars)
    n, counter, title = 0, 0, ""
    body = document.element.body
    for child in body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            p = Paragraph(child, document)
            text = " ".join(p.text.split())
            if not text:
                continue
            n += 1
            kind, level = _kind(p)
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
        elif tag == "tbl":
            n += 1
            out.blank_line()
            for i, row in enumerate(Table(child, document).rows):
                cells = [" ".join(c.text.split()).replace("|", "\\|") for c in row.cells]
                out.add("| " + " | ".join(cells) + " |\n", n)
                if i == 0:
                    out.add("|" + " --- |" * len(cells) + "\n", n)
            out.add("\n", n)
    core = (document.core_properties.title or "").strip()
    return out.extract(core or title)
