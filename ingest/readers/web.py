"""A saved web page (``.html``) → the article as Markdown, through trafilatura
(Apache-2.0): navigation, ads, cookie banners and footers are left out; headings, lists
and tables are kept. Each block of the article is one paragraph of the origin map."""

from __future__ import annotations

from ingest.readers.base import Extract, Limits, ReaderError, TextBuilder


def read_html(data: bytes, limits: Limits) -> Extract:
    import trafilatura

    if len(data) > limits.max_unzipped_bytes:
        raise ReaderError(f"{len(data):,} bytes of HTML; the limit is {limits.max_unzipped_bytes:,}")
    html = data.decode("utf-8", "replace")
    text = trafilatura.extract(
        html, output_format="markdown", include_formatting=True, include_tables=True, include_links=False,
        include_images=False, include_comments=False, favor_precision=True, with_metadata=False,
    )
    if not text or not text.strip():
        raise ReaderError("no article text found in the web page")
    meta = trafilatura.extract_metadata(html)
    title = (meta.title if meta is not None and meta.title else "").strip()
    out = TextBuilder("paragraph", max_chars=limits.max_text_chars)
    n = 0
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if block.strip():
            n += 1
            out.blank_line()
            out.add(block.strip("\n"), n)
    return out.extract(title)
