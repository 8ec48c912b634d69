"""Document structure: Q&A item labels, headings, list items, code fences, Markdown decoration
and the headings that mean nothing without their document.

The chunker cuts along these; extraction, cards and the drill recognise a Q&A item's question
line with the same patterns, so a label the chunker accepts is one every stage accepts.
"""

from __future__ import annotations

import bisect
import functools
import re

from rag.rules.normalize import normalize

# --- Q&A items ---------------------------------------------------------------------------------
# The words that label a numbered question: 问题12: / 問題3： / 质问 / 質問 / 題 / Q5. / Question 5:
# ("Question" before "Q" and "問題" before "題", so the longer label wins).
QA_LABEL_WORDS = ("问题", "問題", "质问", "質問", "題", "Question", "Q")
_WORDS = "|".join(QA_LABEL_WORDS)
_SEP = r"[:：.．、]"
# ``12. **question**`` on a line of its own: (number, question)
QA_BOLD = re.compile(r"^\s{0,3}(\d{1,3})[.)．]\s*\*\*(.+?)\*\*\s*$")
# ``问题12: question``: (number, question)
QA_LABEL = re.compile(rf"^\s{{0,3}}(?:{_WORDS})\s*(\d{{1,3}})\s*{_SEP}\s*(.+?)\s*$", re.I)
# A line that opens a Q&A item, either form (the question may continue on the line).
QA_LINE = re.compile(rf"^\s*(?:\d{{1,3}}[.)．]\s*\*\*|(?:{_WORDS})\s*\d{{1,3}}\s*{_SEP})", re.I)
# The label in front of a question, number optional (``Q:``, ``问题3：``), to strip it.
QA_PREFIX = re.compile(rf"^\s*(?:{_WORDS})\s*\d*\s*{_SEP}\s*", re.I)


def qa_item(line: str) -> tuple[int, str] | None:
    """``(number, question)`` when ``line`` opens a numbered Q&A item, else None.

    >>> qa_item("12. **LoRAとは？**"), qa_item("问题3：什么是RAG?"), qa_item("Question 5: What is RLHF?")
    ((12, 'LoRAとは？'), (3, '什么是RAG?'), (5, 'What is RLHF?'))
    >>> qa_item("3.2. 手法") is None
    True
    """
    m = QA_BOLD.match(line) or QA_LABEL.match(line)
    return (int(m.group(1)), m.group(2).strip()) if m else None


def strip_qa_label(text: str) -> str:
    """``text`` without a leading Q&A label (``問題3：``, ``Q:``, ``Question 2.``)."""
    return QA_PREFIX.sub("", text)


# --- headings ----------------------------------------------------------------------------------
MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
NUM_HEADING = re.compile(r"^(\d{1,2}(?:\.\d{1,2})*)\.?\s+(\S.{0,58})$")  # "3.2. Self-Attention"
# A line that may be a section heading inside a passage: numbered, 「課題1:」, or Markdown.
SECTION_LINE = re.compile(r"^\s*(?:\d{1,2}(?:\.\d{1,2})*\.?\s+\S|課題\s*\d+\s*[:：]|#)")
# A heading made by hand: a line set in bold, short, not ending as a sentence, question, list
# lead-in or clause does (the PDF and Word readers ask this of a bold line of its own).
BOLD_HEADING_CHARS = 60
_NOT_A_HEADING_END = frozenset("。．.！？!?：:、，,;；")


# A heading's own number, left out where the heading names a topic: "3.2.", "一、", "（二）", "第3章"
# (not the year of "2024-2025年" nor the count of "3つの…").
HEADING_NUMBER = re.compile(
    r"^(?:\d+(?:\.\d+)*(?:\.|(?=\s))|[一二三四五六七八九十百]+[、．.]|[（(](?:\d{1,3}|[一二三四五六七八九十]+)[)）]"
    r"|第[\d一二三四五六七八九十百]+[章節节部篇回])\s*"
)


def strip_heading_number(heading: str) -> str:
    """``heading`` without its own number ("一、进程与线程" -> "进程与线程")."""
    return HEADING_NUMBER.sub("", heading, count=1)


def bold_heading(text: str) -> bool:
    """Whether a line set in bold, a paragraph of its own, reads as a heading.

    >>> bold_heading("次元数の注意"), bold_heading("注意してください。"), bold_heading("什么是RAG？")
    (True, False, False)
    """
    text = text.strip()
    return 0 < len(text) <= BOLD_HEADING_CHARS and text[-1] not in _NOT_A_HEADING_END


# The label of a table of contents.
CONTENTS_LABEL = re.compile(r"^(?:目次|目录|目錄|もくじ|contents|table of contents|toc)$", re.I)
# Headings that mean nothing without their document (a card's front, a topic name, a title
# in a list of documents name the document too).
# A document's closing section: what a question about its conclusion wants (「Zenn問答の記事の結論は？」).
CONCLUSION_HEADINGS = frozenset("まとめ 結論 おわりに 結語 総括 总结 结论 结语 summary conclusion conclusions".split())
# A document's opening section: what a question about what it is about wants.
OPENING_HEADINGS = frozenset("はじめに 概要 序論 序章 引言 前言 概述 导言 introduction intro overview preface".split())
GENERIC_HEADINGS = CONCLUSION_HEADINGS | OPENING_HEADINGS | frozenset(("目次", "contents"))
# Headings that name only a facet of what the heading above them, or their document, is about
# ("Steps" under "Knowledge distillation", 「手順」, "The pipeline" in "Retrieval-Augmented
# Generation"), and the same words in a question asking for that facet.
_FACETS = {
    "steps": r"steps?|stages?|procedure|process|workflow|pipeline|手順|ステップ|流れ|やり方|步骤|流程|过程|做法",
    "drawbacks": r"drawbacks?|disadvantages?|cons|limitations?|downsides?|weaknesses|pitfalls|failure modes|"
                 r"欠点|デメリット|短所|弱点|限界|缺点|局限性?|劣势",
    "advantages": r"advantages?|benefits?|pros|strengths?|利点|メリット|長所|优点|优势|好处",
    "examples": r"examples?|use cases?|具体例|使用例|応用例|例子|示例|案例",
    "remedies": r"mitigations?|remedies|solutions?|countermeasures?|対策|解決策|対処法|对策|解决方案|解决方法",
    "causes": r"causes?|reasons?|原因|理由",
}
_FACET_HEADING = {k: re.compile(rf"^(?:(?:the|its|main|key|common)\s+)*(?:{v})$", re.I) for k, v in _FACETS.items()}
_FACET_ASKED = {k: re.compile(rf"(?<![A-Za-z])(?:{v})(?![A-Za-z])", re.I) for k, v in _FACETS.items()}


def heading_facet(heading: str) -> str | None:
    """The facet a heading names and nothing else (:data:`_FACETS`), its number and decoration aside.

    >>> heading_facet("## 2. Steps"), heading_facet("The pipeline"), heading_facet("手順"), heading_facet("LoRA")
    ('steps', 'steps', 'steps', None)
    """
    h = strip_heading_number(plain(heading).lstrip("#").strip()).rstrip("：:").strip()
    return next((k for k, pat in _FACET_HEADING.items() if pat.match(h)), None)


def facets_asked(question: str) -> set[str]:
    """The facets (:data:`_FACETS`) a question names.

    >>> sorted(facets_asked("What are the steps and drawbacks of knowledge distillation?"))
    ['drawbacks', 'steps']
    """
    return {k for k, pat in _FACET_ASKED.items() if pat.search(question)}


def with_document(heading: str, doc_title: str) -> str:
    """A heading as a name: a generic one (:data:`GENERIC_HEADINGS`: まとめ, Introduction …) is
    named with its document's title (「Zenn問答第12回「LLM」 — まとめ」), any other as it is.

    >>> with_document("まとめ", "LLM入門"), with_document("LoRA", "LLM入門")
    ('LLM入門 — まとめ', 'LoRA')
    """
    h = plain(heading).rstrip("：:")
    return f"{plain(doc_title)} — {h}" if h.lower() in GENERIC_HEADINGS and doc_title.strip() else h


_SHORT_NAME = 12  # characters: a heading this short is a word or two ("Memory cost", 「トークン化」)
_POINTS_BACK = re.compile(r"\b(?:it|its|this|these|they|them|those)\b|(?:これ|それ|この|その|こうした)", re.I)


def section_name(heading: str, section: str, doc_title: str) -> str:
    """A passage's heading as a name read away from its document (a card, a list of topics): a
    generic heading with its document's title (:func:`with_document`); a subsection's heading
    that names little by itself — short ("Memory cost", 「トークン化」) or pointing back ("Reducing
    it") — with the heading above it; any other, a Q&A item's question and a top-level heading as
    they are.

    >>> section_name("Memory cost", "KV cache > Memory cost", "Notes"), section_name("KV cache", "KV cache", "Notes")
    ('KV cache — Memory cost', 'KV cache')
    >>> section_name("Why it speeds up decoding", "KV cache > Why it speeds up decoding", "Notes")
    'KV cache — Why it speeds up decoding'
    >>> section_name("まとめ", "LLMの仕組み > まとめ", "LLM入門"), section_name("LoRAとは？", "質問と回答 > Q3", "面接")
    ('LLM入門 — まとめ', 'LoRAとは？')
    >>> section_name("なぜQuery、Key、Valueの3つが必要なのか", "仕組み > なぜQuery、Key、Valueの3つが必要なのか", "入門")
    'なぜQuery、Key、Valueの3つが必要なのか'
    """
    parts = section.split(" > ") if section else []
    name = with_document(heading, doc_title)
    own = title(heading)
    if len(parts) < 2 or plain(parts[-1]) != plain(heading) or name != plain(heading).rstrip("：:"):
        return name
    if len(own) > _SHORT_NAME and not _POINTS_BACK.search(own):
        return name
    return f"{title(parts[-2])} — {name}"


# --- lists and code ----------------------------------------------------------------------------
FENCE = re.compile(r"^\s*(```|~~~)")
# A fenced diagram (```mermaid, plantuml, dot): a picture in text. Its labels name what the
# picture shows; they explain nothing, so an answer never quotes them and they name no topic.
DIAGRAM_LANGUAGES = frozenset({"mermaid", "plantuml", "dot", "graphviz"})
_DIAGRAM = re.compile(r"^[ \t]*(```|~~~)[ \t]*(?:" + "|".join(sorted(DIAGRAM_LANGUAGES))
                      + r")\b[^\n]*\n.*?^[ \t]*\1[ \t]*$", re.M | re.S | re.I)


def without_diagrams(text: str) -> str:
    r"""``text`` without its fenced diagrams (:data:`DIAGRAM_LANGUAGES`).

    >>> without_diagrams("図:\n```mermaid\ngraph LR\n  A[Multi-Head Attention] --> B\n```\n説明。")
    '図:\n\n説明。'
    """
    return _DIAGRAM.sub("", text)
# A list mark to strip: "- ", "・", "1.", "2)", "3、", "（4）" (space after it optional).
BULLET = re.compile(r"^\s*(?:[-*+•・●◦]|\d{1,3}[.)、．]|[（(]\d{1,3}[)）])\s*")
# A line that is all bold: a title in the text ("**検索の流れ**"), meaningful only with what follows it.
BOLD_LINE = re.compile(r"^\s*(?:[-*+]\s+)?(\*\*|__)[^*_\n]+\1\s*[:：]?\s*$")
# A line that is a list item: a mark followed by a space (how the chunker keeps a list together).
BULLET_LINE = re.compile(r"^\s*(?:[-*+•・●◦]|\d{1,3}[.)])\s+")
# A bold term and what it means, written without a list mark (「**Greedy Decoding** - 常に最高確率の
# 単語を選ぶ」): one item of a list, as a marked line is.
TERM_ITEM = re.compile(r"^\s*(\*\*|__)[^*_\n]+\1\s*[-–—:：]\s*\S")


def is_item_line(line: str) -> bool:
    """Whether ``line`` is a list item: a mark and a space, or a bold term and its meaning.

    >>> is_item_line("- 一つ目"), is_item_line("**Top-k Sampling** - 上位k個から"), is_item_line("**見出し**")
    (True, True, False)
    """
    return bool(BULLET_LINE.match(line) or TERM_ITEM.match(line))


# An annotator's aside after an answer (「注释:…」 in the Chinese Q&A): commentary, no key point.
NOTE_LINE = re.compile(r"^\s*(?:注释|註釋|注|备注|備考|補足|Note)\s*[:：]", re.I)


_NUMBER_MARK = re.compile(r"^\s*[（(]?(\d{1,3})[.)、．）]")


def list_mark(line: str, bullet: str = "- ") -> str:
    """How a list item of the notes is marked when shown (an answer's line, a card's back): a
    numbered item keeps its number (steps stay steps: "1. 取得", "3、生成" -> "3."), any other
    item gets ``bullet``; "" for no item.

    >>> list_mark("1. **単語をIDに変換**"), list_mark("（2）排序"), list_mark("・手順"), list_mark("本文")
    ('1. ', '2. ', '- ', '')
    >>> list_mark("**サンプリング戦略**"), list_mark("**Top-k Sampling** - 上位k個から")  # a bold title is no item
    ('', '- ')
    """
    if not BULLET.match(line.strip()) or re.match(r"^\s*\d+(\.\d+)+", line):
        return ""
    if line.lstrip().startswith(("**", "__")) and not TERM_ITEM.match(line):
        return ""  # the "*" of a bold title ("**検索の流れ**") is no list mark
    m = _NUMBER_MARK.match(line)
    return f"{int(m.group(1))}. " if m else bullet


def is_list_item(line: str) -> bool:
    """Whether a line (of an answer) is a list item: "- a", "• a", "・a", "1. a", "2、a".

    >>> is_list_item("- 手順A"), is_list_item("・手順B"), is_list_item("2、步骤"), is_list_item("-1 は負")
    (True, True, True, False)
    """
    s = line.lstrip()
    return s.startswith(("- ", "* ", "+ ", "•", "・", "●")) or bool(re.match(r"^\d{1,3}[.)、．]", s))

# --- tables ----------------------------------------------------------------------------------------
# A Markdown table (GFM): a header line, a separator line (|---|:---:|), then its rows — as the
# notes write them and as the Word, web-page and PDF readers write a table. A row is quoted as one
# line naming its cells by their column: 「- Adam — 特徴: 学習率を自動調整; 学習率: 0.001」.
TABLE_LINE = re.compile(r"^\s*\|")
TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")


def table_cells(line: str) -> list[str]:
    """The cells of a table line (``\\|`` is a bar inside a cell).

    >>> table_cells("| Adam | 自動調整 \\\\| 適応 | 0.001 |")
    ['Adam', '自動調整 | 適応', '0.001']
    """
    parts = re.split(r"(?<!\\)\|", line.strip())
    if parts and not parts[0].strip():
        parts = parts[1:]
    if parts and not parts[-1].strip():
        parts = parts[:-1]
    return [c.strip().replace("\\|", "|") for c in parts]


@functools.lru_cache(maxsize=16)
def _tables(text: str) -> tuple[tuple[int, ...], tuple[tuple[int, int, tuple[str, ...]], ...]]:
    """The tables of ``text`` (read once per text: a document's text is asked about again and
    again): the start of each table's first row, sorted, and per table (first row start, end of
    its last row, header cells)."""
    starts, tables = [], []
    lines, pos = [], 0
    for line in text.split("\n"):
        lines.append((pos, line))
        pos += len(line) + 1
    k = 0
    while k + 1 < len(lines):
        (_, head), (_, sep) = lines[k], lines[k + 1]
        if TABLE_LINE.match(head) and TABLE_SEPARATOR.match(sep) and "|" in sep:
            header = tuple(table_cells(head))
            k += 2
            first = end = lines[k][0] if k < len(lines) else len(text)
            while k < len(lines) and TABLE_LINE.match(lines[k][1]):
                end = lines[k][0] + len(lines[k][1])
                k += 1
            if end > first:
                starts.append(first)
                tables.append((first, end, header))
        else:
            k += 1
    return tuple(starts), tuple(tables)


def row_at(text: str, pos: int) -> tuple[int, int, list[str], list[str]] | None:
    """The table row of ``text`` whose line holds offset ``pos``: (line start, line end, header
    cells, row cells), or None (not a data row of a table: a table is a header line, a separator
    line and the lines under them that start with a bar; pipe lines without a separator are no
    table — a diagram, a ruled quote).

    >>> row_at("| 手法 | 学習率 |\\n|---|---|\\n| Adam | 0.001 |\\n\\n本文", 25)
    (23, 39, ['手法', '学習率'], ['Adam', '0.001'])
    """
    starts, tables = _tables(text)
    k = bisect.bisect_right(starts, pos) - 1
    if k < 0 or pos > tables[k][1]:
        return None
    a = text.rfind("\n", 0, pos) + 1
    b = text.find("\n", pos)
    b = len(text) if b < 0 else b
    return a, b, list(tables[k][2]), table_cells(text[a:b])


def table_rows(text: str, start: int = 0, end: int | None = None) -> dict[int, tuple[int, list[str], list[str]]]:
    """Every data row of the tables of ``text`` whose line starts in ``[start, end)``: ``line
    start -> (line end, header cells, row cells)`` (see :func:`row_at`).

    >>> rows = table_rows("| 手法 | 学習率 |\\n|---|---|\\n| Adam | 0.001 |\\n\\n本文")
    >>> [(k, v[1], v[2]) for k, v in rows.items()]
    [(23, ['手法', '学習率'], ['Adam', '0.001'])]
    """
    end = len(text) if end is None else end
    starts, tables = _tables(text)
    out: dict[int, tuple[int, list[str], list[str]]] = {}
    for first, last, header in tables[max(0, bisect.bisect_right(starts, start) - 1):]:
        if first >= end:
            break
        pos = max(first, text.rfind("\n", 0, start) + 1 if start > first else first)
        while pos < min(last, end):
            stop = text.find("\n", pos)
            stop = len(text) if stop < 0 or stop > last else stop
            out[pos] = (stop, list(header), table_cells(text[pos:stop]))
            pos = stop + 1
    return out


def passage_rows(passage: str, doc: str | None = None, start: int = 0) -> dict[int, tuple[int, list[str], list[str]]]:
    """The table data rows of ``passage`` (which is ``doc[start:start + len(passage)]``), as
    :func:`table_rows` gives them but in the passage's offsets: a row of a table that began in
    the passage before (a long table the chunker cut) knows its header through ``doc``. Without
    ``doc``, or when the passage is not where ``start`` says, only tables whole in the passage.

    >>> doc = "| 手法 | 学習率 |\\n|---|---|\\n| Adam | 0.001 |\\n| SGD | 0.01 |"
    >>> at = doc.index("| SGD")
    >>> [(k, v[1], v[2]) for k, v in passage_rows(doc[at:], doc, at).items()]
    [(0, ['手法', '学習率'], ['SGD', '0.01'])]
    >>> passage_rows(doc[at:])
    {}
    """
    if "|" not in passage:
        return {}
    if doc is None or doc[start:start + len(passage)] != passage:
        return table_rows(passage)
    return {k - start: (e - start, h, c) for k, (e, h, c) in table_rows(doc, start, start + len(passage)).items()}


def row_sentence(header: list[str], cells: list[str]) -> str:
    """A table row as one line: its first cell, then each other cell after its column's name
    (an empty cell left out; a row longer than its header, or a header of blanks, keeps its
    cells bare).

    >>> row_sentence(["手法", "特徴", "学習率"], ["Adam", "モーメントで自動調整", "0.001"])
    'Adam — 特徴: モーメントで自動調整; 学習率: 0.001'
    >>> row_sentence(["", ""], ["a", "b"]), row_sentence(["x"], ["a", "b"])
    ('a — b', 'a — b')
    """
    cells = [plain(c) for c in cells]
    name, rest = (cells[0], cells[1:]) if cells else ("", [])
    named = len(cells) == len(header) and all(plain(h) for h in header[1:])
    parts = [f"{plain(h)}: {c}" if named else c for h, c in zip(header[1:] if named else rest, rest) if c]
    return f"{name} — {'; '.join(parts)}" if parts else name


def asks_about(question: str, name: str) -> bool:
    """Whether ``question`` names ``name`` (a table row's first cell): a Latin name as a whole
    word ("Adam" is not asked about in "AdamW?"), another as written (NFKC, lower case).

    >>> asks_about("Adamの学習率は？", "Adam"), asks_about("What about AdamW?", "Adam"), asks_about("束搜索是什么", "束搜索")
    (True, False, True)
    """
    n, q = normalize(name), normalize(question)
    if not n:
        return False
    if n.isascii():
        return re.search(rf"(?<![0-9a-z]){re.escape(n)}(?![0-9a-z])", q) is not None
    return n in q


def named_rows(question: str, rows: list, name_of) -> list:
    """``rows`` (table rows, ``name_of(row)`` its first cell) cut to those ``question`` names
    (:func:`asks_about`) when it names any: 「Adamの特徴は？」 asks about the Adam row, not SGD's."""
    named = [r for r in rows if asks_about(question, name_of(r))]
    return named or rows


def row_sentences(text: str, start: int = 0, end: int | None = None) -> list[str]:
    """Every table row of ``text`` starting in ``[start, end)`` as :func:`row_sentence` writes it
    (what a citation check compares a quoted row with)."""
    return [row_sentence(h, c) for _, h, c in table_rows(text, start, end).values()]

# --- Markdown decoration -----------------------------------------------------------------------
_EMPH = re.compile(r"(\*\*|__|\*|`)")
# A unit inside its line that opens with the emphasis closing before it: "* No — …" of
# "- *Is FlashAttention an approximation?* No — …" (its "* " marks no list item).
CLOSES_EMPHASIS = re.compile(r"(?:\*\*|__|\*|_)\s+")
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


def title(line: str) -> str:
    """A heading line as a title: :func:`plain`, without its section number.

    >>> title("### 1. 事前学習(Pre-training)"), title("4.2. 人間の意図への整合")
    ('事前学習(Pre-training)', '人間の意図への整合')
    >>> title("1.  10,000+ QPSを処理せよ"), title("1.5倍の高速化")  # a number of the text stays
    ('10,000+ QPSを処理せよ', '1.5倍の高速化')
    """
    return re.sub(r"^\d{1,2}(?:\.\d{1,2})*(?:\.(?!\d)\s*|\s+)", "", plain(line))
