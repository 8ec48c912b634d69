"""What the gold-set checkers (check_questions.py, check_answers.py) share: reading the
corpus, locating its Q&A items, reading JSON Lines, checking one ``{doc, anchor}``
reference, flagging repeated ids and texts, and the closing verdict. Standard library only; every problem is appended to the caller's list.
"""
import json
import re

QA_JA, QA_ZH = "llm-interview-top50-ja.md", "llm-interview-top50-zh.txt"
QA_ITEMS = 50
CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")
KANA_RE = re.compile(r"[\u3040-\u30ff]")


def read_corpus(corpus, docs, problems):
    """``{doc name: text}`` of ``docs`` under ``corpus``; a missing one is a problem."""
    texts = {}
    for d in docs:
        p = corpus / d
        if not p.exists():
            problems.append(f"missing corpus document {p}")
            continue
        texts[d] = p.read_text(encoding="utf-8")
    return texts


def item_starts(text, pattern):
    """Sorted ``(offset, item number)`` of the numbered Q&A items matched by ``pattern``."""
    return sorted((m.start(), int(m.group(1))) for m in re.finditer(pattern, text, re.M))


def qa_item_starts(texts, problems):
    """Item starts of the ja and zh Q&A lists; each must hold items 1..50."""
    starts = {
        QA_JA: item_starts(texts[QA_JA], r"^(\d+)\. \*\*"),
        QA_ZH: item_starts(texts[QA_ZH], r"^问题(\d+):"),
    }
    for d, st in starts.items():
        if [n for _, n in st] != list(range(1, QA_ITEMS + 1)):
            problems.append(f"{d}: could not locate Q&A items 1..{QA_ITEMS} (found {len(st)})")
    return starts


def locate(starts, pos):
    """The label of the last start at or before ``pos`` (None before the first)."""
    found = None
    for off, label in starts:
        if off <= pos:
            found = label
        else:
            break
    return found


def load_jsonl(path, problems, prefix=""):
    """``(line number, object)`` of every line of ``path`` that is a JSON object; empty,
    invalid and non-object lines are problems named ``{prefix}line N``."""
    rows = []
    for ln, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            problems.append(f"{prefix}line {ln}: empty line")
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(f"{prefix}line {ln}: invalid JSON ({e})")
            continue
        if not isinstance(obj, dict):
            problems.append(f"{prefix}line {ln}: not a JSON object")
            continue
        rows.append((ln, obj))
    return rows


def check_anchor(tag, entry, texts, seen, problems, *, lengths, what="source", dup="source"):
    """Check one ``{doc, anchor}`` reference: a known document, a string anchor of a length
    in ``lengths`` found exactly once there, not repeated (``seen`` collects them).
    Returns ``(doc, anchor, offset)`` for a well-formed reference — ``offset`` None unless the
    anchor occurs exactly once — or None for a malformed one."""
    if not isinstance(entry, dict) or set(entry) != {"doc", "anchor"}:
        problems.append(f"{tag}: {what} must be {{doc, anchor}}: {entry!r}")
        return None
    d, a = entry["doc"], entry["anchor"]
    if d not in texts:
        problems.append(f"{tag}: unknown doc {d!r}")
        return None
    if not isinstance(a, str):
        problems.append(f"{tag}: anchor is not a string")
        return None
    if (d, a) in seen:
        problems.append(f"{tag}: duplicate {dup} {a!r}")
    seen.add((d, a))
    lo, hi = lengths
    if not (lo <= len(a) <= hi):
        problems.append(f"{tag}: anchor length {len(a)} not in [{lo},{hi}]: {a!r}")
    cnt = texts[d].count(a)
    if cnt != 1:
        problems.append(f"{tag}: anchor occurs {cnt}x in {d}: {a!r}")
        return d, a, None
    return d, a, texts[d].find(a)


def note_qa_item(tag, d, a, pos, qa_starts, items, problems):
    """Record in ``items[d]`` the Q&A item that anchor ``a`` at ``pos`` of list ``d`` is in."""
    n = locate(qa_starts[d], pos)
    if n is None:
        problems.append(f"{tag}: anchor outside the {QA_ITEMS} Q&A items in {d}: {a!r}")
    else:
        items[d].add(n)


def check_pairs(tag, items, qa_items, problems):
    """A Q&A item is always listed with its translation; count the paired ones."""
    for n in sorted(items[QA_JA] ^ items[QA_ZH]):
        problems.append(f"{tag}: Q&A item {n} listed in only one of {QA_JA} / {QA_ZH}")
    for n in items[QA_JA] & items[QA_ZH]:
        qa_items[n] += 1


def check_script(tag, field, s, lang, problems, *, kana_in_ja=True):
    """The text's script matches its language: no CJK in English, CJK in ja/zh, no kana in zh,
    and (``kana_in_ja``) kana in ja, else it cannot be told apart from zh — a keyword query
    such as 「検索拡張生成」 may have none."""
    if lang == "en" and CJK_RE.search(s):
        problems.append(f"{tag}: English {field} contains CJK characters")
    if lang in ("ja", "zh") and not CJK_RE.search(s):
        problems.append(f"{tag}: {lang} {field} has no CJK characters")
    if lang == "zh" and KANA_RE.search(s):
        problems.append(f"{tag}: zh {field} contains kana")
    if kana_in_ja and lang == "ja" and not KANA_RE.search(s):
        problems.append(f"{tag}: ja {field} has no kana (cannot be told apart from zh)")


def note_duplicates(counts, what, problems):
    """A problem for every key of ``counts`` (a Counter) seen more than once."""
    for key, c in counts.items():
        if c > 1:
            problems.append(f"duplicate {what} {key!r} ({c}x)")


def verdict(problems):
    """Print the problems and return exit status 1, or print OK and return 0."""
    if problems:
        print(f"\n{len(problems)} problem(s):")
        for p in problems:
            print("ERROR:", p)
        return 1
    print("\nOK")
    return 0
