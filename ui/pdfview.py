"""A cited PDF page as the learner's file shows it: the page rendered by PDFium, the quoted
sentences highlighted by their character boxes (``rag.origin``), placed in percent of the
page so they stay on the text at any width."""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

from rag.origin import Box

SCALE = 1.6  # pixels per PDF point: sharp enough to read, ~1000 px wide for A4/Letter


def render_page(data: bytes, page: int, *, scale: float = SCALE) -> bytes:
    """PNG of page ``page`` (1-based) of a PDF."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    try:
        if not 1 <= page <= len(pdf):
            raise ValueError(f"page must be between 1 and {len(pdf)}, got {page}")
        image = pdf[page - 1].render(scale=scale).to_pil()
    finally:
        pdf.close()
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def page_html(png: bytes, size: tuple[float, float], boxes: list[Box], *, alt: str) -> str:
    """The page image with one highlight per box (inert: only numbers and our own text)."""
    from rag.highlight import inline

    w, h = size
    marks = "".join(
        '<div class="studyrag-pdfmark" style="position:absolute;'
        f"left:{100 * b.x0 / w:.3f}%;top:{100 * b.top / h:.3f}%;"
        f"width:{100 * max(b.x1 - b.x0, 1) / w:.3f}%;height:{100 * max(b.bottom - b.top, 1) / h:.3f}%;"
        'background:rgba(255,200,0,0.35);outline:1px solid rgba(214,142,0,0.9);border-radius:2px"></div>'
        for b in boxes
    )
    src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return (
        '<div class="studyrag-pdfpage" style="position:relative;width:100%;border:1px solid #ddd">'
        f'<img src="{src}" alt="{inline(alt)}" style="width:100%;display:block"/>{marks}</div>'
    )


def original_bytes(corpus_dir: Path, doc_id: str, sha256: str, *, uploads: Path | None = None) -> bytes | None:
    """The kept original of ``doc_id`` (an upload: in the data folder's ``uploads``) when it is
    still the file that was indexed, else None."""
    from rag.corpus import document_location, read_file

    try:
        data = read_file(*document_location(Path(corpus_dir), doc_id, uploads=uploads))
    except (OSError, ValueError, Exception):  # noqa: BLE001 -- a missing or refused file shows no page
        return None
    return data if hashlib.sha256(data).hexdigest() == sha256 else None
