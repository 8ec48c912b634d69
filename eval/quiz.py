"""How guessable the quiz is: the share of questions whose right option is the only one that
repeats a key term of the question (:func:`study.quiz.giveaway`), with the nearest items as
distractors (``pool`` = 3, the choice before key terms were looked at) and with the key-term
aware choice among the nearest :data:`study.quiz.POOL`; plus how near the distractors stay
(mean cosine to the right item) and how many topics a quiz is scored under.

    python -m eval.quiz --index index            # -> eval/results/quiz.json + quiz.md
    python -m ingest --corpus eval/data/english_notes --index /tmp/en-notes
    python -m eval.quiz --index /tmp/en-notes --tag english-notes   # -> quiz-english-notes.*

Every Q&A card, and every section card, is asked once per language it has (ja, zh; en where
the notes have it); the two kinds are reported apart (each draws its distractors from its own).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def guess(prompt: str, options: list[str], *, fewest: bool = False) -> list[int]:
    """A learner who knows nothing but matches words: the options sharing the most words and
    CJK bigrams with the question (all of them when tied); ``fewest``: the ones sharing the
    fewest (a learner who has seen that the right option's words are hidden)."""
    from rag.analyze import words_and_bigrams

    q = set(words_and_bigrams(prompt))
    overlap = [len(q & set(words_and_bigrams(o))) for o in options]
    want = min(overlap) if fewest else max(overlap)
    return [k for k, v in enumerate(overlap) if v == want]


def named_latin(card, common) -> set[str]:
    """The Latin terms the card's question carries in any of its languages (「マスクドランゲージ
    モデリング（MLM）とは何か」 names MLM for the Chinese question 「什么是掩码语言建模」 too): a
    learner who knows the term's abbreviation recognises them."""
    from study.quiz import _terms

    return {t for text in card.front.values() for t in _terms(text) if t.isascii() and t not in common}


def alias_giveaway(card, texts: list[str], answer: int, common) -> bool:
    """The right option alone shows a Latin term that names the asked term (:func:`named_latin`)."""
    from study.quiz import _terms

    names = named_latin(card, common)
    shown = [_terms(t) for t in texts]
    return bool((names & shown[answer]) - set().union(*(w for k, w in enumerate(shown) if k != answer)))


def measure(cards, vectors, *, pool: int, hide: bool, kind: str = "qa") -> dict:
    from study.quiz import common_terms, giveaway, key_terms, make_question, section_topics

    topics = section_topics(cards, vectors)
    by_card = {c.id: k for k, c in enumerate(cards)}
    common = {lang: common_terms(cards, lang, kind=kind) for lang in ("ja", "zh", "en")}
    rows = {"questions": 0, "giveaway": 0, "with_key_term": 0, "alias": 0, "cosine": [], "guessed": 0.0,
            "guessed_fewest": 0.0}
    per_lang: dict[str, dict[str, int]] = {}
    for k, c in enumerate(cards):
        if c.kind != kind:
            continue
        for lang in c.langs:
            try:
                q = make_question(
                    k, cards, vectors, lang=lang, seed=0, topic=topics.get(c.id), pool=pool, hide=hide,
                    common=common[lang] if hide else None,
                )
            except ValueError:
                continue
            texts = [o.text for o in q.options]
            g = bool(giveaway(q.prompt, texts, q.answer))
            has_key = bool(key_terms(q.prompt, texts[q.answer]))
            rows["questions"] += 1
            rows["giveaway"] += g
            rows["with_key_term"] += has_key
            rows["alias"] += alias_giveaway(c, texts, q.answer, common[lang])
            picked = guess(q.prompt, texts)
            rows["guessed"] += (q.answer in picked) / len(picked)  # expected hits, ties broken at random
            least = guess(q.prompt, texts, fewest=True)
            rows["guessed_fewest"] += (q.answer in least) / len(least)
            lang_row = per_lang.setdefault(lang, {"questions": 0, "giveaway": 0})
            lang_row["questions"] += 1
            lang_row["giveaway"] += g
            wrong = [by_card[o.card_id] for n, o in enumerate(q.options) if n != q.answer]
            rows["cosine"].append(float(np.mean(vectors[wrong] @ vectors[k])))
    n = max(1, rows["questions"])
    return {
        "pool": pool,
        "hide": hide,
        "word_match_guesser_accuracy": round(rows["guessed"] / n, 3),
        "fewest_words_guesser_accuracy": round(rows["guessed_fewest"] / n, 3),
        "questions": rows["questions"],
        "giveaway_share": round(rows["giveaway"] / n, 3),
        "key_term_share": round(rows["with_key_term"] / n, 3),
        "alias_giveaway_share": round(rows["alias"] / n, 3),
        "mean_distractor_cosine": round(float(np.mean(rows["cosine"])), 3) if rows["cosine"] else None,
        "by_lang": {
            lang: {**v, "giveaway_share": round(v["giveaway"] / max(1, v["questions"]), 3)}
            for lang, v in per_lang.items()
        },
        "topics": len(set(topics.values())),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.quiz", description=__doc__.split("\n")[0])
    p.add_argument("--index", type=Path, default=Path("index"), help="the index to make cards from (default ./index)")
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder (default eval/results)")
    p.add_argument("--tag", default="", help="write quiz-TAG.json / .md (another index's figures beside the seed's)")
    args = p.parse_args(argv)
    from rag.errors import RagError
    from rag.index import open_index
    from study.cards import cards_from_index
    from study.quiz import POOL, card_vectors

    try:
        index = open_index(args.index)
    except RagError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cards = cards_from_index(index)
    vectors = card_vectors(cards, index)
    before = measure(cards, vectors, pool=3, hide=False)
    pool_only = measure(cards, vectors, pool=POOL, hide=False)
    after = measure(cards, vectors, pool=POOL, hide=True)
    sections_before = measure(cards, vectors, pool=3, hide=False, kind="section")
    sections = measure(cards, vectors, pool=POOL, hide=True, kind="section")
    out = {"index_encoder": index.encoder_id, "nearest_only": before, "key_term_pool": pool_only, "shipped": after,
           "sections_nearest_only": sections_before, "sections_shipped": sections}
    stem = f"quiz-{args.tag}" if args.tag else "quiz"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    md = [
        "# Quiz: can the right option be guessed by its words?",
        "",
        f"Command: `python -m eval.quiz --index {args.index}{' --tag ' + args.tag if args.tag else ''}`. "
        f"Encoder `{index.encoder_id}`. Every Q&A card, and every section card (「…」について説明してください。 / "
        "Explain “…”., the sections' first sentences as options), asked once per language it has; *give-away* = "
        "the right option is the only one repeating a key term of the "
        "question (analyzer words, question words left out); *word-match guesser* = picks the option sharing the "
        "most words and CJK bigrams with the question (ties at random; chance is 25%); *abbreviation give-away* = "
        "the right option alone shows a Latin term the question names in one of its languages (「＿＿(MLM)涉及…」 for "
        "「什么是掩码语言建模」, whose Japanese twin asks about 「マスクドランゲージモデリング（MLM）」).",
        "",
        "| quiz | questions | right option repeats a key term | give-away | abbreviation give-away | "
        "word-match guesser right | fewest-words guesser right | give-away ja | give-away zh | give-away en | "
        "mean cosine of distractors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = (
        ("Q&A: nearest 3, words shown (before)", before),
        (f"Q&A: key-term aware among nearest {POOL}, words shown", pool_only),
        (f"Q&A: key-term aware among nearest {POOL}, own terms hidden (shipped)", after),
        ("sections: nearest 3, words shown", sections_before),
        (f"sections: key-term aware among nearest {POOL}, own terms hidden (shipped)", sections),
    )
    for name, r in rows:
        md.append(
            f"| {name} | {r['questions']} | {r['key_term_share']:.0%} | {r['giveaway_share']:.0%} | "
            f"{r['alias_giveaway_share']:.0%} | "
            f"{r['word_match_guesser_accuracy']:.0%} | {r['fewest_words_guesser_accuracy']:.0%} | "
            + " | ".join(f"{r['by_lang'].get(lg, {}).get('giveaway_share', 0):.0%}" for lg in ("ja", "zh", "en"))
            + f" | {r['mean_distractor_cosine']} |"
        )
    md += ["", f"Topics a quiz is scored under (nearest article section): {after['topics']}.", ""]
    (args.out / f"{stem}.md").write_text("\n".join(md), encoding="utf-8")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
