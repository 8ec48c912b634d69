#!/usr/bin/env python3
"""Validate eval/data/seed_questions.jsonl against the corpus.

Run from the repository root:  python eval/data/check_questions.py
Optional arguments: [questions.jsonl] [corpus_dir]

Prints counts per lang / type / split / doc and exits non-zero on any problem.
"""
import re
import sys
from collections import Counter
from pathlib import Path

from goldcheck import (QA_JA, QA_ZH, check_anchor, check_pairs, check_script, load_jsonl, note_duplicates,
                       note_qa_item, qa_item_starts, read_corpus, verdict)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
QFILE = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "seed_questions.jsonl"
CORPUS = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "corpus"

DOCS = [
    QA_JA,
    QA_ZH,
    "senior-ai-engineer-questions-ja.md",
    "zenn-mondo-llm-ja.md",
    "llm-technical-foundations-ja.txt",
]
LANGS = {"ja", "zh", "en"}
TYPES = {"paraphrase", "keyword", "mixed", "crosslingual"}
SPLITS = {"dev", "test"}
KEYS = {"qid", "query", "lang", "type", "split", "relevant"}
MIN_QUERIES = 150
MIN_LANG_SHARE = 0.25
ANCHOR_MIN, ANCHOR_MAX = 10, 60
QID_RE = re.compile(r"^s\d{3,}$")
LATIN_RE = re.compile(r"[A-Za-z]")


def main():
    problems = []
    warnings = []

    texts = read_corpus(CORPUS, DOCS, problems)
    if problems:
        return verdict(problems)

    qa_starts = qa_item_starts(texts, problems)

    if not QFILE.exists():
        print("ERROR: missing", QFILE)
        return 1

    rows = load_jsonl(QFILE, problems)

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
        check_script(tag, "query", q, lang, problems, kana_in_ja=False)
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
            ref = check_anchor(tag, r, texts, seen, problems, lengths=(ANCHOR_MIN, ANCHOR_MAX),
                               what="relevant entry", dup="anchor")
            if ref is None:
                continue
            d, a, pos = ref
            n_anchors += 1
            by_doc[d] += 1
            if pos is not None and d in items:
                note_qa_item(tag, d, a, pos, qa_starts, items, problems)
        # an answer in the ja Q&A list must be paired with the zh translation and vice versa
        check_pairs(tag, items, qa_items, problems)

    note_duplicates(qids, "qid", problems)
    note_duplicates(queries, "query", problems)

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
    return verdict(problems)


if __name__ == "__main__":
    sys.exit(main())
