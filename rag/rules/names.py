"""Names: the products, models and methods a question asks about (GPT-6, vLLM, Kubernetes,
Llama 5, RoPE, ジェイルブレイク) and the Latin-script names in the notes' headings (LoRA,
Self-Attention) — one pattern for a Latin-script term, three uses:

* :func:`distinctive_terms` — the answerer says "the notes do not cover GPT-6"; without the
  field's own words (:data:`GENERIC_TERMS`: LLM, NLP), :func:`topic_names`, the search puts
  passages with every name first;
* :func:`proper_names` — the drill's coverage check (a question mostly about names the notes
  never mention has no model answer);
* :func:`heading_names` — "What is …?" questions for English learners over ja/zh notes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rag.rules.questions import EN_STOP, QUESTION_WORDS
from rag.rules.script import KATAKANA_RUN

# A Latin-script term: GPT-4, vLLM, top-p, gpt-4o-mini, C++, text/plain.
LATIN_TERM = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_.+/][A-Za-z0-9]+)*")
_VERSION_AFTER = re.compile(r"[ -]?\d+(?:\.\d+)?(?![A-Za-z0-9.\-])")  # "Llama 5", not "QLoRA 4-bit"
_SENTENCE_START = re.compile(r"(?:^|[.?!]\s+)([A-Z][a-z]+)")
# Languages and peoples are written with a capital in English but name no product: "Why does
# Japanese text use more tokens than English?" asks what the Japanese notes explain in Japanese
# (日本語, 英語), and must not be declined as naming something the notes never mention.
LANGUAGE_NAMES = frozenset(
    "english japanese chinese mandarin cantonese korean french german spanish italian portuguese "
    "russian arabic hindi thai vietnamese indonesian dutch swedish polish turkish greek latin "
    "hebrew persian european asian american british western eastern".split()
)


def distinctive_terms(question: str, lang: str) -> list[str]:
    """Names, versions and products in ``question``: Latin-script terms with a digit or a
    capital inside (``GPT-6``, ``vLLM``), capitalised words not opening a sentence
    (``Kubernetes``), every Latin-script term of a Japanese or Chinese question, with a
    version number that follows (``Llama 5``).

    >>> distinctive_terms("What new features does GPT-6 have?", "en")
    ['GPT-6']
    >>> distinctive_terms("How does Kubernetes autoscaling work?", "en"), distinctive_terms("LoRAとは？", "ja")
    (['Kubernetes'], ['LoRA'])
    >>> distinctive_terms("fine-tune a 70B model using 4-bit", "en"), distinctive_terms("Llama 5の文脈長", "ja")
    ([], ['Llama 5'])
    >>> distinctive_terms("Why does Japanese text use more tokens than English?", "en")
    []
    """
    starts = {m.start(1) for m in _SENTENCE_START.finditer(question)}
    out = []
    for m in LATIN_TERM.finditer(question):
        t = m.group(0).strip()
        v = _VERSION_AFTER.match(question, m.end())
        if v and t[0].isupper() and t.isalpha():  # "Llama 5", "Claude 4": a name with its version
            t = question[m.start() : v.end()]
        low = t.lower()
        if low in EN_STOP or low in QUESTION_WORDS or low in LANGUAGE_NAMES or len(t) < 2:
            continue
        caps_inside = any(c.isupper() for c in t[1:])
        named = any(c.isdigit() for c in t) or caps_inside
        if lang in ("ja", "zh"):
            keep = named or t[0].isupper()
        else:
            keep = named or (t[0].isupper() and m.start() not in starts)
        if keep and t not in out:
            out.append(t)
    return out


_KATAKANA_NAME = re.compile(KATAKANA_RUN + "{4,}")


# Words of the field rather than names of a topic in it: notes on rule-based language processing
# write 自然言語処理, and "NLP" in 「ルールベースの時代のNLPは？」 must not put every passage
# that writes NLP ahead of them; 「大模型为什么需要这么多算力？」 is about 算力, not 模型.
GENERIC_TERMS = frozenset("llm llms ai q a the and or of in to for is are what how why nlp gpu cpu api "
                          "模型 大模型 大语言模型 モデル 大規模言語モデル".split())


def is_generic(term: str) -> bool:
    """``term`` is a word of the field (LLM, LLMs, NLP), not the name of a topic in it."""
    low = term.lower()
    return low in GENERIC_TERMS or low.rstrip("s") in GENERIC_TERMS


def topic_names(question: str, lang: str) -> list[str]:
    """The names of the topic ``question`` asks about: its distinctive terms without the
    field's own words.

    >>> topic_names("ルールベースの時代のNLPは？", "ja"), topic_names("LLMのLoRAとは？", "ja")
    ([], ['LoRA'])
    """
    return [t for t in distinctive_terms(question, lang) if not is_generic(t)]


def proper_names(text: str) -> list[str]:
    """Proper names a question asks about: Latin terms with two capitals or a digit (RoPE,
    AdamW, vLLM, GPT-4) and katakana words of four or more characters (ジェイルブレイク).

    >>> proper_names("RoPEとジェイルブレイクの関係は？"), proper_names("What is Attention?")
    (['RoPE', 'ジェイルブレイク'], [])
    """
    latin = [w for w in LATIN_TERM.findall(text) if sum(ch.isupper() for ch in w) >= 2 or any(ch.isdigit() for ch in w)]
    return list(dict.fromkeys(latin + _KATAKANA_NAME.findall(text)))


# A heading's name may run over words that start with a capital: "Self-Attention", "Chain of Thought".
_HEADING_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-][A-Za-z0-9]+)*(?:\s+[A-Z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*)*")


def heading_names(texts: Iterable[str]) -> list[str]:
    """The Latin-script names in ``texts`` (headings), in order, without generic words.

    >>> heading_names(["LoRAとQLoRA", "Self-Attentionの仕組み", "LLMの評価"])
    ['LoRA', 'QLoRA', 'Self-Attention']
    """
    out: list[str] = []
    for text in texts:
        for m in _HEADING_NAME.finditer(text):
            name = m.group(0).strip()
            if len(name) < 3 or is_generic(name):
                continue
            if name not in out:
                out.append(name)
    return out
