"""Notes shown as notes: Markdown rendered to inert HTML, passages and documents with the cited
sentences marked, and the names a learner reads (document titles, Q&A labels).

Streamlit-free (the pages and the tests call it). Every text here comes from the documents, so
all of it is escaped (:func:`rag.highlight.escape`); the only tags in the output are the ones
the Markdown renderer and this module write. Raw HTML in a note shows as text, links keep their
words but lose their target, images become their description in brackets.

The output has no newline, so ``st.markdown(..., unsafe_allow_html=True)`` takes it as one HTML
block and never parses Markdown, LaTeX or auto-links inside it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from markdown_it import MarkdownIt

from rag.highlight import escape, no_autolinks
from rag.rules.sentences import MARKER, runs_on
from rag.rules.structure import GENERIC_HEADINGS, plain, strip_heading_number
from rag.types import Chunk, Document

# Private-use characters that mark where a highlight starts and ends while the text goes
# through the Markdown renderer; any in a document are replaced (same length) first.
CITE_ON, CITE_OFF, QUOTE_ON, QUOTE_OFF = "\ue000", "\ue001", "\ue002", "\ue003"
_SENTINELS = CITE_ON + CITE_OFF + QUOTE_ON + QUOTE_OFF
_STRIP_SENTINELS = {ord(c): "\ufffd" for c in _SENTINELS}
_TAG = re.compile(r"(<[^>]*>)")
# What may precede a line's text in Markdown: indentation, heading marks, list markers, block
# quotes, a table's leading pipe, an opening emphasis. A highlight starting at a line start
# begins after it (else "## Title" would no longer be a heading).
_BLOCK_PREFIX = re.compile(r"[ \t]*(?:(?:#{1,6}|[-*+]|\d{1,9}[.)]|>|\|)[ \t]+|>|\|)*(?:\*\*|__)?")
MAX_NESTING = 20  # the renderer's limit (markdown-it's commonmark preset): deeper blocks are not parsed
_FENCE_LINE = re.compile(r"[ \t]*(?:```|~~~)[^\n]*(?:\n|$)")

def _md() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False, "maxNesting": MAX_NESTING})
    md.enable(["table", "strikethrough"])

    def text(self, tokens, idx, options, env):
        return escape(tokens[idx].content)

    def code_inline(self, tokens, idx, options, env):
        return f"<code>{escape(tokens[idx].content)}</code>"

    # Fences too (the info string is dropped). Not <pre><code>: Streamlit renders a block <code>
    # with its own highlighter from String(children), so each <br> (and any highlight) inside
    # one showed as ",[object Object],". A <div> of our class keeps the lines and the marks.
    def code_block(self, tokens, idx, options, env):
        return f'<div class="studyrag-code" role="code">{escape(tokens[idx].content.rstrip(chr(10)))}</div>'

    def link_open(self, tokens, idx, options, env):
        return '<span class="studyrag-link">'

    def link_close(self, tokens, idx, options, env):
        return "</span>"

    def image(self, tokens, idx, options, env):
        alt = "".join(t.content for t in (tokens[idx].children or []))
        return f'<span class="studyrag-image">[{escape(alt or "image")}]</span>'

    def br(self, tokens, idx, options, env):
        return "<br>"

    def softbreak(self, tokens, idx, options, env):
        # a line break wrapping an English sentence ("… only the order of" / "computation
        # changes.") shows as a space, as Markdown shows it; a CJK note's lines stay lines
        before = tokens[idx - 1].content if idx else ""
        after = tokens[idx + 1].content if idx + 1 < len(tokens) else ""
        return " " if runs_on(f"{before}\n{after}", len(before)) else "<br>"

    # Headings as our own elements: Streamlit would give h1-h6 anchor links of its own.
    def heading_open(self, tokens, idx, options, env):
        n = int(tokens[idx].tag[1])
        return f'<div class="studyrag-h{n}" role="heading" aria-level="{n}">'

    def heading_close(self, tokens, idx, options, env):
        return "</div>"

    for name, fn in {
        "text": text,
        "code_inline": code_inline,
        "code_block": code_block,
        "fence": code_block,
        "html_block": text,
        "html_inline": text,
        "link_open": link_open,
        "link_close": link_close,
        "image": image,
        "softbreak": softbreak,
        "hardbreak": br,
        "heading_open": heading_open,
        "heading_close": heading_close,
    }.items():
        md.add_render_rule(name, fn)
    return md


_MARKDOWN = _md()


def is_markdown(doc_id: str) -> bool:
    """Markdown files — and PDFs, slides, Word files and web pages, whose readers write
    Markdown — are rendered; plain-text files are shown line for line."""
    from rag.corpus import is_file_format

    return PurePosixPath(doc_id).suffix.lower() in (".md", ".markdown") or is_file_format(doc_id)


# Block tokens that hold a line's text: a line no such token covers was not rendered.
_LEAVES = frozenset({"paragraph_open", "heading_open", "code_block", "fence", "hr", "html_block", "table_open"})
# Lines with no text of their own: markers alone, link reference definitions.
_NO_TEXT = re.compile(r"^[\s>*+\-]*+(?:\d{1,9}[.)][\s>*+\-]*+)?$|^ {0,3}\[[^\]]+\]:")
_LINES = re.compile(r"\r\n?|\n")


def dropped_lines(tokens, text: str) -> int:
    """How many lines with text of ``text`` no rendered block holds: the renderer stops at
    :data:`MAX_NESTING` levels of lists and quotes and leaves what is deeper out."""
    lines = _LINES.split(text)
    covered = bytearray(len(lines) + 1)
    for tok in tokens:
        if tok.map and tok.type in _LEAVES:
            a, b = tok.map
            covered[a:b] = b"\x01" * (b - a)
    return sum(1 for i, line in enumerate(lines) if not covered[i] and not _NO_TEXT.match(line))


def flattened_html(text: str, notice: str) -> str:
    """``text`` with its nesting removed (each line as plain text, indentation dropped) under a
    ``notice`` saying so: what Markdown nested too deeply to render is shown, not dropped."""
    flat = "\n".join(line.strip() for line in _LINES.split(text))
    return f'<div class="studyrag-notice" role="note">{escape(notice)}</div>{plain_html(flat)}'


def markdown_html(text: str, *, lang: str = "en") -> str:
    """``text`` rendered as Markdown, inert, on one line; nested deeper than the renderer's
    limit, it is shown flattened with a notice in ``lang`` (:func:`flattened_html`)."""
    tokens = _MARKDOWN.parse(text)
    if dropped_lines(tokens, text):
        from ui.i18n import t

        return flattened_html(text, t("notes.flattened", lang, limit=MAX_NESTING))
    return _MARKDOWN.renderer.render(tokens, _MARKDOWN.options, {}).replace("\n", "")


def plain_html(text: str) -> str:
    """``text`` escaped, its line breaks kept, runs of blank lines shortened to one."""
    text = re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", text.strip("\n"))
    return escape(text)


# --- highlights -------------------------------------------------------------------------------


def _on_position(text: str, pos: int) -> int:
    """Where a highlight starting at ``pos`` should begin: after a line's block prefix, past
    a fence line and past leading whitespace."""
    while pos < len(text) and text[pos] in " \t\n":
        pos += 1
    if pos == 0 or text[pos - 1] == "\n":
        m = _FENCE_LINE.match(text, pos)
        if m:
            return _on_position(text, m.end()) if m.end() > pos else pos
        m = _BLOCK_PREFIX.match(text, pos)
        if m:
            pos = m.end()
    return pos


def _off_position(text: str, pos: int) -> int:
    """Where a highlight ending at ``pos`` should end: before trailing whitespace and before a
    fence line that closes a code block (a mark after it would keep the block open)."""
    while pos > 0 and text[pos - 1] in " \t\n":
        pos -= 1
    start = text.rfind("\n", 0, pos) + 1
    m = _FENCE_LINE.match(text, start)
    if start and m and m.end() >= pos:
        return _off_position(text, start)
    if pos > start and text[pos - 1] == "|" and text[start:pos].lstrip().startswith("|"):
        # a table row's closing bar: a mark after it is no cell's text, and the parser drops it
        return _off_position(text, pos - 1)
    return pos


def with_sentinels(text: str, cited: tuple[int, int] | None, quotes: Iterable[tuple[int, int]]) -> str:
    """``text`` with the highlight marks inserted (offsets are into ``text``)."""
    text = text.translate(_STRIP_SENTINELS)
    marks: list[tuple[int, int, str]] = []  # (position, order, char): ends before starts at one place

    def add(s: int, e: int, on: str, off: str) -> None:
        s, e = max(0, s), min(len(text), e)
        if s >= e:
            return
        a, b = _on_position(text, s), _off_position(text, e)
        if a < b:
            marks.append((a, 1, on))
            marks.append((b, 0, off))

    if cited is not None:
        add(cited[0], cited[1], CITE_ON, CITE_OFF)
    for s, e in quotes:
        add(s, e, QUOTE_ON, QUOTE_OFF)
    out, pos = [], 0
    for p, _, ch in sorted(marks):
        out.append(text[pos:p])
        out.append(ch)
        pos = p
    out.append(text[pos:])
    return "".join(out)


def apply_sentinels(html: str, *, cited_id: str = "") -> str:
    """Replace the marks in rendered HTML by ``<mark>`` elements around each piece of text, so
    a highlight across paragraphs or list items never breaks the nesting. The first cited piece
    gets ``id=cited_id`` (to scroll to it)."""
    if not any(c in html for c in _SENTINELS):
        return html
    cite = quote = False
    first = bool(cited_id)
    out: list[str] = []
    for part in _TAG.split(html):
        if not part or part.startswith("<"):
            out.append(part)
            continue
        for piece in re.split(f"([{_SENTINELS}])", part):
            if piece in (CITE_ON, CITE_OFF, QUOTE_ON, QUOTE_OFF):
                cite = piece == CITE_ON if piece in (CITE_ON, CITE_OFF) else cite
                quote = piece == QUOTE_ON if piece in (QUOTE_ON, QUOTE_OFF) else quote
                continue
            if not piece:
                continue
            if quote:
                piece = f'<mark class="studyrag-quote">{piece}</mark>'
            if cite:
                attr = f' id="{escape(cited_id)}"' if first else ""
                first = False
                piece = f'<mark class="studyrag-cited"{attr}>{piece}</mark>'
            out.append(piece)
    return "".join(out)


def render_text(
    text: str,
    *,
    markdown: bool,
    cited: tuple[int, int] | None = None,
    quotes: Iterable[tuple[int, int]] = (),
    cited_id: str = "",
    lang: str = "en",
) -> str:
    """``text`` as inert HTML (Markdown or plain), ``cited`` and ``quotes`` spans (offsets into
    ``text``) marked; ``lang`` is the interface language of a notice (deep Markdown flattened)."""
    src = with_sentinels(text, cited, quotes)
    body = markdown_html(src, lang=lang) if markdown else plain_html(src)
    return apply_sentinels(body, cited_id=cited_id)


def passage_html(chunk: Chunk, quotes: Iterable[tuple[int, int]] = (), *, lang: str = "en") -> str:
    """A passage, its quoted sentences (document offsets) marked."""
    rel = [(s - chunk.start, e - chunk.start) for s, e in quotes if chunk.start <= s < chunk.end]
    body = render_text(chunk.text, markdown=is_markdown(chunk.doc_id), quotes=rel, lang=lang)
    return f'<div class="studyrag-passage studyrag-notes">{body}</div>'


def document_html(
    doc: Document, *, cited: tuple[int, int] | None = None, quotes: Iterable[tuple[int, int]] = (), lang: str = "en"
) -> str:
    """A whole document without its front matter; ``doc.text[cited[0]:cited[1]]`` is marked
    (its first piece has ``id="cited"``) and so are the ``quotes`` inside it."""
    b = doc.body_start

    def shift(span):
        return span[0] - b, span[1] - b

    body = render_text(
        doc.text[b:],
        markdown=is_markdown(doc.doc_id),
        cited=shift(cited) if cited is not None and cited[1] > b else None,
        quotes=[shift(q) for q in quotes if q[1] > b],
        cited_id="cited",
        lang=lang,
    )
    return f'<div class="studyrag-document studyrag-notes">{body}</div>'


# --- names --------------------------------------------------------------------------------------


def _strip_number(heading: str) -> str:
    return strip_heading_number(plain(heading))


def display_title(doc: Document, chunks: Sequence[Chunk] = ()) -> str:
    """The document's title; when it has none of its own (the loader fell back to the file
    name), its first topics: the top-level headings that are not "introduction" or "summary"."""
    if doc.title and doc.title != PurePosixPath(doc.doc_id).stem:
        return doc.title
    tops: list[str] = []
    for c in chunks:
        if c.doc_id != doc.doc_id or not c.section:
            continue
        top = _strip_number(c.section.split(" > ")[0])
        top = re.split(r"[:：]", top)[0].strip()
        if top and top.lower() not in GENERIC_HEADINGS and top not in tops:
            tops.append(top)
    return "・".join(tops[:3]) if tops else doc.title


def passage_label(chunk: Chunk) -> str:
    """Where a passage sits, in the words of the notes: a Q&A item's number and question, or
    a section's heading path (at most two levels)."""
    if chunk.kind == "qa" and chunk.qnum is not None:
        q = plain(chunk.heading)
        return f"Q{chunk.qnum}. {q}" if q else f"Q{chunk.qnum}"
    parts = [_strip_number(p) for p in chunk.section.split(" > ") if p.strip()] if chunk.section else []
    parts = [p for p in parts if p]
    if not parts and chunk.heading:
        parts = [plain(chunk.heading)]
    return " › ".join(parts[-2:])


def metadata_line(doc: Document) -> str:
    """The front matter as one short line of plain text (source, tags), or ``""``."""
    bits = []
    if doc.source:
        bits.append(doc.source)
    if doc.tags:
        bits.append(" ".join(f"#{t}" for t in doc.tags))
    return " · ".join(bits)


# --- cited text with passages that open in place -----------------------------------------------

MAX_PANELS = 30  # the style sheet has rules for this many markers per block


@dataclass(frozen=True)
class Panel:
    """The passage behind marker ``number``: a heading line (plain text) and inert HTML."""

    number: int
    head: str
    body_html: str
    extra_html: str = ""


def marker_html(key: str, n: int) -> str:
    """A clickable ``[n]``: it toggles panel ``n`` of block ``key`` (a label for its checkbox)."""
    return f'<label for="{key}-{n}" class="studyrag-cite" data-n="{n}" role="button" tabindex="0">&#91;{n}&#93;</label>'


def with_panels(
    key: str, body_html: str, panels: Sequence[Panel], *, css_class: str = "studyrag-cited-text", close: str = "×"
) -> str:
    """``body_html`` (holding :func:`marker_html` markers) followed by the panels, each shown
    when its marker is clicked and hidden again by its close mark. Pure HTML and CSS: it opens
    in place, instantly, with no round trip."""
    panels = list(panels)[:MAX_PANELS]
    toggles = "".join(
        f'<input type="checkbox" class="sr-toggle" id="{key}-{p.number}" data-n="{p.number}">' for p in panels
    )
    boxes = "".join(
        f'<div class="sr-panel" data-n="{p.number}"><div class="sr-panel-head">'
        f'<label for="{key}-{p.number}" class="sr-close" title="{escape(close)}">×</label>'
        f'<span class="sr-num">&#91;{p.number}&#93;</span> {escape(p.head)}</div>'
        f"{p.body_html}{p.extra_html}</div>"
        for p in panels
    )
    return (
        f'<div class="{css_class}" id="{key}">{toggles}<div class="sr-body">{body_html}</div>'
        f'<div class="sr-panels">{boxes}</div></div>'
    )


# Punctuation that closes a sentence or clause: kept on the line of the marker before it.
_CLOSING = re.compile(r"[。．.、，,！!？?：:；;」』）)\]】]+")


def _with_markers(text: str, key: str, valid: set[int]) -> str:
    """``text`` escaped, each marker clickable; a code block quoted from the notes shown as
    code (:data:`rag.rules.sentences.CODE_BLOCK`), its marker after it."""
    from rag.rules.sentences import CODE_BLOCK

    out = []
    for k, piece in enumerate(CODE_BLOCK.split(text)):
        if k % 2:
            body, _, tail = piece.partition("\n")[2].rpartition("\n```")
            # a <div>, not <pre><code>: escape() turns its newlines into <br>, which a <code> would
            # show as ",[object Object]," on one line (see _Renderer.code_block)
            out.append(f'<div class="studyrag-code" role="code">{escape(body)}</div>{_markers_only(tail, key, valid)}')
        else:
            out.append(_prose_with_markers(no_autolinks(piece), key, valid))
    return "".join(out)


def _markers_only(text: str, key: str, valid: set[int]) -> str:
    return "".join(marker_html(key, int(n)) if int(n) in valid else f'<span class="studyrag-bad-cite">&#91;{n}&#93;</span>'
                   for m in MARKER.finditer(text) for n in re.findall(r"\d+", m.group(1)))


def _prose_with_markers(text: str, key: str, valid: set[int]) -> str:
    """``text`` escaped, each marker clickable. A marker, the character before it and the
    punctuation after it never part at a line end (no line that is only "。")."""
    out, pos = [], 0
    for m in MARKER.finditer(text):
        start = m.start() - 1 if m.start() > pos and not text[m.start() - 1].isspace() else m.start()
        out.append(escape(text[pos:start]))
        nums = [int(x) for x in re.findall(r"\d+", m.group(1))]
        marks = "".join(
            marker_html(key, n) if n in valid else f'<span class="studyrag-bad-cite">&#91;{n}&#93;</span>'
            for n in nums
        )
        close = _CLOSING.match(text, m.end())
        end = close.end() if close else m.end()
        glued = escape(text[start : m.start()]) + marks + escape(text[m.end() : end])
        out.append(f'<span class="studyrag-nobr">{glued}</span>')
        pos = end
    out.append(escape(text[pos:]))
    return "".join(out)


def answer_body_html(text: str, key: str, valid: set[int], flagged: Iterable[str] = ()) -> str:
    """An answer's text, inert, markers clickable, sentences not backed by the notes marked;
    links and addresses in its prose stay text (:func:`rag.highlight.no_autolinks`; a quoted
    code block is shown as it is, so that it can be copied without invisible characters)."""
    out, pos = [], 0
    for f in flagged:
        i = text.find(f, pos) if f else -1
        if i < 0:
            continue
        out.append(_with_markers(text[pos:i], key, valid))
        out.append(f'<span class="studyrag-flagged">{_with_markers(f, key, valid)}</span>')
        pos = i + len(f)
    out.append(_with_markers(text[pos:], key, valid))
    return "".join(out)


def answer_html(a, *, key: str, lang: str, titles: Mapping[str, str]) -> str:
    """An :class:`~rag.answer.Answer` as inert HTML: the lead-in line, the text with clickable
    markers, and one panel per cited passage (its quoted sentences marked, its translation
    one click further). ``titles`` maps document ids to the titles to show."""
    from rag.messages import lang_name
    from ui.i18n import t

    cited = a.cited()
    valid = {c.number for c in cited}
    text = a.text
    lead = ""
    if a.lead and text.startswith(a.lead):
        lead = f'<div class="studyrag-lead">{escape(a.lead)}</div>'
        text = text[len(a.lead) :].lstrip("\n")
    body = (
        lead
        + f'<div class="studyrag-answer-text">{answer_body_html(text, key, valid, [f.text for f in a.flagged])}</div>'
    )
    panels = []
    for c in cited:
        ch = c.chunk
        page = place_label(c.location, lang)
        head = panel_head(titles.get(ch.doc_id) or ch.title, passage_label(ch), page)
        note = ""
        if c.translated:
            said = t("ask.translated", lang, lang=lang_name(lang, c.hit.chunk.lang))
            note = f'<div class="sr-note">{escape(said)}</div>'
        extra = ""
        if c.parallel is not None:
            other = t("ask.other_language", lang, lang=lang_name(lang, c.parallel.lang))
            extra = f"<details><summary>{escape(other)}</summary>{passage_html(c.parallel, lang=lang)}</details>"
        panels.append(Panel(c.number, head, note + passage_html(ch, c.quotes, lang=lang), extra))
    return with_panels(key, body, panels, css_class="studyrag-answer", close=t("ask.panel_close", lang))


def place_label(location, lang: str) -> str:
    """Where a cited passage is in its file, in the interface language: a slide's number in
    words of ``lang``; a page ("p. 12") or paragraph ("¶ 5") label as it is."""
    from ui.i18n import t

    if location is None:
        return ""
    if location.kind == "slide":
        return t("place.slide", lang, n=location.number)
    return location.label


def panel_head(*parts: str) -> str:
    """A citation's heading from its parts (title, place), each once: a note whose only heading
    is its title reads "Zorblax caching", not "Zorblax caching · Zorblax caching"."""
    seen: list[str] = []
    for p in parts:
        p = (p or "").strip()
        if p and all(p.casefold() != q.casefold() for q in seen):
            seen.append(p)
    return " · ".join(seen)


def card_panel_head(title: str, qnum: int | None, topic: str) -> str:
    """The heading of a card's or quiz question's citation: its document and where in it — the Q&A
    item's number, else the card's topic (a section of that document)."""
    return panel_head(title, f"Q{qnum}" if qnum is not None else topic)


def source_panel(number: int, source, head: str, spans: Iterable[tuple[int, int]] = ()) -> Panel:
    """The panel of a :class:`~study.types.Source` (a card's or a key point's passage), the
    ``spans`` (document offsets) inside it marked."""
    rel = [(s - source.start, e - source.start) for s, e in spans if source.start <= s < source.end]
    body = render_text(source.text, markdown=is_markdown(source.doc_id), quotes=rel)
    return Panel(number, head, f'<div class="studyrag-passage studyrag-notes">{body}</div>')


def cited_text_html(text: str, key: str, panel: Panel, *, close: str = "×") -> str:
    """Plain ``text`` (a card's back, a quiz explanation) ending in marker ``[n]`` that opens ``panel``."""
    body = f'<div class="studyrag-card-text">{escape(text.strip())} {marker_html(key, panel.number)}</div>'
    return with_panels(key, body, [panel], css_class="studyrag-cited-text", close=close)


def source_target(source) -> dict:
    """Where "open in its document" goes for a :class:`~study.types.Source`."""
    return {"doc_id": source.doc_id, "start": source.start, "end": source.end, "text": source.text, "quotes": []}
