"""Unit tests of rag/answer.py and rag/highlight.py on hand-made chunks and hits (no models)."""

from __future__ import annotations

import html
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from rag.answer import (
    MIN_RELEVANCE,
    NO_ANSWER,
    TERM_MATCH_BONUS,
    AnswererError,
    answer_body,
    answer_language,
    chat_completion,
    check_citations,
    cite,
    effective_relevance,
    endpoint_url,
    extractive_answer,
    generative_answer,
    is_followup,
    localize,
    markers_in,
    retrieval_query,
    split_sentences,
)
from rag.highlight import answer_html, document_html, escape, highlight, passage_html, query_terms, term_spans
from rag.types import Chunk, Hit

JA_Q4 = Chunk(
    id="ja4",
    doc_id="top50-ja.md",
    title="LLM Interview Questions",
    text=(
        "4. **LoRAとQLoRAの違いは？**\n\n"
        "    LoRAは、モデル層に低ランク行列を追加し、少ないメモリで適応します。"
        "QLoRAはさらに量子化を適用し、メモリ使用量を削減します。"
        "例えば、QLoRAなら70Bモデルも単一GPUで微調整できます。"
    ),
    start=100,
    end=200,
    lang="ja",
    section="質問と回答 > Q4",
    heading="LoRAとQLoRAの違いは？",
    qnum=4,
    kind="qa",
    parallel="zh4",
)
ZH_Q4 = Chunk(
    id="zh4",
    doc_id="top50-zh.txt",
    title="大语言模型面试50题",
    text=(
        "问题4:LoRA与QLoRA有什么区别?\n\n\n"
        "LoRA是一种微调方法,通过向模型层添加低秩矩阵来实现高效适应。"
        "QLoRA通过应用量化进一步减少内存使用。\n\n\n注释:两者都属于参数高效微调"
    ),
    start=50,
    end=150,
    lang="zh",
    section="引言 > Q4",
    heading="LoRA与QLoRA有什么区别?",
    qnum=4,
    kind="qa",
    parallel="ja4",
)
JA_SECTION = Chunk(
    id="jasec",
    doc_id="notes-ja.md",
    title="LLMノート",
    text=(
        "## 量子化\n\n- 量子化はモデルの重みを低いビット数で表します。\n"
        "- **メモリ**と計算量が減ります\n\n```\ncode = 1\n```\n\n量子化の種類は？"
    ),
    start=0,
    end=80,
    lang="ja",
    section="量子化",
    heading="量子化",
    kind="section",
)
EN_TEXT = Chunk(
    id="en1",
    doc_id="notes-en.md",
    title="Notes",
    text="Beam search keeps the k best sequences at each step. Greedy decoding keeps only one.",
    start=0,
    end=86,
    lang="en",
    kind="text",
)
CHUNKS = {c.id: c for c in (JA_Q4, ZH_Q4, JA_SECTION, EN_TEXT)}
lookup = CHUNKS.get


def hit(chunk: Chunk, rank: int, dense: float, rerank: float = 1.0) -> Hit:
    return Hit(chunk, rank, rerank, {"bm25": 3.0, "dense": dense, "fused": 0.9, "rerank": rerank})


def sentences_are_cited(text: str, n: int) -> None:
    sents = split_sentences(text)
    assert sents
    for s in sents:
        marks = markers_in(s)
        assert marks, f"sentence without a marker: {s!r}"
        assert all(1 <= m <= n for m in marks), s


# --- extractive answers ---------------------------------------------------------------------


def test_every_sentence_carries_a_valid_marker():
    hits = [hit(JA_Q4, 1, 0.45), hit(JA_SECTION, 2, 0.44), hit(EN_TEXT, 3, 0.1)]
    a = extractive_answer(hits, lang="ja", lookup=lookup)
    assert a.answered and a.answerer == "extractive"
    assert [c.number for c in a.citations] == [1, 2]
    sentences_are_cited(a.text, len(a.citations))
    assert all(c.ok for c in a.checks) and not a.flagged
    # the answer body, not the question line; no Markdown left
    assert "違いは" not in a.text and "**" not in a.text and "- " not in a.text
    assert a.text.startswith("LoRAは、モデル層に低ランク行列を追加し")
    assert "[1]。" in a.text and "[2]。" in a.text
    # the section's code block and its trailing question are not quoted
    assert "code" not in a.text and "種類は" not in a.text


def test_answer_is_short():
    a = extractive_answer([hit(JA_Q4, 1, 0.5)], lang="ja", lookup=lookup)
    assert len(split_sentences(a.text)) == 2  # first sentences of the best passage
    assert "70B" not in a.text


def test_language_swap_to_the_askers_language_via_parallel():
    # a Chinese question whose best hit is the Japanese passage: quote its Chinese translation
    a = extractive_answer([hit(JA_Q4, 1, 0.5)], lang="zh", lookup=lookup)
    assert a.answered
    c = a.citations[0]
    assert c.chunk.id == "zh4" and c.translated and c.hit.chunk.id == "ja4"
    assert a.text.startswith("LoRA是一种微调方法")
    sentences_are_cited(a.text, 1)
    assert not a.note


def test_no_swap_without_translation_in_that_language():
    # English question: there is no English translation, keep the best passage as it is
    a = extractive_answer([hit(JA_Q4, 1, 0.5)], lang="en", lookup=lookup)
    assert a.citations[0].chunk.id == "ja4" and not a.citations[0].translated
    assert "English" in a.note
    # Japanese question, Japanese passage: nothing to swap
    chunk, swapped = localize(JA_Q4, "ja", lookup)
    assert chunk is JA_Q4 and not swapped
    # a parallel id the index does not know
    chunk, swapped = localize(JA_Q4, "zh", lambda _id: None)
    assert chunk is JA_Q4 and not swapped


def test_a_passage_and_its_translation_are_quoted_once():
    a = extractive_answer([hit(ZH_Q4, 1, 0.5), hit(JA_Q4, 2, 0.5)], lang="ja", lookup=lookup)
    assert [c.chunk.id for c in a.citations] == ["ja4"]


def test_english_passage_sentences():
    a = extractive_answer([hit(EN_TEXT, 1, 0.6)], lang="en", lookup=lookup)
    assert a.text == "Beam search keeps the k best sequences at each step [1]. Greedy decoding keeps only one [1]."
    sentences_are_cited(a.text, 1)


@pytest.mark.parametrize("lang", ["ja", "zh", "en"])
def test_no_answer_when_nothing_is_relevant(lang):
    weak = [hit(JA_Q4, 1, MIN_RELEVANCE - 0.05, rerank=3.4), hit(ZH_Q4, 2, 0.02)]
    a = extractive_answer(weak, lang=lang, lookup=lookup)
    assert not a.answered and a.answerer == "none"
    assert a.text == NO_ANSWER[lang] and not a.citations and not a.cited()
    assert a.relevance == pytest.approx(MIN_RELEVANCE - 0.05)
    assert not extractive_answer([], lang=lang).answered


def test_term_match_bonus_lifts_short_keyword_questions():
    sims = [0.12, 0.05]
    eff = effective_relevance(sims, [True, False])
    assert eff == pytest.approx([0.12 + TERM_MATCH_BONUS, 0.05])
    hits = [hit(JA_Q4, 1, 0.12), hit(ZH_Q4, 2, 0.05)]
    assert not extractive_answer(hits, lang="ja", lookup=lookup).answered
    assert extractive_answer(hits, lang="ja", lookup=lookup, similarities=eff).answered


def test_answer_body_and_cite():
    assert answer_body(JA_Q4).startswith("LoRAは、")
    body = answer_body(ZH_Q4)
    assert body.startswith("LoRA是一种") and "问题4" not in body
    sec = answer_body(JA_SECTION)
    assert sec.splitlines()[:2] == ["量子化はモデルの重みを低いビット数で表します。", "メモリと計算量が減ります"]
    assert cite("これは文です。", 2) == "これは文です[2]。"
    assert cite("これは「引用」です。」", 1) == "これは「引用」です[1]。」"
    assert cite("No stop here", 3) == "No stop here [3]."
    assert cite("句点なし", 1) == "句点なし[1]。"
    # bracketed numbers inside the document are not mistaken for markers
    assert markers_in(cite("see [7] for details.", 1)) == [1]


# --- the citation checker -----------------------------------------------------------------


def test_checker_flags_an_unmarked_sentence_and_an_out_of_range_marker():
    text = "LoRAは低ランク行列を足します[1]。QLoRAは量子化も使います。メモリが減ります[3]。It is cheap [2]."
    checks = check_citations(text, [1, 2])
    assert [c.ok for c in checks] == [True, False, False, True]
    assert checks[1].problem == "no citation marker"
    assert "[3]" in checks[2].problem
    assert checks[2].markers == (3,)


def test_checker_accepts_markers_after_the_stop_and_lists():
    text = "Beam search keeps k candidates.[1] Greedy keeps one. [2]\n- a bullet [1, 2]\n- another bullet"
    checks = check_citations(text, [1, 2])
    assert [c.text for c in checks] == [
        "Beam search keeps k candidates.[1]",
        "Greedy keeps one. [2]",
        "- a bullet [1, 2]",
        "- another bullet",
    ]
    assert [c.ok for c in checks] == [True, True, True, False]
    assert split_sentences("版本是3.5[1]。下一句[2]！") == ["版本是3.5[1]。", "下一句[2]！"]


# --- generative answers -------------------------------------------------------------------


def test_generative_answer_checks_the_reply():
    seen = {}

    def fake_llm(messages):
        seen["messages"] = messages
        return "LoRA adds low-rank matrices [1]. QLoRA also quantizes. It fits one GPU [9]."

    a = generative_answer(
        "LoRA vs QLoRA?", [hit(JA_Q4, 1, 0.5), hit(EN_TEXT, 2, 0.3)], lang="en", complete=fake_llm, lookup=lookup
    )
    assert a.answered and a.answerer == "endpoint"
    assert [f.text for f in a.flagged] == ["QLoRA also quantizes.", "It fits one GPU [9]."]
    assert [c.number for c in a.cited()] == [1]
    prompt = seen["messages"][1]["content"]
    assert "[1] (LLM Interview Questions" in prompt and "[2] (Notes" in prompt
    assert "[1] or [2]" in seen["messages"][0]["content"]
    # nothing relevant: the model is not asked
    b = generative_answer("weather?", [hit(JA_Q4, 1, 0.01)], lang="en", complete=lambda m: pytest.fail("called"))
    assert not b.answered


class _FakeLLM(BaseHTTPRequestHandler):
    reply: dict = {}
    status = 200

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).last = body
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(self.reply).encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_llm_server():
    server = HTTPServer(("127.0.0.1", 0), _FakeLLM)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server
    server.shutdown()
    server.server_close()


def test_chat_completion_posts_openai_style(fake_llm_server):
    _FakeLLM.status = 200
    _FakeLLM.reply = {"choices": [{"message": {"role": "assistant", "content": "<think>hmm</think>答えです[1]。"}}]}
    url = f"http://127.0.0.1:{fake_llm_server.server_port}"
    out = chat_completion(url, "tiny", [{"role": "user", "content": "q"}], timeout=5)
    assert out == "答えです[1]。"
    assert _FakeLLM.last["model"] == "tiny" and _FakeLLM.last["messages"][0]["content"] == "q"
    _FakeLLM.reply = {"error": "nope"}
    with pytest.raises(AnswererError, match="not an OpenAI-style"):
        chat_completion(url + "/v1", "tiny", [], timeout=5)
    _FakeLLM.status = 500
    with pytest.raises(AnswererError, match="HTTP 500"):
        chat_completion(url, "tiny", [], timeout=5)


def test_chat_completion_errors_are_clear():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(AnswererError, match="cannot reach the answer endpoint"):
        chat_completion(f"http://127.0.0.1:{port}", "m", [], timeout=2)
    with pytest.raises(AnswererError, match="must start with http"):
        chat_completion("localhost:1234", "m", [])
    with pytest.raises(AnswererError, match="no model name"):
        chat_completion("http://127.0.0.1:1", " ", [])
    assert endpoint_url("http://h:1/") == "http://h:1/v1/chat/completions"
    assert endpoint_url("http://h:1/v1") == "http://h:1/v1/chat/completions"
    assert endpoint_url("http://h:1/v1/chat/completions") == "http://h:1/v1/chat/completions"


# --- follow-ups and language ----------------------------------------------------------------


def test_followups_are_joined_to_the_previous_question():
    prev = "LoRAとQLoRAの違いは？"
    assert retrieval_query("それの利点は？", prev) == (f"{prev} それの利点は？", True)
    assert retrieval_query("what about its memory use?", "what is LoRA") == (
        "what is LoRA what about its memory use?",
        True,
    )
    assert retrieval_query("那QLoRA呢？", "什么是LoRA") == ("什么是LoRA 那QLoRA呢？", True)
    # a new, self-contained question is searched as it is
    q = "トランスフォーマーのアテンション機構はどのように動作しますか？"
    assert retrieval_query(q, prev) == (q, False)
    assert retrieval_query("それは？", None) == ("それは？", False)
    assert is_followup("それで？", analyze=lambda s: [])
    assert is_followup("why?")
    # a short but self-contained question is not a follow-up
    assert not is_followup("RAGとは？", analyze=lambda s: ["rag", "~rag"])
    assert not is_followup("beam search vs greedy decoding", analyze=lambda s: s.split())


def test_answer_language():
    assert answer_language("LoRAとは？") == "ja"
    assert answer_language("什么是LoRA") == "zh"
    assert answer_language("what is LoRA") == "en"
    assert answer_language("what is LoRA", "zh") == "zh"


# --- highlighting -------------------------------------------------------------------------

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
