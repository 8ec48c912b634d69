"""Text analyzers for BM25: the same function runs on passages and on queries.

Three analyzers, chosen by measurement (see ``eval/``):

* ``bigram``  — NFKC + lowercase; Han/kana runs become overlapping character bigrams
  (a single-character run stays a unigram); Latin words are Snowball-stemmed.
* ``words``   — Japanese through MeCab (fugashi + unidic-lite, base forms, particles and
  auxiliaries dropped), Chinese through jieba's search mode, English stemmed words.
* ``words+bigram`` — both token streams together: dictionary words for precision,
  bigrams as the dictionary-free fallback (a Japanese query written only in kanji,
  names a dictionary does not know).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable

from rag.lang import detect_lang
from rag.text import CJK_CLASS, EN_STOP, ZH_STOP, normalize, squash

ANALYZERS = ("bigram", "words", "words+bigram")

_RUN = re.compile(
    rf"(?P<cjk>[{CJK_CLASS}]+)"
    r"|(?P<word>[0-9a-z\u00c0-\u024f]+(?:[.\-+][0-9a-z]+)*)"
)
_EN_STOP = EN_STOP
_ZH_STOP = ZH_STOP
_JA_DROP_POS = frozenset({"助詞", "助動詞", "補助記号", "記号", "空白"})
# The Snowball stemmer and the MeCab tagger keep per-call state in the object: one searcher is
# shared by every app session (thread), so each call holds its object's lock. A lock, not one
# object per thread: Streamlit runs every rerun in a new thread, and a tagger costs ~50 ms to make.
_STEM_LOCK = threading.Lock()
_TAG_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("english")


def _latin(word: str) -> str | None:
    if word in _EN_STOP:
        return None
    if not word.isalpha():
        return word
    with _STEM_LOCK:
        return _stemmer().stemWord(word)


def _bigrams(run: str) -> list[str]:
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def bigram_tokens(text: str) -> list[str]:
    """Character bigrams for CJK, stemmed words for Latin script."""
    out: list[str] = []
    for m in _RUN.finditer(normalize(text)):
        if m.group("cjk"):
            out.extend(_bigrams(m.group("cjk")))
        else:
            tok = _latin(m.group("word"))
            if tok:
                out.append(tok)
    return out


@functools.lru_cache(maxsize=1)
def _tagger():
    import fugashi

    return fugashi.Tagger()


@functools.lru_cache(maxsize=1)
def _jieba():
    import logging

    import jieba

    jieba.setLogLevel(logging.ERROR)
    jieba.initialize()
    return jieba


def _ja_words(text: str) -> list[str]:
    out: list[str] = []
    with _TAG_LOCK:  # the nodes point into the tagger's buffer: read them under the lock too
        for w in _tagger()(text):
            if w.feature.pos1 in _JA_DROP_POS:
                continue
            base = getattr(w.feature, "orthBase", None) or w.surface
            out.append(base)
    return out


_KATAKANA = re.compile("[\u30a1-\u30ff]")


@functools.lru_cache(maxsize=8192)
def loanword_names(text: str) -> tuple[str, ...]:
    """The English words behind ``text``'s katakana loanwords, each run of them joined and
    squashed, from the dictionary the Japanese tokenizer already loads (UniDic writes a
    loanword's origin in its lemma: アテンション-attention): the notes' マルチヘッドアテンション
    names "Multi-Head Attention", ヤコビアン "Jacobian". A loanword UniDic gives no origin
    (トランスフォーマー) is left out.

    >>> loanword_names("マルチヘッドアテンションとアダプティブソフトマックス")
    ('multiheadattention', 'adaptivesoftmax')
    """
    if not _KATAKANA.search(text):
        return ()
    runs: list[str] = []
    cur: list[str] = []
    with _TAG_LOCK:
        for w in _tagger()(text):
            origin = (getattr(w.feature, "lemma", None) or "").partition("-")[2]
            if origin and re.search(r"[A-Za-z]", origin):
                cur.append(origin)
            elif cur:
                runs.append("".join(cur))
                cur = []
    if cur:
        runs.append("".join(cur))
    return tuple(dict.fromkeys(squash(r) for r in runs))


def _zh_words(text: str) -> list[str]:
    return list(_jieba().lcut_for_search(text))


def word_tokens(text: str) -> list[str]:
    """Dictionary words: MeCab for Japanese, jieba for Chinese, stemmed English words."""
    norm = normalize(text)
    lang = detect_lang(norm)
    raw = _ja_words(norm) if lang == "ja" else _zh_words(norm) if lang == "zh" else [norm]
    out: list[str] = []
    for piece in raw:
        for m in _RUN.finditer(piece):
            if m.group("cjk"):
                tok = m.group("cjk")
                if tok not in _ZH_STOP:
                    out.append(tok)
            else:
                tok = _latin(m.group("word"))
                if tok:
                    out.append(tok)
    return out


def words_and_bigrams(text: str) -> list[str]:
    """Dictionary words plus CJK bigrams (bigrams marked "~" so the two vocabularies stay apart)."""
    bigrams = [
        "~" + b for m in _RUN.finditer(normalize(text)) if m.group("cjk") for b in _bigrams(m.group("cjk"))
    ]
    return word_tokens(text) + bigrams


def get_analyzer(name: str) -> Callable[[str], list[str]]:
    """Return the analyzer called ``name`` (one of :data:`ANALYZERS`)."""
    table = {"bigram": bigram_tokens, "words": word_tokens, "words+bigram": words_and_bigrams}
    if name not in table:
        raise ValueError(f"analyzer must be one of {', '.join(ANALYZERS)}; got {name!r}")
    return table[name]


_JA_NOUN_SKIP = frozenset({"代名詞", "数詞", "非自立", "接尾", "副詞可能", "助数詞"})


def topic_words(text: str, lang: str | None = None) -> list[str]:
    """The words of a Japanese or Chinese text that can name a topic: its nouns (MeCab / jieba
    parts of speech; pronouns and counters left out), Latin-script words, and in Chinese the
    word a question asks about (before 是/怎么/为什么/如何: jieba tags 蒸馏, 拟合 as verbs).
    English text: []. ``lang``: the language of the whole question ``text`` is part of."""
    norm = normalize(text)
    lang = lang or detect_lang(norm)
    if lang == "ja":
        out = []
        for w in _tagger()(norm):
            f = w.feature
            if f.pos1 == "名詞" and f.pos2 not in _JA_NOUN_SKIP or _LATIN_WORD.fullmatch(w.surface):
                out.append(getattr(f, "orthBase", None) or w.surface)
        return out
    if lang == "zh":
        import jieba.posseg

        _jieba()
        words = jieba.posseg.lcut(norm)
        return [p.word for i, p in enumerate(words)
                if (p.flag.startswith("n") and p.flag != "nr") or p.flag == "eng"
                or (len(p.word) > 1 and i + 1 < len(words) and _ZH_ASKS.fullmatch(words[i + 1].word))]
    return []


_ZH_ASKS = re.compile(r"是|怎么|怎样|怎么办|为什么|如何|为何")
_LATIN_WORD = re.compile(r"[a-z][a-z0-9\-+.]*", re.I)
