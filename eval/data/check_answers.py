#!/usr/bin/env python3
"""Validate the answer benchmark's gold set against the corpus.

Run from the repository root:

    python eval/data/check_answers.py

Prints counts per lang / type / split (the tables are Markdown, ready for ANSWERS.md).

Files checked (both in eval/data/):
  answer_questions.jsonl  on-topic questions (expect "answer" or "not_covered")
  answer_offtopic.jsonl   questions the notes do not answer (expect "abstain")

Standard library only. Exits non-zero on any problem.
"""
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

from goldcheck import (QA_JA, QA_ZH, check_anchor, check_pairs, check_script, load_jsonl, locate, note_duplicates,
                       note_qa_item, qa_item_starts, read_corpus, verdict)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CORPUS = ROOT / "corpus"
ONTOPIC = HERE / "answer_questions.jsonl"
OFFTOPIC = HERE / "answer_offtopic.jsonl"

ART_FOUND, ART_ZENN, SENIOR = "llm-technical-foundations-ja.txt", "zenn-mondo-llm-ja.md", "senior-ai-engineer-questions-ja.md"
DOCS = [QA_JA, QA_ZH, ART_FOUND, ART_ZENN, SENIOR]
ARTICLES = (ART_FOUND, ART_ZENN)

KEYS = ["qid", "question", "lang", "type", "split", "previous", "key_points", "sources", "expect"]
LANGS = ("ja", "zh", "en")
ON_TYPES = ("definition", "why", "how", "comparison", "steps", "article", "followup")
OFF_TYPES = ("offtopic", "nearmiss")
SPLITS = ("dev", "test")
ON_EXPECT = ("answer", "not_covered")
OFF_EXPECT = ("abstain",)

# minimums from the benchmark brief
MIN_ONTOPIC = 130
MIN_OFFTOPIC = 60
MIN_NEARMISS = 25
MIN_COMPARISON = 15
MIN_STEPS = 15
MIN_FOLLOWUP = 20
MIN_NOT_COVERED = 6
MIN_ARTICLE = 30
# target language mix (share of the on-topic set): roughly 40 / 30 / 30
LANG_SHARE = {"ja": (0.32, 0.48), "zh": (0.22, 0.38), "en": (0.22, 0.38)}
MIN_OFF_LANG_SHARE = 0.2

ALT_MIN, ALT_MAX = 2, 15
ANCHOR_MIN, ANCHOR_MAX = 10, 60
MAX_POINTS = 4
QID_ON = re.compile(r"^a\d{3,}$")
QID_OFF = re.compile(r"^o\d{3,}$")


def norm(s):
    """Key-point matching normalisation: NFKC, then lower-case."""
    return unicodedata.normalize("NFKC", s).lower()


def section_starts(text, pattern):
    return sorted((m.start(), m.group(0).strip()) for m in re.finditer(pattern, text, re.M))


def load_rows(path, problems):
    if not path.exists():
        problems.append(f"missing file {path}")
        return []
    return load_jsonl(path, problems, prefix=f"{path.name} ")


def check_text(tag, field, s, lang, problems):
    if not isinstance(s, str) or not s.strip():
        problems.append(f"{tag}: {field} must be a non-empty string")
        return
    if s != s.strip() or len(s) > 200:
        problems.append(f"{tag}: {field} has surrounding whitespace or is > 200 chars")
    check_script(tag, field, s, lang, problems)


def main():
    problems = []

    texts = read_corpus(CORPUS, DOCS, problems)
    if problems:
        return verdict(problems)
    normed = {d: norm(t) for d, t in texts.items()}

    qa_starts = qa_item_starts(texts, problems)
    art_sections = {
        ART_FOUND: section_starts(texts[ART_FOUND], r"^(?:\d\.(?:\d\.)? .+|課題\d: .+)$"),
        ART_ZENN: section_starts(texts[ART_ZENN], r"^#{1,3} .+$"),
    }
    # passage boundaries: a Q&A item, an article section, or the whole question list
    bounds = {d: [off for off, _ in qa_starts[d]] for d in (QA_JA, QA_ZH)}
    bounds.update({d: [off for off, _ in art_sections[d]] for d in ARTICLES})
    bounds[SENIOR] = [0]

    def passage(d, pos):
        starts = [0] + [b for b in bounds[d] if b > 0] + [len(texts[d])]
        for lo, hi in zip(starts, starts[1:]):
            if lo <= pos < hi:
                return norm(texts[d][lo:hi])
        return ""

    on_rows = load_rows(ONTOPIC, problems)
    off_rows = load_rows(OFFTOPIC, problems)

    qids = Counter()
    questions = Counter()
    alt_docs = Counter()
    qa_items = Counter()
    sections_hit = {d: Counter() for d in ARTICLES}
    by_doc = Counter()
    stats = {}

    def common(fname, ln, o, types, expects, qid_re):
        tag = f"{fname} line {ln} ({o.get('qid', '?')})"
        if list(o) != KEYS:
            if set(o) != set(KEYS):
                problems.append(f"{tag}: keys {sorted(o)} != {sorted(KEYS)}")
        qid = o.get("qid")
        if not isinstance(qid, str) or not qid_re.match(qid):
            problems.append(f"{tag}: bad qid {qid!r}")
        qids[qid] += 1
        lang, typ, split, exp = o.get("lang"), o.get("type"), o.get("split"), o.get("expect")
        if lang not in LANGS:
            problems.append(f"{tag}: bad lang {lang!r}")
        if typ not in types:
            problems.append(f"{tag}: bad type {typ!r} (allowed: {', '.join(types)})")
        if split not in SPLITS:
            problems.append(f"{tag}: bad split {split!r}")
        if exp not in expects:
            problems.append(f"{tag}: bad expect {exp!r} (allowed: {', '.join(expects)})")
        q = o.get("question")
        check_text(tag, "question", q, lang, problems)
        if isinstance(q, str):
            key = (o.get("previous") or "") + "\n" + q.strip().lower()
            questions[key] += 1
        return tag, lang, typ, split, exp

    def check_sources(tag, sources, required):
        docs = set()
        passages = []
        if not isinstance(sources, list):
            problems.append(f"{tag}: sources must be a list")
            return docs, passages
        if required and not sources:
            problems.append(f"{tag}: sources must not be empty")
        if not required and sources:
            problems.append(f"{tag}: sources must be empty")
        seen = set()
        items = {QA_JA: set(), QA_ZH: set()}
        for s in sources:
            ref = check_anchor(tag, s, texts, seen, problems, lengths=(ANCHOR_MIN, ANCHOR_MAX))
            if ref is None:
                continue
            d, a, pos = ref
            docs.add(d)
            by_doc[d] += 1
            if pos is None:
                continue
            passages.append(passage(d, pos))
            if d in items:
                note_qa_item(tag, d, a, pos, qa_starts, items, problems)
            if d in sections_hit:
                sec = locate(art_sections[d], pos)
                if sec:
                    sections_hit[d][sec] += 1
        # a Q&A item is always listed with its translation
        check_pairs(tag, items, qa_items, problems)
        return docs, passages

    def check_points(tag, kps, required, src_docs, passages):
        if not isinstance(kps, list):
            problems.append(f"{tag}: key_points must be a list")
            return
        if not required:
            if kps:
                problems.append(f"{tag}: key_points must be empty")
            return
        if not (1 <= len(kps) <= MAX_POINTS):
            problems.append(f"{tag}: {len(kps)} key points (need 1..{MAX_POINTS})")
        seen_alts = set()
        for i, point in enumerate(kps, 1):
            if not isinstance(point, list) or not point:
                problems.append(f"{tag}: key point {i} must be a non-empty list of strings")
                continue
            point_docs = set()
            for alt in point:
                if not isinstance(alt, str):
                    problems.append(f"{tag}: key point {i} has a non-string alternative {alt!r}")
                    continue
                if not (ALT_MIN <= len(alt) <= ALT_MAX):
                    problems.append(f"{tag}: key point {i} alternative {alt!r} has length {len(alt)} "
                                    f"(need {ALT_MIN}..{ALT_MAX})")
                n = norm(alt)
                if n in seen_alts:
                    problems.append(f"{tag}: alternative {alt!r} repeated")
                seen_alts.add(n)
                found = [d for d in DOCS if n in normed[d]]
                if not found:
                    problems.append(f"{tag}: key point {i} alternative {alt!r} occurs in no corpus document")
                for d in found:
                    alt_docs[d] += 1
                point_docs.update(found)
            # every point must be findable in at least one of the cited passages
            # (the Q&A item, article section or question list that holds an anchor)
            if src_docs and point_docs and not (point_docs & src_docs):
                problems.append(f"{tag}: key point {i} {point!r} occurs in none of the cited documents")
            elif passages and not any(norm(a) in p for a in point if isinstance(a, str) for p in passages):
                problems.append(f"{tag}: key point {i} {point!r} occurs in none of the cited passages")

    # ---------------- on-topic ----------------
    on = Counter()
    on_lang, on_type, on_split, on_expect = Counter(), Counter(), Counter(), Counter()
    groups = defaultdict(list)
    nc_split = Counter()
    for ln, o in on_rows:
        tag, lang, typ, split, exp = common(ONTOPIC.name, ln, o, ON_TYPES, ON_EXPECT, QID_ON)
        on_lang[lang] += 1
        on_type[typ] += 1
        on_split[split] += 1
        on_expect[exp] += 1
        on[(lang, typ, split)] += 1
        groups[(lang, typ)].append((tag, split))
        prev = o.get("previous")
        if typ == "followup":
            check_text(tag, "previous", prev, lang, problems)
            if isinstance(prev, str) and prev.strip() == (o.get("question") or "").strip():
                problems.append(f"{tag}: previous equals question")
        elif prev is not None:
            problems.append(f"{tag}: previous must be null unless type is followup")
        if exp == "not_covered" and typ != "followup":
            problems.append(f"{tag}: expect not_covered is only for follow-ups")
        answered = exp == "answer"
        src_docs, passages = check_sources(tag, o.get("sources"), required=answered)
        check_points(tag, o.get("key_points"), required=answered, src_docs=src_docs, passages=passages)
        if exp == "not_covered":
            nc_split[split] += 1
        if typ == "article" and answered and not (src_docs & set(ARTICLES)):
            problems.append(f"{tag}: article question cites neither article")
        if typ == "comparison" and isinstance(o.get("key_points"), list) and len(o["key_points"]) < 2:
            problems.append(f"{tag}: a comparison needs both sides in the key points (>= 2 points)")
        if typ == "steps" and isinstance(o.get("key_points"), list) and len(o["key_points"]) < 2:
            problems.append(f"{tag}: a steps/list question needs several items as key points (>= 2)")

    # ---------------- off-topic ----------------
    off_lang, off_type, off_split = Counter(), Counter(), Counter()
    off = Counter()
    for ln, o in off_rows:
        tag, lang, typ, split, exp = common(OFFTOPIC.name, ln, o, OFF_TYPES, OFF_EXPECT, QID_OFF)
        off_lang[lang] += 1
        off_type[typ] += 1
        off_split[split] += 1
        off[(lang, typ, split)] += 1
        groups[("off", lang, typ)].append((tag, split))
        if o.get("previous") is not None:
            problems.append(f"{tag}: previous must be null")
        check_sources(tag, o.get("sources"), required=False)
        check_points(tag, o.get("key_points"), required=False, src_docs=set(), passages=[])

    note_duplicates(qids, "qid", problems)
    note_duplicates(questions, "question", problems)

    # split: alternate dev, test, dev, ... within each group in file order
    for g, rows in groups.items():
        for i, (tag, split) in enumerate(rows):
            want = SPLITS[i % 2]
            if split != want:
                problems.append(f"{tag}: split {split!r}, expected {want!r} "
                                f"(alternating within group {'/'.join(g)})")
                break

    # ---------------- minimums ----------------
    n_on, n_off = len(on_rows), len(off_rows)
    mins = [
        (n_on, MIN_ONTOPIC, "on-topic questions"),
        (on_type["comparison"], MIN_COMPARISON, "comparison questions"),
        (on_type["steps"], MIN_STEPS, "steps questions"),
        (on_type["followup"], MIN_FOLLOWUP, "follow-up questions"),
        (on_expect["not_covered"], MIN_NOT_COVERED, "not_covered follow-ups"),
        (on_type["article"], MIN_ARTICLE, "article questions"),
        (n_off, MIN_OFFTOPIC, "off-topic questions"),
        (off_type["nearmiss"], MIN_NEARMISS, "near-miss questions"),
    ]
    for have, need, what in mins:
        if have < need:
            problems.append(f"only {have} {what} (need >= {need})")
    if abs(nc_split["dev"] - nc_split["test"]) > 1:
        problems.append(f"not_covered follow-ups unbalanced: dev={nc_split['dev']} test={nc_split['test']}")
    for lang, (lo, hi) in LANG_SHARE.items():
        share = on_lang[lang] / n_on if n_on else 0
        if not (lo <= share <= hi):
            problems.append(f"on-topic lang {lang} is {share:.1%} (want {lo:.0%}..{hi:.0%})")
    for lang in LANGS:
        share = off_lang[lang] / n_off if n_off else 0
        if share < MIN_OFF_LANG_SHARE:
            problems.append(f"off-topic lang {lang} is {share:.1%} (< {MIN_OFF_LANG_SHARE:.0%})")
    missing_items = [n for n in range(1, 51) if qa_items[n] == 0]
    if missing_items:
        problems.append(f"Q&A items never used as a source: {missing_items}")
    for d in ARTICLES:
        unhit = [s for _, s in art_sections[d] if not sections_hit[d][s]]
        if len(sections_hit[d]) < 8:
            problems.append(f"only {len(sections_hit[d])} sections of {d} are cited (need >= 8)")
        stats[d] = unhit

    # ---------------- report ----------------
    def table(counter, types, title):
        lines = [f"| {title} | " + " | ".join(f"{l} dev | {l} test" for l in LANGS) + " | total |",
                 "|---|" + "---:|" * (2 * len(LANGS) + 1)]
        for t in types:
            cells = [counter[(l, t, s)] for l in LANGS for s in SPLITS]
            lines.append(f"| {t} | " + " | ".join(str(c) for c in cells) + f" | {sum(cells)} |")
        cells = [sum(counter[(l, t, s)] for t in types) for l in LANGS for s in SPLITS]
        lines.append("| **total** | " + " | ".join(str(c) for c in cells) + f" | {sum(cells)} |")
        return "\n".join(lines)

    print(f"on-topic:  {n_on} questions ({ONTOPIC.name})")
    print("  per lang:   " + ", ".join(f"{l}={on_lang[l]} ({on_lang[l] / max(n_on, 1):.0%})" for l in LANGS))
    print("  per type:   " + ", ".join(f"{t}={on_type[t]}" for t in ON_TYPES))
    print("  per split:  " + ", ".join(f"{s}={on_split[s]}" for s in SPLITS))
    print("  per expect: " + ", ".join(f"{e}={on_expect[e]}" for e in ON_EXPECT)
          + f"  (not_covered: dev={nc_split['dev']}, test={nc_split['test']})")
    print(f"off-topic: {n_off} questions ({OFFTOPIC.name})")
    print("  per lang:   " + ", ".join(f"{l}={off_lang[l]}" for l in LANGS))
    print("  per type:   " + ", ".join(f"{t}={off_type[t]}" for t in OFF_TYPES))
    print("  per split:  " + ", ".join(f"{s}={off_split[s]}" for s in SPLITS))
    print("sources per doc:  " + ", ".join(f"{d}={by_doc[d]}" for d in DOCS))
    print("key-point alternatives found per doc:  " + ", ".join(f"{d}={alt_docs[d]}" for d in DOCS))
    print(f"Q&A items covered: {sum(1 for n in range(1, 51) if qa_items[n])}/50")
    for d in ARTICLES:
        print(f"{d}: {len(sections_hit[d])}/{len(art_sections[d])} sections cited"
              + (f"; not cited: {stats[d]}" if stats.get(d) else ""))
    print("\non-topic per lang/type/split:")
    print(table(on, ON_TYPES, "type"))
    print("\noff-topic per lang/type/split:")
    print(table(off, OFF_TYPES, "type"))
    return verdict(problems)


if __name__ == "__main__":
    sys.exit(main())
