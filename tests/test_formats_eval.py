"""The format-parity benchmark's anchor finder (eval/formats.py)."""

from eval.formats import find_anchor


def test_anchor_is_found_across_wraps_and_markdown_marks():
    text = "# 見出し\n\n4. **LoRAとQLoRA**の違いは\n何か？ そして - 次"
    s, e = find_anchor(text, "LoRAとQLoRAの違いは何か？")
    assert text[s:e] == "LoRAとQLoRA**の違いは\n何か？"
    assert find_anchor(text, "存在しない文") is None
    assert find_anchor(text, "  ") is None


def test_every_quotable_sentence_of_the_seed_decks_is_on_the_slides_it_names(tmp_path):
    """What an answer can quote from a slide deck (every sentence of every chunk) is in the
    text python-pptx reads from the slide(s) its citation names — read apart from the reader."""
    import re

    from eval.formats import _bare, seed_as, unit_texts
    from ingest.chunker import chunk_document
    from rag.rules.sentences import unit_spans

    ds, found, missing = seed_as("pptx", tmp_path)
    assert missing == 0
    checked = 0
    for d in ds.docs:
        slides = unit_texts("pptx", tmp_path / "pptx" / d.doc_id)
        assert d.origin.kind == "slide" and len(slides) == max(n for *_, n in d.origin.units)
        for c in chunk_document(d):
            for s, e in unit_spans(c.text):
                quoted = _bare(d.text[c.start + s : c.start + e])
                if len(re.sub(r"\W", "", quoted)) < 4:
                    continue
                named = d.origin.numbers(c.start + s, c.start + e)
                assert quoted in "".join(slides[n - 1] for n in named), (d.doc_id, named, quoted[:60])
                checked += 1
    assert checked > 500


def test_a_partial_run_keeps_the_figures_of_the_parts_it_did_not_run(tmp_path, monkeypatch):
    import json

    import rag.encoders
    from conftest import FakeEncoder
    from eval import formats

    monkeypatch.setattr(rag.encoders, "load_encoder", lambda name: FakeEncoder())
    old = {"ocr": {"ja": {"char_accuracy": 0.987, "ratio": 0.99, "got": ""}}}
    (tmp_path / "formats-idle.json").write_text(json.dumps(old), encoding="utf-8")
    r = formats.run(tmp_path, encoder_name="fake", parts=("pages",), stem="formats-idle")
    assert r["ocr"] == old["ocr"] and r["sentences_on_pages"]["in_named_pages"] == 1.0
    saved = json.loads((tmp_path / "formats-idle.json").read_text(encoding="utf-8"))
    assert saved["ocr"] == old["ocr"] and saved["sentences_on_pages"] == r["sentences_on_pages"]
    md = (tmp_path / "formats-idle.md").read_text(encoding="utf-8")
    assert "| ja | 0.987 |" in md and "Every quotable sentence is on the page it names" in md
    assert not (tmp_path / "formats.json").exists()
