"""The text rules (rag.rules), one table of ja / zh / en examples per kind of rule, and the
check that each rule has one definition."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag.rules import names, normalize, questions, script, sentences, structure

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rag", "ingest", "study", "ui", "eval")


# --- script -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text, lang",
    [
        ("LoRAとQLoRAの違いは？", "ja"),
        ("ハルシネーション", "ja"),
        ("大規模言語モデルの評価", "ja"),  # kanji with a little kana is Japanese
        ("LoRA和QLoRA有什么区别", "zh"),
        ("注意力机制", "zh"),
        ("What is RLHF?", "en"),
        ("top-p", "en"),
        ("", "en"),
        # English notes glossing a term stay English; a CJK question naming English terms does not
        ("Attention (注意力) lets each token weigh all other tokens in the sequence.", "en"),
        ("Hallucination (ハルシネーション) means that a model states false facts as if they were true, and "
         "retrieval with citations is the usual remedy.", "en"),
        ("什么是RAG (Retrieval-Augmented Generation)?", "zh"),
        ("RAGとRetrieval-Augmented Generationの関係", "ja"),
    ],
)
def test_detect_lang(text, lang):
    assert script.detect_lang(text) == lang


@pytest.mark.parametrize(
    "langs, out",
    [
        (["ja"] * 3 + ["zh"] * 2, ["ja"] * 3 + ["zh"] * 2),  # two notes languages stay two
        (["zh"] * 40 + ["ja"] * 2 + ["en"], ["zh"] * 43),  # 2 and 1 of 43 (< 5 %): the main language's
        (["zh"] * 19 + ["ja"], ["zh"] * 19 + ["ja"]),  # exactly 5 %: a language of its own
        (["en", "ja"], ["en", "ja"]),  # a tie keeps both
        ([], []),
    ],
)
def test_notes_languages(langs, out):
    assert script.notes_languages(langs) == out


def test_notes_languages_share_is_checked():
    assert script.notes_languages(["zh"] * 9 + ["ja"], min_share=0.2) == ["zh"] * 10
    with pytest.raises(ValueError, match="min_share"):
        script.notes_languages(["zh"], min_share=1.5)


# --- normalisation ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "fn, text, out",
    [
        (normalize.normalize, "ＧＰＴ－４", "gpt-4"),
        (normalize.normalize, "ｶﾀｶﾅ", "カタカナ"),
        (normalize.normalize, "注意力", "注意力"),
        (normalize.squash, "GPT-4", "gpt4"),
        (normalize.squash, "ｇｐｔ ４", "gpt4"),
        (normalize.squash, "text_embedding.v3", "textembeddingv3"),
        (normalize.squash_markup, "**LoRA** は\n低ランク", "loraは低ランク"),
        (normalize.squash_markup, "`top_p` 参数", "topp参数"),
        (normalize.squash_markup, "It is *fast*.", "itisfast."),
    ],
)
def test_normalisation(fn, text, out):
    assert fn(text) == out


# --- sentences ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text, units",
    [
        ("本文です。次の文。", ["本文です。", "次の文。"]),
        ("检索增强生成。它很有用！", ["检索增强生成。", "它很有用！"]),
        ("It works. It is fast.", ["It works.", "It is fast."]),
        ("3.1. Self-Attention\n- 手順A", ["3.1. Self-Attention", "- 手順A"]),
        ("---\n。", []),
    ],
)
def test_unit_spans(text, units):
    assert [text[s:e] for s, e in sentences.unit_spans(text)] == units


@pytest.mark.parametrize(
    "text, marks, stripped",
    [
        ("LoRAは低ランクです[1]。", [1], "LoRAは低ランクです。"),
        ("它很有用[1，2]。", [1, 2], "它很有用。"),
        ("It is fast [2, 3].", [2, 3], "It is fast."),
    ],
)
def test_markers(text, marks, stripped):
    assert sentences.markers_in(text) == marks
    assert sentences.strip_markers(text) == stripped


# --- document structure -----------------------------------------------------------------------

@pytest.mark.parametrize(
    "line, item",
    [
        ("12. **LoRAとは？**", (12, "LoRAとは？")),
        ("問題3：RAGとは何ですか", (3, "RAGとは何ですか")),
        ("質問4: ファインチューニングとは", (4, "ファインチューニングとは")),
        ("題5. 注意機構", (5, "注意機構")),
        ("问题12: 什么是RAG?", (12, "什么是RAG?")),
        ("质问2、什么是LoRA", (2, "什么是LoRA")),
        ("Q7. What is RLHF?", (7, "What is RLHF?")),
        ("Question 8: What is top-p?", (8, "What is top-p?")),
        ("3.2. 手法", None),
        ("- 問題点: コスト", None),
        ("Questions are welcome", None),
    ],
)
def test_qa_item(line, item):
    assert structure.qa_item(line) == item
    # The other patterns agree with qa_item on what opens an item.
    assert bool(structure.QA_LINE.match(line)) == (item is not None)
    if item is not None:
        assert structure.strip_qa_label(line).strip("* ") == item[1] or line.lstrip()[0].isdigit()


@pytest.mark.parametrize(
    "line, label",
    [("目次", True), ("もくじ", True), ("目录", True), ("目錄", True), ("Table of Contents", True), ("CONTENTS", True),
     ("目次の作り方", False), ("内容", False), ("Contents of the index", False)],
)
def test_contents_label(line, label):
    assert bool(structure.CONTENTS_LABEL.match(line)) == label


@pytest.mark.parametrize(
    "line, heading",
    [("次元数の注意", True), ("3. ベクトル検索", True), ("向量检索的原理", True), ("Inverted index", True),
     ("注意してください。", False), ("什么是RAG？", False), ("手順は次の通り：", False), ("Why BM25?", False),
     ("とても長い太字の文は見出しではなく強調された本文として扱われるべきであり、六十文字を超える場合は見出しとはみなさないことにする", False)],
)
def test_bold_heading(line, heading):
    assert structure.bold_heading(line) == heading


@pytest.mark.parametrize(
    "heading, generic",
    [("はじめに", True), ("まとめ", True), ("結語", True), ("总结", True), ("引言", True),
     ("Conclusion", True), ("contents", True), ("LoRAとは", False), ("注意力机制", False), ("RLHF", False)],
)
def test_generic_headings(heading, generic):
    assert (heading.lower() in structure.GENERIC_HEADINGS) == generic


@pytest.mark.parametrize(
    "line, stripped, bullet_line, list_item",
    [
        ("- **RAG**: [検索](http://x)で補う", "RAG: 検索で補う", True, True),
        ("・手順を確認する", "手順を確認する", False, True),
        ("1. 准备数据", "准备数据", True, True),
        ("（2）评估模型", "评估模型", False, False),
        ("3.1. Self-Attention", "3.1. Self-Attention", False, True),
        ("## Overview", "Overview", False, False),
        ("> quoted *text*", "quoted text", False, False),
    ],
)
def test_bullets_and_plain(line, stripped, bullet_line, list_item):
    assert structure.plain(line) == stripped
    assert bool(structure.BULLET_LINE.match(line)) == bullet_line
    assert structure.is_list_item(line) == list_item


# --- question forms ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "question, core",
    [
        ("RAGの仕組みを教えてください", "RAGの仕組み"),
        ("「ハルシネーション」について説明してください。", "ハルシネーション"),
        ("LoRAとQLoRAの違いは？", "LoRAとQLoRAの違いは？"),
        ("请介绍一下混合检索", "混合检索"),
        ("请解释注意力机制", "注意力机制"),
        ("Tell me about LoRA, please", "LoRA"),
        ("Can you explain RLHF?", "RLHF?"),
        ("教えて", "教えて"),
    ],
)
def test_search_text(question, core):
    assert questions.search_text(question) == core


@pytest.mark.parametrize(
    "line, asks, unit_question",
    [
        ("- LoRAとQLoRAの違いは？", True, True),
        ("AdamWを導出せよ。", True, True),
        ("LoRAとは何でしょうか。", True, True),
        ("LoRAは低ランク行列です。", False, False),
        ("- 什么是RAG", True, False),
        ("请解释注意力机制", True, True),
        ("检索增强生成很有用。", False, False),
        ("- Explain attention", True, True),  # the list mark is not part of the question
        ("Explain attention.", True, True),
        ("It is fast.", False, False),
    ],
)
def test_question_forms(line, asks, unit_question):
    assert questions.is_question(line) == asks
    assert questions.is_question_unit(line) == unit_question


@pytest.mark.parametrize(
    "question, cue, aspect",
    [
        ("それの欠点は？", True, "欠点"),
        ("じゃあQLoRAは？", True, "QLoRA"),
        ("その利点は何ですか", True, "利点は何ですか"),
        ("那它的缺点呢?", True, "缺点"),
        ("它们有什么区别", True, "有什么区别"),
        ("And what about QLoRA?", True, "QLoRA"),
        ("What are its limitations?", False, "limitations"),
        ("LoRAとは？", False, "LoRA"),
    ],
)
def test_followup_cues(question, cue, aspect):
    opens = bool(questions.JA_ZH_CUE.match(question) or questions.EN_OPENER.match(question))
    assert opens == cue
    assert questions.followup_aspect(question) == aspect


# --- names ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "question, lang, terms",
    [
        ("What new features does GPT-6 have?", "en", ["GPT-6"]),
        ("How does Kubernetes autoscaling work?", "en", ["Kubernetes"]),
        ("fine-tune a 70B model using 4-bit", "en", []),
        ("LoRAとは？", "ja", ["LoRA"]),
        ("Llama 5の文脈長", "ja", ["Llama 5"]),
        ("vLLM和TGI有什么区别", "zh", ["vLLM", "TGI"]),
        ("什么是注意力", "zh", []),
    ],
)
def test_distinctive_terms(question, lang, terms):
    assert names.distinctive_terms(question, lang) == terms


@pytest.mark.parametrize(
    "question, found",
    [
        ("Llama 3/4がALiBiではなくRoPEを使用する理由は？", ["ALiBi", "RoPE"]),
        ("ユーザーのジェイルブレイクを防ぐには", ["ユーザー", "ジェイルブレイク"]),
        ("vLLM、TGI、TensorRT-LLMを比較せよ", ["vLLM", "TGI", "TensorRT-LLM"]),
        ("如何使用GPT-4进行评估", ["GPT-4"]),
        ("What is attention?", []),
    ],
)
def test_proper_names(question, found):
    assert names.proper_names(question) == found


@pytest.mark.parametrize(
    "headings, found",
    [
        (["LoRAとQLoRA", "Self-Attentionの仕組み"], ["LoRA", "QLoRA", "Self-Attention"]),
        (["RAG（检索增强生成）", "LLM的评估"], ["RAG"]),
        (["Chain-of-Thought プロンプト", "GPUとAPI", "LLMs"], ["Chain-of-Thought"]),  # generic words dropped
    ],
)
def test_heading_names(headings, found):
    assert names.heading_names(headings) == found


# --- one definition per rule ----------------------------------------------------------------------

_LABEL_WORD = r"(?:问题|問題|质问|質問|Question)"
# Two label words side by side in an alternation: a Q&A-label pattern.
_LABEL_PATTERN = re.compile(rf"{_LABEL_WORD}\|{_LABEL_WORD}|{_LABEL_WORD}\|Q\b")


def _sources():
    for pkg in PACKAGES:
        yield from sorted((ROOT / pkg).rglob("*.py"))
    yield ROOT / "app.py"


def test_one_qa_label_pattern():
    """The Q&A item label is defined once (rag/rules/structure.py); a second pattern is a
    future disagreement (the chunker accepted 題 but not 質問, extraction the reverse)."""
    home = ROOT / "rag" / "rules" / "structure.py"
    offenders = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in _sources() if p != home
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if _LABEL_PATTERN.search(line)
    ]
    assert offenders == []
    assert structure.QA_LABEL_WORDS == ("问题", "問題", "质问", "質問", "題", "Question", "Q")


def test_the_label_check_finds_a_copy(tmp_path):
    assert _LABEL_PATTERN.search(r'_QA = re.compile(r"^(?:问题|問題|Q)\s*\d")')
    assert _LABEL_PATTERN.search(r'(?:質問|Q)\d')
    assert not _LABEL_PATTERN.search(r'"難点|缺点|问题|挑战"')  # a word list that names 问题 once


@pytest.mark.parametrize("name", ["GENERIC_HEADINGS", "CONTENTS_LABEL", "def bold_heading", "BOLD_HEADING_CHARS",
                                  "def encoder_key", "def squash", "def names_in",
                                  "def followup_aspect", "GENERIC_TERMS", "STOPS", "SENTENCE_END",
                                  "def ends_sentence"])
def test_one_definition(name):
    hits = [str(p.relative_to(ROOT)) for p in _sources()
            if re.search(rf"^\s*{re.escape(name)}\b\s*[(=]", p.read_text(encoding="utf-8"), re.M)]
    assert len(hits) <= 1, hits


@pytest.mark.parametrize(
    ("text", "ended"),
    [("計算資源が必要です。", True), ("「以下の通りです。」", True), ("本当ですか？！", True), ("It adds matrices.", True),
     ("全角の句点．", True), ("使うことで", False), ("LLMの学習と推論には膨大な計算資源が必要です", False),
     ("見出し：", False), ("Done. ", False)],
)
def test_ends_sentence(text, ended):
    """One rule for "does this text close its sentence?" — the units' headings and open lines,
    the comparison's whole-sentence check and the answer's line breaks all read it."""
    assert sentences.ends_sentence(text) is ended


def test_the_citation_marker_goes_before_the_final_stops():
    from rag.citations import cite

    assert cite("本当ですか？！", 1) == "本当ですか[1]？！"
    assert cite("全角の句点．", 2) == "全角の句点[2]．"
    assert cite("「以下の通りです。」", 3) == "「以下の通りです[3]。」"


@pytest.mark.parametrize(
    ("heading", "topic"),
    [("一、进程与线程", "进程与线程"), ("（二）死锁", "死锁"), ("第3章 索引", "索引"), ("3.2. Self-Attention", "Self-Attention"),
     ("1 Intro", "Intro"), ("2024-2025年 シニア", "2024-2025年 シニア"), ("3つのポイント", "3つのポイント")],
)
def test_a_headings_own_number_is_left_out_of_its_topic(heading, topic):
    from rag.rules.structure import strip_heading_number

    assert strip_heading_number(heading) == topic


@pytest.mark.parametrize("q", ["面接でどんなシステム設計の質問が出る？", "シニア面接でよく聞かれるMLOpsの質問は？",
                               "面试会问哪些RAG的问题？", "DPO和PPO的区别在面试里常考吗?",
                               "What coding questions are asked in senior AI interviews?", "RoPE vs ALiBi interview question"])
def test_a_question_about_interview_questions_is_told(q):
    assert questions.asks_for_questions(q)


@pytest.mark.parametrize("q", ["LLMにはどんな問題がある？", "大模型有哪些问题？", "What problems do LLMs have?",
                               "What is RAG?", "この質問の答えは？", "Can I ask a question about LoRA?"])
def test_a_question_about_problems_is_not_one_about_interview_questions(q):
    assert not questions.asks_for_questions(q)


@pytest.mark.parametrize("q, asks", [("Zenn問答の記事の結論は？", True), ("この資料のまとめを教えて", True),
                                     ("这篇文章的总结是什么？", True), ("What does the article conclude?", True),
                                     ("Summarize the guide", True), ("RAGの仕組みは？", False), ("What is RAG?", False)])
def test_a_question_about_a_conclusion_is_told(q, asks):
    assert questions.asks_for_conclusion(q) is asks


@pytest.mark.parametrize("q, asks", [("Zenn問答の記事には何が書いてある？", True), ("这篇文章讲了什么？", True),
                                     ("What is the Zenn article about?", True), ("What does the guide cover?", True),
                                     ("RAGとは？", False), ("What is RAG?", False)])
def test_a_question_about_what_a_document_is_about_is_told(q, asks):
    assert questions.asks_about_document(q) is asks


@pytest.mark.parametrize("q", ["この記事の結論は？", "このスライドのまとめは？", "这个幻灯片讲了什么？", "What does the deck conclude?",
                               "这篇文档的总结", "Summarize the slides"])
def test_a_word_for_a_document_is_told(q):
    assert questions.DOCUMENT_WORDS.search(q)
