"""Text rules, in one place: CJK character classes, sentence and unit splitting, Markdown
decoration. Ingest, search, answers and highlighting all use these (never a copy).
"""

from __future__ import annotations

import re

# --- character classes ------------------------------------------------------------------
KANA_CLASS = "\u3040-\u309f\u30a0-\u30ff\uff66-\uff9f"
HAN_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK_CLASS = KANA_CLASS + HAN_CLASS
KANA = re.compile(f"[{KANA_CLASS}]")
HAN = re.compile(f"[{HAN_CLASS}]")
CJK = re.compile(f"[{CJK_CLASS}]")
WORDY = re.compile(r"[^\W_]", re.UNICODE)
CLOSERS = "」』）)\"'”’】"

# --- sentences and units ----------------------------------------------------------------
_END = re.compile(r"[。！？!?]+[" + re.escape(CLOSERS) + r"]*|\.(?=\s)|\n\s*\n")
# A unit ends at 。！？!?, at an English full stop after a letter (not "3.1. Heading"), or a line end.
_UNIT_END = re.compile(r"[。！？!?]+[" + re.escape(CLOSERS) + r"]*|(?<=[^\W\d_])\.(?=\s)|\n")
MIN_UNIT_WORD_CHARS = 2


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Split ``text[start:end]`` after ``。！？!?``, an English full stop, or a blank line.
    The spans tile the range (whitespace stays with the sentence before it).

    >>> t = "Aです。Bですか？ C. D"
    >>> [t[s:e].strip() for s, e in sentence_spans(t)]
    ['Aです。', 'Bですか？', 'C.', 'D']
    """
    end = len(text) if end is None else end
    spans, s = [], start
    for m in _END.finditer(text, start, end):
        if m.end() > s:
            spans.append((s, m.end()))
            s = m.end()
    if s < end:
        spans.append((s, end))
    return spans


def trim_span(text: str, s: int, e: int) -> tuple[int, int]:
    """``(s, e)`` narrowed past the white space at both ends of ``text[s:e]``."""
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return s, e


def unit_spans(text: str) -> list[tuple[int, int]]:
    """The quotable units of a passage: every line, cut again at sentence ends; spans are
    trimmed of whitespace and a unit needs at least two letters or digits.

    A bullet, a step or a heading is one unit; a paragraph line gives one unit per sentence.

    >>> t = "# 見出し\\n- 手順A\\n本文です。次の文。\\n---\\n3.1. Self-Attention. It works."
    >>> [t[s:e] for s, e in unit_spans(t)]
    ['# 見出し', '- 手順A', '本文です。', '次の文。', '3.1. Self-Attention.', 'It works.']
    """
    out: list[tuple[int, int]] = []
    s = 0
    for m in [*_UNIT_END.finditer(text), None]:
        e = m.end() if m is not None else len(text)
        if e <= s and m is not None:
            continue
        a, b = trim_span(text, s, e)
        if len(WORDY.findall(text[a:b])) >= MIN_UNIT_WORD_CHARS:
            out.append((a, b))
        s = e
    return out


# --- Markdown decoration ----------------------------------------------------------------
FENCE = re.compile(r"^\s*(```|~~~)")
BULLET = re.compile(r"^\s*(?:[-*+•・●◦]|\d{1,3}[.)、．]|[（(]\d{1,3}[)）])\s*")
# An annotator's aside after an answer (「注释:…」 in the Chinese Q&A): commentary, no key point.
NOTE_LINE = re.compile(r"^\s*(?:注释|註釋|注|备注|備考|補足|Note)\s*[:：]", re.I)
_EMPH = re.compile(r"(\*\*|__|\*|`)")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")


def plain(line: str) -> str:
    """A line without Markdown decoration: heading marks, quote marks, bullets and
    numbering, emphasis, links.

    >>> plain("- **RAG**: [検索](http://x)で補う")
    'RAG: 検索で補う'
    """
    line = line.strip()
    line = re.sub(r"^#{1,6}\s*", "", line)
    line = re.sub(r"^>\s*", "", line)
    line = BULLET.sub("", line, count=1) if BULLET.match(line) and not re.match(r"^\d+(\.\d+)+", line) else line
    line = _LINK.sub(r"\1", line)
    line = _EMPH.sub("", line)
    return re.sub(r"\s+", " ", line).strip()


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


# --- names -----------------------------------------------------------------------------------
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_.+/][A-Za-z0-9]+)*")
_VERSION_AFTER = re.compile(r"[ -]?\d+(?:\.\d+)?(?![A-Za-z0-9.\-])")  # "Llama 5", not "QLoRA 4-bit"
_SENTENCE_START = re.compile(r"(?:^|[.?!]\s+)([A-Z][a-z]+)")


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
    """
    starts = {m.start(1) for m in _SENTENCE_START.finditer(question)}
    out = []
    for m in _NAME.finditer(question):
        t = m.group(0).strip()
        v = _VERSION_AFTER.match(question, m.end())
        if v and t[0].isupper() and t.isalpha():  # "Llama 5", "Claude 4": a name with its version
            t = question[m.start() : v.end()]
        low = t.lower()
        if low in EN_STOP or low in QUESTION_WORDS or len(t) < 2:
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


def squash(text: str) -> str:
    """Normalised (:func:`normalize`) without spaces, hyphens, underscores or dots, for name
    look-ups: "GPT-4" and "gpt 4" and "ＧＰＴ４" squash alike."""
    return re.sub(r"[\s\-_.]+", "", normalize(text))


# --- citation markers ---------------------------------------------------------------------
MARKER = re.compile(r"\[(\d+(?:\s*[,，、]\s*\d+)*)\]")
_MARKERS_TAIL = r"(?:\s*\[\d+(?:\s*[,，、]\s*\d+)*\])*"
# An answer sentence ends at 。！？!? (any run), at a full stop followed by space, the end or a
# marker, or at a line break. Closing quotes and citation markers right after the stop belong to it.
_ANSWER_END = re.compile(r"(?:[。！？!?]+|\.(?=\s|$|\[\d))[" + re.escape(CLOSERS) + r"]*" + _MARKERS_TAIL + r"|\n+")


def markers_in(text: str) -> list[int]:
    """Every passage number cited in ``text`` (``[2]``, ``[1, 3]``), in order.

    >>> markers_in("A [1]. B [2, 3]。")
    [1, 2, 3]
    """
    out: list[int] = []
    for m in MARKER.finditer(text):
        out.extend(int(n) for n in re.split(r"\s*[,，、]\s*", m.group(1)))
    return out


def strip_markers(text: str) -> str:
    """``text`` without citation markers (and the space before them)."""
    return re.sub(r"\s*" + MARKER.pattern, "", text)


def answer_sentences(text: str) -> list[str]:
    """Split an answer on 。！？.!? and line breaks; markers stay with their sentence.

    >>> answer_sentences("AはBです[1]。Cです。[2] It is D [3]. E")
    ['AはBです[1]。', 'Cです。[2]', 'It is D [3].', 'E']
    """
    out: list[str] = []
    pos = 0
    for m in _ANSWER_END.finditer(text):
        seg = text[pos : m.end()].strip()
        pos = m.end()
        if seg:
            out.append(seg)
    tail = text[pos:].strip()
    if tail:
        out.append(tail)
    merged: list[str] = []
    for s in out:
        if not WORDY.search(MARKER.sub("", s)):
            # Markers or punctuation alone ("[2]" on its own line) belong to the sentence before.
            if merged and MARKER.search(s):
                merged[-1] = f"{merged[-1]} {s}"
            continue
        merged.append(s)
    return merged


def normalize(text: str) -> str:
    """NFKC (full-width to half-width, compatibility forms) and lowercase."""
    import unicodedata

    return unicodedata.normalize("NFKC", text).lower()
