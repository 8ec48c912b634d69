"""Card building: the real seed corpus (Q&A twins, article sections, the question list) and
uploaded-style documents; ids that survive edits; every card cites its document exactly."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import CORPUS, JA_TOP50, ZH_TOP50

from ingest.chunker import chunk_document
from ingest.loader import parse_document
from rag.index import open_index
from rag.parallel import link_parallel
from rag.rules.structure import title
from rag.text import plain
from study.cards import (
    build_cards,
    cards_from_index,
    drill_questions,
    explain_front,
    group_chunks,
    is_question,
    key_sentences,
)

ARTICLES = ("zenn-mondo-llm-ja.md", "llm-technical-foundations-ja.txt")
SENIOR = "senior-ai-engineer-questions-ja.md"


def twin_linked(chunks):
    """The chunks with ``parallel`` set as the real encoder sets it: heading vectors that are
    one-hot per Q&A number (a perfect translation signal), fed to rag.parallel."""
    heads = np.zeros((len(chunks), 64), dtype=np.float32)
    for i, c in enumerate(chunks):
        if c.kind == "qa" and c.qnum is not None:
            heads[i, c.qnum] = 1.0
    return link_parallel(chunks, heads)


@pytest.fixture(scope="module")
def seed(corpus_fake_index):
    index = open_index(corpus_fake_index[0])
    chunks = twin_linked(index.chunks)
    return index, chunks, build_cards(chunks, index.documents)


def assert_cites_exactly(card, documents):
    for lang, src in card.sources.items():
        assert documents[src.doc_id].text[src.start : src.end] == src.text, (card.id, lang)
        assert src.text.strip() == src.text and src.text


def test_fifty_qa_cards_each_with_japanese_and_chinese(seed):
    index, _, cards = seed
    qa = [c for c in cards if c.kind == "qa"]
    assert len(qa) == 50
    assert sorted(c.qnum for c in qa) == list(range(1, 51))
    for c in qa:
        assert set(c.langs) == {"ja", "zh"}, c.id
        assert c.sources["ja"].doc_id == JA_TOP50 and c.sources["zh"].doc_id == ZH_TOP50
        assert c.id == f"qa:{JA_TOP50}#Q{c.qnum}"
        assert_cites_exactly(c, index.documents)
    q4 = next(c for c in qa if c.qnum == 4)
    assert q4.front["ja"] == "LoRAとQLoRAのファインチューニングの違いは？"
    assert "**" not in q4.front["ja"]
    assert q4.back["ja"].startswith("LoRA（Low-Rank Adaptation）は、モデル層に低ランク行列を追加し")
    assert "違いは" not in q4.back["ja"]  # the question line is not part of the answer
    assert "LoRA" in q4.back["zh"] and not q4.back["zh"].startswith("问题")


def test_qa_back_keeps_lists_readable(seed):
    _, _, cards = seed
    q50 = next(c for c in cards if c.id.endswith("#Q50"))
    assert q50.back["ja"].splitlines()[0] == "• リソース消費：高い計算資源が必要"
    assert "*" not in q50.back["ja"]


def test_every_article_section_has_a_card(seed):
    index, chunks, cards = seed
    ids = {c.id for c in cards}
    for doc in ARTICLES:
        paths = {g.section or g.heading for g in group_chunks(chunks) if g.doc_id == doc and g.kind == "section"}
        assert paths
        for p in paths:
            assert f"section:{doc}#{p}" in ids, p
    sections = [c for c in cards if c.kind == "section"]
    assert {c.source.doc_id for c in sections} == set(ARTICLES)
    for c in sections:
        assert_cites_exactly(c, index.documents)
        assert c.langs == ("ja",) and c.front["ja"].endswith("について説明してください。")
        text = index.documents[c.source.doc_id].text
        assert c.key_spans and all(c.source.start <= a < b <= c.source.end for a, b in c.key_spans)
        assert len(c.back["ja"].splitlines()) == len(c.key_spans)
        for (a, b), line in zip(c.key_spans, c.back["ja"].splitlines()):
            # list marks kept for display; a subsection on an introduction's card: its title
            assert re.sub(r"^(?:• |\d{1,3}[.)] )", "", line) in (plain(text[a:b]), title(text[a:b]))


def test_section_card_content(seed):
    _, _, cards = seed
    by_id = {c.id: c for c in cards}
    c = by_id["section:zenn-mondo-llm-ja.md#LLMの課題と限界 > ハルシネーション"]
    assert c.front == {"ja": "「LLMの課題と限界 — ハルシネーション」について説明してください。"}  # a short heading, with its parent
    assert c.back["ja"].startswith("LLMは事実と異なる情報を、もっともらしく生成してしまうことがあります。")
    assert c.topic == "LLMの課題と限界"
    # a generic heading is named with its document
    summary = by_id["section:zenn-mondo-llm-ja.md#まとめ"]
    assert "— まとめ" in summary.front["ja"] and "LLM" in summary.front["ja"]


def test_question_list_gives_drill_questions_not_cards(seed):
    index, chunks, cards = seed
    assert not [c for c in cards if c.source.doc_id == SENIOR]
    qs = drill_questions(chunks, index.documents)
    assert len(qs) == 44  # every list item of the senior-interview list
    assert {q.source.doc_id for q in qs} == {SENIOR}
    assert qs[0].text.startswith("10,000+ QPSをp99レイテンシ200ms未満")
    assert any(q.text.startswith("1万件の高品質な指示例") for q in qs)  # 「…手順を示せ。」
    assert len({q.id for q in qs}) == len(qs)
    for q in qs:
        assert index.documents[q.source.doc_id].text[q.source.start : q.source.end] == q.source.text
        assert not q.text.startswith(("-", "1."))


def test_qa_documents_intro_sections_are_not_cards(seed):
    _, _, cards = seed
    assert not [c for c in cards if c.kind == "section" and c.source.doc_id in (JA_TOP50, ZH_TOP50)]


def test_ids_are_unique_and_order_follows_the_corpus(seed):
    _, _, cards = seed
    ids = [c.id for c in cards]
    assert len(ids) == len(set(ids))
    assert [c.qnum for c in cards if c.kind == "qa"] == list(range(1, 51))


def test_without_links_each_language_is_its_own_card(corpus_fake_index):
    index = open_index(corpus_fake_index[0])
    cards = cards_from_index(index)  # the fake encoder links no translations
    qa = [c for c in cards if c.kind == "qa"]
    assert len(qa) == 100 and all(len(c.langs) == 1 for c in qa)


def test_card_dict_round_trip(seed):
    from study.types import Card

    for c in seed[2][:5] + seed[2][-5:]:
        d = c.to_dict()
        assert d["source"] == d["sources"][c.langs[0]]
        assert Card.from_dict(d) == c


# --- uploaded-style documents ---------------------------------------------------------------


def docs_and_chunks(files: dict[str, str]):
    docs = {name: parse_document(name, text.encode()) for name, text in files.items()}
    chunks = [c for d in docs.values() for c in chunk_document(d)]
    return docs, chunks


def test_uploaded_documents(small_corpus):
    files = {p.name: p.read_text(encoding="utf-8") for p in small_corpus.iterdir()}
    docs, chunks = docs_and_chunks(files)
    cards = build_cards(chunks, docs)
    by_doc = {}
    for c in cards:
        by_doc.setdefault(c.source.doc_id, []).append(c)
    qa = by_doc["ja-qa.md"]
    assert [c.id for c in qa] == ["qa:ja-qa.md#Q1", "qa:ja-qa.md#Q2", "qa:ja-qa.md#Q3"]
    assert qa[1].front == {"ja": "LoRAとQLoRAの違いは？"} and qa[1].back["ja"].startswith("LoRAは低ランク行列")
    en = by_doc["en-guide.md"]
    assert [c.front["en"] for c in en] == ["Explain “Chunking”.", "Explain “Fusion”.", "Explain “Evaluation”."]
    assert en[1].back["en"].startswith("Reciprocal rank fusion adds one over k plus rank")
    zh = by_doc["zh-notes.txt"]
    assert {c.front["zh"] for c in zh} >= {"请解释「混合检索」。", "请解释「重排序」。"}
    for c in cards:
        assert_cites_exactly(c, docs)


def test_ids_survive_edits_elsewhere_in_the_document():
    text = (CORPUS / "zenn-mondo-llm-ja.md").read_text(encoding="utf-8")
    before = build_cards(*reversed(docs_and_chunks({"z.md": text})))
    edited = text.replace(
        "## ハルシネーション", "## 新しい節\n\n新しい節の本文です。大事な説明がここに入ります。\n\n## ハルシネーション"
    )
    edited = edited.replace("学習データに含まれる偏見", "学習データに含まれる様々な偏見")
    after = build_cards(*reversed(docs_and_chunks({"z.md": edited})))
    b, a = {c.id: c for c in before}, {c.id: c for c in after}
    assert set(a) - set(b) == {"section:z.md#LLMの課題と限界 > 新しい節"}
    assert set(b) <= set(a)
    changed = {i for i in b if a[i].content_hash() != b[i].content_hash()}
    # the edited section, and the introduction whose card lists its subsections' titles and first sentences
    assert changed == {"section:z.md#LLMの課題と限界 > 学習データの偏り", "section:z.md#LLMの課題と限界"}


def test_an_introductions_card_goes_on_with_its_subsections(seed):
    """「学習プロセス」 says only 「LLMの学習は大きく2段階に分かれます」: its card names each stage and
    what it does, every line highlighted in the source; a section with text of its own does not."""
    index, _, cards = seed
    by_id = {c.id: c for c in cards}
    c = by_id["section:zenn-mondo-llm-ja.md#LLMの仕組み > 学習プロセス"]
    assert c.back["ja"].splitlines() == [
        "LLMの学習は大きく2段階に分かれます",
        "• 事前学習(Pre-training)",
        "膨大な量のテキストデータ(Webページ、書籍、論文など)を使って、「次の単語を予測する」タスクを学習します。",
        "• ファインチューニング(Fine-tuning)",
        "事前学習したモデルを、特定のタスクに適応させます。",
    ]
    assert_cites_exactly(c, index.documents)
    kids = [x for x in cards if x.id.startswith("section:zenn-mondo-llm-ja.md#LLMの仕組み > 学習プロセス > ")]
    assert len(kids) == 2 and set(c.chunk_ids) > {i for k in kids for i in k.chunk_ids}
    # the first subsection has text of its own: its card is its own sentences, no outline
    assert "•" not in by_id["section:zenn-mondo-llm-ja.md#LLMの課題と限界 > ハルシネーション"].back["ja"]


def test_a_long_section_or_the_tail_of_one_introduces_nothing():
    from rag.sections import INTRO_CHARS, subsections

    def notes(intro: str, kids: str = "BC") -> str:
        return "# ノート\n\n## A\n\n" + intro + "".join(
            f"\n\n### {k}\n\n{k}についての本文がここに書かれています。" for k in kids) + "\n"

    def a_card(text):
        docs, chunks = docs_and_chunks({"g.md": text})
        row = next(i for i, c in enumerate(chunks) if c.section == "A")
        card = next(c for c in build_cards(chunks, docs) if c.id == "section:g.md#A")
        return [chunks[r].section for r in subsections(chunks, row)], card.back["ja"].splitlines()

    assert a_card(notes("二つの段階に分かれています。")) == (
        ["A > B", "A > C"],
        ["二つの段階に分かれています。", "• B", "Bについての本文がここに書かれています。",
         "• C", "Cについての本文がここに書かれています。"])
    long = "長い本文がここにあります。" * (INTRO_CHARS // 13 + 1)
    assert a_card(notes(long))[0] == [] and "•" not in "".join(a_card(notes(long))[1])
    assert a_card(notes("一つだけあります。", kids="B"))[0] == []  # one subsection is not an outline


def test_repeated_heading_paths_get_numbered_ids():
    text = "# Guide\n\n## Tips\n\nFirst notes about retrieval quality.\n\n## Other\n\nSomething else entirely here.\n\n## Tips\n\nSecond notes about ranking quality.\n"
    docs, chunks = docs_and_chunks({"g.md": text})
    ids = [c.id for c in build_cards(chunks, docs)]
    assert "section:g.md#Tips" in ids and "section:g.md#Tips #2" in ids


# --- small pure rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, expected",
    [
        ("- LoRAとQLoRAの違いは？", True),
        ("1.  RAGパイプラインを設計せよ（評価を含む）。", True),
        ("- 具体的な手順を示せ。", True),
        ("- 什么是注意力机制", True),
        ("- Explain beam search.", True),
        ("- LoRAは低ランク行列を追加します。", False),
        ("- GPT-3: 約45TBのテキストデータ", False),
    ],
)
def test_is_question(line, expected):
    assert is_question(line) is expected


def test_key_sentences_skip_code_questions_and_lead_ins():
    text = (
        "そもそも何でしょうか？\n\n最初の段落の要点です。二文目は補足です。\n\n```\ncode = 1 + 2の計算をします。\n```\n\n"
        "手順は次の通りです：\n- 箇条書きの要点です\n\n最後の段落の要点です。"
    )
    spans = key_sentences(text, 0, len(text))
    assert [text[a:b] for a, b in spans] == ["最初の段落の要点です。", "- 箇条書きの要点です", "最後の段落の要点です。"]


def test_explain_front_languages():
    assert explain_front("**RAG**", "ja") == "「RAG」について説明してください。"
    assert explain_front("混合检索", "zh") == "请解释「混合检索」。"
    assert explain_front("Fusion", "en") == "Explain “Fusion”."
    assert explain_front("Summary", "en", "Retrieval guide") == "Explain “Retrieval guide — Summary”."


@pytest.mark.model
def test_real_encoder_links_all_fifty_twins(real_index):
    cards = cards_from_index(open_index(real_index))
    qa = [c for c in cards if c.kind == "qa"]
    assert len(qa) == 50 and all(set(c.langs) == {"ja", "zh"} for c in qa)


def test_the_short_tail_of_a_long_section_introduces_nothing():
    """A section the chunker cut in two whose second chunk is short is not an introduction: its
    own text is both chunks."""
    from rag.sections import subsections
    from rag.types import Chunk

    def chunk(i, section, text, heading=""):
        return Chunk(id=str(i), doc_id="d", text=text, start=100 * i, end=100 * i + len(text), lang="ja",
                     section=section, heading=heading, kind="section")

    chunks = [chunk(0, "A", "## A\n\n" + "長い本文。" * 40, "A"), chunk(1, "A", "短い続き。"),
              chunk(2, "A > B", "### B\n\nBの本文。", "B"), chunk(3, "A > C", "### C\n\nCの本文。", "C")]
    assert subsections(chunks, 1) == []
    assert subsections([chunks[0].__class__(**{**chunks[0].to_dict(), "text": "## A\n\n短い。"}), *chunks[2:]], 0) == [1, 2]


def test_an_introduction_reads_a_bounded_number_of_chunks():
    """An introduction before a long chapter brings at most MAX_SUBSECTIONS subsections, found
    among at most MAX_SCAN chunks: an index on an engine reads each chunk it looks at."""
    from rag.sections import MAX_SCAN, MAX_SUBSECTIONS, subsections
    from rag.types import Chunk

    class Counting(list):
        read = 0

        def __getitem__(self, i):
            Counting.read += 1
            return super().__getitem__(i)

    def chunk(i, section):
        return Chunk(id=str(i), doc_id="d", text=f"## {section}\n\n本文。", start=10 * i, end=10 * i + 9, lang="ja",
                     section=section, heading=section.split(" > ")[-1], kind="section")

    many = Counting([chunk(0, "A")] + [chunk(i, f"A > S{i}") for i in range(1, 500)])
    assert subsections(many, 0) == list(range(1, MAX_SUBSECTIONS + 1))
    long_first = Counting([chunk(0, "A")] + [chunk(i, "A > S1") for i in range(1, 500)] + [chunk(500, "A > S2")])
    Counting.read = 0
    assert subsections(long_first, 0) == []  # the second subsection is beyond the chunks looked at
    assert Counting.read <= MAX_SCAN + 1


def test_key_sentences_take_nothing_from_a_table_not_even_a_cells_second_sentence():
    text = ("最適化手法を表にまとめる。\n\n| 手法 | 特徴 |\n|---|---|\n"
            "| SGD | 勾配の方向に更新する。単純だが収束が遅い |\n\n学習率が大きすぎると発散する。\n")
    got = [text[s:e] for s, e in key_sentences(text, 0, len(text))]
    assert got == ["最適化手法を表にまとめる。", "学習率が大きすぎると発散する。"], got
    from study.cards import is_prose  # the mock interview's key points skip it too

    second = text.index("単純だが")
    assert not is_prose(text, second, text.index(" |", second))


def test_a_subsection_that_names_little_by_itself_is_named_with_the_heading_above_it():
    """English notes gave cards "Explain “Reducing it”." and "Explain “Memory cost”.": out of the
    document (a card, the mock interview's question, the topics a declined question suggests)
    such a heading names nothing. A heading that says what it is about stays as it is."""
    notes = ("# Inference notes\n\n## KV cache\n\nThe cache stores keys and values of earlier tokens.\n\n"
             "### Memory cost\n\nThe cache grows with batch size and context length.\n\n"
             "### Reducing it\n\nGrouped-query attention shares key and value heads.\n\n"
             "### Why grouped-query attention keeps quality close to multi-head attention\n\n"
             "Each group keeps its own key and value head.\n")
    fronts = {c.id.split("#")[-1]: c.front["en"] for c in build_cards(*reversed(docs_and_chunks({"n.md": notes})))}
    assert fronts["KV cache > Memory cost"] == "Explain “KV cache — Memory cost”."
    assert fronts["KV cache > Reducing it"] == "Explain “KV cache — Reducing it”."
    assert fronts["KV cache"] == "Explain “KV cache”."
    long = "Why grouped-query attention keeps quality close to multi-head attention"
    assert fronts[f"KV cache > {long}"] == f"Explain “{long}”."
