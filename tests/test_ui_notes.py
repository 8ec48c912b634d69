"""The app's Streamlit-free helpers: notes rendered as inert HTML with highlights, the names a
learner reads, answers with clickable markers, saved turns, suggestions, benchmark reports."""

from __future__ import annotations

import json

import re

import pytest
from conftest import CORPUS

from rag.types import Chunk, Document, Hit
from ui import notes

HOSTILE = """---
title: "Note <b>bold</b> <img src=x onerror=alert(1)>"
source: "https://evil.example/x"
tags: ["a", "<script>"]
---
# XSS <script>alert(1)</script>

Plain text with <img src="x" onerror="window.__pwned=2"> and <a href="javascript:alert(1)">link</a>.
A [markdown link](javascript:alert(3)), [a web link](https://evil.example/p), <https://evil.example/auto>,
www.evil.example, a@evil.example, ![pic](https://evil.example/p.png), $x^2$ and :red[shortcode].

```html
<script>alert("in code")</script>

blank line above
```

| a | <b>b</b> |
|---|---|
| [x](http://e.example) | 2 |
"""


def hostile_doc() -> Document:
    from ingest.loader import parse_document

    return parse_document("x.md", HOSTILE.encode())


def assert_inert(html: str) -> None:
    """Only tags we write, no attribute that loads or runs anything, no URL, one line."""
    for tag in re.findall(r"<[^>]*>", html):
        assert not re.search(r"\b(?:href|src|on\w+|style|action|formaction)\s*=", tag, re.IGNORECASE), tag
    assert "javascript:" not in html.lower() and "://" not in html and "\n" not in html
    tags = set(re.findall(r"</?([a-z0-9]+)", html))
    assert tags <= {
        "div",
        "p",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "ul",
        "ol",
        "li",
        "strong",
        "em",
        "code",
        "pre",
        "span",
        "br",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "blockquote",
        "hr",
        "s",
        "mark",
        "label",
        "input",
        "details",
        "summary",
    }, tags


def test_markdown_is_rendered_and_inert():
    doc = hostile_doc()
    out = notes.document_html(doc)
    assert_inert(out)
    assert (
        '<div class="studyrag-h1" role="heading" aria-level="1">XSS &lt;script&gt;alert&#40;1&#41;&lt;/script&gt;</div>'
        in out
    )
    assert "&lt;img src=&quot;x&quot; onerror=&quot;window.&#95;&#95;pwned=2&quot;&gt;" in out
    assert '<span class="studyrag-link">a web link</span>' in out  # words kept, target dropped
    assert '<span class="studyrag-image">[pic]</span>' in out
    assert '<div class="studyrag-code" role="code">&lt;script&gt;' in out and "blank line above" in out  # one block
    assert "<table>" in out and "&lt;b&gt;b&lt;/b&gt;" in out
    assert "title:" not in out  # the front matter is not shown as text …
    assert (
        notes.metadata_line(doc) == "https://evil.example/x · #a #<script>"
    )  # … but as a line (escaped by the caller)


def test_an_english_paragraph_wrapped_at_a_column_shows_as_one_paragraph():
    """A learner's Markdown wrapped at 90 columns showed ragged lines, broken where the file wraps
    ("…by an angle proportional" / "to the token's position"): a line break inside an English
    sentence is a space, as Markdown shows it; a CJK note keeps its lines."""
    wrapped = "# RoPE\n\nRoPE rotates each pair of dimensions by an angle proportional\nto the token's position.\n"
    out = notes.document_html(Document("pe.md", wrapped, "RoPE", "en", "0"))
    assert "an angle proportional to the token&#x27;s position." in out and "<br>" not in out, out
    cjk = "# 類似度\n\n**コサイン類似度**\n2つのベクトルの角度が小さいほど類似度が高い\n"
    assert "<br>" in notes.document_html(Document("sim.md", cjk, "類似度", "ja", "0"))


def test_plain_text_documents_keep_their_lines_and_are_inert():
    doc = Document("n.txt", "第一行 <b>x</b>\n**not bold**\n\n\n\n# not a heading", "n", "zh", "0")
    out = notes.document_html(doc)
    assert_inert(out)
    assert "第一行 &lt;b&gt;x&lt;/b&gt;<br>&#42;&#42;not bold&#42;&#42;<br><br>&#35; not a heading" in out


@pytest.mark.parametrize("start_at", ["## Heading", "1. **Question?**", "- item", "> quote", "plain"])
def test_a_highlight_starting_at_a_block_keeps_the_markdown_structure(start_at):
    text = f"Intro.\n\n{start_at}\n\nBody one.\n\nBody two.\n"
    s = text.index(start_at)
    e = text.index("Body two.")
    out = notes.render_text(text, markdown=True, cited=(s, e), cited_id="cited")
    plain_render = notes.render_text(text, markdown=True)
    # same structure: only <mark> elements added
    assert re.sub(r"</?mark[^>]*>", "", out) == plain_render
    assert out.count('id="cited"') == 1
    assert '<mark class="studyrag-cited">Body one.</mark>' in out
    assert "Body two." in out and '<mark class="studyrag-cited">Body two.' not in out


def test_quotes_inside_a_cited_passage_and_stray_marks_in_the_text():
    text = "前文。\ue000これは引用する文です。次の文。\ue003"
    s = text.index("これ")
    out = notes.render_text(text, markdown=False, cited=(s, len(text)), quotes=[(s, text.index("次"))])
    assert '<mark class="studyrag-quote">これは引用する文です。</mark>' in out
    assert "\ue000" not in out and "\ue003" not in out and "\ufffd" in out


def test_document_highlight_of_a_real_qa_item_and_its_quotes():
    text = (CORPUS / "llm-interview-top50-ja.md").read_text(encoding="utf-8")
    from ingest.loader import parse_document

    doc = parse_document("llm-interview-top50-ja.md", text.encode())
    s = text.index("4. **LoRAとQLoRA")
    e = text.index("5. **", s)
    q = text.index("LoRA（Low-Rank")
    out = notes.document_html(doc, cited=(s, e), quotes=[(q, text.index("。", q) + 1)])
    assert_inert(out)
    cited = out[out.index('id="cited"') - 40 :]
    assert (
        cited.startswith('<strong><mark class="studyrag-cited" id="cited">LoRAとQLoRA')
        or '<mark class="studyrag-cited" id="cited">LoRAとQLoRA' in cited
    )
    assert '<mark class="studyrag-quote">LoRA（Low&#45;Rank Adaptation）は' in out
    assert out.count("<mark") == out.count("</mark>")
    assert "トップ50" in out and "title:" not in out


def chunk(**kw) -> Chunk:
    base = dict(
        id="c1",
        doc_id="d.txt",
        text="问题36:检索增强生成(RAG)的步骤是什么?\n\n检索然后生成。",
        start=0,
        end=30,
        lang="zh",
        title="大语言模型面试50题",
        section="引言 > Q36",
        heading="检索增强生成(RAG)的步骤是什么?",
        qnum=36,
        kind="qa",
    )
    return Chunk(**{**base, **kw})


def test_labels_name_qa_items_by_their_question_and_sections_by_their_path():
    assert notes.passage_label(chunk()) == "Q36. 检索增强生成(RAG)的步骤是什么?"
    sec = chunk(
        kind="section",
        qnum=None,
        section="3. LLMアーキテクチャ > 3.1. 自己注意機構(Self-Attention)",
        heading="3.1. 自己注意機構(Self-Attention)",
    )
    assert notes.passage_label(sec) == "LLMアーキテクチャ › 自己注意機構(Self-Attention)"


def test_titles_come_from_the_documents_not_the_file_names(corpus_fake_index):
    from rag.index import open_index

    index = open_index(corpus_fake_index[0])
    titles = {d: notes.display_title(doc, index.chunks) for d, doc in index.documents.items()}
    assert titles["llm-interview-top50-ja.md"] == "LLM Interview Questions"
    foundations = titles["llm-technical-foundations-ja.txt"]
    assert "llm-technical-foundations" not in foundations and foundations.startswith("LLMの技術的本質")
    assert all(not t.endswith((".md", ".txt")) for t in titles.values())


def answer(text="LoRAは低ランク行列を追加します[1]。QLoRAは量子化します[2]。It is magic.", **kw):
    from rag.answer import Answer
    from rag.citations import Citation, SentenceCheck

    ja = chunk(
        id="ja",
        doc_id="ja.md",
        lang="ja",
        text="4. **LoRAとQLoRAの違いは？**\n\n    LoRAは低ランク行列を追加します。",
        start=100,
        end=140,
        section="質問と回答 > Q4",
        heading="LoRAとQLoRAの違いは？",
        qnum=4,
    )
    zh = chunk(id="zh", lang="zh", parallel="ja")
    hit = Hit(ja, 1, 1.0, {"bm25": 3.0, "dense": 0.9, "fused": 1.0, "rerank": 2.0})
    cits = (Citation(1, ja, hit, False, zh, ((130, 140),)), Citation(2, zh, Hit(ja, 2, 0.5, {}), True, ja, ()))
    checks = (
        SentenceCheck("LoRAは低ランク行列を追加します[1]。", (1,), True),
        SentenceCheck("QLoRAは量子化します[2]。", (2,), True),
        SentenceCheck("It is magic.", (), False, "no citation marker"),
    )
    base = dict(
        question="LoRA <b>?</b>",
        text=text,
        citations=cits,
        abstained=False,
        lang="ja",
        answerer="extractive",
        relevance=0.8,
        checks=checks,
        hits=(hit,),
        query="LoRA",
        mode="rerank",
        ms=12.0,
    )
    return Answer(**{**base, **kw})


def test_answer_markers_open_their_passages_in_place():
    out = notes.answer_html(answer(), key="sr-0", lang="en", titles={"ja.md": "Notes <i>"})
    assert_inert(out)
    assert out.count('class="sr-toggle"') == 2
    assert '<label for="sr-0-1" class="studyrag-cite" data-n="1"' in out and 'for="sr-0-2"' in out
    panel1 = out.split('<div class="sr-panel" data-n="1">')[1].split('<div class="sr-panel" data-n="2">')[0]
    assert "Notes &lt;i&gt; · Q4. LoRAとQLoRAの違いは？" in panel1
    assert '<mark class="studyrag-quote">' in panel1  # the quoted sentence is marked
    assert "<details><summary>The same passage in Chinese</summary>" in panel1
    panel2 = out.split('<div class="sr-panel" data-n="2">')[1]
    assert "Translation of the Japanese notes" in panel2
    assert '<span class="studyrag-flagged">It is magic.</span>' in out


def test_a_lead_line_and_an_invalid_marker():
    a = answer(
        text="From the Japanese notes on “LoRA”:\nLoRAは低ランク行列を追加します[1]。QLoRA[7]。",
        lead="From the Japanese notes on “LoRA”:",
    )
    out = notes.answer_html(a, key="k", lang="ja", titles={})
    assert out.count('<div class="studyrag-lead">') == 1
    assert '<span class="studyrag-bad-cite">&#91;7&#93;</span>' in out


def test_a_saved_turn_reads_back_the_same():
    from ui.conversation import from_record, title_for, to_record

    a = answer()
    rec = to_record(a)
    import json

    back = from_record(json.loads(json.dumps(rec, ensure_ascii=False)))
    assert back == a
    with pytest.raises(ValueError, match="not a saved answer"):
        from_record({"question": "x"})
    assert title_for("  a\n  long   question " * 10).endswith("…") and len(title_for("x" * 100)) == 60


def _v1_record(a):
    """A turn as the store held it before answers serialised themselves (record version 1)."""
    def hit(h):
        return {"chunk": h.chunk.to_dict(), "rank": h.rank, "score": float(h.score), "scores": dict(h.scores)}

    return {
        "v": 1, "question": a.question, "text": a.text, "abstained": a.abstained, "lang": a.lang,
        "answerer": a.answerer, "relevance": a.relevance, "lead": a.lead, "reason": a.reason,
        "missing": list(a.missing), "suggestions": list(a.suggestions),
        "checks": [{"text": c.text, "markers": list(c.markers), "ok": c.ok, "problem": c.problem} for c in a.checks],
        "query": a.query, "followup": a.followup, "mode": a.mode, "ms": float(a.ms), "note": a.note,
        "citations": [{"number": c.number, "chunk": c.chunk.to_dict(), "hit": hit(c.hit), "translated": c.translated,
                       "parallel": None if c.parallel is None else c.parallel.to_dict(),
                       "quotes": [list(q) for q in c.quotes]} for c in a.citations],
        "hits": [hit(h) for h in a.hits],
    }


def test_conversations_saved_before_version_2_still_read():
    from ui.conversation import RECORD_VERSION, from_record, to_record

    a = answer()
    assert to_record(a)["v"] == RECORD_VERSION == 2
    assert from_record(json.loads(json.dumps(_v1_record(a), ensure_ascii=False))) == a
    with pytest.raises(ValueError, match="not a saved answer"):
        from_record({"v": 1, "question": "x"})


def test_suggested_questions_are_drawn_from_the_notes_in_each_language(corpus_fake_index):
    from rag.index import open_index
    from ui.suggest import as_question, overview, suggested_questions

    index = open_index(corpus_fake_index[0])
    heads = {c.heading for c in index.chunks}
    ja, zh, en = (suggested_questions(index, lang) for lang in ("ja", "zh", "en"))
    assert len(ja) == len(zh) == len(en) == 6
    assert sum(q in heads for q in ja) >= 3 and all(re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", q) for q in ja)
    assert all(q in heads for q in zh) and all(not re.search(r"[\u3040-\u30ff]", q) for q in zh)
    assert all(q.startswith("What is ") and q.endswith("?") for q in en)
    docs = {d.doc_id: d for d in overview(index)}
    assert docs["llm-interview-top50-zh.txt"].qa == 50 and docs["zenn-mondo-llm-ja.md"].topics
    assert as_question("LoRAとは？", "ja") == "LoRAとは？" and as_question("RLHF", "zh") == "请介绍一下“RLHF”。"


def test_reports_list_and_split(tmp_path):
    from ui.reports import available, pieces, quick_command

    results, runs = tmp_path / "results", tmp_path / "runs"
    (runs / "quick").mkdir(parents=True)
    results.mkdir()
    (results / "report.md").write_text(
        "# Retrieval\n\n## seed — test split, 116 queries over 159 chunks (5 documents); index build 1.4 s\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n![hits](hits.png)\n\n![outside](../x.png)\nAfter.\n",
        encoding="utf-8",
    )
    (results / "hits.png").write_bytes(b"png")
    (results / "drill.md").write_text("# Drill\n", encoding="utf-8")
    (results / "extra.md").write_text("# Extra\n", encoding="utf-8")
    (runs / "quick" / "report.md").write_text("# Quick\n", encoding="utf-8")
    assert [n for n, _ in available(results, runs)] == ["quick", "report", "drill", "extra"]
    ps = pieces(results / "report.md")
    assert [p.image.name if p.image else None for p in ps] == [None, "hits.png", None]
    assert "## seed\n\nTest split, 116 queries" in ps[0].text
    assert "![outside](../x.png)" in ps[2].text  # not a figure of this folder: left as (inert) text
    cmd = quick_command(runs / "quick", python="py")
    assert cmd[:4] == ["py", "-m", "eval", "seed"] and "--limit" in cmd and cmd[-1].endswith("quick")


def test_code_blocks_are_not_streamlit_code_elements_and_keep_their_lines():
    """Streamlit turns a <pre><code> into its highlighter from String(children): every <br> or
    <mark> inside became ",[object Object],". Fenced and indented code is our own block."""
    text = "# T\n\nIntro.\n\n```python\nx = 1\ny = 2\n```\n\n    indented\n    code\n"
    doc = Document("c.md", text, "T", "en", "0")
    cited = (text.index("x = 1"), text.index("y = 2") + 5)
    for out in (notes.document_html(doc, cited=cited, quotes=[cited]), notes.markdown_html(text)):
        assert "<pre" not in out and "<code>" not in out
        assert 'class="studyrag-code" role="code">' in out
        assert "y = 2" in out
    marked = notes.document_html(doc, cited=cited, quotes=[cited])
    block = marked.split('class="studyrag-code" role="code">')[1].split("</div>")[0]
    assert "<br>" in block and "<mark" in block  # lines and highlight survive inside the block
    inline = notes.markdown_html("a `b` c")
    assert "<code>b</code>" in inline  # inline code is rendered by Streamlit as it is


def test_a_highlight_ending_with_a_code_block_leaves_it_closed():
    """A cited passage that ends with a code block's closing fence: the block closes there and
    the heading after it is a heading (walkthrough-files-2026-12b: a PDF's code block)."""
    text = "Intro line.\n\n```\ndef f(x):\n    return x\n```\n\n## Next part\n\nMore text.\n"
    end = text.index("```\n\n##") + 3
    html = notes.render_text(text, markdown=True, cited=(0, end), cited_id="cited")
    assert "&#96;&#96;&#96;" not in html and "```" not in html
    assert 'role="heading"' in html and "Next part" in html.split('role="code"')[1].split("</div>", 1)[1]
    assert html.count('class="studyrag-code"') == 1


def test_an_answers_code_block_has_no_word_joiners_its_prose_keeps_them():
    from rag.highlight import WORD_JOINER

    text = "See https://x.org for it [1].\n\n```\nurl = 'https://x.org'  # :smile:\nif a: b\n```\n[1]"
    html = notes.answer_body_html(text, "k", {1})
    code = html.split('role="code">')[1].split("</div>")[0]
    assert WORD_JOINER not in code and "if a&#58; b" in code
    assert WORD_JOINER in html.split('role="code">')[0]  # the prose's link stays text


def test_a_highlighted_table_row_marks_that_row_and_ends_there():
    """A quoted table row's span ends with the row's closing bar; a mark after it is no cell's
    text and the parser dropped it, so the highlight ran on to the end of the document."""
    text = ("| 手法 | 学習率 |\n|---|---|\n| SGD | 0.01 |\n| Adam | 0.001 |\n| AdamW | 0.0005 |\n\n"
            "学習率が大きすぎると発散する。\n")
    s = text.index("| Adam |")
    html = notes.render_text(text, markdown=True, quotes=[(s, text.index("\n", s))])
    marked = re.findall(r'<mark class="studyrag-quote">([^<]*)</mark>', html)
    assert marked == ["Adam", "0.001"], html
    assert "<table>" in html and html.count("<tr>") == 4, html
