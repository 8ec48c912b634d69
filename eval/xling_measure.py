"""Measurement of two cross-lingual ideas for the dense leg (not kept; README, "Measured and not kept").

``python -m eval.xling_measure ensemble SPLIT '[{"a": 0.2}]'`` — e5-small's dense score mixed with
the bundled multilingual USE's (``use-m3``) for passages in another language than the question's:
each encoder's passage score (:meth:`rag.search.Searcher.passage_similarity`) centred on its
language's mean as the search centres it, divided by the standard deviation of the scores over the
centring sample, then ``(1 - a) * e5 + a * use``; passages in the question's language keep e5's.
``python -m eval.xling_measure answers SPLIT A`` — the answer benchmark with that dense leg.
``python -m eval.xling_measure feedback SPLIT '[{"b": 0.1, "k": 3, "m": 8, "minidf": 2}]'`` — the
``k`` best Japanese passages of the dense leg give their ``m`` most idf-weighted shared terms (idf
at least ``minidf``), a keyword search with them is mixed in with weight ``b`` for passages in
another language than the question's.

The candidates are every passage (the seed corpus is 159), so a=0 / b=0 reproduce the shipped
hybrid on the seed and xling sets (xling test MRR@10 0.620 against the shipped 0.613: the shipped
leg scores its top candidates only).
"""

from __future__ import annotations

import json
import sys
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

import rag.search as search_module
from eval import metrics
from eval.datasets import load_crosslingual, load_seed
from eval.runner import CachingEncoder, build_index, cached_index, run_mode
from rag.encoders import load_encoder
from rag.fusion import min_max
from rag.search import Searcher


def standardised(s: Searcher, query, qv) -> np.ndarray:
    codes, langs, sample = s._languages()
    sims = s.passage_similarity(np.arange(len(s.index.chunks)), qv)
    ref = sims[sample]
    if query.lang in langs:
        means = np.array([ref[codes[sample] == k].mean() for k in range(len(langs))])
        sims = sims - means[s.counts_as(query)]
    else:
        sims = sims - ref.mean()
    return sims / (ref.std() or 1.0)


def own_code(s: Searcher, query) -> int:
    langs = s._languages()[1]
    return langs.index(query.lang) if query.lang in langs else -1


class Setup:
    def __init__(self):
        warnings.simplefilter("ignore")
        self.seed, self.xling = load_seed(), load_crosslingual()
        self.e5 = CachingEncoder(load_encoder("e5-small"), cache_queries=True)
        self.use = CachingEncoder(load_encoder("use-m3"), cache_queries=True)
        self.index = cached_index(self.seed, self.e5, progress=False).index
        self.use_searcher = Searcher(cached_index(self.seed, self.use, progress=False).index, encoder=self.use)
        assert [c.id for c in self.index.chunks] == [c.id for c in self.use_searcher.index.chunks]
        self.cfg: dict = {}

    def ensemble_leg(self):
        setup = self

        def dense_leg(s: Searcher, query, n: int) -> dict[int, float]:
            a = setup.cfg["a"]
            z = standardised(s, query, query.vector)
            uq = setup.use_searcher.make_query(query.text)
            mixed = (1 - a) * z + a * standardised(setup.use_searcher, uq, uq.vector)
            mixed = np.where(s.counts_as(query) == own_code(s, query), z, mixed)
            best = np.argsort(-mixed, kind="stable")[:n]
            return {int(i): float(mixed[i]) for i in best}

        return dense_leg

    def score(self, s: Searcher, ds, split: str, mode: str = "hybrid"):
        sub = ds.subset(split)
        ids = {x.qid for x in sub.queries}
        qrels = {k: v for k, v in ds.qrels(s.index.chunks).items() if k in ids}
        run = run_mode(s, sub, mode, progress=False).run
        return tuple(round(x, 3) for x in metrics.score(qrels, run, ("hit_rate@1", "mrr@10")).values())


def feedback_fuse(setup: Setup, current: dict):
    plain = search_module.fuse

    def fuse(tuned, query, bm25, dense, *, other_language=frozenset()):
        fused = plain(tuned, query, bm25, dense, other_language=other_language)
        s, c = current["searcher"], setup.cfg
        if not c["b"] or not dense or query.lang == "ja":
            return fused
        codes, langs, _ = s._languages()
        counts, own, ja = s.counts_as(query), own_code(s, query), langs.index("ja")
        fb = [i for i in sorted(dense, key=lambda i: -dense[i]) if codes[i] == ja and counts[i] != own][: c["k"]]
        bm = s.index.bm25
        df = Counter(t for i in fb for t in set(bm.tokens[i]))
        weight = {t: bm.idf(t) * n for t, n in df.items() if bm.idf(t) >= c["minidf"] and len(t) > 1}
        terms = sorted(weight, key=lambda t: -weight[t])[: c["m"]]
        if not terms:
            return fused
        sc = bm.scores(terms)
        rows = {i for i in range(len(sc)) if counts[i] != own and sc[i] > 0}
        prf = min_max({i: float(sc[i]) for i in rows})
        total = sum(search_module.fusion_weights(tuned, query))
        out = dict(fused)
        for i in rows | {i for i in fused if counts[i] != own}:
            out[i] = (1 - c["b"]) * fused.get(i, 0.0) + c["b"] * total * prf.get(i, 0.0)
        return out

    return fuse


def main(argv: list[str]) -> int:
    what, split, arg = argv
    setup = Setup()
    if what == "ensemble":
        Ens = type("Ens", (Searcher,), {"dense_leg": setup.ensemble_leg()})
        s = Ens(setup.index, encoder=setup.e5)
        for c in json.loads(arg):
            setup.cfg = c
            print(c, {ds.name: {m: setup.score(s, ds, split, m) for m in ("dense", "hybrid")} for ds in (setup.xling, setup.seed)},
                  flush=True)
    elif what == "answers":
        import eval.answers as answers

        setup.cfg = {"a": float(arg)}
        Searcher.dense_leg = setup.ensemble_leg()  # answers builds its own searcher
        res = answers.main(out=Path("/tmp/xling-measure-answers"), split=split, write_files=False)
        for sp, g in res["splits"].items():
            print(arg, sp, {k: round(v, 3) for k, v in g["all"].items()
                            if k in ("all_points", "half_points", "offtopic_abstained", "wrongly_abstained", "padding")})
    elif what == "feedback":
        current: dict = {}
        search_module.fuse = feedback_fuse(setup, current)

        class Feedback(Searcher):
            def search_query(self, q, **kw):
                current["searcher"] = self
                return super().search_query(q, **kw)

        s = Feedback(setup.index, encoder=setup.e5)
        for c in json.loads(arg):
            setup.cfg = c
            print(c, {ds.name: setup.score(s, ds, split) for ds in (setup.xling, setup.seed)}, flush=True)
    setup.e5.save()
    setup.use.save()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
