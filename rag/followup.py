"""Follow-up questions: 「それの欠点は？」, "它有什么缺点?", "What are its limitations?".

A follow-up leans on the previous question: it opens with (or contains) a reference word
(それ/その/これ/この/它/这个/那个/its/it/that/this/they …), or it is so short that it names
no topic of its own (「欠点は？」, "and the drawbacks?"). It is searched together with the
previous question; the extraction then quotes only what is new (see :mod:`rag.answer`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rag.rules.questions import EACH_WORDS, EN_CUE, EN_OPENER, EN_STOP, JA_ZH_CUE, JA_ZH_INSIDE, QUESTION_WORDS
from rag.rules.script import CJK, detect_lang

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
    "remedies": (
        re.compile(r"対策|防ぐ|防げ|防止|抑え|緩和|軽減|減らす|対処|对策|措施|缓解|避免|防止|应对|减少|降低|解决|"
                   r"mitigat|prevent|reduce|avoid|counter|fix|remed", re.I),
        re.compile(r"対策|防止|抑制|緩和|軽減|削減|対処|回避|缓解|避免|防止|应对|减少|降低|措施|"
                   r"mitigat|prevent|reduc|avoid", re.I),
    ),
    "causes": (
        re.compile(r"原因|理由|なぜ|なんで|どうして|为什么|为何|怎么会|\bwhy\b|\bcauses?\b|\breasons?\b", re.I),
        # a cause given: 「…だけなので、このような間違いが起こります」「…という特性から生じる」, 因为, "because"
        re.compile(r"なので|ので[、，,]|ため[、，,にでだ]|ためです|から(?:です|だ|生じ|起こ|来る|く)|に起因|原因|理由|"
                   r"因为|由于|所以|导致|造成|源于|\bbecause\b|\bdue to\b|\bcaused\b|\breasons?\b", re.I),
    ),
    "examples": (
        re.compile(r"例は|例を|具体例|例えば|举例|例子|比如|example|instance", re.I),
        # an example given, not any 例 (応用例, 如何): 例えば, （例：0.3）, 数学問題などで, 例如, e.g.
        re.compile(r"例えば|たとえば|具体例|例として|[（(]?例[:：]|など[でのをにはがもと、]|例如|比如|举例|例子|"
                   r"e\.g\.|for (?:example|instance)|such as", re.I),
    ),
}


# Words that name a facet, not a topic: a short question made of them leans on the previous one.
FACETS = re.compile(
    r"^(?:対策|方法|手順|理由|原因|例|具体例|具体|違い|仕組み|特徴|種類|用途|利点|欠点|メリット|デメリット|課題|限界|"
    r"長所|短所|強み|弱み|弱点|"
    r"缺点|优点|好处|方法|步骤|原因|例子|区别|原理|特点|用途|作用|难点|问题|局限|对策|措施|种类|类型|机制|挑战|优势|劣势|缺陷|"
    r"pros|cons|drawbacks?|downsides?|advantages?|benefits?|examples?|steps?|reasons?|limitations?|uses?)$",
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

# "Which one …?" 「どっちを…」「哪个…」 chooses between things the previous turn named — unless the
# question names its own alternatives (「LoRAとQLoRAのどちらが…」, "LoRA or QLoRA").
_WHICH = re.compile(r"\bwhich(?:\s+one|\s+of\s+(?:them|the\s+two|these|those)|\s+is|\s+would|\s+should|\s+do)\b|"
                    r"どっち|どちら|哪个|哪一个|哪种|哪一种", re.I)
# A comparison with one side named: the other is what the conversation is about.
# (「LoRAとQLoRAの違いは？」, 「LoRAはフルFTと比べて…」 and "difference between A and B" name both.)
_ONE_SIDE = re.compile(
    r"^[^、，,とはが和与跟]{1,40}?(?:との|と)(?:違い|ちがい|差|差異|比較)(?:は|って|を|$|[？?])|^[^、，,とはが]{1,40}?と比べ(?:て|ると|たら)|"
    r"^(?:那|那么)?(?:和|跟|与|同|比起)[^和与跟、，,]{1,40}?(?:相比|比|比较|比起来)|"
    r"^(?:and\s+)?(?:compared\s+(?:to|with)|versus|vs\.?)\s|^(?:what(?:'s| is) the )?difference (?:from|to|with)\s",
    re.I,
)
_ALTERNATIVES = re.compile(r"\S\s*(?:と|和|与|跟|还是|或者|\bor\b|\bvs\.?|\bversus\b)\s*\S", re.I)
# A reference word after a clause of the question's own that names something refers back to
# that clause: "What is LoRA and why does it …", 「LoRAとは何で、それは…」, 「破滅的忘却とその対策」.
_OWN_CLAUSE = re.compile(r"^(?P<head>.+?)(?:,|、|，|;|\band\b|と(?=その|それ|これ|$))")
_EN_FILLER = frozenset("i me my we our can could would should will you your give show tell explain "
                       "describe mean use used using do does did happen happens make get set need".split())


def names_no_topic(word: str) -> bool:
    """Whether ``word`` is a question word, points at what the previous turn named (それぞれ, each)
    or names the facet asked about (対策, drawbacks), not a topic."""
    return word in QUESTION_WORDS or word.lower() in EACH_WORDS or bool(FACETS.match(word)) or bool(aspect_of(word))


def _names_something(text: str, analyze, known, lang: str | None = None) -> bool:
    """Whether ``text`` names a topic: a noun (ja/zh) or a content word (en) that is no facet,
    no question word, and (ja/zh) known to the notes."""
    from rag.analyze import topic_words

    if CJK.search(text):
        cands = [n for n in topic_words(text, lang) if not names_no_topic(n)]
        return any(known is None or known(n) or (analyze and any(known(t) for t in analyze(n))) for n in cands)
    words = [w.lower() for w in re.findall(r"[A-Za-z][\w\-+.']*", text)]
    return any(w not in EN_STOP and w not in _EN_FILLER and not names_no_topic(w) for w in words)


def _refers_inside(q: str, cue: re.Match, analyze, known) -> bool:
    head = _OWN_CLAUSE.match(q[: cue.start()])
    return bool(head) and _names_something(head.group("head"), analyze, known, detect_lang(q))


def is_followup(question: str, analyze: Callable[[str], list[str]] | None = None,
                known: Callable[[str], bool] | None = None) -> bool:
    """Whether ``question`` leans on the previous one.

    ``analyze`` is the index analyzer and ``known(term)`` says whether the notes contain a
    term: a short question whose every topic word is unknown or generic (「欠点は？」) is a
    follow-up; a short question naming a topic of the notes (「RAGとは？」) is not.

    >>> is_followup("それの欠点は？"), is_followup("What are its limitations?"), is_followup("RAGとは？")
    (True, True, False)
    >>> is_followup("Which one should I use for creative writing?"), is_followup("What is LoRA and why does it help?")
    (True, False)
    """
    q = question.strip()
    cjk = len(CJK.findall(q))
    words = re.findall(r"[A-Za-z][\w\-+.']*", q)
    which = _WHICH.search(q)
    if which and not _ALTERNATIVES.search(q) and not _refers_inside(q, which, analyze, known):
        return True
    if _ONE_SIDE.search(q):
        return True  # 「QLoRAとの違いは？」「和QLoRA比呢?」"Compared to QLoRA?": the other side is the previous topic
    if cjk:
        if JA_ZH_CUE.match(q):
            return True
        inside = JA_ZH_INSIDE.search(q)
        if inside and cjk <= 2 * MAX_CJK_CHARS and not _refers_inside(q, inside, analyze, known):
            return True
        cue = EN_CUE.search(q)
        if cue and len(words) <= MAX_WORDS and not _refers_inside(q, cue, analyze, known):
            return True
    elif words:
        if EN_OPENER.match(q) and len(words) <= 2 * MAX_WORDS:
            return True
        cue = EN_CUE.search(q)
        if cue and len(words) <= 2 * MAX_WORDS and not _refers_inside(q, cue, analyze, known):
            return True
    short = (cjk and cjk <= MAX_CJK_CHARS and len(words) <= 1) or (not cjk and len(words) <= 3)
    core = re.sub(r"(?:は|って|とは|について|呢|吗|是什么|有哪些)?\s*[？?。.!！]*$", "", q).strip()
    if short and (aspect_of(q) or FACETS.match(core)) and not _names_something(q, analyze, known, detect_lang(q)):
        return True  # 「対策は？」「缺点呢?」"drawbacks?" — not 「LoRAの欠点は？」
    if not cjk and len(words) <= 6 and not _names_something(q, analyze, known):
        return True  # "Can you give an example?", "What are the steps?"
    if short and cjk and not _names_something(q, analyze, None):
        # 「高くするとどうなる？」「怎么避免?」: no noun of its own. A noun the notes do not know is a
        # topic of its own all the same (「红烧肉怎么做？」 is a new question, off the notes)
        return True
    if short and analyze is not None and not cjk:
        topics = [t for t in analyze(q) if not t.startswith("~") and t not in QUESTION_WORDS and len(t) > 1]
        if not topics or all(FACETS.match(t) for t in topics):
            return True
        if known is not None and not any(known(t) for t in topics):
            return True
    return False


def combined_query(question: str, previous: str, *, max_chars: int = 400) -> str:
    """What to search for a follow-up: the previous question, then this one."""
    return f"{previous.strip()[-max_chars:]} {question.strip()}"
