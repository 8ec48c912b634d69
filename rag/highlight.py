"""Inert HTML for passages and documents, with the query's terms marked.

Everything that comes from a document goes through :func:`html.escape` before it is put
into HTML; the only tags in the output are the ``<mark>``, ``<span>``, ``<br>`` and
``<div>`` this module writes itself. Matching is done on the *raw* text (normalised the
way the index analyzer normalises: NFKC + lowercase) and the spans are then emitted as
escaped segments, so a query term can never match inside an entity such as ``&amp;``.

The output is meant for ``st.markdown(..., unsafe_allow_html=True)``. Characters that
Markdown or Streamlit would still interpret (``*``, ``_``, `````, ``$``, ``[``…) are
written as numeric character references and newlines as ``<br>``, so the text shows
exactly as it is in the file and nothing in it is parsed as Markdown, LaTeX or HTML.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Iterable

from rag.text import CJK, CJK_CLASS, EN_STOP, MARKER, QUESTION_WORDS

# HTML's specials, plus characters Markdown (or Streamlit's LaTeX / emoji shortcodes)
# would act on, as numeric character references; newlines as <br>.
_ESCAPES = {ord(c): html.escape(c, quote=True) for c in "&<>\"'"}
_ESCAPES.update({ord(c): f"&#{ord(c)};" for c in "\\`*_{}[]()#+-!|~$:"})
_ESCAPES.update({ord("\n"): "<br>", ord("\r"): ""})
_HIRAGANA = re.compile(r"^[\u3040-\u309f]+$")
_LATIN_TERM = re.compile(r"^[0-9a-z\u00c0-\u024f][0-9a-z\u00c0-\u024f.\-+]*$")
_CJK = CJK
# Question words, fillers and stop words carry no topic: marking them would only add noise.
_STOP_TERMS = QUESTION_WORDS | frozenset("怎样 哪个 是否 可以 一下 教える ある いる する なる できる れる".split())
_EN_STOP = EN_STOP

DOC_STYLE = "white-space: pre-wrap; line-height: 1.6;"


def escape(text: str) -> str:
    """``html.escape`` plus Markdown neutralisation and ``<br>`` for newlines."""
    return text.translate(_ESCAPES)


def _normalized(text: str) -> tuple[str, list[int]]:
    """NFKC-lowercased ``text`` and, for each of its characters, the index in ``text``."""
    chars: list[str] = []
    back: list[int] = []
    for i, c in enumerate(text):
        n = unicodedata.normalize("NFKC", c).lower() if not c.isascii() else c.lower()
        for ch in n:
            chars.append(ch)
            back.append(i)
    return "".join(chars), back


def query_terms(query: str, analyze: Callable[[str], list[str]] | None = None) -> list[str]:
    """The terms of ``query`` worth marking in a passage, longest first.

    ``analyze`` is the index analyzer (``searcher.analyze``): its word tokens are used
    (bigram tokens, marked ``~``, only when it gives no word tokens), plus the query's own
    Latin words so an unstemmed form matches too. One-character terms, stop words and
    short all-hiragana fragments are dropped.
    """
    norm = unicodedata.normalize("NFKC", query).lower()
    tokens: list[str] = []
    if analyze is not None:
        toks = list(analyze(query))
        words = [t for t in toks if not t.startswith("~")]
        tokens = words or [t.lstrip("~") for t in toks]
    tokens += re.findall(r"[0-9a-z\u00c0-\u024f][0-9a-z\u00c0-\u024f\-+]*", norm)
    if analyze is None:
        # No analyzer: CJK runs as they are.
        tokens += re.findall(f"[{CJK_CLASS}]{{2,}}", norm)
    out: list[str] = []
    for t in tokens:
        t = t.strip()
        if len(t) < 2 or t in _STOP_TERMS or t in _EN_STOP:
            continue
        if _HIRAGANA.match(t) and len(t) < 3:
            continue
        if t not in out:
            out.append(t)
    return sorted(out, key=lambda t: (-len(t), t))


def term_spans(text: str, terms: Iterable[str]) -> list[tuple[int, int]]:
    """Merged, sorted ``(start, end)`` spans of ``text`` where any term occurs.

    Case- and width-insensitive. A Latin term (often a stem such as ``token``) is matched
    at a word start and extended to the end of the word (``tokenization``).
    """
    terms = [t for t in terms if t]
    if not terms or not text:
        return []
    norm, back = _normalized(text)
    spans: list[tuple[int, int]] = []
    for t in terms:
        t = unicodedata.normalize("NFKC", t).lower()
        if _LATIN_TERM.match(t):
            pat = re.compile(r"(?<![0-9a-z\u00c0-\u024f])" + re.escape(t) + r"[0-9a-z\u00c0-\u024f]*")
        elif _CJK.search(t):
            pat = re.compile(re.escape(t))
        else:
            pat = re.compile(re.escape(t))
        for m in pat.finditer(norm):
            if m.end() > m.start():
                spans.append((back[m.start()], back[m.end() - 1] + 1))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def highlight(text: str, terms: Iterable[str] = ()) -> str:
    """Escaped ``text`` with every occurrence of ``terms`` wrapped in ``<mark>``."""
    out: list[str] = []
    pos = 0
    for s, e in term_spans(text, terms):
        out.append(escape(text[pos:s]))
        out.append(f"<mark>{escape(text[s:e])}</mark>")
        pos = e
    out.append(escape(text[pos:]))
    return "".join(out)


def passage_html(text: str, terms: Iterable[str] = ()) -> str:
    """A passage as one inert HTML block (no blank lines, so Markdown never re-enters)."""
    text = re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", text.strip())  # display only: no runs of blank lines
    return f'<div class="studyrag-passage" style="{DOC_STYLE}">{highlight(text, terms)}</div>'


def document_html(text: str, start: int | None = None, end: int | None = None, terms: Iterable[str] = ()) -> str:
    """A whole document as inert HTML; ``text[start:end]`` is wrapped in ``<mark id="cited">``.

    Query terms inside the cited passage are marked too.
    """
    terms = list(terms)
    if start is None or end is None or not (0 <= start <= end <= len(text)):
        body = highlight(text)
    else:
        body = (
            escape(text[:start])
            + '<mark id="cited" class="studyrag-cited">'
            + highlight(text[start:end], terms)
            + "</mark>"
            + escape(text[end:])
        )
    return f'<div class="studyrag-document" style="{DOC_STYLE}">{body}</div>'


SCROLL_TO_CITED_JS = """
<script>
(function () {
  let tries = 0;
  function go() {
    const doc = window.parent.document;
    const el = doc.getElementById("cited");
    if (el) { el.scrollIntoView({block: "center"}); return; }
    if (++tries < 50) setTimeout(go, 100);
  }
  go();
})();
</script>
"""


_CITE = MARKER
CITE_STYLE = (
    "display:inline-block; font-size:0.78em; font-weight:600; color:#1c4e80; background:#e3eefa; "
    "border-radius:4px; padding:0 3px; margin:0 1px; vertical-align:super; line-height:1.2;"
)
FLAG_STYLE = "background:#fff3cd; border-bottom:2px dotted #c0392b;"


def _with_cites(text: str) -> str:
    out: list[str] = []
    pos = 0
    for m in _CITE.finditer(text):
        out.append(escape(text[pos : m.start()]))
        out.append(f'<span class="studyrag-cite" style="{CITE_STYLE}">&#91;{escape(m.group(1))}&#93;</span>')
        pos = m.end()
    out.append(escape(text[pos:]))
    return "".join(out)


def answer_html(text: str, flagged: Iterable[str] = ()) -> str:
    """An answer as inert HTML: markers ``[n]`` styled as citations, ``flagged`` sentences marked."""
    out: list[str] = []
    pos = 0
    for f in flagged:
        i = text.find(f, pos) if f else -1
        if i < 0:
            continue
        out.append(_with_cites(text[pos:i]))
        out.append(
            f'<span class="studyrag-flagged" style="{FLAG_STYLE}" title="no valid citation">{_with_cites(f)}</span>'
        )
        pos = i + len(f)
    out.append(_with_cites(text[pos:]))
    return f'<div class="studyrag-answer" style="{DOC_STYLE}">{"".join(out)}</div>'


_MD_ESCAPE = re.compile(r"([\\`*_{}\[\]<>#|~$!])")
# GitHub-flavoured Markdown turns bare URLs, www. names and e-mail addresses into links,
# and Streamlit turns :shortcodes: into emoji and icons — on the text *after* escapes and
# character references are decoded, so escaping cannot stop them. An invisible WORD JOINER
# (U+2060) after every ':', between 'www' and '.', and before '@' breaks each pattern.
WORD_JOINER = "\u2060"
_AUTOLINK = re.compile(r"(?<=:)|(?i:(?<=www)(?=\.))|(?=@)")


def no_autolinks(text: str) -> str:
    """``text`` with a word joiner where Markdown would start an auto-link or a shortcode.

    >>> no_autolinks("see https://x.org or www.x.org, a@b.co") == "see https:\u2060//x.org or www\u2060.x.org, a\u2060@b.co"
    True
    """
    return _AUTOLINK.sub(WORD_JOINER, text)


def md_escape(text: str) -> str:
    """``text`` inert inside Markdown without HTML (``st.warning``/``st.error``/``st.caption``,
    widget labels): one line, Markdown backslash-escaped, no auto-links or shortcodes."""
    return _MD_ESCAPE.sub(r"\\\1", no_autolinks(" ".join(text.split())))


def inline(text: str) -> str:
    """Short escaped text (a title, a question) for use inside Markdown with HTML allowed:
    HTML and Markdown escaped, no auto-links or shortcodes."""
    return escape(no_autolinks(text))
