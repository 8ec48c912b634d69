"""Structure-aware chunking with exact character offsets.

A document is read line by line and cut along its structure: numbered Q&A items
(``12. **question**``, ``问题12:``), Markdown headings, numbered headings (``3.2. title``)
and short stand-alone title lines in plain text. Each item or section becomes one chunk
when it fits ``max_chars``; larger ones are packed paragraph by paragraph (a bullet list
stays with its lead-in when it fits) and split at sentence ends (``。！？!?.``) as a
last resort. Web boilerplate (share/follow lines, ratings, navigation, repeated title
and teaser lines) is never part of a chunk.

Invariant: ``doc.text[c.start:c.end] == c.text`` for every chunk.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from rag.rules.script import detect_lang
from rag.rules.sentences import sentence_spans, trim_span
from rag.rules.structure import BULLET_LINE, FENCE, MD_HEADING, NUM_HEADING, TABLE_LINE, qa_item
from rag.types import Chunk, Document

DEFAULT_MAX_CHARS = 800

_NO_HEADING_END = tuple("。．.？?！!：:、,，;；")
_BOILERPLATE = re.compile(
    r"点赞|转发|关注(我的)?公众号|公众号文章|文章来自|扫码|二维码|未来已来|有缘一起同行|"
    r"フォローしてください|でフォロー|シェアしてください|share this|follow (me|us)|subscribe",
    re.I,
)
_SENTENCES = re.compile(r"[^。！？!?]+[。！？!?]*")
_NAV_WORDS = frozenset("首页 发现 看过 我的 登录 注册 分享 收藏 在看 阅读原文 返回 ホーム ログイン".split())
_PLAIN_TITLE = re.compile(r"^[\w \u3000]{1,16}$")  # short, letters only: "引言", "结论", "目次"
MIN_CHUNK_CHARS = 10
_META_LINE = re.compile(r"^\d+(\.\d+)?$|^\d+\s*(热度|阅读|次阅读|赞|views?|likes?)$", re.I)


@dataclass(slots=True)
class _Line:
    start: int
    end: int  # exclusive, without the newline
    text: str
    kind: str  # blank | drop | heading | qa | bullet | text
    level: int = 0
    label: str = ""
    qnum: int | None = None


def _is_boilerplate(s: str) -> bool:
    if _META_LINE.match(s):
        return True
    if set(s.split()) <= _NAV_WORDS:
        return True
    # every sentence of it a share/follow line: 「这50道题为您提供了…深入知识。欢迎分享这篇公众号文章…」
    # opens with the document's conclusion, which is kept (its request is a unit never quoted)
    return len(s) <= 80 and all(_BOILERPLATE.search(x) for x in _SENTENCES.findall(s))


def _scan(doc: Document) -> list[_Line]:
    text, pos = doc.text, doc.body_start
    raw: list[tuple[int, int, str]] = []
    for line in text[pos:].split("\n"):
        raw.append((pos, pos + len(line), line))
        pos += len(line) + 1
    stripped = [r[2].strip() for r in raw]
    # Markdown headings mark the sections, unless the only one is the document's title (a
    # plain text exported with its title as a heading): then the plain-text rules apply.
    has_md = any((m := MD_HEADING.match(s)) and m.group(2).strip("* ") != doc.title for s in stripped)
    teasers = _teasers(stripped)
    seen: set[str] = set()
    lines: list[_Line] = []
    in_code = False
    for i, (s, e, line) in enumerate(raw):
        st = stripped[i]
        if FENCE.match(line):
            in_code = not in_code
            lines.append(_Line(s, e, line, "text"))
            continue
        if in_code:
            lines.append(_Line(s, e, line, "text" if st else "blank"))
            continue
        if not st:
            lines.append(_Line(s, e, line, "blank"))
            continue
        # a line seen before is boilerplate (a repeated header or footer), but not a table's line:
        # every table of the notes may have the same |---|---| line, or the same row
        dup = st in seen and len(st) >= 8 and not st.startswith("|")
        seen.add(st)
        if dup or i in teasers or _is_boilerplate(st):
            lines.append(_Line(s, e, line, "drop"))
            continue
        if item := qa_item(line):
            lines.append(_Line(s, e, line, "qa", label=item[1], qnum=item[0]))
        elif m := MD_HEADING.match(line):
            lines.append(_Line(s, e, line, "heading", len(m.group(1)), m.group(2).strip("* ")))
        elif (
            (m := NUM_HEADING.match(line))
            and not has_md
            and "**" not in st
            and not st.endswith(_NO_HEADING_END)
            and not _continues_list(stripped, i, m.group(1))
        ):
            lines.append(_Line(s, e, line, "heading", m.group(1).count(".") + 1, m.group(2).strip()))
        elif BULLET_LINE.match(line):
            lines.append(_Line(s, e, line, "bullet"))
        elif not has_md and ((st == doc.title and len(st) <= 60) or _standalone_title(raw, stripped, i)):
            lines.append(_Line(s, e, line, "heading", 1, st))
        else:
            lines.append(_Line(s, e, line, "text"))
    return lines


def _continues_list(stripped: list[str], i: int, number: str) -> bool:
    """A numbered line after a lead-in that ends in a colon, or right after the item numbered
    one less, is a list item rather than a plain-text heading ("RAG涉及:" / "1. 检索…" /
    "2. 排序…"; a list whose indentation was lost on the way, e.g. through a web page)."""
    j = i - 1
    while j >= 0 and not stripped[j]:
        j -= 1
    if j < 0:
        return False
    prev = stripped[j]
    if prev.endswith((":", "：")):
        return True
    m = NUM_HEADING.match(prev)
    return bool(m) and "." not in m.group(1) and "." not in number and int(m.group(1)) + 1 == int(number)


TEASER_MIN_CHARS = 60
TEASER_PREFIX_CHARS = 40


def _teasers(stripped: list[str]) -> set[int]:
    """Lines that are a teaser of a later line: at least TEASER_MIN_CHARS long, and some
    later, different line starts with their first TEASER_PREFIX_CHARS characters (a
    summary repeated before the full paragraph).

    One pass from the end, keeping the distinct later lines by their prefix, so the cost is
    linear in the number of lines (comparing each line with every later one was quadratic:
    15 s for 16k lines).
    """
    later: dict[str, set[str]] = {}
    out: set[int] = set()
    for i in range(len(stripped) - 1, -1, -1):
        st = stripped[i]
        if len(st) < TEASER_PREFIX_CHARS:
            continue
        key = st[:TEASER_PREFIX_CHARS]
        others = later.setdefault(key, set())
        if len(st) >= TEASER_MIN_CHARS and len(others) - (st in others) > 0:
            out.add(i)
        others.add(st)
    return out


def _standalone_title(raw, stripped, i) -> bool:
    """A short line with blank lines around it and no sentence punctuation (plain-text headings)."""
    st = stripped[i]
    if not _PLAIN_TITLE.match(st):
        return False
    before = i == 0 or not stripped[i - 1]
    after = i + 1 >= len(stripped) or not stripped[i + 1]
    return before and after


@dataclass(slots=True)
class _Block:
    start: int
    end: int
    kind: str  # "para" | "list" | "heading"


@dataclass(slots=True)
class _Segment:
    heading: str
    section: str
    qnum: int | None
    kind: str
    blocks: list[_Block]


def _segments(doc: Document, lines: list[_Line]) -> list[_Segment]:
    stack: list[tuple[int, str]] = []
    segs: list[_Segment] = []
    cur = _Segment("", "", None, "text", [])

    def close():
        nonlocal cur
        if any(b.kind != "heading" for b in cur.blocks):
            segs.append(cur)

    def path(extra: str = "") -> str:
        names = [n for _, n in stack if n != doc.title]
        return " > ".join(names + ([extra] if extra else []))

    prev_kind = "blank"
    for ln in lines:
        if ln.kind in ("heading", "qa"):
            close()
            if ln.kind == "heading":
                while stack and stack[-1][0] >= ln.level:
                    stack.pop()
                stack.append((ln.level, ln.label))
                cur = _Segment(ln.label, path(), None, "section", [_Block(ln.start, ln.end, "heading")])
            else:
                cur = _Segment(ln.label, path(f"Q{ln.qnum}"), ln.qnum, "qa", [_Block(ln.start, ln.end, "heading")])
        elif ln.kind == "drop":
            close()
            cur = _Segment(cur.heading, cur.section, cur.qnum, cur.kind, [])
        elif ln.kind == "blank":
            pass
        else:
            kind = "list" if ln.kind == "bullet" else "para"
            last = cur.blocks[-1] if cur.blocks else None
            joins = last is not None and last.kind != "heading" and prev_kind != "blank"
            continues_list = (
                last is not None and last.kind == "list" and (kind == "list" or ln.text[:1].isspace())
            )
            if joins or continues_list:
                last.end = ln.end
                if kind == "list":
                    last.kind = "list"
            else:
                cur.blocks.append(_Block(ln.start, ln.end, kind))
        prev_kind = ln.kind
    close()
    if not segs:  # only headings (a one-line document): keep them as text rather than lose them
        blocks: list[_Block] = []
        for ln in lines:
            if ln.kind == "drop" and blocks:  # never pack a chunk across a dropped (boilerplate) line
                segs.append(_Segment("", "", None, "text", blocks))
                blocks = []
            elif ln.kind not in ("blank", "drop"):
                blocks.append(_Block(ln.start, ln.end, "para"))
        if blocks:
            segs.append(_Segment("", "", None, "text", blocks))
    return segs


def _pieces(text: str, blocks: list[_Block], max_chars: int) -> list[tuple[int, int]]:
    """Units no longer than max_chars: whole blocks, else sentences — a table row or a line of
    code whole, never cut inside — else hard cuts."""
    out: list[tuple[int, int]] = []
    for b in blocks:
        if b.end - b.start <= max_chars:
            out.append((b.start, b.end))
            continue
        for s, e in _runs(text, b.start, b.end):
            while e - s > max_chars:
                out.append((s, s + max_chars))
                s += max_chars
            out.append((s, e))
    return out


def _runs(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """``text[start:end]`` cut into its sentences, except that a table row, a fence and a line
    of a fenced block are each one piece (they have no sentence ends: a long table was cut
    every ``max_chars`` characters, in the middle of a row)."""
    out: list[tuple[int, int]] = []
    prose = None  # where the current run of prose lines began
    in_code = False
    pos = start
    while pos < end:
        stop = text.find("\n", pos, end)
        stop = end if stop < 0 else stop
        line = text[pos:stop]
        fence = bool(FENCE.match(line))
        whole = fence or in_code or bool(TABLE_LINE.match(line))
        in_code = in_code != fence
        if whole:
            if prose is not None:
                out += sentence_spans(text, prose, pos)
                prose = None
            out.append((pos, min(stop + 1, end)))
        elif prose is None:
            prose = pos
        pos = stop + 1
    if prose is not None:
        out += sentence_spans(text, prose, end)
    return out


def _pack(text: str, pieces: list[tuple[int, int]], max_chars: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for s, e in pieces:
        if spans and e - spans[-1][0] <= max_chars:
            spans[-1] = (spans[-1][0], e)
        else:
            spans.append((s, e))
    return [t for t in (trim_span(text, s, e) for s, e in spans) if len(text[t[0] : t[1]].strip()) >= MIN_CHUNK_CHARS]


def chunk_id(doc_id: str, text: str) -> str:
    """Stable content hash of a chunk (same text in the same document, same id)."""
    return hashlib.sha1(f"{doc_id}\0{text}".encode()).hexdigest()[:16]


def chunk_document(doc: Document, *, max_chars: int = DEFAULT_MAX_CHARS) -> list[Chunk]:
    """Cut ``doc`` into chunks along its structure, each at most ``max_chars`` characters."""
    if max_chars < 50:
        raise ValueError(f"max_chars must be >= 50, got {max_chars}")
    text = doc.text
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    for seg in _segments(doc, _scan(doc)):
        for s, e in _pack(text, _pieces(text, seg.blocks, max_chars), max_chars):
            body = text[s:e]
            cid = chunk_id(doc.doc_id, body)
            seen[cid] = seen.get(cid, 0) + 1
            if seen[cid] > 1:
                cid = f"{cid}-{seen[cid]}"
            chunks.append(
                Chunk(
                    id=cid,
                    doc_id=doc.doc_id,
                    text=body,
                    start=s,
                    end=e,
                    lang=detect_lang(body),
                    title=doc.title,
                    section=seg.section,
                    heading=seg.heading,
                    qnum=seg.qnum,
                    kind=seg.kind,
                )
            )
    return chunks
