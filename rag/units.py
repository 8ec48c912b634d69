"""What each unit of a passage is — ``text``, ``bullet``, ``lead`` (introduces a list),
``formula`` (a short formula in a code block), ``row`` (a data row of a Markdown table, quoted as
one line naming its cells by their columns), all quotable, or ``heading``, ``question`` (also
interview prompts and rhetorical questions), ``code``, ``table`` (a table's header and separator,
or pipe lines that make no table), ``meta`` (a sentence about the document itself, or one in an
HTML comment), ``planted`` (one that gives orders to an AI or the reader), never quoted.
Decided once, when the index is built (:mod:`rag.facts`), from the unit's own text and the line
it sits on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.rules.questions import QUESTION_END, is_question_unit
from rag.rules.script import WORDY
from rag.rules.sentences import STOPS
from rag.rules.structure import (
    BULLET, BULLET_LINE, CLOSES_EMPHASIS, FENCE, QA_LINE, SECTION_LINE, is_item_line, passage_rows, plain, qa_item,
)
from rag.safety import addresses_reader
from rag.types import Chunk

# An index stores a unit's kind as its place in this tuple: a new kind goes at the end.
UNIT_KINDS = ("text", "bullet", "lead", "formula", "heading", "question", "code", "table", "meta", "planted", "row")
QUOTABLE = frozenset(("text", "bullet", "lead", "formula", "row"))
# Sentences about the document itself — its introduction, sign-off, a request to share it —
# say nothing about any topic: 「本ガイドは…」「本記事では…」「今回は…深掘りしてみました」
# 「最後まで読んでいただき…」「注释:这份…文档…」「如果您觉得这篇文章对您有帮助…」.
_META = re.compile(
    r"^(?:注释|註釋|注|備考)?\s*[:：]?\s*(?:本ガイド|このガイド|本記事|この記事で|今回は|本稿|本文(?:では|は)|这份|本指南|本文将|这篇文章|"
    r"如果您觉得|in this (?:article|guide|post)|this (?:article|guide|post) )"
    r"|ガイドです[。.]?$|最後まで読んで|ありがとうございました|点赞|关注我的|thanks for reading"
    # where else to read the author, a request to pass the document on: 「…私のLinkedInプロフィールで
    # ご覧いただけます」「LinkedInコミュニティで共有し…」「欢迎分享这篇公众号文章…」
    r"|私の(?:LinkedIn|ブログ|プロフィール|Twitter|X)|共有し[^。]{0,20}コミュニティ|コミュニティで共有|欢迎分享"
    r"|(?:follow|subscribe to) (?:me|my)\b"
    # what the document is: 「以下は、…職において…尋ねられた面接質問です。」 "The following are … questions"
    r"|^以下は[^。]{0,240}(?:質問|一覧|まとめ|問題)(?:集)?(?:です|になります)|^以下是[^。]{0,240}(?:问题|面试题|总结|列表)"
    r"|^(?:the following|below) (?:are|is) [^.]{0,240}(?:questions|a list|a summary)\b"
    # a signpost to what comes next says nothing about it: 「…の流れを見てみましょう。」
    # 「具体例で見ていきましょう。」「让我们来看看…」 "Let's look at …"
    r"|(?:見て|みて)(?:み|いき)ましょう[。.!！]?$|(?:解説|紹介|説明)して(?:いき|み)ましょう[。.!！]?$"
    r"|^让我们(?:来)?(?:看看|看一下)|^(?:now\s+)?let'?s\s+(?:take\s+a\s+)?look\b",
    re.I,
)
_FORMULA = re.compile(r"[=≈∑Σ√×∂]")
MAX_FORMULA_CHARS = 120


def unit_kind(chunk: Chunk, line: str, unit: str, in_code: bool | str) -> str:
    """What a unit is, from its own text and the line it sits on: ``text``, ``bullet``,
    ``lead`` (introduces a list), ``formula`` (a short formula in a code block) — quotable —
    or ``heading``, ``question`` (also interview prompts and rhetorical questions), ``code``,
    ``table``, ``meta`` (a sentence about the document itself), ``planted`` (one that gives
    orders to an AI or the reader, :func:`rag.safety.addresses_reader`) — never quoted.
    ``in_code``: the line is inside a fenced block (``"program"``: of a program, all code)."""
    s = line.strip()
    if FENCE.match(line):
        return "code"
    if in_code:
        if in_code == "program" or "->" in s or len(s) > MAX_FORMULA_CHARS:
            return "code"
        if _FORMULA.search(s):
            return "formula"
        return "bullet" if BULLET.match(s) and len(WORDY.findall(s)) >= 3 else "code"  # "- 1: 完全一致"
    if s.startswith("|"):
        return "table"
    if s.startswith("#") or qa_item(s) or (QA_LINE.match(s) and chunk.kind == "qa"):
        # a Q&A item's question line — as the chunker reads it, or in a passage it cut as one; in
        # other passages "1. **単語をIDに変換** - 辞書を使って…" is a numbered step
        return "heading"
    u = plain(unit)
    head = plain(chunk.heading) if chunk.heading else ""
    # the heading said again (a bold title under it), not a list item asking about it: under
    # 「## エージェント」, 「- エージェントをどう評価するか？」 is a question of the list
    asks_in_list = BULLET.match(s) and QUESTION_END.search(unit.strip())
    if head and (u == head or (len(u) >= 4 and u in head) or (head in u and len(u) <= len(head) + 12 and not asks_in_list)):
        return "heading"
    if addresses_reader(u):  # "ignore previous instructions", "you must …": planted, never an answer
        return "planted"
    if _META.search(u):  # before a question: 「…共有し、…役立ててください。」 asks nothing
        return "meta"
    if is_question_unit(unit):
        return "question"
    if SECTION_LINE.match(s) and not s.endswith(tuple(STOPS)) and len(s) <= 60 and (
        re.match(r"^\d{1,2}\.\d", s) or not BULLET.match(s)
    ):
        return "heading"
    if len(WORDY.findall(u)) < 4:
        return "heading" if not BULLET.match(s) else "bullet"
    if u.endswith((":", "：")):
        return "lead"
    if BULLET.match(s):
        return "bullet"
    return "text"


# A fenced program (```python, or a block with a line such as "def …", "return …", "import …"):
# its lines are code, never a formula quoted alone — "inv_freq = 1.0 / (base ** …)" is an
# assignment, and a line of a program means nothing out of it.
_NOT_PROGRAM = frozenset({"", "math", "latex", "tex", "katex", "text", "txt", "plaintext", "plain"})
_PROGRAM_LINE = re.compile(
    r"^\s*(?:def|class|import|from\s+\S+\s+import|return|for\s.+\bin\b|while\b|if\s.+:\s*$|elif\b|else\s*:|"
    r"try\s*:|function\b|const\b|let\b|var\b|#include\b|public\b|private\b|fn\b|func\b|async\b|print\()"
)


def _program(fence: str, after: Sequence[str]) -> str | bool:
    """``"program"`` when the block the fence line ``fence`` opens (its lines ``after``, up to
    the closing fence) is a program, else ``False``."""
    info = FENCE.sub("", fence).strip().split(maxsplit=1)
    if info and info[0].lower() not in _NOT_PROGRAM:
        return "program"
    for line in after:
        if FENCE.match(line):
            break
        if _PROGRAM_LINE.match(line):
            return "program"
    return False


_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
# After a question on its line, the answer: the question was set off in emphasis ("- *Is it
# exact?* No — …", the unit opening with the emphasis closing) or the answer is labelled
# ("Q: …? A: …", 「答え：…」) — not more of an interview prompt.
_ANSWER_LABEL = re.compile(r"(?:A|Ans|Answer|答え?|回答|解答)\s*[:：]", re.I)


def chunk_unit_kinds(chunk: Chunk, doc: str, spans: Sequence[tuple[int, int]]) -> list[str]:
    """The kind of each unit of ``chunk`` (``spans`` in offsets of the document text ``doc``);
    a line that opens with a question or a heading is one throughout."""
    text = chunk.text
    # the line each unit sits on, and whether that line is inside a code fence (True) or a
    # program's fence ("program": its lines are code, none a formula)
    line_at: list[tuple[int, int, bool | str]] = []
    pos, in_code = 0, False
    lines = text.split("\n")
    for k, line in enumerate(lines):
        fence = bool(FENCE.match(line))
        line_at.append((pos, pos + len(line), False if fence else in_code))
        if fence:
            in_code = False if in_code else (_program(line, lines[k + 1 :]) or True)
        pos += len(line) + 1
    # an HTML comment (<!-- … -->) shows nothing where the notes are rendered: never an answer
    comments = [(m.start(), m.end()) for m in _COMMENT.finditer(text)]
    out: list[str] = []
    line_kind: dict[int, str] = {}  # a line that opens with a question is a question throughout
    # the rows of a table the chunker cut know their header in the passage before
    rows = passage_rows(text, doc, chunk.start)
    for s, e in spans:
        s, e = int(s), int(e)
        rel = s - chunk.start
        ls, le, code = next(((a, b, c) for a, b, c in line_at if a <= rel <= b), (rel, rel, False))
        kind = unit_kind(chunk, text[ls:le], doc[s:e], code)
        if not code and any(a <= rel < b for a, b in comments):
            kind = "meta"
        if kind == "table" and ls in rows:
            kind = "row"
        if line_kind.get(ls) == "question" and kind in QUOTABLE - {"row", "formula"} and not (
            CLOSES_EMPHASIS.match(doc[s:e]) or _ANSWER_LABEL.match(doc[s:e])):
            kind = "question"  # 「- 量子化は…どう機能するか？4ビット、3ビット、2ビット間のトレードオフ。」: all one prompt
        elif line_kind.get(ls) == "heading" and kind in ("text", "lead"):
            kind = "heading"
        elif (kind == "text" and e - chunk.start >= le - 1 and _list_follows(doc, chunk.start + le)
              and (_ANNOUNCES.search(doc[s:e]) or (rel == ls and _open_line(doc[s:e])))):
            kind = "lead"  # 「RAGでは、この制限を以下の流れで克服します」 and the numbered steps under it
        line_kind.setdefault(ls, kind)
        out.append(kind)
    return out


# a sentence that announces what follows it (「以下の流れで」「步骤如下」 "as follows"): with a list
# right under it, it is that list's lead-in, as a line ending in a colon is
_ANNOUNCES = re.compile(r"以下|下記|次のよう|次の通り|次のとおり|如下|下面|下列|the following|as follows", re.I)


# a whole line that closes no sentence (「LLMの学習と推論には膨大な計算資源が必要です」) with a list
# right under it is that list's lead-in too: the list says what the line leaves open (the figures)
_CLOSED = re.compile("[" + re.escape(STOPS) + r":：」』）)\]]\s*$")  # a sentence end, a colon or a closer
MIN_OPEN_LINE = 12  # characters: shorter lines above a list are labels, read as headings or left alone


def _open_line(line: str) -> bool:
    """Whether ``line`` (a whole line of text) ends without closing its sentence.

    >>> _open_line("LLMの学習と推論には膨大な計算資源が必要です"), _open_line("計算資源が必要です。")
    (True, False)
    >>> _open_line("短い見出し"), _open_line("- 一つ目の項目で文が閉じていない行")
    (False, False)
    """
    t = line.strip()
    return len(t) >= MIN_OPEN_LINE and not _CLOSED.search(t) and not BULLET_LINE.match(t)


def _list_follows(text: str, line_end: int) -> bool:
    """Whether the first non-blank line after offset ``line_end`` of ``text`` (the document:
    a list the chunker put in the next passage still follows the line) is a list item."""
    for line in text[line_end:].split("\n"):
        if line.strip():
            return is_item_line(line)
    return False


