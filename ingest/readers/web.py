"""A saved web page (``.html``) → the article as Markdown, through trafilatura
(Apache-2.0): navigation, ads, cookie banners and footers are left out.

trafilatura finds the article and gives it as its XML tree (``head``, ``p`` with ``lb``
line breaks and ``hi`` emphasis, ``list``/``item``, ``code``, ``table``, ``quote``); this
module writes that tree as Markdown itself, so paragraphs, line breaks, headings, numbered
and nested lists, bold text and code blocks reach the chunker as they would from a Markdown
file (trafilatura's own Markdown output folds line breaks and runs a code block into the
line before it). Each block of the article is one paragraph of the origin map.
"""

from __future__ import annotations

import codecs
import copy
import re

from ingest.readers.base import Extract, Limits, ReaderError, TextBuilder, header_row, joiner, markdown_table
from rag import reasons

_HEAD_LEVEL = re.compile(r"h([1-6])")
_BLOCKS = frozenset({"p", "list", "item", "table", "quote", "head"})
_CONTAINERS = frozenset({"div", "main", "section", "doc", "body"})  # hold blocks (and, on some pages, text)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
# Labels Python does not know, and the supersets browsers decode legacy CJK labels with (WHATWG Encoding).
_CHARSET_ALIASES = {"windows-31j": "cp932", "x-sjis": "cp932", "x-gbk": "gbk", "x-euc-jp": "euc_jp"}
_SUPERSETS = {"shift_jis": "cp932", "gb2312": "gb18030", "gbk": "gb18030", "euc_kr": "cp949", "big5": "big5hkscs"}
# Class names highlighters give a code listing's line numbers and their gutter.
_LINE_NUMBERS = re.compile(
    r"^(?:ln|lnt|lineno|linenos|line-?numbers?(?:-rows)?|hljs-ln-n(?:umbers)?|pre-numbering|gutter|code-gutter)$", re.I
)
_WORD = re.compile(r"\w")
# CJK closing punctuation takes no space before it (one left where the page's source broke a line).
_NO_SPACE_BEFORE = re.compile(r" (?=[、。，．！？：；」』）】〕])")
_BRACKETED = re.compile(r"^[\[［][^\]］]{1,12}[\]］]$")  # "[1]", "[要出典]", "[編集]", "［注 2］"
# A table that is a code listing (a row per line, or a gutter cell beside the code cell).
_CODE_TABLE = re.compile(r"^(?:hljs-ln|lntable|highlighttable|code-table)$", re.I)


def _classes(el) -> list[str]:
    return (el.get("class") or "").split()


def _is_gutter(el) -> bool:
    return any(_LINE_NUMBERS.match(c) for c in _classes(el))


def _drop(el) -> None:
    """Remove ``el`` from its tree, keeping the text that follows it."""
    parent = el.getparent()
    if parent is None:
        return
    tail = el.tail or ""
    prev = el.getprevious()
    if prev is not None:
        prev.tail = (prev.tail or "") + tail
    else:
        parent.text = (parent.text or "") + tail
    parent.remove(el)


def _gutter_cell(cell) -> bool:
    """A table cell of line numbers: it (or something in it) has a gutter class, or it holds
    only digits."""
    return any(_is_gutter(e) for e in cell.iter()) or "".join(cell.text_content().split()).isdigit()


def _code_table(table) -> bool:
    """A table that lays out a code listing: a highlighter's class, a ``<pre>`` in it, or
    itself inside a ``<pre>``/``<code>`` (a table with inline code in its cells is a table)."""
    return (any(_CODE_TABLE.match(c) for c in _classes(table)) or any(True for _ in table.iter("pre"))
            or any(a.tag in ("pre", "code") for a in table.iterancestors()))


def _plain_code(tree) -> None:
    """Rewrite the page's code listings as ``<pre><code>`` of their lines only (in place)."""
    for table in list(tree.iter("table")):
        if table.getparent() is None or not _code_table(table):
            continue
        lines = []
        for row in table.iter("tr"):
            code = [c for c in row if c.tag in ("td", "th") and not _gutter_cell(c)]
            if code:
                lines.append("".join(c.text_content() for c in code).rstrip("\n"))
        outer = table
        for anc in table.iterancestors():
            if anc.tag in ("pre", "code"):
                outer = anc
        pre = table.makeelement("pre", {})
        code = table.makeelement("code", {})
        code.text = "\n".join(lines)
        pre.append(code)
        pre.tail = outer.tail
        outer.getparent().replace(outer, pre)
    for pre in list(tree.iter("pre")):
        for el in [e for e in pre.iter() if e is not pre and _is_gutter(e)]:
            _drop(el)
        for br in list(pre.iter("br")):  # lines written as <br>: newlines
            br.tail = "\n" + (br.tail or "")
            _drop(br)
        if not any(True for _ in pre.iter("code")):  # bare <pre>: its text as code (not a quote)
            code = pre.makeelement("code", {})
            code.text, pre.text = pre.text, None
            for child in list(pre):
                code.append(child)
            pre.append(code)


# Inline styles a browser shows nothing for: text a page hides from its reader (and so, often,
# an order written for a machine reading the page) is no part of the article.
_HIDDEN_STYLE = re.compile(
    r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*(?:hidden|collapse)"
    r"|font-size\s*:\s*(?:0(?:\.\d+)?(?:px|pt|em|rem|%)?|1(?:\.0+)?(?:px|pt))\s*(?:;|$|!)"
    r"|opacity\s*:\s*0(?:\.0+)?\s*(?:;|$|!))",
    re.I,
)


def _no_hidden(tree) -> None:
    """Without what a browser does not show (in place): ``<template>``, elements with the
    ``hidden`` attribute, and inline styles hiding them (display: none, visibility: hidden,
    a font size of 1 px or less, opacity: 0)."""
    hidden = [el for el in tree.iter() if isinstance(el.tag, str) and (
        el.tag == "template" or el.get("hidden") is not None or _HIDDEN_STYLE.search(el.get("style") or ""))]
    for el in hidden:
        if el.getparent() is not None:
            _drop(el)


def _no_marks(tree) -> None:
    """Without the marks a page puts around its text (in place): links with no letter,
    digit or CJK character (permalinks "¶", "#", "🔗" in headings; "^", "↑", "↩" back to a
    reference), reference marks in superscript ("[1]", "[要出典]", or a link within the page:
    an answer would read "[1]" as its own citation) and bracketed links in headings ("[編集]")."""
    for a in [a for a in tree.iter("a") if not _WORD.search(a.text_content())]:
        _drop(a)
    for sup in list(tree.iter("sup")):
        text = " ".join(sup.text_content().split())
        if _BRACKETED.match(text) or any((a.get("href") or "").startswith("#") for a in sup.iter("a")):
            _drop(sup)
    for level in range(1, 7):
        for heading in list(tree.iter(f"h{level}")):
            for el in [e for e in heading.iter() if e is not heading]:
                if el.getparent() is not None and _BRACKETED.match(" ".join(el.text_content().split())):
                    _drop(el)


def _is_block(el) -> bool:
    """Whether an element is a block of its own: code is one unless it sits inside a line
    of text (a paragraph, a heading, emphasis) and has a single line."""
    if el.tag in _BLOCKS:
        return True
    if el.tag != "code":
        return False
    parent = el.getparent()
    return parent is None or parent.tag not in ("p", "hi", "head", "cell") or "\n" in (el.text or "").strip()


def _inline(el, *, keep_breaks: bool = True) -> str:
    """An element's text with its inline markup: ``**bold**``, line breaks as ``\\n``."""
    out = [el.text or ""]
    for child in el:
        tag = child.tag
        if tag == "lb":
            out.append("\n" if keep_breaks else "\0")
        elif tag == "hi":
            inner = _inline(child, keep_breaks=keep_breaks)
            rend = child.get("rend", "")
            if inner.strip() and ("#b" in rend or "#strong" in rend):
                lead, core, trail = re.match(r"(\s*)(.*?)(\s*)$", inner, re.S).groups()
                out.append(f"{lead}**{core}**{trail}")
            else:
                out.append(inner)
        elif _is_block(child):
            pass  # blocks inside a paragraph or list item are written by the caller
        else:
            out.append(_inline(child, keep_breaks=keep_breaks))
        out.append(child.tail or "")
    lines = [_NO_SPACE_BEFORE.sub("", " ".join(ln.split())) for ln in "".join(out).split("\n")]
    text = "\n".join(ln for ln in lines if ln)
    if "\0" in text:  # a break in a heading: its parts joined as wrapped lines are
        parts = [p.strip() for p in text.split("\0") if p.strip()]
        text = parts[0] if parts else ""
        for part in parts[1:]:
            text += joiner(text, part) + part
    return text


def _cell_text(el) -> str:
    """A table cell's text on one line: its own and that of the paragraphs or lists in it (a
    cell's ``<br>`` comes as a paragraph), joined as a Word cell's are."""
    pieces = [_inline(el, keep_breaks=False), *(_cell_text(child) for child in el if _is_block(child))]
    return " ".join(" ".join(p.split()) for p in pieces if p.strip())


class _Writer:
    def __init__(self, limits: Limits):
        self.out = TextBuilder("paragraph", max_chars=limits.max_text_chars)
        self.n = 0

    def block(self, text: str, *, indent: str = "", tight: bool = False) -> None:
        """One block (paragraph, list item, code): a blank line before it unless ``tight``."""
        if not text.strip():
            return
        self.n += 1
        if tight:
            self.out.newline()
        else:
            self.out.blank_line()
        self.out.add("".join(f"{indent}{ln}\n" if ln else "\n" for ln in text.split("\n")), self.n)

    def element(self, el, indent: str = "", *, tight: bool = False) -> None:
        tag = el.tag
        if tag == "head":
            m = _HEAD_LEVEL.fullmatch(el.get("rend", ""))
            level = int(m.group(1)) if m else 2
            text = _inline(el, keep_breaks=False)
            if text:
                self.block(f"{'#' * level} {text}", indent=indent)
        elif tag == "p":
            self.block(_inline(el), indent=indent, tight=tight)
            self.walk_blocks_inside(el, indent)
        elif tag == "list":
            self.list(el, indent)
        elif tag == "code":
            code = (el.text or "") + "".join((c.text or "") + (c.tail or "") for c in el)
            code = code.strip("\n")
            if "\n" in code or not tight:
                self.block(f"```\n{code}\n```", indent=indent)
            else:
                self.block(code, indent=indent, tight=True)
        elif tag == "quote":  # trafilatura also gives some <pre> listings as a quote around the code
            text = _inline(el)
            if text:
                self.block("\n".join(f"> {ln}" for ln in text.split("\n")), indent=indent)
            self.walk_blocks_inside(el, indent)
        elif tag == "table":
            self.table(el, indent)
        elif tag in _CONTAINERS:
            self.container(el, indent)
        else:
            self.block(_inline(el), indent=indent, tight=tight)

    def container(self, el, indent: str = "") -> None:
        """A container's blocks, and the text written straight into it (a page of paragraphs
        separated by ``<br>`` only: trafilatura gives them as the text of ``main``) as paragraphs
        between them."""
        run = el.makeelement("p", {})
        run.text = el.text
        for child in el:
            if _is_block(child) or child.tag in _CONTAINERS:
                self.element(run, indent)
                self.element(child, indent)
                run = el.makeelement("p", {})
                run.text = child.tail
            else:
                run.append(copy.copy(child))  # inline: emphasis, a line break (its tail comes with it)
        self.element(run, indent)

    def walk_blocks_inside(self, el, indent: str) -> None:
        for child in el:
            if _is_block(child):
                self.element(child, indent)

    def list(self, el, indent: str) -> None:
        ordered = el.get("rend", "") == "ol"
        number = 0
        for item in el:
            if item.tag != "item":
                continue
            number += 1
            mark = f"{number}. " if ordered else "- "
            sub = indent + " " * 4
            tight = not any(c.tag == "p" for c in item)  # a loose list (paragraphs in items) has blank lines
            first = _inline(item)
            if first:
                self.block(f"{mark}{first}", indent=indent, tight=tight)
            started = bool(first)
            for child in item:
                if child.tag == "p" and not started:
                    self.block(f"{mark}{_inline(child)}", indent=indent, tight=tight)
                    self.walk_blocks_inside(child, sub)
                    started = True
                elif child.tag == "list":
                    self.list(child, sub)
                elif _is_block(child):
                    self.element(child, sub)
                    started = True

    def table(self, el, indent: str) -> None:
        rows, heads = [], []
        for row in el.iter("row"):
            cells = [c for c in row if c.tag == "cell"]
            rows.append([_cell_text(c).replace("|", "\\|") for c in cells])
            heads.append(bool(cells) and all(c.get("role") == "head" for c in cells))
        if not rows:
            return
        header = header_row(rows, True if heads[0] else None)  # <th> cells: the page's header row
        self.block("\n".join(markdown_table(rows, header)), indent=indent)


def _decode(data: bytes) -> str:
    """The page's text: by its byte-order mark, else the charset its ``<meta>`` declares (a
    saved page keeps its encoding: Shift_JIS, GB2312, EUC-KR …), else UTF-8, else the
    encoding charset_normalizer finds."""
    boms = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
    for bom, codec in boms:
        if data.startswith(bom):
            return data.decode(codec, "replace")
    declared = _META_CHARSET.search(data[:4096])
    if declared:
        label = declared.group(1).decode("ascii").lower()
        try:
            codec = codecs.lookup(_CHARSET_ALIASES.get(label, label)).name
        except LookupError:
            codec = ""
        codec = _SUPERSETS.get(codec, codec)
        if codec:
            try:
                return data.decode(codec)
            except UnicodeDecodeError:
                pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        from charset_normalizer import from_bytes

        best = from_bytes(data).best()
        return str(best) if best is not None else data.decode("utf-8", "replace")


def read_mhtml(data: bytes, limits: Limits) -> Extract:
    """A page saved as one file — Chrome's and Edge's "Webpage, Single File" (``.mhtml``),
    Internet Explorer's ``.mht``: a MIME message whose HTML part (quoted-printable or base64,
    in the charset its header names) is read as a saved page is; its images and styles are not."""
    import email
    from email import policy

    if len(data) > limits.max_unzipped_bytes:
        raise ReaderError(f"{len(data):,} bytes of web archive; the limit is {limits.max_unzipped_bytes:,}")
    message = email.message_from_bytes(data, policy=policy.default)
    part = next((p for p in message.walk() if p.get_content_type() == "text/html"), None)
    body = part.get_payload(decode=True) if part is not None else None
    if not body:
        raise ReaderError(reasons.reason("web_empty"))
    charset = part.get_content_charset()
    try:
        text = body.decode(charset) if charset else _decode(body)
    except (LookupError, UnicodeDecodeError):
        text = _decode(body)
    return _read_page(text, limits)


def read_html(data: bytes, limits: Limits) -> Extract:
    if len(data) > limits.max_unzipped_bytes:
        raise ReaderError(f"{len(data):,} bytes of HTML; the limit is {limits.max_unzipped_bytes:,}")
    return _read_page(_decode(data), limits)


def _read_page(html: str, limits: Limits) -> Extract:
    """The article of a saved page (its HTML, decoded) as document text."""
    import trafilatura
    from lxml import etree
    from trafilatura.utils import load_html

    page = load_html(html)
    if page is None:
        raise ReaderError(reasons.reason("web_empty"))
    _no_hidden(page)
    _plain_code(page)
    _no_marks(page)
    meta = trafilatura.extract_metadata(copy.deepcopy(page))  # the title without a permalink mark
    xml = trafilatura.extract(
        page, output_format="xml", include_formatting=True, include_tables=True, include_links=False,
        include_images=False, include_comments=False, favor_precision=True, with_metadata=False,
    )
    if not xml or not xml.strip():
        raise ReaderError(reasons.reason("web_empty"))
    try:
        tree = etree.fromstring(xml.encode("utf-8"), etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as e:
        raise ReaderError(f"the web page's article could not be read ({e})") from None
    title = (meta.title if meta is not None and meta.title else "").strip()
    w = _Writer(limits)
    main = tree.find("main")
    w.container(main if main is not None else tree)
    got = w.out.extract(title)
    heading = re.match(r"#+ (.+)", got.text)
    if heading and "".join(title.split()) == "".join(heading.group(1).split()):
        return Extract(got.text, heading.group(1), got.origin)  # the title as the heading shows it
    return got
