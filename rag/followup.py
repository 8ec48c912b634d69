"""Follow-up questions: 「それの欠点は？」, "它有什么缺点?", "What are its limitations?".

A follow-up leans on the previous question: it opens with (or contains) a reference word
(それ/その/これ/この/它/这个/那个/its/it/that/this/they …), or it is so short that it names
no topic of its own (「欠点は？」, "and the drawbacks?"). It is searched together with the
previous question; the extraction then quotes only what is new (see :mod:`rag.answer`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rag.rules.questions import EN_CUE, EN_OPENER, JA_ZH_CUE, JA_ZH_INSIDE, QUESTION_WORDS
from rag.rules.script import CJK

# Facets a follow-up asks about without naming a topic, with the words a passage uses when it
# does address them (ja / zh / en). 「欠点は？」 asks for drawbacks; a passage that names none
# does not answer it, however close to the topic it is.
ASPECTS: dict[str, tuple[re.Pattern, re.Pattern]] = {
    "drawbacks": (
        re.compile(r"欠点|デメリット|短所|弱点|課題|問題点|限界|難点|缺点|劣势|弱点|局限|难点|问题|挑战|"
                   r"drawback|disadvantage|downside|limitation|weakness|cons\b|problem|challenge", re.I),
        re.compile(r"欠点|デメリット|短所|弱点|課題|問題|限界|難点|困難|懸念|缺点|劣势|局限|难点|问题|挑战|困难|"
                   r"不足|しかし|ただし|但|然而|難しい|困難|高く|増加|リスク|风险", re.I),
    ),
    "advantages": (
        re.compile(r"利点|メリット|長所|強み|良い点|好处|优点|优势|益处|advantage|benefit|pros\b|strength", re.I),
        re.compile(r"利点|メリット|長所|強み|向上|効率|削減|可能|最適|好处|优点|优势|提高|减少|降低|实现|适合|有效", re.I),
    ),
    "examples": (
        re.compile(r"例は|例を|具体例|例えば|举例|例子|比如|example|instance", re.I),
        re.compile(r"例|例えば|如|例如|比如|e\.g\.", re.I),
    ),
}


# Words that name a facet, not a topic: a short question made of them leans on the previous one.
FACETS = re.compile(
    r"^(?:対策|方法|手順|理由|原因|例|具体例|違い|仕組み|特徴|種類|用途|利点|欠点|メリット|デメリット|課題|限界|"
    r"缺点|优点|好处|方法|步骤|原因|例子|区别|原理|特点|用途|作用|难点|问题|局限|"
    r"pros|cons|drawbacks?|advantages?|benefits?|examples?|steps?|reasons?|limitations?|uses?)$",
    re.I,
)


def aspect_of(question: str) -> str | None:
    """The facet a follow-up asks about (:data:`ASPECTS`), if it is one of them."""
    for name, (asks, _) in ASPECTS.items():
        if asks.search(question):
            return name
    return None


def addresses(aspect: str, text: str) -> bool:
    """Whether ``text`` uses the words of a passage that addresses ``aspect``."""
    return bool(ASPECTS[aspect][1].search(text))
MAX_CJK_CHARS = 14  # a CJK question this short is a follow-up when it names no known topic
MAX_WORDS = 8


def is_followup(question: str, analyze: Callable[[str], list[str]] | None = None,
                known: Callable[[str], bool] | None = None) -> bool:
    """Whether ``question`` leans on the previous one.

    ``analyze`` is the index analyzer and ``known(term)`` says whether the notes contain a
    term: a short question whose every topic word is unknown or generic (「欠点は？」) is a
    follow-up; a short question naming a topic of the notes (「RAGとは？」) is not.

    >>> is_followup("それの欠点は？"), is_followup("What are its limitations?"), is_followup("RAGとは？")
    (True, True, False)
    """
    q = question.strip()
    cjk = len(CJK.findall(q))
    words = re.findall(r"[A-Za-z][\w\-+.']*", q)
    if cjk:
        if JA_ZH_CUE.match(q) or (cjk <= 2 * MAX_CJK_CHARS and JA_ZH_INSIDE.search(q)):
            return True
        if EN_CUE.search(q) and len(words) <= MAX_WORDS:
            return True
    elif words:
        if len(words) <= 2 * MAX_WORDS and (EN_CUE.search(q) or EN_OPENER.match(q)):
            return True
    short = (cjk and cjk <= MAX_CJK_CHARS and len(words) <= 1) or (not cjk and len(words) <= 3)
    core = re.sub(r"(?:は|って|とは|について|呢|吗|是什么|有哪些)?\s*[？?。.!！]*$", "", q).strip()
    if short and (aspect_of(q) or FACETS.match(core)) and (cjk <= 8 or len(words) <= 4):
        return True  # 「対策は？」「缺点呢?」"drawbacks?"
    if short and analyze is not None:
        topics = [t for t in analyze(q) if not t.startswith("~") and t not in QUESTION_WORDS and len(t) > 1]
        if not topics or all(FACETS.match(t) for t in topics):
            return True
        if known is not None and not any(known(t) for t in topics):
            return True
    return False


def combined_query(question: str, previous: str, *, max_chars: int = 400) -> str:
    """What to search for a follow-up: the previous question, then this one."""
    return f"{previous.strip()[-max_chars:]} {question.strip()}"
