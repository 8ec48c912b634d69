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


# HTML's specials, plus characters Markdown (or Streamlit's LaTeX / emoji shortcodes)
# would act on, as numeric character references; newlines as <br>.
_ESCAPES = {ord(c): html.escape(c, quote=True) for c in "&<>\"'"}
_ESCAPES.update({ord(c): f"&#{ord(c)};" for c in "\\`*_{}[]()#+-!|~$:"})
_ESCAPES.update({ord("\n"): "<br>", ord("\r"): ""})


def escape(text: str) -> str:
    """``html.escape`` plus Markdown neutralisation and ``<br>`` for newlines."""
    return text.translate(_ESCAPES)


_MD_ESCAPE = re.compile(r"([\\`*_{}\[\]<>#|~$!])")
# GitHub-flavoured Markdown turns bare URLs, www. names and e-mail addresses into links,
# and Streamlit turns :shortcodes: into emoji and icons — on the text *after* escapes and
# character references are decoded, so escaping cannot stop them. An invisible WORD JOINER
# (U+2060) after a ':' that a name or '//' follows, between 'www' and '.', and before '@' breaks
# each pattern (not after every ':': 「阶段:⁠…」 copied with it; a CJK character or a space after a
# colon starts neither a shortcode nor a link).
WORD_JOINER = "\u2060"
_AUTOLINK = re.compile(r"(?<=:)(?=[A-Za-z0-9_/+\-])|(?i:(?<=www)(?=\.))|(?=@)")


def no_autolinks(text: str) -> str:
    """``text`` with a word joiner where Markdown would start an auto-link or a shortcode.

    >>> no_autolinks("see https://x.org or www.x.org, a@b.co") == "see https:\u2060//x.org or www\u2060.x.org, a\u2060@b.co"
    True
    >>> no_autolinks(":smile: 阶段:检索, Note: done") == ":\u2060smile: 阶段:检索, Note: done"
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
