"""Chunker invariants (property-tested) and the structure it finds in the real corpus."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import CORPUS, JA_TOP50, NUMBERED_DOC, ZH_TOP50
from ingest.chunker import DEFAULT_MAX_CHARS, chunk_document, chunk_id
from ingest.loader import load_corpus, parse_document
from rag.text import sentence_spans

# --- generated documents -------------------------------------------------------------

JA_SENT = [
    "トークナイゼーションはテキストを小さな単位に分割します。",
    "アテンション機構は重要なトークンに重みを付けます！",
    "LoRAは低ランク行列でモデルを効率的に適応させますか？",
    "量子化はメモリ使用量を大幅に削減する。",
    "温度を下げると出力は決定的になる",
]
ZH_SENT = [
    "分词是将文本分解为更小单元的过程。",
    "注意力机制允许模型权衡不同标记的重要性!",
    "QLoRA通过量化进一步减少内存使用?",
    "检索增强生成结合了检索和生成。",
    "没有标点的一句话也可以出现",
]
EN_SENT = [
    "Tokenization splits text into subword units.",
    "Attention weighs tokens by their relevance!",
    "Why does quantization save memory?",
    "BM25 is a bag-of-words ranking function.",
    "a fragment without a full stop",
]
# Lines a web page adds around an article: the chunker must never keep them.
BOILERPLATE = [
    "首页 发现",
    "看过 我的",
    "文章来自公众号“AI修猫Prompt",
    "请点赞、转发并关注我的公众号",
    "未来已来,有缘一起同行",
    "0热度",
    "4.8",
    "Hao Hoang - LinkedInでフォローしてください！",
]
CODE_LINES = ["def f(x):", "    return x * 2", "", "for i in range(3):", "    print(f(i))", "# a comment in code"]

sentence = st.sampled_from(JA_SENT + ZH_SENT + EN_SENT)
cjk_run = st.text(alphabet="的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严",
    min_size=1,
    max_size=300,
)
en_words = st.lists(st.sampled_from("model token attention the a retrieval vector is of fusion rank chunk".split()), min_size=1, max_size=60).map(" ".join)
paragraph = st.lists(st.one_of(sentence, cjk_run, en_words), min_size=1, max_size=8).map("".join)
title_text = st.sampled_from(["はじめに", "質問と回答", "引言", "混合检索", "Fusion methods", "まとめ", "Overview of RAG"])
question = st.sampled_from(["LoRAとQLoRAの違いは？", "什么是分词?", "What is top-p sampling?", "アテンションの仕組みは？"])


@dataclass
class Line:
    text: str
    boilerplate: bool = False


def _block(kind: str, draw) -> list[Line]:
    if kind == "md_heading":
        return [Line("#" * draw(st.integers(1, 4)) + " " + draw(title_text))]
    if kind == "qa_bold":
        return [Line(f"{draw(st.integers(1, 60))}. **{draw(question)}**")]
    if kind == "qa_label":
        return [Line(f"问题{draw(st.integers(1, 60))}:{draw(question)}")]
    if kind == "num_heading":
        return [Line(f"{draw(st.integers(1, 9))}.{draw(st.integers(1, 9))}. {draw(title_text)}")]
    if kind == "bullets":
        mark = draw(st.sampled_from(["-", "*", "•", "1."]))
        return [Line(f"{mark} {draw(sentence)}") for _ in range(draw(st.integers(1, 4)))]
    if kind == "indented":
        return [Line("    " + draw(paragraph))]
    if kind == "code":
        return [Line("```python")] + [Line(s) for s in draw(st.lists(st.sampled_from(CODE_LINES), max_size=6))] + [Line("```")]
    if kind == "boilerplate":
        return [Line(draw(st.sampled_from(BOILERPLATE)), boilerplate=True)]
    if kind == "blank":
        return [Line("")]
    return [Line(draw(paragraph))]


KINDS = ["md_heading", "qa_bold", "qa_label", "num_heading", "bullets", "indented", "code", "boilerplate", "blank", "para", "para"]


@st.composite
def documents(draw):
    """(raw bytes, body lines) of a generated document; boilerplate lines are flagged."""
    lines: list[Line] = []
    for kind in draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=40)):
        lines.extend(_block(kind, draw))
        if draw(st.booleans()):
            lines.append(Line(""))
    front = ""
    if draw(st.booleans()):
        meta = {"title": draw(title_text), "source": "https://example.com/x", "tags": ["LLM", "面接"]}
        front = "---\n" + yaml.safe_dump(meta, allow_unicode=True) + "---\n"
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    body = newline.join(ln.text for ln in lines) + draw(st.sampled_from(["", newline]))
    return (front.replace("\n", newline) + body).encode("utf-8"), lines


def line_spans(text: str, start: int) -> list[tuple[int, int, str]]:
    out, pos = [], start
    for line in text[start:].split("\n"):
        out.append((pos, pos + len(line), line))
        pos += len(line) + 1
    return out


def check_invariants(doc, chunks, max_chars: int) -> None:
    text = doc.text
    prev_end = doc.body_start
    for c in chunks:
        assert text[c.start : c.end] == c.text, c
        assert c.text.strip(), c
        assert 0 < c.end - c.start <= max_chars, (c.end - c.start, max_chars)
        # ordered, non-overlapping, and never inside the front matter
        assert c.start >= prev_end, (c.start, prev_end)
        prev_end = c.end
        assert c.doc_id == doc.doc_id
    ids = [c.id for c in chunks]
    assert len(set(ids)) == len(ids)


def overlaps(c, s: int, e: int) -> bool:
    return c.start < e and s < c.end


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(doc=documents(), max_chars=st.sampled_from([50, 80, 200, DEFAULT_MAX_CHARS]))
def test_generated_documents_keep_invariants(doc, max_chars):
    raw, lines = doc
    assume(any(ln.text.strip() for ln in lines))  # an empty file is not a document (test_faults)
    d = parse_document("gen/doc.md", raw)
    chunks = chunk_document(d, max_chars=max_chars)
    check_invariants(d, chunks, max_chars)

    # ids are stable: chunking the same bytes again gives identical chunks
    again = chunk_document(parse_document("gen/doc.md", raw), max_chars=max_chars)
    assert again == chunks

    # front matter (when present and well-formed) is never part of a chunk
    if raw.startswith(b"---"):
        assert d.body_start > 0 and d.text[: d.body_start].rstrip().endswith("---")
        assert all(c.start >= d.body_start for c in chunks)

    # generated boilerplate lines never end up inside a chunk
    spans = line_spans(d.text, d.body_start)
    assert len(spans) >= len(lines)
    for (s, e, got), ln in zip(spans, lines):
        assert got == ln.text
        if ln.boilerplate:
            assert not any(overlaps(c, s, e) for c in chunks), (got, [c.text for c in chunks if overlaps(c, s, e)])


@given(doc=documents())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_chunk_ids_depend_on_document_and_text(doc):
    raw, lines = doc
    assume(any(ln.text.strip() for ln in lines))
    a = chunk_document(parse_document("a.md", raw))
    b = chunk_document(parse_document("b.md", raw))
    assert [c.text for c in a] == [c.text for c in b]
    if a:
        assert not {c.id for c in a} & {c.id for c in b}


def test_chunk_ids_are_stable_across_processes():
    """Ids are content hashes, not Python's per-process salted hash: a fresh interpreter agrees."""
    import json
    import os
    import subprocess
    import sys

    from conftest import ROOT

    code = (
        "import json; from pathlib import Path; from ingest.loader import load_corpus; "
        "from ingest.chunker import chunk_document; "
        f"print(json.dumps([c.id for d in load_corpus(Path({str(CORPUS)!r})) for c in chunk_document(d)]))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    here = [c.id for d in load_corpus(CORPUS) for c in chunk_document(d)]
    assert json.loads(out.stdout) == here


def test_chunk_id_is_content_hash():
    import hashlib

    assert chunk_id("d.md", "本文") == hashlib.sha1("d.md\0本文".encode()).hexdigest()[:16]
    assert chunk_id("d.md", "本文") != chunk_id("d.md", "本文。")


def test_repeated_text_gets_distinct_ids():
    # lines under 8 characters are not dropped as repeats, so the same passage occurs twice,
    # separated by a dropped rating line
    para = "短い行です\n二行目です"
    raw = f"---\ntitle: T\n---\n{para}\n\n0热度\n\n{para}\n".encode()
    d = parse_document("dup.md", raw)
    chunks = chunk_document(d)
    assert [c.text for c in chunks] == [para, para]
    assert chunks[0].start < chunks[1].start
    h = chunk_id("dup.md", para)
    assert [c.id for c in chunks] == [h, h + "-2"]


def test_heading_only_document_never_packs_across_boilerplate():
    # found by Hypothesis: a document of headings only, with a boilerplate line between them
    raw = "# はじめに\n首页 发现\n# はじめに\n".encode()
    d = parse_document("h.md", raw)
    chunks = chunk_document(d, max_chars=50)
    check_invariants(d, chunks, 50)
    s = d.text.index("首页")
    assert not any(overlaps(c, s, s + len("首页 发现")) for c in chunks)


def _teasers_by_definition(lines: list[str]) -> set[int]:
    """The teaser rule as first written (quadratic): a line of 60+ characters whose first 40
    characters start some later, different line."""
    return {
        i
        for i, st_ in enumerate(lines)
        if len(st_) >= 60 and any(o.startswith(st_[:40]) and o != st_ for o in lines[i + 1 :])
    }


_PREFIXES = ["A" * 40, "B" * 39, "あ" * 40, "A" * 20]
teaser_lines = st.lists(
    st.builds(lambda p, tail: p + tail, st.sampled_from(_PREFIXES), st.text(alphabet="xyz ", max_size=30)),
    max_size=40,
)


@given(lines=teaser_lines)
@settings(max_examples=300, deadline=None)
def test_linear_teaser_scan_matches_the_definition(lines):
    from ingest.chunker import _teasers

    assert _teasers(lines) == _teasers_by_definition(lines)


def test_max_chars_below_minimum_is_rejected():
    d = parse_document("x.md", "# T\n\nsome text here.\n".encode())
    with pytest.raises(ValueError, match="max_chars"):
        chunk_document(d, max_chars=10)


def test_long_paragraph_is_split_at_sentence_ends():
    sents = [f"これは{i}番目の文で、分割の位置を確かめるためのものです。" for i in range(40)]
    raw = ("# 長い段落\n\n" + "".join(sents) + "\n").encode()
    d = parse_document("long.md", raw)
    chunks = chunk_document(d, max_chars=200)
    assert len(chunks) > 1
    check_invariants(d, chunks, 200)
    for c in chunks:
        assert c.text.endswith("。")  # every cut falls after a sentence end


def test_qa_item_metadata():
    raw = "# 学習ノート\n\n## 質問と回答\n\n7. **LoRAとは何か？**\n\n    低ランク適応です。パラメータを節約します。\n\n问题8:什么是QLoRA?\n\n量化后的LoRA,节省显存。\n".encode()
    chunks = chunk_document(parse_document("qa.md", raw))
    assert [(c.kind, c.qnum, c.heading) for c in chunks] == [
        ("qa", 7, "LoRAとは何か？"),
        ("qa", 8, "什么是QLoRA?"),
    ]
    # the document title (first heading) is left out of the section path
    assert chunks[0].section == "質問と回答 > Q7"
    assert chunks[0].text.startswith("7. **LoRA")


# --- the real corpus -----------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus_docs():
    return {d.doc_id: d for d in load_corpus(CORPUS)}


def test_corpus_has_the_five_documents(corpus_docs):
    assert sorted(corpus_docs) == sorted(p.name for p in CORPUS.iterdir() if p.suffix in (".md", ".txt"))
    assert len(corpus_docs) == 5


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.iterdir()))
@pytest.mark.parametrize("max_chars", [DEFAULT_MAX_CHARS, 120])
def test_real_documents_keep_invariants(corpus_docs, name, max_chars):
    d = corpus_docs[name]
    chunks = chunk_document(d, max_chars=max_chars)
    assert chunks
    check_invariants(d, chunks, max_chars)
    assert chunk_document(d, max_chars=max_chars) == chunks
    if d.text.startswith("---"):
        assert d.body_start > 0
        assert all(c.start >= d.body_start for c in chunks)
        assert not any("title:" in c.text or "tags:" in c.text for c in chunks)


BOILERPLATE_IN_CORPUS = {
    ZH_TOP50: [
        "首页 发现",
        "看过 我的",
        "0热度",
        "4.8",
        "未来已来,有缘一起同行",
        "文章来自公众号“AI修猫Prompt",
        "如果您觉得这篇文章对您有帮助,请点赞、转发并关注我的公众号,我将持续为您提供更多高质量的AI/ML技术内容。",
    ],
    JA_TOP50: ["Hao Hoang - AIインサイトを知りたい方はLinkedInでフォローしてください！"],
}


@pytest.mark.parametrize("name", sorted(BOILERPLATE_IN_CORPUS))
def test_real_boilerplate_lines_are_never_in_a_chunk(corpus_docs, name):
    d = corpus_docs[name]
    chunks = chunk_document(d)
    for line in BOILERPLATE_IN_CORPUS[name]:
        spans = [(m.start(), m.end()) for m in re.finditer("^" + re.escape(line) + "$", d.text, re.M)]
        assert spans, f"{line!r} should be a line of {name}"
        for s, e in spans:
            assert not any(overlaps(c, s, e) for c in chunks), line


def test_a_conclusion_sharing_its_line_with_a_share_request_is_kept(corpus_docs):
    """「这50道题为您提供了LLMs的深入知识,从核心概念到高级技术。欢迎分享这篇公众号文章,…」: the
    document's conclusion was dropped with the request after it, and 「…的结论是什么?」 quoted a date
    and the Japanese introduction; a line is boilerplate only when each sentence is."""
    chunks = chunk_document(corpus_docs[ZH_TOP50])
    assert any("这50道题为您提供了LLMs的深入知识" in c.text and c.section == "结论" for c in chunks)


def _numbered_questions(text: str, pattern: str) -> dict[int, tuple[int, str]]:
    return {int(m.group(1)): (m.start(), m.group(2).strip()) for m in re.finditer(pattern, text, re.M)}


@pytest.mark.parametrize(
    "name, pattern",
    [(JA_TOP50, r"^(\d+)\. \*\*(.+)\*\*\s*$"), (ZH_TOP50, r"^问题(\d+)[:：](.+)$")],
)
def test_top50_documents_give_fifty_qa_items(corpus_docs, name, pattern):
    d = corpus_docs[name]
    chunks = chunk_document(d)
    questions = _numbered_questions(d.text, pattern)
    assert sorted(questions) == list(range(1, 51))  # the file itself has items 1..50
    qa = [c for c in chunks if c.kind == "qa"]
    assert sorted({c.qnum for c in qa}) == list(range(1, 51))
    for n, (line_start, q) in questions.items():
        first = next(c for c in qa if c.qnum == n)
        assert first.start == line_start  # the item's chunk starts at its question line
        assert first.heading == q
        assert first.section.endswith(f"Q{n}")
        assert all(c.heading == q for c in qa if c.qnum == n)
    # items appear in document order
    assert [c.qnum for c in qa] == sorted(c.qnum for c in qa)


def test_numbered_headings_give_sections(corpus_docs):
    d = corpus_docs[NUMBERED_DOC]
    chunks = chunk_document(d)
    parent = re.search(r"^3\. (.+)$", d.text, re.M).group(1).strip()
    child_m = re.search(r"^3\.1\. (.+)$", d.text, re.M)
    child = child_m.group(1).strip()
    c = next(c for c in chunks if c.start == child_m.start())
    assert c.kind == "section"
    assert c.heading == child
    assert c.section == f"{parent} > {child}"
    top = next(c for c in chunks if c.heading == parent)
    assert top.section == parent and top.kind == "section"
    assert all(c.kind == "section" for c in chunks)


def test_sentence_spans_tile_the_text():
    text = "Aです。Bですか？ C. D\n\n次の段落！最後"
    spans = sentence_spans(text)
    assert [text[s:e].strip() for s, e in spans] == ["Aです。", "Bですか？", "C.", "D", "次の段落！", "最後"]
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))


def test_a_title_heading_alone_leaves_plain_text_rules_on():
    body = ("1. はじめに\nLLMは次のトークンを予測するモデルである。\n\n"
            "2. 学習の手順\n学習は三つの段階からなる:\n1. 事前学習で言語を学ぶ\n2. 指示で調整する\n3. 人の評価で整える\n")
    plain = chunk_document(parse_document("notes.txt", ("Notes on LLMs\n\n" + body).encode()))
    titled = chunk_document(parse_document("notes.txt", ("# Notes on LLMs\n\n" + body).encode()))
    # numbered lines are headings in both; the list after "…からなる:" is not cut into headings
    assert [c.heading for c in titled] == [c.heading for c in plain] == ["はじめに", "学習の手順"]
    assert "3. 人の評価で整える" in titled[-1].text
    sectioned = chunk_document(parse_document("notes.md", ("# Notes on LLMs\n\n## Intro\n\n" + body).encode()))
    assert [c.heading for c in sectioned] == ["Intro"]  # a real Markdown section: numbered lines stay text


def test_a_second_table_keeps_its_separator_line_and_stays_one_passage():
    """Every table has the same |---|---|---| line: it was dropped as a repeated (boilerplate)
    line, which cut the second table from its header and left a passage of the header alone."""
    text = ("# 最適化手法\n\n| 手法 | 学習率 |\n|---|---|\n| Adam | 0.001 |\n\n"
            "# 活性化関数\n\n| 関数 | 特徴 |\n|---|---|\n| ReLU | 計算が速い |\n| GELU | 滑らか |\n")
    chunks = chunk_document(parse_document("t.md", text.encode()))
    second = [c for c in chunks if "活性化関数" in c.text]
    assert len(second) == 1 and "|---|---|\n| ReLU" in second[0].text and "| GELU | 滑らか |" in second[0].text, chunks


def test_a_long_table_is_cut_between_rows_and_every_row_is_embedded_with_its_columns():
    """A long table is cut into several passages, between its rows (it was cut every 800
    characters, inside a row); the rows of the later passages are compared with a question as
    the rows of the first are — named by the header's columns, which stay in the first passage —
    not as raw pipe lines."""
    from ingest.pipeline import unit_texts

    rows = "\n".join(f"| 手法{i} | 学習率は{i}e-4で安定する | 用途{i} |" for i in range(40))
    raw = f"# 最適化手法\n\n| 手法 | 特徴 | 用途 |\n|---|---|---|\n{rows}\n".encode()
    doc = parse_document("t.md", raw)
    chunks = chunk_document(doc, max_chars=300)
    assert len(chunks) > 2 and "| 手法 | 特徴 |" not in chunks[-1].text
    # a table longer than a passage is cut between its rows, never inside one
    assert all(line.startswith("|") and line.endswith("|")
               for c in chunks for line in c.text.splitlines() if line and not line.startswith("#")), \
        [c.text[:40] for c in chunks]
    texts, offsets, _ = unit_texts(chunks, {doc.doc_id: doc.text})
    last = texts[offsets[-2]: offsets[-1]]
    assert last and all(t.startswith("手法") and "— 特徴: 学習率は" in t and "; 用途: 用途" in t for t in last), last
    bare, offsets, _ = unit_texts(chunks)  # without the document, only the passage is seen
    assert not any("特徴:" in t for t in bare[offsets[-2]: offsets[-1]])


def test_a_long_code_block_is_cut_between_its_lines():
    code = "\n".join(f"    x{i} = compute_something(x{i - 1}, weight={i})" for i in range(1, 60))
    raw = f"# 実装\n\n```python\n{code}\n```\n".encode()
    chunks = chunk_document(parse_document("c.md", raw), max_chars=300)
    assert len(chunks) > 3
    whole = re.compile(r"x\d+ = compute_something\(x\d+, weight=\d+\)")
    assert all(line.startswith(("#", "```")) or whole.fullmatch(line.strip())
               for c in chunks for line in c.text.splitlines() if line), [c.text[:40] for c in chunks]
