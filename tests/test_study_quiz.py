"""Quiz: distractors are the nearest other items, never the answer or its twin, never repeated;
deterministic shuffles; explanation with citation; per-topic score."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_study_cards import twin_linked

from rag.index import open_index
from study import quiz
from study.cards import build_cards
from study.types import Card, Source


def qa_card(i: int, back: dict[str, str], topic: str = "t", chunks: tuple[str, ...] | None = None) -> Card:
    return Card(
        id=f"qa:d#Q{i}",
        kind="qa",
        front={lang: f"Q{i} {lang}?" for lang in back},
        back=back,
        sources={lang: Source("d", 0, len(t), t, lang) for lang, t in back.items()},
        topic=topic,
        qnum=i,
        chunk_ids=chunks if chunks is not None else (f"c{i}",),
    )


def unit(*xs):
    v = np.array(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_distractors_are_the_nearest_other_items_hand_checked():
    cards = [qa_card(i, {"en": f"Answer number {i}."}) for i in range(6)]
    vectors = np.stack(
        [unit(1, 0, 0), unit(0.9, 0.1, 0), unit(0, 1, 0), unit(0.8, 0, 0.2), unit(0.5, 0.5, 0), unit(0, 0, 1)]
    )
    # cosines to card 0: 1: .994, 3: .970, 4: .707, 2: 0, 5: 0
    assert quiz.distractors(0, cards, vectors, "en") == [1, 3, 4]


def test_never_the_answer_its_twin_or_a_duplicate_text():
    cards = [
        qa_card(0, {"ja": "正解です。", "zh": "正确答案。"}, chunks=("a-ja", "a-zh")),
        qa_card(1, {"ja": "正解です。"}),  # same text as the answer: not an option
        qa_card(2, {"ja": "翻訳の双子です。"}, chunks=("a-zh",)),  # shares a chunk (a twin): not an option
        qa_card(3, {"ja": "別の答えです。"}),
        qa_card(4, {"ja": "別の答えです。"}),  # duplicate of card 3's text: only one of them
        qa_card(5, {"ja": "三つ目の答え。"}),
        qa_card(6, {"ja": "四つ目の答え。"}),
        Card("section:d#x", "section", {"ja": "x"}, {"ja": "節の説明です。"}, {"ja": Source("d", 0, 1, "x", "ja")}),
    ]
    vectors = np.stack([unit(1, 0.01 * k) for k in range(8)])  # all nearly identical: only the rules decide
    got = quiz.distractors(0, cards, vectors, "ja")
    assert got == [3, 5, 6]


@pytest.fixture(scope="module")
def seed_deck(corpus_fake_index):
    index = open_index(corpus_fake_index[0])
    cards = build_cards(twin_linked(index.chunks), index.documents)
    return index, cards, quiz.card_vectors(cards, index)


def test_quiz_on_the_seed_corpus(seed_deck):
    index, cards, vectors = seed_deck
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    for lang in ("ja", "zh"):
        qs = quiz.make_quiz(cards, vectors, n=50, lang=lang, seed=7)
        assert len(qs) == 50
        for q in qs:
            ids = [o.card_id for o in q.options]
            texts = [o.text for o in q.options]
            assert len(q.options) == 4 and len(set(ids)) == 4 and len(set(texts)) == 4
            assert ids[q.answer] == q.card_id and ids.count(q.card_id) == 1
            kind = q.card_id.split(":")[0]
            # a Q&A item's options are Q&A answers, a section's are sections
            assert all(i.startswith(f"{kind}:") for i in ids)
            assert q.lang == lang and q.source.lang == lang
            assert index.documents[q.source.doc_id].text[q.source.start : q.source.end] == q.source.text
            assert all(len(t) <= quiz.MAX_OPTION_CHARS for t in texts)


def test_same_seed_same_quiz_other_seed_other_order(seed_deck):
    _, cards, vectors = seed_deck
    a = quiz.make_quiz(cards, vectors, n=10, seed=1)
    assert a == quiz.make_quiz(cards, vectors, n=10, seed=1)
    b = quiz.make_quiz(cards, vectors, n=50, seed=2)
    answers = {q.answer for q in b}
    assert len(answers) >= 3  # the right answer is not always in the same place


def test_language_without_text_falls_back_to_the_cards_own(seed_deck):
    _, cards, vectors = seed_deck
    q = quiz.make_quiz(cards, vectors, n=1, lang="en", seed=0)[0]
    assert q.lang in ("ja", "zh")


def test_score_per_topic():
    cards = [qa_card(i, {"en": f"Answer {i}."}, topic="A" if i < 3 else "B") for i in range(6)]
    vectors = np.eye(6, dtype=np.float32)
    qs = [quiz.make_question(i, cards, vectors, lang="en", seed=0) for i in range(6)]
    answers = [quiz.check(q, q.answer if k % 2 == 0 else (q.answer + 1) % 4) for k, q in enumerate(qs)]
    s = quiz.score(answers)
    assert (s.correct, s.total, s.ratio) == (3, 6, 0.5)
    assert s.by_topic == {"A": {"correct": 2, "total": 3}, "B": {"correct": 1, "total": 3}}
    with pytest.raises(ValueError, match="option number"):
        quiz.check(qs[0], 4)


def test_too_few_items():
    cards = [qa_card(i, {"en": f"Answer {i}."}) for i in range(3)]
    with pytest.raises(ValueError, match="too few"):
        quiz.make_question(0, cards, np.eye(3, dtype=np.float32), lang="en")


def test_a_term_the_question_names_in_its_other_language_is_hidden_too():
    """「什么是掩码语言建模」's Japanese twin asks about 「マスクドランゲージモデリング（MLM）」: the
    Chinese right option must not show MLM, the one Latin name a learner recognises."""
    right = Card(
        id="qa:d#Q7", kind="qa",
        front={"zh": "什么是掩码语言建模,它如何帮助预训练?", "ja": "マスクドランゲージモデリング（MLM）とは何か、事前学習にどう役立つか？"},
        back={"zh": "掩码语言建模(MLM)涉及隐藏序列中的随机标记。在BERT等模型中使用,MLM促进语言的双向理解。",
              "ja": "MLMは、シーケンス内のランダムなトークンを隠し、文脈からそれを予測するタスクです。"},
        sources={"zh": Source("d", 0, 1, "x", "zh"), "ja": Source("d", 0, 1, "x", "ja")},
        topic="t", qnum=7, chunk_ids=("c7",),
    )
    others = [qa_card(i, {"zh": f"第{i}个回答讲别的内容,也提到BERT模型{i}。"}) for i in range(1, 5)]
    cards = [right, *others]
    vectors = np.stack([unit(1, 0.01 * k) for k in range(len(cards))])
    q = quiz.make_question(0, cards, vectors, lang="zh", common=frozenset())
    shown = q.options[q.answer].text
    assert "MLM" not in shown and "掩码语言建模" not in shown and shown.startswith("＿＿"), shown
    assert "BERT" in shown  # a name the question does not use stays
    assert quiz.named_terms(right, "zh") >= {"mlm"}


def test_notes_without_qa_items_still_make_a_quiz_from_their_sections():
    """A learner's English notes (headings and prose, no Q&A list) gave "too few Q&A items to make
    a quiz". Their sections' "Explain …" cards are asked, the options other sections' opening
    sentences — never a section's own subsection, which says something true of it too."""
    from test_study_cards import docs_and_chunks

    notes = "# Notes\n\n" + "".join(
        f"## Topic {name}\n\n{name} is explained here with its own sentence number {k}.\n\n"
        for k, name in enumerate(("Quantization", "Pruning", "Distillation", "Caching", "Batching")))
    notes += "### Batching sizes\n\nBigger batches raise throughput but add latency.\n"
    docs, chunks = docs_and_chunks({"n.md": notes})
    cards = build_cards(chunks, docs)
    assert not [c for c in cards if c.kind == "qa"]
    ids = [c.id for c in cards]
    vectors = np.eye(len(cards) + 1, dtype=np.float32)[: len(cards)]
    for k, c in enumerate(cards):  # Batching and its subsection nearest each other
        if "Batching" in c.id:
            vectors[k, -1] = 3.0
            vectors[k] /= np.linalg.norm(vectors[k])
    qs = quiz.make_quiz(cards, vectors, n=20, lang="en", seed=3)
    assert len(qs) == len([c for c in cards if c.kind == "section"]) >= 6
    for q in qs:
        opts = [o.card_id for o in q.options]
        assert len(set(opts)) == 4 and all(i.startswith("section:") for i in opts) and opts[q.answer] == q.card_id
    batching = next(q for q in qs if q.card_id.endswith("#Topic Batching"))
    assert "section:n.md#Topic Batching > Batching sizes" in ids
    assert "section:n.md#Topic Batching > Batching sizes" not in [o.card_id for o in batching.options]


def test_the_quiz_report_measures_both_kinds(corpus_fake_index, tmp_path):
    from eval.quiz import main

    assert main(["--index", str(corpus_fake_index[0]), "--out", str(tmp_path), "--tag", "t"]) == 0
    got = json.loads((tmp_path / "quiz-t.json").read_text(encoding="utf-8"))
    assert got["shipped"]["questions"] == 100 and got["sections_shipped"]["questions"] > 30
    assert "| sections: key-term aware" in (tmp_path / "quiz-t.md").read_text(encoding="utf-8")


def test_a_latin_name_with_a_number_is_hidden_inside_a_japanese_sentence():
    """「GPT-4はGPT-3よりも：…」 showed the question's names: alone "GPT-4" is one analyzer word,
    in a Japanese sentence two ("gpt", "4")."""
    from study.quiz import _terms, mask

    terms = _terms("GPT-4はGPT-3と比べてどのような違いがあるか？")
    shown = mask("GPT-4はGPT-3よりも：大規模で、多様なタスクに対応します。", terms, "ja")
    assert "GPT" not in shown, shown
