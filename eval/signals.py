"""``python -m eval signals``: can any mix of the offline relevance signals reach a hit@1 target?

A diagnostic, never used to choose a setting (it is fitted on the questions it scores, on
purpose). For the seed set and the cross-lingual slice, each question's 50 fused candidates
(what any reranker sees) get every relevance signal there is offline, each min-max scaled
within the question's candidates:

* the shipped pipeline's: ``fused`` (its fused score), e5-small's ``whole`` / ``unit`` /
  ``heading`` cosines, ``coverage`` (the question's analyzed terms found in the passage),
  ``bm25``, ``same language`` (the passage, or its translation, is in the question's language);
* the bundled multilingual USE (``use-m3``): ``use whole`` and ``use unit`` cosines;
* e5-small's sparse "latent terms" head: ``latent`` (dot product of the two sparse vectors).

Two figures per half:

* ``best weights per question`` — a question counts when *some* non-negative weighting puts a
  relevant passage above every other candidate (a linear program per question). No single
  weighting, fitted or not, can do better than this share: it is an upper bound for every
  linear mix of these signals;
* ``best shared weights`` — the best single non-negative weighting for all the half's
  questions, fitted on those questions themselves (a mixed-integer program that maximises
  hit@1 exactly; ``proven bound`` is what the solver proved no weighting exceeds, equal to
  the figure when it finished): the most any linear reranker or fusion of these signals can
  reach on these questions.

If the upper bound is below a target, no reranker or fusion over these signals reaches it: what
is missing is a better signal (an encoder that ties the question's words to the notes').

Writes ``eval/results/signals.{json,md}``.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from eval import metrics, report
from eval.datasets import load_crosslingual, load_seed
from eval.runner import CachingEncoder, cached_index
from eval.tune import CANDIDATES, unit_of
from ingest.pipeline import unit_texts
from rag.encoders import DEFAULT_ENCODER, load_encoder
from rag.rerank import feature_matrix
from rag.search import Searcher

OWN = ("fused", "whole", "unit", "heading", "coverage")
SIGNALS = OWN + ("bm25", "same language", "use whole", "use unit", "latent")
TARGETS = {"seed": 0.85, "xling": 0.80}  # held-out hit@1 asked for by the answer-quality issue
MARGIN = 1e-4  # "first" means ahead of every non-relevant candidate by this much (no ties)


def _scaled(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


class Extra:
    """The signals the shipped index does not hold: USE vectors of every passage and its
    units, and e5's sparse vector of every passage (computed once per corpus)."""

    def __init__(self, index, use, e5):
        texts = [c.text for c in index.chunks]
        self.use_whole = use.encode(texts, query=False)
        unit_text, offsets, _ = unit_texts(index.chunks)
        self.use_units = use.encode(unit_text, query=False)
        self.offsets = offsets
        self.latent = e5.sparse(texts)
        self.use, self.e5 = use, e5

    def columns(self, question: str, rows: np.ndarray) -> dict[str, np.ndarray]:
        qu = self.use.encode([question], query=True)[0]
        units = self.use_units @ qu
        best_unit = np.array([units[self.offsets[i] : self.offsets[i + 1]].max(initial=-1.0) for i in rows])
        ql = self.e5.sparse([question])
        latent = np.asarray((self.latent[rows] @ ql.T).todense()).ravel()
        return {"use whole": self.use_whole[rows] @ qu, "use unit": best_unit, "latent": latent}


def question_matrix(searcher: Searcher, extra: Extra, text: str) -> tuple[list, np.ndarray]:
    """The fused candidates of question ``text`` and their signals (candidates x SIGNALS), scaled."""
    query = searcher.make_query(text)
    hits = searcher.search_query(query, k=CANDIDATES, mode="hybrid")
    if not hits:
        return [], np.zeros((0, len(SIGNALS)))
    index = searcher.index
    rows = np.array([index.by_id[h.chunk.id] for h in hits], dtype=np.int64)
    cols = dict(zip(OWN, feature_matrix(index, query, hits, OWN).T))
    bm25 = searcher.index.bm25.scores(list(query.tokens)) if len(query.tokens) else np.zeros(len(index.chunks))
    cols["bm25"] = np.asarray(bm25, dtype=float)[rows]
    group = searcher.counts_as(query)
    langs = searcher._languages()[1]
    own = langs.index(query.lang) if query.lang in langs else -1
    cols["same language"] = (group[rows] == own).astype(float)
    cols.update(extra.columns(text, rows))
    return hits, np.stack([_scaled(np.asarray(cols[s], dtype=float)) for s in SIGNALS], axis=1)


def separable(f: np.ndarray, labels: np.ndarray) -> bool:
    """Is there a non-negative weighting (summing to 1) under which some relevant candidate
    scores above every non-relevant one? One small linear program per relevant candidate."""
    from scipy.optimize import linprog

    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    if not len(pos):
        return False
    if not len(neg):
        return True
    k = f.shape[1]
    for g in pos:
        diff = f[g][None, :] - f[neg]  # want diff @ w >= t > 0
        # variables: w (k), t; maximise t <=> minimise -t
        a_ub = np.hstack([-diff, np.ones((len(neg), 1))])
        res = linprog(np.r_[np.zeros(k), -1.0], A_ub=a_ub, b_ub=np.zeros(len(neg)),
                      A_eq=np.r_[np.ones(k), 0.0][None, :], b_eq=[1.0],
                      bounds=[(0, None)] * k + [(None, 1.0)], method="highs")
        if res.status == 0 and -res.fun > 1e-9:
            return True
    return False


def hit_rate(mats: list[np.ndarray], labels: list[np.ndarray], w: np.ndarray) -> float:
    return float(np.mean([lab[int(np.argmax(f @ w))] == 1 for f, lab in zip(mats, labels)]))


def shared_weights(mats, labels, *, seconds: float = 300.0) -> dict:
    """The most questions one non-negative weighting (summing to 1) can put a relevant passage
    first for, exactly: a mixed-integer program (HiGHS) with one binary per relevant candidate,
    which may be on only if that candidate beats every non-relevant one by ``MARGIN``.
    Returns the share found, the proven upper bound on it (equal when solved to optimality)
    and the weights, re-checked by ranking the candidates with them."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import csr_matrix, hstack, vstack

    k, q = len(SIGNALS), len(labels)
    pairs = [(qi, g) for qi, lab in enumerate(labels) for g in np.flatnonzero(lab == 1)]
    n_pairs = len(pairs)
    big = 1.0 + MARGIN  # scaled signals in [0, 1], weights sum to 1: a difference lies in [-1, 1]
    # per (relevant candidate g, non-relevant j): (x_g - x_j) . w - big * z_g >= MARGIN - big
    diffs, owner = [], []
    for p, (qi, g) in enumerate(pairs):
        f = mats[qi]
        neg = np.flatnonzero(labels[qi] == 0)
        diffs.append(f[g] - f[neg])
        owner += [p] * len(neg)
    d = np.vstack(diffs) if diffs else np.zeros((0, k))
    r = len(d)
    beats = hstack([csr_matrix(d), csr_matrix((np.full(r, -big), (np.arange(r), owner)), shape=(r, n_pairs))])
    weights_sum = csr_matrix(np.r_[np.ones(k), np.zeros(n_pairs)][None, :])  # the weights sum to 1
    once = hstack([csr_matrix((q, k)),  # a question counts once
                   csr_matrix((np.ones(n_pairs), ([qi for qi, _ in pairs], np.arange(n_pairs))), shape=(q, n_pairs))])
    a = vstack([beats, weights_sum, once]).tocsr()
    lo = np.r_[np.full(r, MARGIN - big), 1.0, np.zeros(q)]
    hi = np.r_[np.full(r, np.inf), 1.0, np.ones(q)]
    res = milp(c=np.r_[np.zeros(k), -np.ones(n_pairs)], constraints=LinearConstraint(a, lo, hi),
               integrality=np.r_[np.zeros(k), np.ones(n_pairs)], bounds=Bounds(0, np.r_[np.full(k, np.inf), np.ones(n_pairs)]),
               options={"time_limit": seconds})
    if res.x is None:
        return {"found": float("nan"), "bound": float("nan"), "optimal": False, "weights": None}
    w = res.x[:k]
    bound = -float(getattr(res, "mip_dual_bound", res.fun)) / len(labels)
    return {"found": hit_rate(mats, labels, w), "bound": min(1.0, bound), "optimal": res.status == 0,
            "weights": dict(zip(SIGNALS, map(float, w)))}


def collect(searcher: Searcher, extra: Extra, ds, split: str) -> tuple[list, list, float]:
    """Per question of a half: its candidates' signals and relevance labels; and the shipped
    hybrid's hit@1 on the half."""
    sub = ds.subset(split)
    qrels = sub.qrels(searcher.index.chunks)
    mats, labels, run = [], [], {}
    for q in tqdm(sub.queries, desc=f"{ds.name} {split}", leave=False):
        if q.qid not in qrels:
            continue
        hits, f = question_matrix(searcher, extra, q.text)
        if not hits:
            continue
        mats.append(f)
        labels.append(np.array([1 if unit_of(ds, h.chunk) in qrels[q.qid] else 0 for h in hits]))
        run[q.qid] = {unit_of(ds, h.chunk): float(len(hits) - r) for r, h in enumerate(hits)}
    return mats, labels, metrics.score(qrels, run)["hit@1"]


def measure(mats: list, labels: list, shipped: float) -> dict:
    single = {s: hit_rate(mats, labels, np.eye(len(SIGNALS))[j]) for j, s in enumerate(SIGNALS)}
    bound = float(np.mean([separable(f, lab) for f, lab in zip(mats, labels)]))
    best = shared_weights(mats, labels)
    return {"questions": len(mats), "hybrid (shipped)": shipped, "pool recall": float(np.mean([lab.any() for lab in labels])),
            "best weights per question (upper bound)": bound, "best shared weights (in-sample)": best["found"],
            "best shared weights: proven bound": best["bound"], "solved to optimality": best["optimal"],
            "weights found": best["weights"], "single signals": single}


def main(*, out: Path, encoder: str = DEFAULT_ENCODER) -> int:
    warnings.simplefilter("ignore")
    t0 = time.time()
    inner = load_encoder(encoder)
    if not hasattr(inner, "sparse"):
        raise SystemExit(f"python -m eval signals needs e5-small (its sparse head), not {encoder}")
    enc = CachingEncoder(inner)
    seed, xling = load_seed(), load_crosslingual()
    index = cached_index(seed, enc, progress=False).index  # the cross-lingual slice searches the same corpus
    searcher = Searcher(index, encoder=enc)
    extra = Extra(index, load_encoder("use-m3"), inner)
    data = {(ds.name, split): collect(searcher, extra, ds, split) for ds in (seed, xling) for split in ("dev", "test")}
    enc.save()
    res: dict[str, dict] = {}
    for (name, split), (mats, labels, shipped) in data.items():
        res.setdefault(name, {})[split] = measure(mats, labels, shipped)
    # the honest use of the same program: one weighting fitted on both dev halves, judged on the test halves
    dev = [data[(ds.name, "dev")] for ds in (seed, xling)]
    fitted = shared_weights([m for d in dev for m in d[0]], [lab for d in dev for lab in d[1]])
    w = np.array([fitted["weights"][s] for s in SIGNALS]) if fitted["weights"] else np.eye(len(SIGNALS))[0]
    for (name, split), (mats, labels, _) in data.items():
        res[name][split]["fitted on both dev halves"] = hit_rate(mats, labels, w)
    res["fitted on both dev halves"] = {"weights": fitted["weights"], "solved to optimality": fitted["optimal"]}
    report.write_json(out / "signals.json", {"command": "python -m eval signals", "encoder": enc.id,
                                              "candidates": CANDIDATES, "signals": SIGNALS, "results": res,
                                              "seconds": round(time.time() - t0)})
    keys = ("hybrid (shipped)", "fitted on both dev halves", "best shared weights (in-sample)",
            "best shared weights: proven bound", "best weights per question (upper bound)", "pool recall")
    md = ["# Every offline relevance signal, mixed at its best (a diagnostic)", "",
          f"Command: `python -m eval signals` ({time.time() - t0:.0f} s), encoder `{enc.id}`, the "
          f"{CANDIDATES} fused candidates of each question. Signals: {', '.join(f'`{s}`' for s in SIGNALS)} "
          "(each min-max scaled within a question's candidates). *Upper bound*: share of questions for which "
          "some non-negative weighting of the signals puts a relevant passage first (one linear program per "
          "question) — no single weighting does better. *Best shared weights*: the one weighting that puts a "
          "relevant passage first for the most questions of the half, fitted on those very questions (a "
          "mixed-integer program; *proven bound*: what the solver proved no weighting exceeds). *Fitted on both dev "
          "halves*: the same program run once on the seed and cross-lingual dev questions together, its weighting "
          "then judged on every half (the held-out figure a reranker over all these signals would get). Hit@1:", "",
          "| set | half | questions | target | " + " | ".join(keys) + " |", "|---|---|---|---|" + "---|" * len(keys)]
    for name, by in res.items():
        for split, r in by.items():
            if split not in ("dev", "test"):
                continue
            md.append(f"| {name} | {split} | {r['questions']} | {TARGETS[name]:.2f} | "
                      + " | ".join(f"{r[k]:.3f}" for k in keys) + " |")
    md += ["", "Each signal alone (hit@1 of ranking the candidates by it):", "",
           report.table({f"{n} / {s}": r["single signals"] for n, by in res.items() for s, r in by.items()
                         if s in ("dev", "test")}, SIGNALS, "set / half"), "",
           "Weighting fitted on both dev halves: " + ", ".join(
               f"{s} {v:.3f}" for s, v in (res["fitted on both dev halves"]["weights"] or {}).items() if v > 1e-4), ""]
    out.mkdir(parents=True, exist_ok=True)
    (out / "signals.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    print("\n".join(md))
    return 0
