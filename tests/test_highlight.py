"""rag/highlight.py: inert HTML for passages, documents and answers, with query terms marked."""

from __future__ import annotations

import html
import re

from rag.highlight import answer_html, document_html, escape, highlight, passage_html, query_terms, term_spans

EVIL = 'Intro <script>alert("x")</script> and <img src=x onerror="alert(1)"> [link](javascript:alert(1)) **b** $x$\n\nLoRA & QLoRA'


def test_highlight_escapes_everything_and_marks_terms():
    out = highlight(EVIL, ["lora", "script"])
    assert "<script" not in out and "<img" not in out and "](javascript" not in out
    assert "&lt;<mark>script</mark>&gt;" in out and "&lt;img" in out
    assert "<mark>LoRA</mark>" in out and "Q<mark>LoRA</mark>" not in out  # Latin terms match at word starts
    # the only tags are ours; the text round-trips
    assert set(re.findall(r"</?([a-z]+)", out)) <= {"mark", "br"}
    assert html.unescape(re.sub(r"<[^>]+>", "", out.replace("<br>", "\n"))) == EVIL


def test_terms_do_not_match_inside_entities():
    out = highlight("a & b < c", ["amp", "lt"])
    assert "<mark>" not in out and out == "a &amp; b &lt; c"


def test_highlight_cjk_and_width_insensitive():
    text = "ＬＬＭのトークン化とは、テキストをトークンに分割することです。"
    spans = term_spans(text, ["llm", "トークン"])
    assert [text[s:e] for s, e in spans] == ["ＬＬＭ", "トークン", "トークン"]
    assert highlight(text, ["トークン化"]).count("<mark>") == 1


def test_query_terms():
    terms = query_terms("What is tokenization in LLMs?", analyze=lambda s: ["token", "llm"])
    assert "token" in terms and "tokenization" in terms and "what" not in terms and "is" not in terms
    assert query_terms("LoRAとは何か") == ["lora"] or "lora" in query_terms("LoRAとは何か")
    assert highlight("Tokenization matters", terms) == "<mark>Tokenization</mark> matters"


def test_passage_and_document_html_are_inert():
    p = passage_html(EVIL, ["lora"])
    assert p.startswith('<div class="studyrag-passage"') and "<script" not in p and "\n" not in p
    doc = "First line.\n" + EVIL + "\nLast line."
    start = doc.index("<img")
    end = start + len('<img src=x onerror="alert(1)">')
    d = document_html(doc, start, end, ["img"])
    assert d.count('<mark id="cited"') == 1 and "<img" not in d and "<script" not in d
    plain = lambda h: html.unescape(re.sub(r"<[^>]+>", "", h.replace("<br>", "\n")))  # noqa: E731
    before, after = d.split('<mark id="cited" class="studyrag-cited">')
    assert plain(before) == doc[:start]
    assert plain(before + after) == doc
    assert "<mark>img</mark>" in after  # query terms are marked inside the cited passage
    # bad offsets: the document is shown without a cited mark
    assert 'id="cited"' not in document_html(doc, 5, 1)


def test_answer_html_marks_citations_and_flagged_sentences():
    text = "A <b>bold</b> claim [1]. An unsupported one."
    out = answer_html(text, ["An unsupported one."])
    assert "<b>" not in out and "&lt;b&gt;" in out
    assert 'class="studyrag-cite"' in out and "&#91;1&#93;" in out
    assert 'class="studyrag-flagged"' in out
    assert escape("[1]") == "&#91;1&#93;"
