"""Question forms: the words that frame a question rather than name its topic, request
wrappers (「…について教えてください」「请介绍一下…」"Tell me about …"), what makes a line a
question or an interview prompt, and the cue words of a follow-up (それ/它/its …).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rag.rules.script import CLOSERS, WORDY, detect_lang
from rag.rules.structure import plain

# --- stop words ---------------------------------------------------------------------------
EN_STOP = frozenset(
    "a an and are as at be by can do does for from how in into is it its of on or "
    "the their this to was what when where which while who why with you your".split()
)
ZH_STOP = frozenset("的 了 是 在 和 与 及 或 也 都 而 被 把 对 中 有 吗 呢 吧 啊 之 其 为 以 于 这 那 个".split())
# Question words and fillers that name no topic (ja / zh / en), for highlighting and for
# telling a question's topic words from its frame.
QUESTION_WORDS = frozenset(
    "什么 为什么 怎么 怎样 如何 哪些 哪个 是否 可以 一下 有什么 区别 请 解释 说明 介绍 "
    "とは 何か 何 なぜ どう どの どんな 教える ある いる する なる できる れる ください 説明 違い "
    "explain describe tell difference between vs versus please".split()
)
# Greetings, thanks and fillers: a question made of them (and question words) names nothing to
# look up — "hello", "ok?", 「こんにちは」, 「你好」.
GREETINGS = frozenset("hello hi hey ok okay thanks thank yes no bye lol hmm there こんにちは こんばんは おはよう "
                      "ありがとう 你好 您好 谢谢 再见".split())


_NAMES_NOTHING = QUESTION_WORDS | EN_STOP | ZH_STOP | GREETINGS


def names_nothing(tokens: Iterable[str]) -> bool:
    """Whether a question's analyzed ``tokens`` hold no word to look up: only question words,
    stop words, greetings, numbers or one character repeated (「とは」, 「是什么」, "What is it?",
    "hello", "1234", 「ああああ」), so no passage can be about it. Character n-grams (``~…``) are
    the analyzer's, not words.

    >>> names_nothing(["とは"]), names_nothing(["hello"]), names_nothing(["1234"]), names_nothing(["llm"])
    (True, True, True, False)
    """
    return not any(not t.startswith("~") and t.lower() not in _NAMES_NOTHING and not t.isdigit() and len(set(t)) > 1
                   for t in tokens)


# Words that point at each of the things the previous turn named (「それぞれの例は？」, "both"):
# no topic of their own; a follow-up with one asks about every passage the previous answer quoted.
EACH_WORDS = frozenset("それぞれ 各々 両方 両者 どちらも 各自 两者 二者 两个 分别 各个 each both respectively".split())

# --- request wrappers ---------------------------------------------------------------------
# 「…について教えてください」「请介绍一下…」"Tell me about …": the wrapper says how to answer,
# not what about. Its words ("教えて", "説明") sit in every list of interview questions in the
# notes, so a keyword search for them finds question lists instead of answers (seed questions
# wrapped this way lost 15 points of hit@1, eval/results/phrasing.md).
_JA_REQUEST = re.compile(
    r"(?:について|に関して|を)?(?:もっと|詳しく|くわしく|簡単に|かんたんに|ざっくり|わかりやすく|分かりやすく)?"
    r"(?:教えて|説明して|解説して)(?:ください|下さい|くれ(?:ますか|ない)?|ほしい|欲しい|もらえ(?:ますか|る)|いただけ(?:ますか|る))?"
    r"(?:ませんか)?[。．.？?！!\s]*$"
    r"|(?:について|に関して|を)(?:説明|解説)(?:せよ|しなさい)[。．.]?\s*$"
)
_ZH_REQUEST = re.compile(
    r"^(?:请|請)?(?:问|問|你)?(?:详细|詳細|简单|簡單)?(?:地)?(?:介绍|介紹|解释|解釋|说明|說明|讲讲|講講|讲解|講解|描述)(?:一下)?(?:[:：])?"
    r"|(?:请|請)?(?:详细|简单)?(?:介绍|介紹|解释|解釋|说明|說明|讲讲|讲解)一下"
)
_EN_REQUEST = re.compile(
    r"^(?:(?:can|could|would) you\s+)?(?:please\s+)?(?:explain|describe|tell me about|walk me through)\b\s*[:,]?\s*"
    r"|\s*,?\s*please[.?!]*\s*$",
    re.I,
)
_QUOTED = re.compile(r"^[「『“\"](.+?)[」』”\"][。．.？?]?$")


def search_text(question: str) -> str:
    """What ``question`` asks about, without a request wrapper (what to search for); the
    question itself when nothing would be left.

    >>> search_text("RAGの仕組みを教えてください"), search_text("「ハルシネーション」について説明してください。")
    ('RAGの仕組み', 'ハルシネーション')
    >>> search_text("请介绍一下混合检索"), search_text("Tell me about LoRA, please")
    ('混合检索', 'LoRA')
    >>> search_text("LoRAとQLoRAの違いは？"), search_text("教えて")
    ('LoRAとQLoRAの違いは？', '教えて')
    """
    q = question.strip()
    core = _EN_REQUEST.sub("", _ZH_REQUEST.sub("", _JA_REQUEST.sub("", q))).strip()
    m = _QUOTED.match(core)
    if m:
        core = m.group(1).strip()
    core = core.rstrip("。．. ").strip() if core != q else core
    return core if WORDY.search(core) else q


# --- question forms ------------------------------------------------------------------------------
# A unit that ends with a question mark (closing quotes or emphasis after it).
QUESTION_END = re.compile(r"[？?][" + re.escape(CLOSERS + "*") + r"]*$")
# Interview prompts and rhetorical questions are questions too: 「…を説明せよ。」「…してください。」
# 「…とは何でしょうか。」「…是什么呢。」, "Explain …" (tested on a unit without Markdown).
PROMPT = re.compile(
    r"(?:せよ|しなさい|述べよ|示せ|答えよ|ください|でしょうか|ですか|のか|だろうか|吗|呢)\s*(?:[（(][^）)]*[）)])?\s*[。.]?$"
    r"|^(?:请|請)(?:解释|说明|描述|比较|设计|实现)"
    r"|^(?:explain|describe|design|implement|compare|derive|discuss|walk me through)\b",
    re.I,
)
# A list item that asks something anywhere in it (a question list's line).
_ASKS = re.compile(
    r"[？?]|せよ|示せ|述べよ|挙げよ|答えよ|書け|しなさい|してください|教えて|ですか|でしょうか|吗|什么|如何|为什么|怎么|怎样|请(?:解释|说明|描述|比较|介绍)"
    r"|^(?:what|why|how|when|which|who|explain|describe|compare|design|implement|derive)\b",
    re.IGNORECASE,
)


def is_question_unit(unit: str) -> bool:
    """Whether a unit (a sentence of a passage) is a question or a prompt — never quoted as
    an answer: it ends with a question mark, or is an imperative or rhetorical question.

    >>> is_question_unit("LoRAとは何でしょうか。"), is_question_unit("请解释注意力机制"), is_question_unit("It is fast.")
    (True, True, False)
    """
    return bool(QUESTION_END.search(unit.strip()) or PROMPT.search(plain(unit)))


def is_question(line: str) -> bool:
    """Whether a line asks something (a question mark, or an imperative like 説明せよ / 请解释 / Explain).

    >>> is_question("- LoRAとQLoRAの違いは？"), is_question("AdamWを導出せよ。"), is_question("LoRAは低ランク行列です。")
    (True, True, False)
    """
    return bool(_ASKS.search(plain(line)))


# A question about interview questions themselves: 「面接でどんなシステム設計の質問が出る？」
# 「面试中会问哪些关于智能体的问题？」 "What coding questions come up in senior interviews?". The
# notes' lists of interview questions answer it, so their questions are quoted. 問題 / 问题 alone
# is a problem (「LLMにはどんな問題がある？」「大模型有哪些问题？」): it counts only beside an interview.
_ASKS_FOR_QUESTIONS = re.compile(
    r"(?:どんな|どういう|どのような|よく|よくある|典型的な|定番の?)[^。？?]{0,20}(?:質問|設問)|質問[^。？?]{0,10}(?:出る|出ます|される|多い)"
    r"|面接[^。？?]*(?:質問|聞かれ|問われ|出る|出ます|問題|出題)|(?:よく|何が|何を)(?:聞かれ|問われ)"
    r"|面试[^。？?]*(?:问|題|题|考)|面试题|(?:会|常|被|经常)(?:问|考)|考(?:什么|哪些)"
    r"|\b(?:what|which|typical|common|usual)\b[^?]{0,40}\bquestions\b|\bquestions?\b[^?]{0,40}\b(?:asked|come up|comes up)\b"
    r"|\binterview questions?\b|\basked\b[^?]*\binterviews?\b",
    re.I,
)


# The frame of such a question, not its topic: in 「シニア面接でよく聞かれるMLOpsの質問は？」 the
# topic is MLOps.
INTERVIEW_WORDS = frozenset("面接 質問 設問 シニア 面试 问题 面试题 题目 interview interviews question questions senior "
                            "ask asked come expect common typical usual should".split())


def asks_for_questions(question: str) -> bool:
    """Whether ``question`` asks which questions are asked (in interviews), not for an answer.

    >>> asks_for_questions("面接でどんなシステム設計の質問が出る？"), asks_for_questions("面试会问哪些RAG的问题？")
    (True, True)
    >>> asks_for_questions("LLMにはどんな問題がある？"), asks_for_questions("大模型有哪些问题？"), asks_for_questions("What is RAG?")
    (False, False, False)
    """
    return bool(_ASKS_FOR_QUESTIONS.search(question))


# A question about a document's conclusion or gist: 「Zenn問答の記事の結論は？」「这篇文章的总结是什么？」
# "What does the article conclude?". It must name a document — by a word for one (記事, 文档,
# article) or by its title — or 「RAGの要点は？」 would be one.
_ASKS_FOR_CONCLUSION = re.compile(
    r"結論|まとめ|要点|要約|総括|结论|总结|摘要|\bconclu\w*|\bsummar\w*|\bsum(?:s|med)? up\b|\btakeaways?\b",
    re.I,
)
DOCUMENT_WORDS = re.compile(
    r"記事|資料|ノート|文書|ドキュメント|スライド|プレゼン|文章|文档|文件|笔记|资料|幻灯片|演示|这篇|本文|"
    r"\b(?:article|document|notes|guide|paper|post|chapter|slides?|deck|presentation|ppt)s?\b",
    re.I,
)


# A question about what a document is about: 「Zenn問答の記事には何が書いてある？」「这篇文章讲了什么？」
# "What is the Zenn article about?" (it must name a document, as a question about its conclusion).
_ASKS_ABOUT_DOCUMENT = re.compile(
    r"何が書いて|何について|どんな(?:内容|こと)|内容は|概要|"
    r"讲了什么|讲的是什么|讲什么|关于什么|主要内容|内容是什么|写了什么|概述|"
    r"\bwhat(?:'s| is| are)\b.{0,60}\babout\b|\bwhat does\b.{0,60}\b(?:cover|discuss|say)\b|\boverview\b",
    re.I,
)
# Words that frame a question about a document, not name it: in "What does the technical
# foundations article cover?" the title words are technical and foundations.
DOCUMENT_FRAME = frozenset("about cover covers covered discuss discusses say says overview content contents "
                           "main 内容 概要 主要 主要内容 概述".split())


# A question asking for code: 「RoPEのコードを見せて」「DPO损失函数的代码怎么写?」"Show the RoPE code".
_ASKS_FOR_CODE = re.compile(r"コード|代码|源码|\bcode\b|snippet|pseudo-?code|implement(?:ation)?\s+(?:of|in)\b|"
                            r"(?:in|with)\s+(?:python|pytorch)\b", re.I)


def asks_for_code(question: str) -> bool:
    """Whether ``question`` asks for the notes' code (a fenced block is then quoted whole).

    >>> asks_for_code("RoPEのコードを見せて"), asks_for_code("DPO损失函数的代码怎么写?"), asks_for_code("Show the RoPE code")
    (True, True, True)
    >>> asks_for_code("RoPEとは？"), asks_for_code("What does the encoder do?")
    (False, False)
    """
    return bool(_ASKS_FOR_CODE.search(question))


def asks_about_document(question: str) -> bool:
    """Whether ``question`` asks what a document is about (the document it names is
    :func:`rag.extract.named_documents`'s business).

    >>> asks_about_document("Zenn問答の記事には何が書いてある？"), asks_about_document("What is the Zenn article about?")
    (True, True)
    >>> asks_about_document("RAGとは？")
    False
    """
    return bool(_ASKS_ABOUT_DOCUMENT.search(question))


def asks_for_conclusion(question: str) -> bool:
    """Whether ``question`` asks for a document's conclusion or gist (the document it names is
    :func:`rag.extract.named_documents`'s business).

    >>> asks_for_conclusion("Zenn問答の記事の結論は？"), asks_for_conclusion("What does the article conclude?")
    (True, True)
    >>> asks_for_conclusion("RAGの仕組みは？")
    False
    """
    return bool(_ASKS_FOR_CONCLUSION.search(question))


# --- follow-up cues ------------------------------------------------------------------------------
# Words that open a follow-up (それの欠点は？ / 那它的缺点呢 / And what about QLoRA?) …
FOLLOWUP_OPENERS_JA_ZH = (
    "じゃあ", "じゃ", "では", "それでは", "なら", "それ", "その", "これ", "この", "あれ", "あの", "そいつ", "そっち",
    "そんな", "そういう", "こういう", "そう", "它", "它们", "这个", "那个", "这", "那", "这种", "那种", "此", "其",
    "那么", "那它", "然后", "还有", "另外",
)  # fmt: skip
FOLLOWUP_OPENERS_EN = ("and", "also", "so", "then", "what about", "how about", "and what about", "but")
# … those that open "What about X?", 「じゃあXは？」, 「那X呢?」: no reference word (「それは？」, 「它呢?」 lean on
# the previous turn's own topic), 那 read as "then"
FOLLOWUP_INSTEAD_OPENERS = ("じゃあ", "じゃ", "では", "それでは", "なら", "那么", "那", "还有", "另外", "and", "what about",
                            "how about", "and what about")
# … and reference words anywhere in a short follow-up.
FOLLOWUP_INSIDE_JA_ZH = ("それ", "その", "これ", "この", "そんな", "そういう", "它", "它们", "这个", "那个", "这种",
                         "那种", "这样", "那样")
FOLLOWUP_REFERENCES_EN = ("it", "its", "it's", "itself", "that", "this", "these", "those", "they", "them", "their",
                          "the former", "the latter", "such")


def _alternation(words) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


JA_ZH_CUE = re.compile(f"^(?:{_alternation(FOLLOWUP_OPENERS_JA_ZH)})")
JA_ZH_INSIDE = re.compile(f"(?:{_alternation(FOLLOWUP_INSIDE_JA_ZH)})")
EN_CUE = re.compile(rf"\b(?:{_alternation(FOLLOWUP_REFERENCES_EN)})\b|\bthen\s*\??$", re.I)
# "why …" and "so …" open self-contained questions as often as follow-ups ("Why do LLMs hallucinate?",
# "So what is RAG?"): no cue on their own (eval/data/followup_turns.jsonl)
EN_OPENER = re.compile(rf"^(?:{_alternation(tuple(w for w in FOLLOWUP_OPENERS_EN if w != 'so'))})\b", re.I)
# An opener with the particle after it, to strip from a follow-up (「それの欠点は？」 → 欠点は？).
_OPENER_STRIP = re.compile(
    rf"^(?:{_alternation(FOLLOWUP_OPENERS_JA_ZH + FOLLOWUP_OPENERS_EN)})\s*(?:の|は|が|を|に|で|と|的)?", re.I
)


# "What about X?", 「じゃあXは？」, 「那X呢?」: the previous question asked again of another topic
# (a bare name after the opener: no question word, no reference, no comparison of its own).
_INSTEAD = re.compile(rf"^(?:{_alternation(FOLLOWUP_INSTEAD_OPENERS)})"
                      r"\s*[、，,]?\s*(?P<topic>[^？?。.!！]{1,40}?)\s*(?:は|って|の方は|の場合は|呢|吗|怎么样|如何)?\s*[？?。.!！]*$",
                      re.I)
_ASKS_ITSELF = re.compile(r"\b(?:what|how|why|when|which|who|where|is|are|does|do|can)\b|どう|なぜ|なに|何|"
                          r"怎么|为什么|什么|哪|如何|違い|区别|不同|比", re.I)


def other_topic(question: str) -> str | None:
    """The topic a follow-up asks the previous question of instead ("What about Mixture of
    Experts?" after "What is LoRA?"), or ``None`` when it asks something of its own.

    >>> other_topic("What about Mixture of Experts?"), other_topic("じゃあMoEは？"), other_topic("那少样本学习呢?")
    ('Mixture of Experts', 'MoE', '少样本学习')
    >>> other_topic("じゃあQLoRAはそれとどう違うの？"), other_topic("And how is top-p different?"), other_topic("那它的缺点呢?")
    (None, None, None)
    """
    m = _INSTEAD.match(question.strip())
    topic = m.group("topic").strip(" 、，,") if m else ""
    if not topic or _ASKS_ITSELF.search(topic) or JA_ZH_INSIDE.search(topic) or EN_CUE.search(topic):
        return None
    return topic


def followup_aspect(question: str) -> str:
    """What a follow-up asks about, without its reference words.

    >>> followup_aspect("それの欠点は？"), followup_aspect("那它的缺点呢?"), followup_aspect("What are its limitations?")
    ('欠点', '缺点', 'limitations')
    """
    q = _OPENER_STRIP.sub("", question.strip()).strip(" 、，,")
    q = re.sub(r"(?:は|って|とは|について|有什么|是什么|吗|呢)?\s*[？?。.!！]*$", "", q)
    q = re.sub(r"^(?:what|how|why)\s+(?:are|is|does|do|about)\s+(?:its|their|the)?\s*", "", q, flags=re.I)
    return q.strip()[:60]


# A name put in quotes: the app's suggestions quote a section's name ("Tell me about “行動 / 経験”.").
# (A name may hold quotes of its own: 「Zenn問答第12回「LLM」 — はじめに」.)
QUOTED_NAME = re.compile(r"“([^”]{1,80})”|「((?:[^「」]|「[^「」]*」){1,80})」|『((?:[^『』]|『[^『』]*』){1,80})』|\"([^\"]{1,80})\"")


def quoted_names(question: str) -> frozenset[str]:
    """The names ``question`` puts in quotes (decoration aside).

    >>> sorted(quoted_names("Tell me about “行動 / 経験”.")), sorted(quoted_names("「Zenn問答「LLM」 — はじめに」について教えてください。"))
    (['行動 / 経験'], ['Zenn問答「LLM」 — はじめに'])
    """
    return frozenset(plain(next(g for g in m.groups() if g)) for m in QUOTED_NAME.finditer(question))


def question_language(question: str) -> str:
    """The language a question is written in: that of its own words, the names it quotes
    aside (all of it when nothing else is left).

    >>> question_language("Tell me about “行動 / 経験”."), question_language("「Attention」とは？"), question_language("“幻觉”是什么?")
    ('en', 'ja', 'zh')
    """
    rest = QUOTED_NAME.sub(" ", question)
    return detect_lang(rest) if WORDY.search(rest) else detect_lang(question)


# A question asking what one term is: 「RAGとは？」「RAGって何？」「什么是RAG?」「RAG是什么?」 "What is RAG?"
_DEFINED = re.compile(
    r"^\s*(?:(?P<ja>.{1,40}?)\s*(?:とは(?:何(?:ですか|でしょうか)?|なに)?|って(?:何|なに)(?:ですか)?)"
    r"|什么是\s*(?P<zh1>.{1,40}?)|(?P<zh2>.{1,40}?)\s*是什么"
    r"|what(?:'s| is| are)\s+(?:an?\s+|the\s+)?(?P<en>.{1,40}?))\s*[？?。.!！]*\s*$",
    re.I,
)


def defined_term(question: str) -> str:
    """The term a question asks the meaning of, or ``""``.

    >>> defined_term("RAGとは？"), defined_term("什么是RAG?"), defined_term("What is a KV cache?"), defined_term("RAGの手順は？")
    ('RAG', 'RAG', 'KV cache', '')
    """
    m = _DEFINED.match(question)
    return next((g.strip() for g in m.groups() if g and g.strip()), "") if m else ""
