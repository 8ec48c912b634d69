"""Loading .txt/.md files: front matter, decoding, skipped files, empty corpus."""

from __future__ import annotations

import hashlib
import warnings

import pytest

from conftest import CORPUS, JA_TOP50, SMALL_CORPUS, FakeEncoder, write_corpus
from ingest.loader import UnreadableFileError, corpus_files, load_corpus, parse_document
from ingest.pipeline import ingest
from rag.errors import CorpusError

FRONT = """---
title: "注意力机制入门"
source: "https://example.com/attention"
tags:
  - LLM
  - 注意力
---
# 别的标题

正文第一段。
"""


def test_front_matter_gives_title_source_tags():
    d = parse_document("notes/attn.md", FRONT.encode())
    assert d.title == "注意力机制入门"
    assert d.source == "https://example.com/attention"
    assert d.tags == ("LLM", "注意力")
    assert d.doc_id == "notes/attn.md"
    assert d.text == FRONT  # kept as is: offsets point into it
    assert d.text[d.body_start :] == "# 别的标题\n\n正文第一段。\n"
    assert d.lang == "zh"
    assert d.sha256 == hashlib.sha256(FRONT.encode()).hexdigest()


def test_topics_and_single_string_tag():
    d = parse_document("z.md", b'---\ntitle: Z\ntopics: ["LLM", "AI"]\n---\nbody text\n')
    assert d.tags == ("LLM", "AI")
    d = parse_document("z.md", b"---\ntags: solo\n---\nbody text\n")
    assert d.tags == ("solo",)


def test_without_front_matter_title_is_first_line():
    d = parse_document("x.md", "\n\n## 　LoRAの基礎  \n\n本文です。\n".encode())
    assert d.title == "LoRAの基礎"
    assert d.body_start == 0 and d.tags == () and d.source == ""
    assert d.lang == "ja"
    assert parse_document("title-less.txt", b"\n\n1. first item\n").title == "title-less"
    with pytest.raises(UnreadableFileError, match="empty"):  # an empty file is not a document
        parse_document("empty-ish.txt", b"\n\n")


def test_bom_and_crlf_are_normalised():
    raw = "\ufeff# Title\r\nfirst line\r\nsecond\rthird\r\n".encode()
    d = parse_document("w.txt", raw)
    assert d.text == "# Title\nfirst line\nsecond\nthird\n"
    assert d.lang == "en"
    assert d.sha256 == hashlib.sha256(raw).hexdigest()  # hash of the file's bytes


def test_real_front_matter():
    d = {d.doc_id: d for d in load_corpus(CORPUS)}[JA_TOP50]
    assert d.title == "LLM Interview Questions"
    assert d.source.startswith("https://drive.google.com/")
    assert "大規模言語モデル" in d.tags and "LLM" in d.tags
    assert d.text.startswith("---\n") and d.text[: d.body_start].endswith("---\n")
    assert d.lang == "ja"


def test_corpus_files_skips_hidden_and_other_suffixes(tmp_path):
    write_corpus(
        tmp_path,
        {
            "a.md": "# A\n",
            "sub/b.txt": "B text\n",
            "c.MARKDOWN": "# C\n",
            ".hidden.md": "# hidden\n",
            ".git/x.md": "# in a hidden folder\n",
            "paper.pdf": b"%PDF-1.4",  # a document file (read by its reader; this one is damaged)
            "notes.rst": "rst\n",
            "sub/old.PPT": b"\xd0\xcf\x11\xe0",  # a format no reader reads: named, with what to save it as
        },
    )
    got = [p.relative_to(tmp_path).as_posix() for p in corpus_files(tmp_path)]
    assert got == ["a.md", "c.MARKDOWN", "paper.pdf", "sub/b.txt"]
    skipped = []
    assert [d.doc_id for d in load_corpus(tmp_path, on_skip=skipped.append)] == ["a.md", "c.MARKDOWN", "sub/b.txt"]
    assert sorted(s.doc_id for s in skipped) == ["paper.pdf", "sub/old.PPT"]
    why = {s.doc_id: s.reason for s in skipped}
    assert "damaged PDF" in why["paper.pdf"]
    assert why["sub/old.PPT"] == "PowerPoint 97–2003 files are not read: save it as .pptx and add that"


def test_notes_saved_in_shift_jis_gbk_or_big5_are_read(tmp_path):
    """Plain notes saved before UTF-8 (Notepad's "ANSI" in Japan, China, Taiwan) are read in
    their encoding; a Latin-1 file still is not (no CJK encoding makes sense of it)."""
    write_corpus(tmp_path, {
        "ja.txt": "# 検索入門\n\nBM25は語の頻度と文書の長さからスコアを計算します。\n".encode("cp932"),
        "zh.txt": "# 检索入门\n\n向量检索通过嵌入的相似度查找文档。\n".encode("gb18030"),
        "tw.txt": "# 檢索入門\n\n向量檢索使用嵌入的相似度查找文件。\n".encode("big5"),
        "fr.txt": "Café notes: crème brûlée, naïve résumé.\n".encode("latin-1"),
    })
    skipped = []
    docs = {d.doc_id: d for d in load_corpus(tmp_path, on_skip=skipped.append)}
    assert docs["ja.txt"].text.startswith("# 検索入門") and "スコアを計算" in docs["ja.txt"].text
    assert "向量检索" in docs["zh.txt"].text and "向量檢索" in docs["tw.txt"].text
    assert [s.doc_id for s in skipped] == ["fr.txt"] and "not UTF-8" in skipped[0].reason


def test_binary_and_non_utf8_files_are_skipped_with_a_warning(tmp_path):
    write_corpus(
        tmp_path,
        {
            "good.md": "# Good\n\nA readable document.\n",
            "image.md": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",
            "legacy.txt": "Café notes: crème brûlée, naïve résumé.".encode("latin-1"),  # no encoding of the notes' languages
        },
    )
    with pytest.warns(UserWarning) as rec:
        docs = load_corpus(tmp_path)
    assert [d.doc_id for d in docs] == ["good.md"]
    messages = [str(w.message) for w in rec]
    assert any("image.md" in m and "binary" in m for m in messages), messages
    assert any("legacy.txt" in m and "UTF-8" in m for m in messages), messages


def test_ingest_reports_skipped_files_and_carries_on(tmp_path, fake_encoder):
    corpus = write_corpus(tmp_path / "corpus", {**SMALL_CORPUS, "broken.md": b"\x00\x01\x02binary"})
    with pytest.warns(UserWarning, match="broken.md"):
        report = ingest(corpus, tmp_path / "index", encoder=fake_encoder)
    assert report.written and report.documents == len(SMALL_CORPUS)
    assert len(report.skipped_files) == 1 and "broken.md" in report.skipped_files[0]


def test_empty_corpus_folder_is_a_corpus_error(tmp_path):
    with pytest.raises(CorpusError, match="no readable"):
        load_corpus(tmp_path)


def test_corpus_of_only_unreadable_files_is_a_corpus_error(tmp_path):
    write_corpus(tmp_path, {"bin.md": b"\x00\x00\x00"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(CorpusError):
            load_corpus(tmp_path)


def test_missing_corpus_folder_is_a_corpus_error(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "nope")


def _zip(names: list[str]) -> bytes:
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n in names:
            z.writestr(n, "<x/>")
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "actual", "suffix"),
    [
        ("notes.pdf", _zip(["[Content_Types].xml", "word/document.xml"]), "Word", ".docx"),
        ("deck.docx", _zip(["[Content_Types].xml", "ppt/presentation.xml"]), "PowerPoint", ".pptx"),
        ("paper.pptx", b"%PDF-1.7\n%\xe2\xe3\n", "PDF", ".pdf"),
        ("saved.pdf", b"<!DOCTYPE html><html><body><p>hi</p></body></html>", "web page", ".html"),
        ("paper.md", b"%PDF-1.7\n%\xe2\xe3\n", "PDF", ".pdf"),
    ],
)
def test_a_file_named_for_one_format_holding_another_is_refused_naming_both(name, data, actual, suffix):
    with pytest.raises(UnreadableFileError) as e:
        parse_document(f"uploads/{name}", data)
    assert f"this is a {actual} file with a .{name.rsplit('.', 1)[1]} name" in e.value.reason
    assert f"rename it to end in {suffix}" in e.value.reason


def test_text_that_looks_like_another_format_is_read_as_text():
    """A note about PDFs, or a saved web page named .txt, stays a note."""
    assert "%PDF-" in parse_document("pdf.md", b"# PDF files\n\nA PDF starts with %PDF-1.7.\n").text
    assert "<html>" in parse_document("page.txt", b"<html><body>hello</body></html>\n").text


def test_every_reason_is_found_again_from_its_wording():
    """rag/reasons.py words each refusal once; the app finds the key and values again to say
    it in the learner's language."""
    import string

    from rag.reasons import REASONS, parse, reason

    for key, template in REASONS.items():
        values = {f: f"<{f} 1.0 (x)>" for _, f, _, _ in string.Formatter().parse(template) if f}
        assert parse(reason(key, **values)) == (key, values), key
    assert parse("something else went wrong") is None


def test_a_corpus_folder_file_named_for_another_format_is_refused_naming_both(tmp_path):
    """Only an upload was checked: a PDF copied to ``spec.md`` was indexed as PDF syntax (titled
    "%PDF-1.4"), one named ``.txt`` "looks binary", a Word file named ``.pptx`` showed the
    reader's internal error. Each is refused naming both formats, the others still load, and
    the refused files do not make the index look stale."""
    from ingest.pipeline import ingest
    from rag.corpus import stale_documents
    from rag.index import open_index

    pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "spec.md").write_bytes(pdf)
    (corpus / "report.txt").write_bytes(pdf + b"\x00")
    (corpus / "deck.pptx").write_bytes(_zip(["[Content_Types].xml", "word/document.xml"]))
    (corpus / "ok.md").write_text("# LoRA\n\nLoRA trains two small matrices beside a frozen weight.\n")
    skipped = []
    docs = load_corpus(corpus, on_skip=skipped.append)
    assert [d.doc_id for d in docs] == ["ok.md"]
    reasons = {s.doc_id: s.reason for s in skipped}
    assert "this is a PDF file with a .md name" in reasons["spec.md"]
    assert "this is a PDF file with a .txt name" in reasons["report.txt"]
    assert "this is a Word file with a .pptx name" in reasons["deck.pptx"]
    ingest(corpus, tmp_path / "index", encoder=FakeEncoder(), progress=False)
    assert stale_documents(open_index(tmp_path / "index").manifest, corpus) == []


def test_a_utf16_text_file_is_read_by_its_byte_order_mark(tmp_path):
    """Notepad's "Unicode" (UTF-16 with a mark) was refused as binary (NUL bytes)."""
    for codec in ("utf-16", "utf-16-be"):
        data = "# ドロップアウト\r\n\r\nDropout randomly zeroes activations.\r\n".encode(codec)
        if codec == "utf-16-be":
            data = b"\xfe\xff" + data
        doc = parse_document("notes.txt", data)
        assert doc.text == "# ドロップアウト\n\nDropout randomly zeroes activations.\n" and doc.title == "ドロップアウト"
    with pytest.raises(UnreadableFileError, match="binary"):
        parse_document("notes.txt", "abc".encode("utf-32"))


@pytest.mark.parametrize("name", ["zero.pdf", "zero.docx", "zero.pptx", "zero.html"])
def test_a_zero_byte_file_of_any_format_is_empty_not_damaged(name):
    with pytest.raises(UnreadableFileError) as e:
        parse_document(name, b"")
    assert e.value.reason == "the file is empty"
