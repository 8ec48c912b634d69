"""``python -m eval answers``: how good are the answers a learner reads?

Gold set: ``eval/data/answer_questions.jsonl`` (on-topic questions with the key points a
right answer must contain, follow-up pairs, follow-ups the notes do not cover) and
``eval/data/answer_offtopic.jsonl`` (questions the notes do not answer); see
``eval/data/ANSWERS.md``. Every question goes through :func:`rag.answer.ask` exactly as the
app and ``rag ask`` call it (default settings, a follow-up with its previous turn).

Metrics, per split (dev / test) and per language and type:

* key points: share of on-topic answers containing **every** key point, containing at
  least half, and the mean share of points (an abstention covers none);
* abstention: precision and recall of "the notes do not cover this" (off-topic questions
  and uncovered follow-ups should abstain; on-topic ones should not), the confusion table;
* support: share of answer sentences whose cited passage (or its translation) contains them;
* latency of the whole ``ask`` (warm, per question, 2 cores).

``--calibrate`` first fits the relevance model (:mod:`rag.relevance`) on the dev half —
on-topic questions of this set and of the retrieval gold set against the off-topic dev
questions — and writes it to ``rag/tuned.json``; then scores both halves.
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from eval import report
from eval.datasets import HERE, Dataset, load_seed
from eval.runner import CachingEncoder, build_index
from ingest.loader import load_corpus
from rag.context import DEFAULT_K
from rag.answer import Answer, Settings, ask
from rag.encoders import DEFAULT_ENCODER, load_encoder
from rag.relevance import FEATURES, features
from rag.search import Searcher
from rag.text import normalize
from rag.tuned import TUNED_FILE, load_tuned, save_tuned

QUESTIONS = HERE / "data" / "answer_questions.jsonl"
OFFTOPIC = HERE / "data" / "answer_offtopic.jsonl"
TURNS = HERE / "data" / "followup_turns.jsonl"
# Questions a passage answers as a whole, each set scored apart (so the figures of the two files
# above keep their questions): which questions interviews ask (「面接でどんなシステム設計の質問が
# 出る？」: the notes' lists of them), what a document concludes or is about (「Zenn問答の記事の結論は？」
# 「Zenn問答の記事には何が書いてある？」: its closing or opening section).
INTERVIEW = HERE / "data" / "answer_interview.jsonl"
DOCUMENTS = HERE / "data" / "answer_documents.jsonl"
WHOLE_SETS = {"interview": (INTERVIEW, "Which questions do interviews ask"),
              "documents": (DOCUMENTS, "What does a document conclude, what is it about")}
# English notes a learner brought (eval/data/english_notes/, written for this set), asked in English:
# the seed notes have no English, so English over English (cosines, words, headings) is measured here.
ENGLISH_NOTES = HERE / "data" / "english_notes"
ENGLISH = HERE / "data" / "answer_english_notes.jsonl"
SENIOR_LIST = "senior-ai-engineer-questions-ja.md"  # questions only: no answers in it
CAL_FEATURES = FEATURES  # what the calibration fits (rag.relevance)
MAX_FALSE_ABSTAIN = 0.02  # the threshold keeps at most this share of dev on-topic questions from an answer (target 3 %, with a margin)


@dataclass(frozen=True)
class Item:
    qid: str
    question: str
    lang: str
    type: str
    split: str
    expect: str  # answer | not_covered | abstain
    key_points: tuple[tuple[str, ...], ...]
    previous: str | None = None


def load_items(paths=(QUESTIONS, OFFTOPIC)) -> list[Item]:
    out = []
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                out.append(Item(r["qid"], r["question"], r["lang"], r["type"], r["split"], r["expect"],
                                tuple(tuple(p) for p in r["key_points"]), r.get("previous")))
    return out


@dataclass(frozen=True)
class Turn:
    """A second turn: does it lean on the previous question (``followup``) or stand alone?"""

    qid: str
    previous: str
    question: str
    lang: str
    followup: bool
    split: str


def load_turns(path=TURNS) -> list[Turn]:
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Turn(r["qid"], r["previous"], r["question"], r["lang"], bool(r["followup"]), r["split"]) for r in rows]


def run_turns(searcher: Searcher, turns: list[Turn]) -> list[tuple[Turn, bool]]:
    """Each turn asked after its previous question, as the app asks it: was it taken as a follow-up?"""
    return [(t, ask(searcher, t.question, Settings(), history=[ask(searcher, t.previous)]).followup) for t in turns]


def summarize_turns(got: list[tuple[Turn, bool]]) -> dict:
    fol = [taken for t, taken in got if t.followup]
    own = [taken for t, taken in got if not t.followup]
    return {"followups": len(fol), "followups_taken": float(np.mean(fol)) if fol else float("nan"),
            "standalone": len(own), "standalone_taken": float(np.mean(own)) if own else float("nan"),
            "missed": [t.qid for t, taken in got if t.followup and not taken],
            "wrongly_taken": [t.qid for t, taken in got if not t.followup and taken]}


def covered(point: tuple[str, ...], text: str) -> bool:
    """A key point is covered when any of its alternatives occurs in the answer (NFKC, lower case)."""
    t = normalize(text)
    return any(normalize(alt) in t for alt in point)


def quoted(c) -> str:
    """The sentences an answer quotes from citation ``c`` (its passage when it names none)."""
    ch = c.chunk
    parts = [ch.text[max(0, a - ch.start): max(0, b - ch.start)] for a, b in c.quotes]
    return " ".join(parts) if any(parts) else ch.text


@dataclass
class Outcome:
    item: Item
    answer: Answer
    points: list[bool]
    ms: float

    @property
    def abstained(self) -> bool:
        return self.answer.abstained

    @property
    def should_abstain(self) -> bool:
        return self.item.expect in ("abstain", "not_covered")

    @property
    def padding(self) -> list[bool]:
        """Per cited passage of an on-topic answer: quotes none of the key points (padding)."""
        if not self.answer.answered or not self.item.key_points:
            return []
        return [not any(covered(p, quoted(c)) for p in self.item.key_points) for c in self.answer.citations]

    @property
    def share(self) -> float:
        return sum(self.points) / len(self.points) if self.points else 0.0


def run(searcher: Searcher, items: list[Item], *, progress: bool = True, before=None) -> list[Outcome]:
    """Ask every item (after its previous turn, for a follow-up). ``before(item, own)`` is
    called before each ask, ``own`` False for the previous turn."""
    out = []
    for it in tqdm(items, desc="answers", disable=not progress, leave=False):
        history = []
        if it.previous:
            if before:
                before(it, False)
            history = [ask(searcher, it.previous)]
        if before:
            before(it, True)
        t = time.perf_counter()
        a = ask(searcher, it.question, Settings(), history=history)
        ms = (time.perf_counter() - t) * 1000
        body = a.text if a.answered else ""
        out.append(Outcome(it, a, [covered(p, body) for p in it.key_points], ms))
    return out


def summarize(outs: list[Outcome]) -> dict:
    on = [o for o in outs if o.item.expect == "answer"]
    tp = sum(o.abstained and o.should_abstain for o in outs)
    fp = sum(o.abstained and not o.should_abstain for o in outs)
    fn = sum(not o.abstained and o.should_abstain for o in outs)
    tn = sum(not o.abstained and not o.should_abstain for o in outs)
    checks = [c for o in outs if o.answer.answered and o.answer.answerer == "extractive" for c in o.answer.checks]
    ms = np.array([o.ms for o in outs]) if outs else np.zeros(1)
    off = [o for o in outs if o.item.expect == "abstain"]
    nc = [o for o in outs if o.item.expect == "not_covered"]
    pad = [x for o in on for x in o.padding]
    return {
        "questions": len(outs),
        "on_topic": len(on),
        "all_points": float(np.mean([all(o.points) and o.answer.answered for o in on])) if on else float("nan"),
        "half_points": float(np.mean([o.share >= 0.5 and o.answer.answered for o in on])) if on else float("nan"),
        "mean_point_share": float(np.mean([o.share for o in on])) if on else float("nan"),
        "wrongly_abstained": float(np.mean([o.abstained for o in on])) if on else float("nan"),
        "offtopic_abstained": float(np.mean([o.abstained for o in off])) if off else float("nan"),
        "uncovered_followups_abstained": float(np.mean([o.abstained for o in nc])) if nc else float("nan"),
        "abstain_precision": tp / (tp + fp) if tp + fp else float("nan"),
        "abstain_recall": tp / (tp + fn) if tp + fn else float("nan"),
        "confusion": {"abstained_should": tp, "abstained_should_not": fp, "answered_should_not": fn,
                      "answered_should": tn},
        "supported_sentences": float(np.mean([c.ok for c in checks])) if checks else float("nan"),
        "padding": float(np.mean(pad)) if pad else float("nan"),
        "sentences": len(checks),
        "latency_p50_ms": float(np.percentile(ms, 50)),
        "latency_p95_ms": float(np.percentile(ms, 95)),
    }


def calibrate(searcher: Searcher, items: list[Item]) -> dict:
    """Fit the relevance model on the dev half: this set's on-topic questions (not the
    follow-ups) against its off-topic ones. (The retrieval gold set is not used: many of its
    questions are answered only by the list of interview questions, which is no answer.)"""
    from sklearn.linear_model import LogisticRegression

    on = [i.question for i in items if i.split == "dev" and i.expect == "answer" and not i.previous]
    off = [i.question for i in items if i.split == "dev" and i.expect == "abstain"]
    # more on-topic questions for placing the threshold: the retrieval gold set's dev questions
    # that some explaining document answers (not only the list of interview questions)
    seed = load_seed().subset("dev")
    extra = [q.text for q in seed.queries if any(a.doc_id != SENIOR_LIST for a in seed.anchors[q.qid])]

    def row(t):
        q = searcher.make_query(t)
        f = features(searcher.index, q, searcher.search_query(q, k=DEFAULT_K, mode=searcher.default_mode), t)
        return [f[k] for k in CAL_FEATURES]

    X = np.array([row(t) for t in on + off])
    y = np.array([1] * len(on) + [0] * len(off))
    X_extra = np.array([row(t) for t in extra])
    # Standardised features (so the penalty treats a cosine and a share alike), balanced classes
    # (an off-topic question counts as much as an on-topic one); weights mapped back to raw features.
    mu, sd = X.mean(axis=0), X.std(axis=0) + 1e-9
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000).fit((X - mu) / sd, y)
    w = model.coef_[0] / sd
    b = float(model.intercept_[0] - (model.coef_[0] * mu / sd).sum())
    p_all = 1 / (1 + np.exp(-(X @ w + b)))
    p_on = np.concatenate([p_all[y == 1], 1 / (1 + np.exp(-(X_extra @ w + b)))])
    p_off = p_all[y == 0]
    # the threshold: as strict as possible while wrongly abstaining on at most MAX_FALSE_ABSTAIN of dev on-topic
    threshold = float(min(0.5, np.quantile(p_on, MAX_FALSE_ABSTAIN)))
    return {"weights": dict(zip(CAL_FEATURES, map(float, w))), "bias": b,
            "threshold": threshold, "fitted_on": {"on_topic": int(y.sum()), "off_topic": int((1 - y).sum()),
                                                  "threshold_on_topic": len(p_on),
                                                  "dev_off_topic_below_threshold": float(np.mean(p_off < threshold))}}


GRID = {
    "unit_margin": (0.07, 0.1),
    "paragraph_chars": (0, 300),
    "second_passage": (0.02, 0.04),
    "term_bonus": (0.04, 0.08),
    "qa_margin": (0.02, 1.0),
    "topic_gate": (False, True),
    "section_match": (1.1, 0.92),
    "list_closing": (False, True),
    "whole_lists": (False, True),
    "passage_ratio": (0.0, 0.65),
}  # dense_extra (0, 2) and unit_margin 0.05 lost on dev in the previous grid (eval/results/answers.json)


def objective(summary: dict) -> float:
    """What the extraction grid maximises on dev: answers with every key point, and with half."""
    return (summary["all_points"] + summary["half_points"]) / 2


def tune_extraction(searcher: Searcher, items: list[Item]) -> tuple[dict, list[dict]]:
    """Every combination of :data:`GRID` on the dev half; the best by :func:`objective`."""
    import itertools

    dev = [i for i in items if i.split == "dev" and i.expect != "abstain"]
    base = searcher.tuned
    rows = []
    for values in tqdm(list(itertools.product(*GRID.values())), desc="extraction grid", leave=False):
        params = dict(zip(GRID, values))
        extract = {**((base.answer or {}).get("extract") or {}), **params}  # values outside the grid stay
        searcher.tuned = dataclasses.replace(base, answer={**(base.answer or {}), "extract": extract})
        summ = summarize(run(searcher, dev, progress=False))
        rows.append({**params, "objective": objective(summ), "all_points": summ["all_points"],
                     "half_points": summ["half_points"], "mean_point_share": summ["mean_point_share"]})
    searcher.tuned = base
    best = max(rows, key=lambda r: (r["objective"], r["mean_point_share"]))
    return {k: best[k] for k in GRID}, rows


def main(*, out: Path, encoder: str = DEFAULT_ENCODER, split: str = "all", do_calibrate: bool = False,
         do_tune: bool = False, write_files: bool = True, do_misses: bool = False, do_oracle: bool = False) -> dict:
    warnings.simplefilter("ignore")
    t0 = time.time()
    enc = CachingEncoder(load_encoder(encoder), cache_queries=False)
    seed = load_seed()
    index = build_index(seed, enc, progress=False).index
    enc.save()
    searcher = Searcher(index, encoder=enc)
    items = load_items()
    if do_calibrate:
        cal = calibrate(searcher, items)
        tuned = load_tuned(enc.id)
        tuned = dataclasses.replace(tuned, answer={**(tuned.answer or {}), "calibration": cal})
        save_tuned(tuned, TUNED_FILE)
        searcher.tuned = tuned
        print(f"calibration: {cal}", flush=True)
    grid_rows = []
    if do_tune:
        best, grid_rows = tune_extraction(searcher, items)
        tuned = load_tuned(enc.id)
        best = {**((tuned.answer or {}).get("extract") or {}), **best}
        tuned = dataclasses.replace(tuned, answer={**(tuned.answer or {}), "extract": best})
        save_tuned(tuned, TUNED_FILE)
        searcher.tuned = tuned
        print(f"extraction: {best}", flush=True)
    for it in items[:3]:  # warm up (tokenizers, lazily built look-ups)
        ask(searcher, it.question)
    chosen = [i for i in items if split == "all" or i.split == split]
    outs = run(searcher, chosen)
    res: dict = {"encoder": enc.id, "tuned_default_mode": searcher.default_mode, "splits": {}}
    for sp in ("dev", "test"):
        group = [o for o in outs if o.item.split == sp]
        if not group:
            continue
        res["splits"][sp] = {"all": summarize(group)}
        by = defaultdict(list)
        for o in group:
            by[f"lang={o.item.lang}"].append(o)
            by[f"type={o.item.type}"].append(o)
        res["splits"][sp].update({k: summarize(v) for k, v in sorted(by.items())})
    turns = [t for t in load_turns() if split == "all" or t.split == split]
    got = run_turns(searcher, turns)
    res["turns"] = {sp: summarize_turns([(t, k) for t, k in got if t.split == sp]) for sp in ("dev", "test")
                    if any(t.split == sp for t, _ in got)}
    for name, (path, _) in WHOLE_SETS.items():
        asked = run(searcher, [i for i in load_items((path,)) if split == "all" or i.split == split], progress=False)
        res[name] = {sp: summarize([o for o in asked if o.item.split == sp]) for sp in ("dev", "test")
                     if any(o.item.split == sp for o in asked)}
    res["english_notes"] = english_notes(enc, split)
    res["seconds"] = time.time() - t0
    res["extraction_grid"] = grid_rows
    res["previous"] = previous_figures(out / "answers.json")
    if write_files:
        _write(out, res, outs, encoder)
        if do_misses:
            (out / "answers-misses.md").write_text(misses_report(outs, index, "dev"), encoding="utf-8")
        if do_oracle:
            res["oracle"] = oracle_report(searcher, chosen, outs, out, encoder)
    return res


def english_notes(enc, split: str = "all") -> dict:
    """The English set over its own notes (``eval/data/english_notes``), per half."""
    docs = load_corpus(ENGLISH_NOTES)
    index = build_index(Dataset("english-notes", docs, [], "chunk"), enc, progress=False).index
    searcher = Searcher(index, encoder=enc)
    asked = run(searcher, [i for i in load_items((ENGLISH,)) if split == "all" or i.split == split], progress=False)
    return {sp: summarize([o for o in asked if o.item.split == sp]) for sp in ("dev", "test")
            if any(o.item.split == sp for o in asked)}


CHANGE_COLS = ("all_points", "half_points", "offtopic_abstained", "wrongly_abstained", "uncovered_followups_abstained",
               "supported_sentences", "padding")


def previous_figures(path: Path) -> dict:
    """The headline figures of the report about to be replaced (``{}`` when there is none), so
    the new report says what changed: ``{split: {column: value}}``."""
    try:
        old = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {sp: {c: g["all"][c] for c in CHANGE_COLS if c in g.get("all", {})}
            for sp, g in old.get("splits", {}).items()}


def change_table(res: dict) -> list[str]:
    """Markdown lines: each half's headline figures in the previous report and in this one."""
    prev = res.get("previous") or {}
    if not prev:
        return []
    md = ["## Change from the previous report", "", "| half | " + " | ".join(CHANGE_COLS) + " |",
          "|---" * (len(CHANGE_COLS) + 1) + "|"]
    for sp, groups in res["splits"].items():
        now, was = groups["all"], prev.get(sp, {})
        cells = [f"{was[c]:.3f} → {now[c]:.3f}" if c in was else f"{now[c]:.3f}" for c in CHANGE_COLS]
        md.append(f"| {sp} | " + " | ".join(cells) + " |")
    return md + [""]


COLS = ("questions", "all_points", "half_points", "mean_point_share", "wrongly_abstained", "offtopic_abstained",
        "uncovered_followups_abstained", "abstain_precision", "abstain_recall", "supported_sentences",
        "padding", "latency_p50_ms", "latency_p95_ms")


def _write(out: Path, res: dict, outs: list[Outcome], encoder: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    md = ["# Answer benchmark", "",
          f"Command: `python -m eval answers --encoder {encoder}` ({res['seconds']:.0f} s); encoder `{res['encoder']}`, "
          f"default mode `{res['tuned_default_mode']}`. Gold set: `eval/data/answer_*.jsonl` (see ANSWERS.md). "
          "The relevance model was fitted on the dev half only; the test half is held out.", ""]
    md += change_table(res)
    for sp, groups in res["splits"].items():
        md += [f"## {sp} half", "", report.table(groups, COLS, "group"), ""]
        c = groups["all"]["confusion"]
        md += ["Abstention confusion table:", "", "| | should abstain | should answer |", "|---|---|---|",
               f"| abstained | {c['abstained_should']} | {c['abstained_should_not']} |",
               f"| answered | {c['answered_should_not']} | {c['answered_should']} |", ""]
    md += ["## Second turns: follow-up or self-contained (`eval/data/followup_turns.jsonl`)", "",
           "| half | follow-ups | taken as follow-ups | self-contained | taken as follow-ups | missed | wrongly taken |",
           "|---|---|---|---|---|---|---|"]
    for sp, t in res.get("turns", {}).items():
        md.append(f"| {sp} | {t['followups']} | {t['followups_taken']:.3f} | {t['standalone']} | "
                  f"{t['standalone_taken']:.3f} | {' '.join(t['missed']) or '—'} | {' '.join(t['wrongly_taken']) or '—'} |")
    md.append("")
    for name, (path, heading) in WHOLE_SETS.items():
        if res.get(name):
            md += [f"## {heading} (`eval/data/{path.name}`)", "", report.table(res[name], COLS, "half"), ""]
    if res.get("english_notes"):
        md += [f"## English notes, English questions (`eval/data/{ENGLISH.name}` over `eval/data/english_notes/`)", "",
               report.table(res["english_notes"], COLS, "half"), ""]
    misses = [o for o in outs if o.item.split == "test" and o.item.expect == "answer" and not all(o.points)]
    md += ["## Held-out answers missing a key point (first 30)", ""]
    for o in misses[:30]:
        miss = [p[0] for p, ok in zip(o.item.key_points, o.points) if not ok]
        state = "abstained" if o.abstained else "answered"
        md.append(f"- `{o.item.qid}` ({o.item.lang}/{o.item.type}) {o.item.question} — {state}; missing: {', '.join(miss)}")
    (out / "answers.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    report.write_json(out / "answers.json", {**res, "answers": [
        {"qid": o.item.qid, "split": o.item.split, "expect": o.item.expect, "points": o.points, "ms": o.ms,
         **{k: v for k, v in o.answer.to_dict().items() if k in ("answer", "abstained", "reason", "relevance")}}
        for o in outs]})
    print("\n".join(md[:40]))


# --- the right passage first (``--oracle-first``): composition apart from retrieval -----------------

ORACLE_DEPTH = 20  # the oracle looks at this many of the search's passages


class OracleFirst:
    """Wraps a searcher: for the item being asked (``item``), the search puts first the passage
    of its ``ORACLE_DEPTH`` best that holds the most key points (or whose translation does),
    given the first passage's score; the dense-only searches of the answerer and the other
    items' are left as they are. A diagnostic: what the answers would be if retrieval always
    found the passage that answers (among those it found at all)."""

    def __init__(self, searcher: Searcher):
        self._searcher = searcher
        self.item: Item | None = None

    def __getattr__(self, name):
        return getattr(self._searcher, name)

    def _points(self, chunk) -> int:
        index = self._searcher.index
        twin = index.chunks[index.by_id[chunk.parallel]].text if chunk.parallel in index.by_id else ""
        return sum(covered(p, chunk.text) or bool(twin and covered(p, twin)) for p in self.item.key_points)

    def search_query(self, query, k: int = 10, mode: str | None = None, **kw):
        if self.item is None or not self.item.key_points or mode == "dense":
            return self._searcher.search_query(query, k=k, mode=mode, **kw)
        hits = self._searcher.search_query(query, k=max(k, ORACLE_DEPTH), mode=mode, **kw)
        if hits:
            best = max(range(len(hits)), key=lambda i: (self._points(hits[i].chunk), -i))
            if best and self._points(hits[best].chunk):
                hits = [dataclasses.replace(hits[best], score=hits[0].score)] + hits[:best] + hits[best + 1:]
        return hits[:k]


def oracle_run(searcher: Searcher, items: list[Item]) -> list[Outcome]:
    """:func:`run` with :class:`OracleFirst` around the searcher."""
    oracle = OracleFirst(searcher)

    def before(it: Item, own: bool) -> None:
        oracle.item = it if own and it.expect == "answer" else None

    return run(oracle, items, progress=False, before=before)


def oracle_report(searcher: Searcher, items: list[Item], outs: list[Outcome], out: Path, encoder: str) -> dict:
    """answers-oracle.{md,json}: each half's figures as shipped and with the right passage first."""
    got = oracle_run(searcher, items)
    res = {sp: {"shipped": summarize([o for o in outs if o.item.split == sp]),
                "right passage first": summarize([o for o in got if o.item.split == sp])} for sp in ("dev", "test")}
    cols = ("all_points", "half_points", "padding", "offtopic_abstained", "wrongly_abstained")
    md = ["# Answers with the right passage first (a diagnostic)", "",
          f"Command: `python -m eval answers --encoder {encoder} --oracle-first`. *Right passage first*: for each "
          f"on-topic question, the search's passage (of its {ORACLE_DEPTH} best) that holds the most of the "
          "question's key points is put first, with the first passage's score; everything else as shipped. "
          "What is left in that row is the answer's composition (which passages and sentences it quotes), "
          "not retrieval.", ""]
    for sp, r in res.items():
        md += [f"## {sp} half", "", report.table(r, cols, "search"), ""]
    out.mkdir(parents=True, exist_ok=True)
    (out / "answers-oracle.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    report.write_json(out / "answers-oracle.json", res)
    print("\n".join(md))
    return res


# --- why an answer misses a point or cites padding (``--misses``) --------------------------------

MISS_CAUSES = ("abstained", "wrong first passage", "point in a code block", "second passage from another topic",
               "point in a cited passage, not quoted", "point in a retrieved passage, not cited",
               "point not retrieved", "other")


def _passage_texts(index, chunk) -> str:
    """A passage's text with its translation (a key point may be written in either)."""
    twin = index.chunks[index.by_id[chunk.parallel]] if chunk.parallel in index.by_id else None
    return chunk.text + ("\n" + twin.text if twin is not None else "")


def _units_text(index, chunk, code: bool) -> str:
    """The units of a passage (and its translation) inside code blocks (``code``) or outside them."""
    from rag.extract import chunk_units

    rows = [index.by_id[chunk.id]] + ([index.by_id[chunk.parallel]] if chunk.parallel in index.by_id else [])
    return "\n".join(u.text for r in rows for u in chunk_units(index, r) if (u.kind == "code") == code)


def _code_text(index, chunk) -> str:
    return _units_text(index, chunk, True)


def _prose_text(index, chunk) -> str:
    return _units_text(index, chunk, False)


def same_topic(index, first, other, topics) -> bool:
    """Whether passage ``other`` is about what the answer's first passage is: the same section,
    or a passage naming one of the question's ``topics``."""
    if other.doc_id == first.doc_id and other.section and other.section == first.section:
        return True
    return any(normalize(t) in normalize(f"{other.section}\n{other.text}") for t in topics)


def explain(o: Outcome, index) -> dict | None:
    """Why a dev/test on-topic answer misses a key point or cites a passage with none of them:
    ``{"miss": cause or None, "padding": [cause per padded citation]}`` (``None``: nothing wrong).

    A miss is put down to the first cause that fits, in this order: the answer abstained; a
    missing point sits only in a code block of a retrieved passage; the first cited passage
    holds none of the key points (a retrieval miss); the point is in a cited passage but not
    in what was quoted; in a retrieved passage that was not cited; in no retrieved passage.
    A padded citation is the first one (wrong first passage), a later one about another topic
    (not the first passage's section and naming none of the question's topics), or other."""
    from rag.extract import question_topics

    it = o.item
    if it.expect != "answer":
        return None
    missing = [p for p, ok in zip(it.key_points, o.points) if not ok]
    pads = o.padding
    if not missing and not any(pads):
        return None
    hits = [h.chunk for h in o.answer.hits]
    cites = [c.chunk for c in o.answer.citations]
    miss = None
    if missing:
        seen = lambda chunks, f: any(covered(p, f(index, c)) for p in missing for c in chunks)
        in_code = seen(hits + cites, _code_text)
        if o.abstained:
            miss = "abstained"
        elif in_code and not seen(hits + cites, _prose_text):
            miss = "point in a code block"
        elif cites and not any(covered(p, _passage_texts(index, cites[0])) for p in it.key_points):
            miss = "wrong first passage"
        elif seen(cites, _passage_texts):
            miss = "point in a cited passage, not quoted"
        elif seen(hits, _passage_texts):
            miss = "point in a retrieved passage, not cited"
        else:
            miss = "point not retrieved"
    topics = question_topics(it.question, index.facts.quotable_text)
    pad_causes = []
    for k, (c, padded) in enumerate(zip(cites, pads)):
        if not padded:
            continue
        if k == 0:
            pad_causes.append("wrong first passage")
        elif not same_topic(index, cites[0], c, topics):
            pad_causes.append("second passage from another topic")
        else:
            pad_causes.append("other")
    return {"miss": miss, "padding": pad_causes, "missing": [p[0] for p in missing]}


def misses_report(outs: list[Outcome], index, split: str = "dev") -> str:
    """Markdown: each ``split`` on-topic answer missing a point or citing padding, with its cause,
    and the counts per cause."""
    rows = [(o, e) for o in outs if o.item.split == split for e in [explain(o, index)] if e]
    miss_n = defaultdict(int)
    pad_n = defaultdict(int)
    for _, e in rows:
        if e["miss"]:
            miss_n[e["miss"]] += 1
        for c in e["padding"]:
            pad_n[c] += 1
    cited = sum(len(o.padding) for o in outs if o.item.split == split)
    md = [f"# Answer misses and padded citations ({split} half)", "",
          "Command: `python -m eval answers --encoder e5-small --misses`. A miss: an on-topic answer without "
          "every key point, put down to the first cause that fits (see `eval.answers.explain`). A padded "
          "citation: a cited passage whose quoted sentences hold none of the key points.", "",
          "| cause | answers missing a point | padded citations |", "|---|---|---|"]
    for c in MISS_CAUSES:
        if miss_n[c] or pad_n[c]:
            md.append(f"| {c} | {miss_n[c]} | {pad_n[c]} |")
    md += [f"| all | {sum(miss_n.values())} | {sum(pad_n.values())} of {cited} cited |", "", "## Per question", "",
           "| qid | lang/type | question | missing | miss cause | padded citations |", "|---|---|---|---|---|---|"]
    for o, e in rows:
        q = o.item.question.replace("|", "/")
        md.append(f"| `{o.item.qid}` | {o.item.lang}/{o.item.type} | {q} | {', '.join(e['missing']) or '—'} | "
                  f"{e['miss'] or '—'} | {'; '.join(e['padding']) or '—'} |")
    return "\n".join(md) + "\n"
