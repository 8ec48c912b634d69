"""Questions a learner's tables answer: notes with Markdown tables (as learners write them, and as
the Word, web-page and PDF readers write a table), asked in ja / zh / en, every question's key
points being cells of a table row or a sentence around it.

    python -m eval.tables        # -> eval/results/tables.json + tables.md

Notes: ``eval/data/tables/`` (an optimizer and an activation table in Japanese, decoding strategies
in Chinese, model families in Japanese, metrics in English); questions:
``eval/data/table_questions.jsonl`` (written against the notes, not tuned on: nothing in the
answerer is fitted to them). Each question goes through :func:`rag.answer.ask` with the bundled
encoder and the shipped values, twice: with table rows quoted (a ``row`` unit, written as one line
naming its cells by their columns) and with rows never quoted (how answers treated every table
line before), the index built for each.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from contextlib import contextmanager, nullcontext
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOTES = HERE / "data" / "tables"
QUESTIONS = HERE / "data" / "table_questions.jsonl"
RESULTS = HERE / "results"
COLS = ("all_points", "half_points", "wrongly_abstained", "supported_sentences", "padding")


@contextmanager
def rows_unquoted():
    """Table rows never quoted (the ``row`` kind out of every module's QUOTABLE)."""
    import rag.extract
    import rag.facts
    import rag.units

    mods = (rag.units, rag.extract, rag.facts)
    saved = [m.QUOTABLE for m in mods]
    try:
        for m in mods:
            m.QUOTABLE = m.QUOTABLE - {"row"}
        yield
    finally:
        for m, q in zip(mods, saved):
            m.QUOTABLE = q


def measure(encoder, *, quote_rows: bool) -> tuple[dict, list]:
    from eval.answers import load_items, run, summarize
    from ingest.pipeline import ingest
    from rag.index import open_index
    from rag.search import Searcher

    items = load_items((QUESTIONS,))
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rows_unquoted() if not quote_rows else nullcontext():
            ingest(NOTES, Path(tmp) / "index", encoder=encoder)
            searcher = Searcher(open_index(Path(tmp) / "index"), encoder=encoder)
            outs = run(searcher, items, progress=False)
    return summarize(outs), outs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.tables", description=__doc__.split("\n")[0])
    p.add_argument("--encoder", default="e5-small", help="encoder (default: the bundled e5-small)")
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder (default eval/results)")
    args = p.parse_args(argv)
    from eval.answers import quoted
    from rag.encoders import load_encoder

    enc = load_encoder(args.encoder)
    before, _ = measure(enc, quote_rows=False)
    after, outs = measure(enc, quote_rows=True)
    res = {"encoder": enc.id, "questions": after["questions"], "rows_never_quoted": before, "rows_quoted": after,
           "answers": [{"qid": o.item.qid, "question": o.item.question, "points": o.points, "abstained": o.abstained,
                        "text": o.answer.text,
                        "quoted": [quoted(c) for c in o.answer.citations]} for o in outs]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tables.json").write_text(json.dumps(res, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    md = [
        "# Questions answered from tables",
        "",
        f"Command: `python -m eval.tables`. Encoder `{enc.id}`, shipped values. Notes: `eval/data/tables/` "
        f"(5 tables in 4 files, ja / zh / en); {after['questions']} questions with their key points: "
        "`eval/data/table_questions.jsonl` (written against the notes; nothing is fitted to them). *padding*: a "
        "cited passage whose quoted text holds none of the key points.",
        "",
        "| table rows | " + " | ".join(COLS) + " |",
        "|---|" + "---|" * len(COLS),
    ]
    for name, r in (("never quoted (before)", before), ("quoted, one line naming the cells", after)):
        md.append(f"| {name} | " + " | ".join(f"{r[k]:.3f}" for k in COLS) + " |")
    md += ["", "## Answers (rows quoted)", "", "| qid | question | every point | answer (first 160 characters) |",
           "|---|---|---|---|"]
    for o in outs:
        text = o.answer.text.replace("\n", " ").replace("|", "\\|")[:160]
        md.append(f"| {o.item.qid} | {o.item.question} | {'yes' if all(o.points) and o.answer.answered else 'no'} | {text} |")
    (args.out / "tables.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    print("\n".join(md[:9]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
