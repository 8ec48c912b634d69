"""rag/highlight.py: every text we did not write is inert when the app shows it."""

from __future__ import annotations

import html
import re

import pytest

from rag.highlight import WORD_JOINER, escape, inline, md_escape, no_autolinks

EVIL = 'Intro <script>alert("x")</script> and <img src=x onerror="alert(1)"> [link](javascript:alert(1)) **b** $x$\n\nLoRA & QLoRA'


def test_escape_leaves_no_tag_and_round_trips():
    out = escape(EVIL)
    assert "<script" not in out and "<img" not in out and "](javascript" not in out and "**" not in out
    assert set(re.findall(r"</?([a-z]+)", out)) <= {"br"}
    assert html.unescape(out.replace("<br>", "\n")) == EVIL
    assert escape("a & b < c") == "a &amp; b &lt; c"
    assert escape("[1]") == "&#91;1&#93;"


@pytest.mark.parametrize("text, expected", [
    ("see https://x.org", f"see https:{WORD_JOINER}//x.org"),
    ("www.x.org", f"www{WORD_JOINER}.x.org"),
    ("a@b.co", f"a{WORD_JOINER}@b.co"),
    (":smile:", f":{WORD_JOINER}smile:"),  # the shortcode broken at its start
    ("阶段:检索, Note: done", "阶段:检索, Note: done"),  # no shortcode or link starts here: nothing added
    ("注意力机制", "注意力机制"),
])
def test_no_autolinks(text, expected):
    assert no_autolinks(text) == expected


def test_md_escape_is_one_inert_line():
    out = md_escape("# Title\n**bold** [x](http://e.vil) $y$")
    assert out == f"\\# Title \\*\\*bold\\*\\* \\[x\\](http:{WORD_JOINER}//e.vil) \\$y\\$"


def test_inline_escapes_html_and_links():
    out = inline('<b>LoRA</b> https://x.org')
    assert "<b>" not in out and "&lt;b&gt;" in out and WORD_JOINER in html.unescape(out)
