"""Analyzers against the libraries' own output, normalisation, and language detection."""

from __future__ import annotations

import unicodedata

import pytest

from rag.analyze import ANALYZERS, bigram_tokens, get_analyzer, normalize, word_tokens, words_and_bigrams
from rag.lang import detect_lang

JA_DROP = {"助詞", "助動詞", "補助記号", "記号", "空白"}


@pytest.fixture(scope="module")
def tagger():
    import fugashi

    return fugashi.Tagger()


@pytest.fixture(scope="module")
def jieba():
    import logging

    import jieba

    jieba.setLogLevel(logging.ERROR)
    return jieba


def test_japanese_words_are_mecab_base_forms(tagger):
    s = "猫が魚を食べました"
    words = list(tagger(s))
    # what unidic says about this sentence
    assert [w.surface for w in words] == ["猫", "が", "魚", "を", "食べ", "まし", "た"]
    assert [w.feature.orthBase for w in words if w.feature.pos1 not in JA_DROP] == ["猫", "魚", "食べる"]
    # particles and auxiliaries dropped, the verb in its dictionary form
    assert word_tokens(s) == ["猫", "魚", "食べる"]


@pytest.mark.parametrize(
    "sentence",
    ["トランスフォーマーモデルにおけるアテンション機構の仕組みは？", "量子化はメモリ使用量を削減しつつ精度を維持します。"],
)
def test_japanese_words_match_the_tagger(tagger, sentence):
    expected = [
        w.feature.orthBase or w.surface
        for w in tagger(normalize(sentence))
        if w.feature.pos1 not in JA_DROP
    ]
    assert word_tokens(sentence) == expected
    assert expected  # the sentence has content words


def test_chinese_words_are_jieba_search_mode(jieba):
    s = "大语言模型的微调方法"
    assert jieba.lcut_for_search(s) == ["大", "语言", "模型", "的", "微调", "方法"]
    # "的" is a stop word, everything else is kept in jieba's order
    assert word_tokens(s) == ["大", "语言", "模型", "微调", "方法"]


def test_chinese_mixed_script_query(jieba):
    s = "LoRA与QLoRA有什么区别"
    pieces = jieba.lcut_for_search(normalize(s))
    toks = word_tokens(s)
    assert "区别" in pieces and "区别" in toks
    assert "lora" in toks and "qlora" in toks
    assert "与" not in toks and "有" not in toks  # stop words
    assert [t for t in toks if t not in ("lora", "qlora")] == [p for p in pieces if p not in ("lora", "qlora", "与", "有")]


def test_english_words_are_stemmed_without_stop_words():
    import snowballstemmer

    stem = snowballstemmer.stemmer("english").stemWord
    assert word_tokens("The models are running quickly") == [stem("models"), stem("running"), stem("quickly")]
    assert word_tokens("The models are running quickly") == ["model", "run", "quick"]


def test_nfkc_full_width_to_half_width():
    assert normalize("ＬｏＲＡ　ＧＰＴ－４ １２３") == "lora gpt-4 123"
    assert normalize("ｶﾀｶﾅ") == "カタカナ"
    assert normalize("①") == unicodedata.normalize("NFKC", "①") == "1"
    for analyze in (bigram_tokens, word_tokens, words_and_bigrams):
        assert analyze("ＬｏＲＡとＱＬｏＲＡの違い") == analyze("LoRAとQLoRAの違い")
        assert analyze("ﾄｰｸﾅｲｾﾞｰｼｮﾝ") == analyze("トークナイゼーション")


def test_bigram_values_by_hand():
    assert bigram_tokens("大语言模型") == ["大语", "语言", "言模", "模型"]
    # a one-character CJK run stays a unigram; Latin words are stemmed, lower-cased
    assert bigram_tokens("LoRAとQLoRA") == ["lora", "と", "qlora"]
    assert bigram_tokens("The models are running on GPT-4 with 4bit") == ["model", "run", "gpt-4", "4bit"]
    assert bigram_tokens("注意力、機構") == ["注意", "意力", "機構"]
    assert bigram_tokens("") == [] and bigram_tokens("？！ …") == []


def test_words_and_bigrams_concatenates_marked_bigrams():
    s = "猫が魚を食べました"
    assert words_and_bigrams(s) == word_tokens(s) + ["~" + b for b in ["猫が", "が魚", "魚を", "を食", "食べ", "べま", "まし", "した"]]


@pytest.mark.parametrize("name", ANALYZERS)
def test_same_output_for_query_and_passage(name):
    """The BM25 tokens stored for a passage are exactly what the query path produces for that text."""
    from ingest.pipeline import build
    from ingest.loader import parse_document
    from rag.search import Searcher

    from conftest import SMALL_CORPUS, FakeEncoder

    enc = FakeEncoder()
    docs = [parse_document(k, v.encode()) for k, v in SMALL_CORPUS.items()]
    index = build(docs, enc, analyzer=name)
    s = Searcher(index, encoder=enc, reranker="none")
    analyze = get_analyzer(name)
    for i, c in enumerate(index.chunks):
        assert index.bm25.tokens[i] == analyze(c.text) == list(s.query_tokens(c.text))


def test_unknown_analyzer():
    with pytest.raises(ValueError, match="analyzer must be one of"):
        get_analyzer("nope")


@pytest.mark.parametrize(
    "text, lang",
    [
        ("LoRAとQLoRAの違いは？", "ja"),
        ("LoRA与QLoRA有什么区别", "zh"),
        ("What is the difference between LoRA and QLoRA?", "en"),
        ("機械学習", "zh"),  # kanji only: no kana, reads as Chinese
        ("ｶﾀｶﾅ", "ja"),
        ("", "en"),
    ],
)
def test_detect_lang(text, lang):
    assert detect_lang(text) == lang
