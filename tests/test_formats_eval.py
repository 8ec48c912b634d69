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
