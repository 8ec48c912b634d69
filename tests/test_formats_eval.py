"""The format-parity benchmark's anchor finder (eval/formats.py)."""

from eval.formats import find_anchor


def test_anchor_is_found_across_wraps_and_markdown_marks():
    text = "# 見出し\n\n4. **LoRAとQLoRA**の違いは\n何か？ そして - 次"
    s, e = find_anchor(text, "LoRAとQLoRAの違いは何か？")
    assert text[s:e] == "LoRAとQLoRA**の違いは\n何か？"
    assert find_anchor(text, "存在しない文") is None
    assert find_anchor(text, "  ") is None
