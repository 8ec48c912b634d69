#!/usr/bin/env python3
"""Validate eval/data/seed_questions.jsonl against the corpus.

Run from the repository root:  python eval/data/check_questions.py
Optional arguments: [questions.jsonl] [corpus_dir]

Prints counts per lang / type / split / doc and exits non-zero on any problem.
"""
import json
import re
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
QFILE = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "seed_questions.jsonl"
CORPUS = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "corpus"

DOCS = [
    "llm-interview-top50-ja.md",
    "llm-interview-top50-zh.txt",
    "senior-ai-engineer-questions-ja.md",
    "zenn-mondo-llm-ja.md",
    "llm-technical-foundations-ja.txt",
]
QA_JA, QA_ZH = DOCS[0], DOCS[1]
LANGS = {"ja", "zh", "en"}
TYPES = {"paraphrase", "keyword", "mixed", "crosslingual"}
SPLITS = {"dev", "test"}
KEYS = {"qid", "query", "lang", "type", "split", "relevant"}
MIN_QUERIES = 150
MIN_LANG_SHARE = 0.25
ANCHOR_MIN, ANCHOR_MAX = 10, 60
QID_RE = re.compile(r"^s\d{3,}$")
CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")
KANA_RE = re.compile(r"[\u3040-\u30ff]")
LATIN_RE = re.compile(r"[A-Za-z]")


def item_starts(text, pattern):
    """Return sorted list of (offset, item_number) for numbered Q&A items."""
    return sorted((m.start(), int(m.group(1))) for m in re.finditer(pattern, text, re.M))


def item_at(starts, pos):
    """Q&A item number containing character offset pos (None if before item 1)."""
    num = None
    for off, n in starts:
        if off <= pos:
            num = n
        else:
            break
    return num


def main():
    problems = []
    warnings = []

    texts = {}
    for d in DOCS:
        p = CORPUS / d
        if not p.exists():
            problems.append(f"missing corpus document {p}")
            continue
        texts[d] = p.read_text(encoding="utf-8")
    if problems:
        for p in problems:
            print("ERROR:", p)
        return 1

    qa_starts = {
        QA_JA: item_starts(texts[QA_JA], r"^(\d+)\. \*\*"),
        QA_ZH: item_starts(texts[QA_ZH], r"^问题(\d+):"),
    }
    for d, st in qa_starts.items():
        if [n for _, n in st] != list(range(1, 51)):
            problems.append(f"{d}: could not locate Q&A items 1..50 (found {len(st)})")

    if not QFILE.exists():
        print("ERROR: missing", QFILE)
        return 1

    rows = []
    for ln, line in enumerate(QFILE.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            problems.append(f"line {ln}: empty line")
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(f"line {ln}: invalid JSON ({e})")
            continue
        if not isinstance(obj, dict):
            problems.append(f"line {ln}: not a JSON object")
            continue
        rows.append((ln, obj))

    qids = Counter()
    queries = Counter()
    by_lang, by_type, by_split = Counter(), Counter(), Counter()
    by_lang_type_split = Counter()
    by_doc = Counter()
    qa_items = Counter()
    n_anchors = 0

    for ln, o in rows:
        tag = f"line {ln} ({o.get('qid', '?')})"
        keys = set(o)
        if keys != KEYS:
            problems.append(f"{tag}: keys {sorted(keys)} != {sorted(KEYS)}")
        qid = o.get("qid")
        if not isinstance(qid, str) or not QID_RE.match(qid):
            problems.append(f"{tag}: bad qid {qid!r}")
        qids[qid] += 1
        q = o.get("query")
        if not isinstance(q, str) or not q.strip():
            problems.append(f"{tag}: empty query")
            q = ""
        elif q != q.strip() or len(q) > 200:
            problems.append(f"{tag}: query has surrounding whitespace or is > 200 chars")
        queries[q.strip().lower()] += 1
        lang, typ, split = o.get("lang"), o.get("type"), o.get("split")
        if lang not in LANGS:
            problems.append(f"{tag}: bad lang {lang!r}")
        if typ not in TYPES:
            problems.append(f"{tag}: bad type {typ!r}")
        if split not in SPLITS:
            problems.append(f"{tag}: bad split {split!r}")
        # language / type consistency
        if lang == "en" and typ != "crosslingual":
            problems.append(f"{tag}: English queries must be type crosslingual")
        if typ == "crosslingual" and lang != "en":
            problems.append(f"{tag}: crosslingual queries must be lang en")
        if lang == "en" and CJK_RE.search(q):
            problems.append(f"{tag}: English query contains CJK characters")
        if lang in ("ja", "zh") and not CJK_RE.search(q):
            problems.append(f"{tag}: {lang} query has no CJK characters")
        if lang == "zh" and KANA_RE.search(q):
            problems.append(f"{tag}: zh query contains kana")
        if typ == "mixed" and not LATIN_RE.search(q):
            problems.append(f"{tag}: mixed query has no Latin-script term")
        by_lang[lang] += 1
        by_type[typ] += 1
        by_split[split] += 1
        by_lang_type_split[(lang, typ, split)] += 1

        rel = o.get("relevant")
        if not isinstance(rel, list) or not rel:
            problems.append(f"{tag}: relevant must be a non-empty list")
            continue
        seen = set()
        items = {QA_JA: set(), QA_ZH: set()}
        for r in rel:
            if not isinstance(r, dict) or set(r) != {"doc", "anchor"}:
                problems.append(f"{tag}: relevant entry must be {{doc, anchor}}: {r!r}")
                continue
            d, a = r["doc"], r["anchor"]
            if d not in texts:
                problems.append(f"{tag}: unknown doc {d!r}")
                continue
            if not isinstance(a, str):
                problems.append(f"{tag}: anchor is not a string")
                continue
            if (d, a) in seen:
                problems.append(f"{tag}: duplicate anchor {a!r}")
            seen.add((d, a))
            n_anchors += 1
            by_doc[d] += 1
            if not (ANCHOR_MIN <= len(a) <= ANCHOR_MAX):
                problems.append(f"{tag}: anchor length {len(a)} not in [{ANCHOR_MIN},{ANCHOR_MAX}]: {a!r}")
            cnt = texts[d].count(a)
            if cnt != 1:
                problems.append(f"{tag}: anchor occurs {cnt}x in {d}: {a!r}")
                continue
            if d in items:
                n = item_at(qa_starts[d], texts[d].find(a))
                if n is None:
                    problems.append(f"{tag}: anchor outside the 50 Q&A items in {d}: {a!r}")
                else:
                    items[d].add(n)
        # an answer in the ja Q&A list must be paired with the zh translation and vice versa
        for n in sorted(items[QA_JA] ^ items[QA_ZH]):
            problems.append(f"{tag}: Q&A item {n} listed in only one of {QA_JA} / {QA_ZH}")
        for n in items[QA_JA] & items[QA_ZH]:
            qa_items[n] += 1

    for qid, c in qids.items():
        if c > 1:
            problems.append(f"duplicate qid {qid!r} ({c}x)")
    for q, c in queries.items():
        if c > 1:
            problems.append(f"duplicate query {q!r} ({c}x)")

    total = len(rows)
    if total < MIN_QUERIES:
        problems.append(f"only {total} queries (< {MIN_QUERIES})")
    for lang in sorted(LANGS):
        share = by_lang[lang] / total if total else 0
        if share < MIN_LANG_SHARE:
            problems.append(f"lang {lang} is {share:.1%} of queries (< {MIN_LANG_SHARE:.0%})")
    for d in DOCS:
        if by_doc[d] == 0:
            problems.append(f"no query points at {d}")
    # split balance per language/type: difference of at most 1
    for lang in sorted(LANGS):
        for typ in sorted(TYPES):
            dev = by_lang_type_split[(lang, typ, "dev")]
            test = by_lang_type_split[(lang, typ, "test")]
            if abs(dev - test) > 1:
                problems.append(f"split imbalance for {lang}/{typ}: dev={dev} test={test}")
    missing_items = [n for n in range(1, 51) if qa_items[n] == 0]
    if len(missing_items) > 10:
        warnings.append(f"Q&A items never used: {missing_items}")

    # ---- report ----
    print(f"file: {QFILE}")
    print(f"queries: {total}   relevant anchors: {n_anchors}")
    print("per lang:  " + ", ".join(f"{k}={v} ({v / total:.1%})" for k, v in sorted(by_lang.items())))
    print("per type:  " + ", ".join(f"{k}={v}" for k, v in sorted(by_type.items())))
    print("per split: " + ", ".join(f"{k}={v}" for k, v in sorted(by_split.items())))
    print("per lang/type (dev/test):")
    for lang in sorted(LANGS):
        for typ in sorted(TYPES):
            dev = by_lang_type_split[(lang, typ, "dev")]
            test = by_lang_type_split[(lang, typ, "test")]
            if dev or test:
                print(f"  {lang:2} {typ:12} dev={dev:3} test={test:3}")
    print("anchors per doc:")
    for d in DOCS:
        print(f"  {d:38} {by_doc[d]}")
    print(f"Q&A items covered: {sum(1 for n in range(1, 51) if qa_items[n])}/50"
          + (f" (unused: {missing_items})" if missing_items else ""))
    for w in warnings:
        print("WARNING:", w)
    if problems:
        print(f"\n{len(problems)} problem(s):")
        for p in problems:
            print("ERROR:", p)
        return 1
    print("\nOK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
