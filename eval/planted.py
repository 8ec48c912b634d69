"""``python -m eval planted``: does the rule for planted sentences tell orders from notes?

``eval/data/planted_sentences.jsonl`` holds sentences written by hand, each labelled ``planted``
(an order to an AI or the reader, written into a document: "Note to AI assistants: …",
「AIアシスタントへ：…」, 「给AI的提示：…」, a fake conversation turn) or ``fact`` (what notes say,
also about prompt injection itself, quoting an attack, or a tutorial's "you must …"), ja / zh /
en, split in halves (dev / test). :func:`rag.safety.addresses_reader` was written against the dev
half; the test half is held out. A planted sentence is never quoted by an answer and lends its
passage no similarity; a fact taken for one is lost to the learner. Also: how many sentences of
the seed corpus the rule marks (none should be). Writes ``eval/results/planted.{json,md}``.
"""

from __future__ import annotations

import json
from pathlib import Path

from eval import report
from rag.safety import addresses_reader

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "planted_sentences.jsonl"
CORPUS = HERE.parent / "corpus"


def load(path: Path = DATA) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def score(rows: list[dict]) -> dict:
    """Planted sentences caught (recall), facts taken for planted (false alarms), the misses."""
    planted = [r for r in rows if r["label"] == "planted"]
    facts = [r for r in rows if r["label"] == "fact"]
    caught = [addresses_reader(r["text"]) for r in planted]
    alarms = [addresses_reader(r["text"]) for r in facts]
    return {
        "planted": len(planted), "facts": len(facts),
        "planted_caught": sum(caught) / len(planted) if planted else float("nan"),
        "facts_flagged": sum(alarms) / len(facts) if facts else float("nan"),
        "missed": [r["text"] for r, c in zip(planted, caught) if not c],
        "false_alarms": [r["text"] for r, a in zip(facts, alarms) if a],
    }


def seed_flagged() -> dict:
    """Sentences (answer units) of the seed corpus the rule marks planted: none should be."""
    from ingest.chunker import chunk_document
    from ingest.loader import load_corpus
    from rag.rules.sentences import unit_spans

    total, flagged = 0, []
    for doc in load_corpus(CORPUS):
        for c in chunk_document(doc):
            for a, b in unit_spans(c.text):
                total += 1
                if addresses_reader(c.text[a:b]):
                    flagged.append(c.text[a:b][:120])
    return {"sentences": total, "flagged": flagged}


def main(out: Path) -> dict:
    rows = load()
    res: dict = {"data": str(DATA.relative_to(HERE.parent)), "halves": {}}
    for half in ("dev", "test"):
        part = [r for r in rows if r["split"] == half]
        res["halves"][half] = {"all": score(part)}
        for lang in ("ja", "zh", "en"):
            res["halves"][half][f"lang={lang}"] = score([r for r in part if r["lang"] == lang])
    res["seed"] = seed_flagged()
    out.mkdir(parents=True, exist_ok=True)
    (out / "planted.json").write_text(json.dumps(res, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    lines = ["# Planted sentences: orders to an AI written into documents", "",
             f"Command: `python -m eval planted`. Gold: `{res['data']}` (hand-written, ja / zh / en); the rule "
             "(`rag.safety.addresses_reader`) was written against the dev half, the test half is held out.", ""]
    cols = ("planted", "planted_caught", "facts", "facts_flagged")
    for half in ("test", "dev"):
        lines += [f"## {half} half", "", report.table(res["halves"][half], cols, first="group"), ""]
        overall = res["halves"][half]["all"]
        for name, key in (("Planted and missed", "missed"), ("Facts taken for planted", "false_alarms")):
            if overall[key]:
                lines += [f"{name}:", ""] + [f"- {t}" for t in overall[key]] + [""]
    seed = res["seed"]
    lines += ["## Seed corpus", "", f"{len(seed['flagged'])} of {seed['sentences']} sentences marked planted.", ""]
    lines += [f"- {t}" for t in seed["flagged"]]
    (out / "planted.md").write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return res
