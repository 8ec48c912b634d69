"""A second encoder for the dense leg, its weight chosen per question language (measured, not shipped).

e5-small's dense score is mixed with the bundled multilingual USE's (``use-m3``) for passages in
another language than the question's: each encoder's passage score
(:meth:`rag.search.Searcher.passage_similarity`) centred on its language's mean as the search
centres it, divided by the standard deviation of the scores over the centring sample, then
``(1 - a) * e5 + a * use``; passages in the question's language keep e5's. ``a`` is chosen per
question language (``ja`` / ``zh`` / ``en``; another language keeps the shipped leg).

``python -m eval.xling_measure choose`` — the grid ``a`` in {0, 0.1, 0.2, 0.3, 0.4} per language on
the dev halves (seed and cross-lingual sets, hybrid), the selection rule (:func:`choose`), the answer
benchmark's dev half for the best settings; writes eval/results/ensemble-by-language.json and .md.
``python -m eval.xling_measure test`` — the chosen setting judged once on the test halves (and the
shipped leg beside it); adds them to the same report.
``python -m eval.xling_measure report`` — the Markdown again from the JSON.
``python -m eval.xling_measure ensemble SPLIT '[{"ja": 0.2, "zh": 0.3, "en": 0}]'`` — ad hoc figures.

With ``a = 0`` for a language its questions take the shipped dense leg unchanged (so the all-zero
setting reproduces today's figures). With ``a > 0`` the candidates are the shipped leg's ``n`` best
of each encoder (two vector searches, as an engine would run them), scored by the mix.
A question's dense leg depends only on its own language's weight, so the grid is run once per value
of ``a`` (for every language at once) and each setting's figures are the per-question results of
its languages' values put together (:func:`combine`); the chosen setting is then re-run as a whole
and must give the same figures.
"""

from __future__ import annotations

import itertools
import json
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from eval import metrics
from eval.datasets import load_crosslingual, load_seed
from eval.runner import CachingEncoder, cached_index, run_mode
from rag.encoders import load_encoder
from rag.search import Searcher

LANGS = ("ja", "zh", "en")
GRID = (0.0, 0.1, 0.2, 0.3, 0.4)
OUT = Path(__file__).resolve().parent / "results"
NAME = "ensemble-by-language"
ANSWER_COLS = ("all_points", "half_points", "padding", "offtopic_abstained", "wrongly_abstained")
SHIPPED_DENSE_LEG = Searcher.dense_leg


def standardised(s: Searcher, query, qv: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Passage scores of ``rows`` less their language's mean over the centring sample (the
    sample's mean for a question in none of the notes languages), over the sample's std."""
    codes, langs, sample = s._languages()
    ref = s.passage_similarity(sample, qv)
    sims = s.passage_similarity(rows, qv)
    if query.lang in langs:
        means = s.language_means(ref, codes[sample], len(langs))
        sims = sims - means[s.counts_as(query)[rows]]
    else:
        sims = sims - ref.mean()
    return sims / (ref.std() or 1.0)


def own_code(s: Searcher, query) -> int:
    langs = s._languages()[1]
    return langs.index(query.lang) if query.lang in langs else -1


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Setup:
    def __init__(self):
        warnings.simplefilter("ignore")
        self.seed, self.xling = load_seed(), load_crosslingual()
        self.e5 = CachingEncoder(load_encoder("e5-small"), cache_queries=True)
        self.index = cached_index(self.seed, self.e5, progress=False).index
        before, t = rss_mb(), time.perf_counter()
        raw = load_encoder("use-m3")
        raw.encode(["warm up"], query=True)  # the model loads on its first use
        self.cost = {"use_load_s": time.perf_counter() - t, "use_model_rss_mb": rss_mb() - before}
        self.use = CachingEncoder(raw, cache_queries=True)
        t = time.perf_counter()
        built = cached_index(self.seed, self.use, progress=False)
        self.cost["use_index_s"], self.cost["use_index_cached"] = time.perf_counter() - t, built.cached
        self.use_searcher = Searcher(built.index, encoder=self.use)
        assert [c.id for c in self.index.chunks] == [c.id for c in self.use_searcher.index.chunks]
        ui, ei = built.index, self.index
        self.cost["use_vectors_mb"] = (ui.dense.vectors.nbytes + ui.unit_dense.vectors.nbytes) / 2**20
        self.cost["e5_vectors_mb"] = (ei.dense.vectors.nbytes + ei.unit_dense.vectors.nbytes) / 2**20
        self.cost["passages"], self.cost["units"] = len(ei.chunks), len(ei.unit_owner)
        self.weights: dict[str, float] = {}

    def dense_leg(self):
        setup = self

        def dense_leg(s: Searcher, query, n: int) -> dict[int, float]:
            a = setup.weights.get(query.lang, 0.0)
            if not a:
                return SHIPPED_DENSE_LEG(s, query, n)
            us = setup.use_searcher
            assert len(us.index.chunks) == len(s.index.chunks)
            uq = us.make_query(query.text)
            rows = np.array(sorted(set(SHIPPED_DENSE_LEG(s, query, n)) | set(SHIPPED_DENSE_LEG(us, uq, n))),
                            dtype=np.int64)
            z = standardised(s, query, query.vector, rows)
            mixed = (1 - a) * z + a * standardised(us, uq, uq.vector, rows)
            mixed = np.where(s.counts_as(query)[rows] == own_code(s, query), z, mixed)
            best = np.argsort(-mixed, kind="stable")[:n]
            return {int(rows[j]): float(mixed[j]) for j in best}

        return dense_leg

    def searcher(self) -> Searcher:
        Ens = type("Ens", (Searcher,), {"dense_leg": self.dense_leg()})
        return Ens(self.index, encoder=self.e5)

    def per_question(self, s: Searcher, ds, split: str, mode: str = "hybrid") -> dict:
        """``{qid: {"lang", "hit1", "rr10"}}`` and the latencies of one run (checked against
        :func:`eval.metrics.score`)."""
        sub = ds.subset(split)
        ids = {x.qid for x in sub.queries}
        qrels = {k: v for k, v in ds.qrels(s.index.chunks).items() if k in ids}
        got = run_mode(s, sub, mode, progress=False)
        out = {}
        for q in sub.queries:
            if q.qid not in qrels:
                continue
            ranked = sorted(got.run.get(q.qid, {}).items(), key=lambda kv: -kv[1])[:10]
            first = next((r for r, (u, _) in enumerate(ranked, 1) if u in qrels[q.qid]), None)
            out[q.qid] = {"lang": s.make_query(q.text, dense=False).lang, "hit1": float(first == 1),
                          "rr10": 1.0 / first if first else 0.0}
        ref = metrics.score(qrels, got.run, ("hit_rate@1", "mrr@10"))
        assert abs(ref["hit@1"] - np.mean([v["hit1"] for v in out.values()])) < 1e-9
        assert abs(ref["mrr@10"] - np.mean([v["rr10"] for v in out.values()])) < 1e-9
        return {"questions": out, "latency": metrics.latency(got.latencies_ms)}

    def query_encoding_ms(self) -> dict:
        """Each encoder's time to encode one question (seed dev questions, one at a time, uncached)."""
        texts = [q.text for q in self.seed.subset("dev").queries]
        out = {}
        for name, enc in (("e5", self.e5.inner), ("use", self.use.inner)):
            enc.encode(texts[:1], query=True)
            ms = []
            for text in texts:
                t = time.perf_counter()
                enc.encode([text], query=True)
                ms.append(1000 * (time.perf_counter() - t))
            out[name] = {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95))}
        return out

    def sets(self):
        return (("seed", self.seed), ("xling", self.xling))


def figures(rows: list[dict]) -> dict:
    return {"hit@1": float(np.mean([r["hit1"] for r in rows])), "mrr@10": float(np.mean([r["rr10"] for r in rows])),
            "questions": len(rows)}


def breakdown(per_q: dict) -> dict:
    """Figures of one set's per-question results, all and by question language."""
    rows = list(per_q.values())
    out = {"all": figures(rows)}
    for lang in sorted({r["lang"] for r in rows}):
        out[lang] = figures([r for r in rows if r["lang"] == lang])
    return out


def combine(by_a: dict[float, dict], setting: dict[str, float]) -> dict:
    """A setting's per-question results from the uniform runs: each question from the run with
    its language's weight."""
    base = by_a[0.0]
    return {qid: by_a[setting.get(r["lang"], 0.0)][qid] for qid, r in base.items()}


def key(setting: dict[str, float]) -> str:
    return " ".join(f"{lang}={setting[lang]:g}" for lang in LANGS)


def choose(rows: list[dict], floor: dict[str, float]) -> list[dict]:
    """Settings with no dev set's hit@1 below the shipped one's (``floor``), best first: mean dev
    MRR@10 of the two sets, then mean dev hit@1, then the least total weight (closest to shipped)."""
    ok = [r for r in rows if all(r["dev"][n]["all"]["hit@1"] >= floor[n] - 1e-9 for n in floor)]

    def rank(r):
        d = r["dev"]
        return (-round(np.mean([d[n]["all"]["mrr@10"] for n in floor]), 9),
                -round(np.mean([d[n]["all"]["hit@1"] for n in floor]), 9), sum(r["setting"].values()))

    return sorted(ok, key=rank)


def answers_run(setup: Setup, setting: dict[str, float], split: str) -> dict:
    """The answer benchmark on ``split`` with the ensemble's dense leg (all and by language)."""
    import eval.answers as answers

    setup.weights = dict(setting)
    Searcher.dense_leg = setup.dense_leg()  # the benchmark builds its own searcher
    setup.use.cache_queries = False  # as the benchmark's e5-small: its latency includes both query encodings
    try:
        res = answers.main(out=Path("/tmp/xling-measure-answers"), split=split, write_files=False)
    finally:
        Searcher.dense_leg = SHIPPED_DENSE_LEG
        setup.use.cache_queries = True
    g = res["splits"][split]
    pick = lambda d: {c: round(float(d[c]), 3) for c in (*ANSWER_COLS, "latency_p50_ms", "latency_p95_ms")  # noqa: E731
                      if c in d}
    return {"all": pick(g["all"]), **{k.split("=", 1)[1]: pick(v) for k, v in g.items() if k.startswith("lang=")},
            "turns": res.get("turns", {}).get(split, {})}


def rounded(x):
    if isinstance(x, float):
        return round(x, 3)
    if isinstance(x, dict):
        return {k: rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [rounded(v) for v in x]
    return x


def cmd_choose(setup: Setup, n_answers: int = 6) -> dict:
    t0 = time.time()
    s = setup.searcher()
    by_a: dict[str, dict[float, dict]] = {name: {} for name, _ in setup.sets()}
    latency: dict[float, dict] = {}
    for a in GRID:
        setup.weights = {lang: a for lang in LANGS}
        for name, ds in setup.sets():
            got = setup.per_question(s, ds, "dev")
            by_a[name][a] = got["questions"]
            latency.setdefault(a, {})[name] = got["latency"]
        print(f"a={a}", {n: figures(list(by_a[n][a].values())) for n in by_a}, flush=True)
    floor = {n: figures(list(by_a[n][0.0].values()))["hit@1"] for n in by_a}
    rows = []
    for vals in itertools.product(GRID, repeat=len(LANGS)):
        setting = dict(zip(LANGS, vals))
        rows.append({"setting": setting, "dev": {n: breakdown(combine(by_a[n], setting)) for n in by_a}})
    ranked = choose(rows, floor)
    base_answers = answers_run(setup, {lang: 0.0 for lang in LANGS}, "dev")
    print("answers dev, shipped", base_answers["all"], flush=True)
    chosen, tried = None, []
    for r in ranked[:n_answers]:
        ans = answers_run(setup, r["setting"], "dev")
        r["answers_dev"] = ans
        tried.append(key(r["setting"]))
        print("answers dev", key(r["setting"]), ans["all"], flush=True)
        if ans["all"]["all_points"] >= base_answers["all"]["all_points"] - 1e-9:
            chosen = r
            break
    res = {
        "command": "python -m eval.xling_measure choose",
        "encoders": [setup.e5.id, setup.use.id],
        "grid": list(GRID),
        "rule": ("settings with no dev set's hybrid hit@1 below the shipped leg's; best mean dev MRR@10 of the seed "
                 "and cross-lingual sets, then mean dev hit@1, then the least total weight; the first of those "
                 "whose answers dev every-key-point figure is not below the shipped one's"),
        "shipped_dev": {n: breakdown(by_a[n][0.0]) for n in by_a},
        "shipped_answers_dev": base_answers,
        "uniform_dev": {str(a): {n: breakdown(by_a[n][a]) for n in by_a} for a in GRID},
        "latency_dev_hybrid_ms": {str(a): latency[a] for a in GRID},
        "meeting_floor": len(ranked),
        "answers_tried": tried,
        "chosen": chosen,
        "grid_rows": rows,
        "cost": setup.cost | {"query_encoding_ms": setup.query_encoding_ms()},
        "seconds_choose": time.time() - t0,
    }
    if chosen is not None:  # the chosen setting run as a whole: the same figures as put together
        setup.weights = dict(chosen["setting"])
        whole = {n: breakdown(setup.per_question(s, ds, "dev")["questions"]) for n, ds in setup.sets()}
        assert rounded(whole) == rounded(chosen["dev"]), (whole, chosen["dev"])
    write(res)
    return res


def cmd_test(setup: Setup) -> dict:
    path = OUT / f"{NAME}.json"
    res = json.loads(path.read_text(encoding="utf-8"))
    if res.get("chosen") is None:
        raise SystemExit("no setting met the rule on dev: nothing to judge")
    if "test" in res:
        raise SystemExit("already judged on test once; the report holds it")
    t0 = time.time()
    setting = {lang: float(v) for lang, v in res["chosen"]["setting"].items()}
    s = setup.searcher()
    test = {}
    for label, w in (("shipped", {lang: 0.0 for lang in LANGS}), ("chosen", setting)):
        setup.weights = w
        test[label] = {}
        for name, ds in setup.sets():
            got = setup.per_question(s, ds, "test")
            test[label][name] = breakdown(got["questions"]) | {"latency": got["latency"]}
        test[label]["answers"] = answers_run(setup, w, "test")
        print(label, json.dumps(rounded(test[label]), ensure_ascii=False), flush=True)
    res["test"] = test
    res["seconds_test"] = time.time() - t0
    write(res)
    return res


def write(res: dict) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{NAME}.json").write_text(json.dumps(rounded(res), ensure_ascii=False, indent=1), encoding="utf-8")
    (OUT / f"{NAME}.md").write_text(markdown(rounded(res)), encoding="utf-8")


def _fig(d: dict) -> str:
    return f"{d['hit@1']:.3f} / {d['mrr@10']:.3f}"


def _cols(res: dict) -> list[tuple[str, str]]:
    return [(n, lang) for n, b in res["shipped_dev"].items() for lang in LANGS if lang in b]


def _mean_mrr(r: dict) -> float:
    return (r["dev"]["seed"]["all"]["mrr@10"] + r["dev"]["xling"]["all"]["mrr@10"]) / 2


def _dev_lines(res: dict) -> list[str]:
    md = ["## Shipped leg, dev halves (hit@1 / MRR@10)", "", "| set | all | " + " | ".join(LANGS) + " |",
          "|---|---|---|---|---|"]
    for n, b in res["shipped_dev"].items():
        md.append(f"| {n} | {_fig(b['all'])} | " + " | ".join(_fig(b[g]) if g in b else "–" for g in LANGS) + " |")
    counts = {n: {g: b[g]["questions"] for g in LANGS if g in b} for n, b in res["shipped_dev"].items()}
    cols = _cols(res)
    md += ["", f"Questions per language (dev): {counts}.", "",
           "## One weight for every language, by question language (dev, hit@1 / MRR@10)", "",
           "The per-language grid is these columns put together: a language's questions depend on its weight only.",
           "", "| a | " + " | ".join(f"{n} {g}" for n, g in cols) + " | seed all | xling all |",
           "|---" * (len(cols) + 3) + "|"]
    for a, u in res["uniform_dev"].items():
        cells = [_fig(u[n][g]) for n, g in cols] + [_fig(u["seed"]["all"]), _fig(u["xling"]["all"])]
        md.append(f"| {a} | " + " | ".join(cells) + " |")
    rows = res["grid_rows"]
    floor = {n: res["shipped_dev"][n]["all"]["hit@1"] for n in res["shipped_dev"]}
    ok = [r for r in rows if all(r["dev"][n]["all"]["hit@1"] >= floor[n] for n in floor)]
    ok.sort(key=lambda r: (-_mean_mrr(r), -sum(r["dev"][n]["all"]["hit@1"] for n in floor), sum(r["setting"].values())))
    md += ["", f"## Per-language grid on dev ({len(rows)} settings, {res['meeting_floor']} with no dev hit@1 below "
           "the shipped; the best 15 of those, and the uniform ones)", "",
           "| ja | zh | en | seed dev hit@1 / MRR@10 | xling dev hit@1 / MRR@10 | mean MRR@10 |",
           "|---|---|---|---|---|---|"]
    for r in ok[:15] + [r for r in rows if len(set(r["setting"].values())) == 1 and r not in ok[:15]]:
        st, d = r["setting"], r["dev"]
        md.append(f"| {st['ja']:g} | {st['zh']:g} | {st['en']:g} | {_fig(d['seed']['all'])} | "
                  f"{_fig(d['xling']['all'])} | {_mean_mrr(r):.3f} |")
    md += ["", "## Answers, dev half", "", "| setting | " + " | ".join(ANSWER_COLS) + " |",
           "|---" * (len(ANSWER_COLS) + 1) + "|"]
    tried = [("shipped", res["shipped_answers_dev"])] + [(key(r["setting"]), r["answers_dev"]) for r in rows
                                                         if "answers_dev" in r]
    md += [f"| {label} | " + " | ".join(f"{a['all'][c]:.3f}" for c in ANSWER_COLS) + " |" for label, a in tried]
    return md


def _chosen_lines(res: dict) -> list[str]:
    ch = res["chosen"]
    md = ["## Chosen on dev", "", f"**{key(ch['setting'])}**" if ch else "None: no setting met the rule.", ""]
    if not ch:
        return md
    md += ["| set · language | shipped dev | chosen dev |", "|---|---|---|"]
    md += [f"| {n} · {g} | {_fig(res['shipped_dev'][n][g])} | {_fig(b[g])} |"
           for n, b in ch["dev"].items() for g in ("all", *LANGS) if g in b]
    md += ["", "| answers dev · language | shipped every / half / padding | chosen |", "|---|---|---|"]
    for g in ("all", *LANGS):
        a0, a1 = res["shipped_answers_dev"].get(g), ch["answers_dev"].get(g)
        if a0 and a1:
            md.append(f"| {g} | " + " | ".join(f"{a['all_points']:.3f} / {a['half_points']:.3f} / {a['padding']:.3f}"
                                               for a in (a0, a1)) + " |")
    return md


def _test_lines(res: dict) -> list[str]:
    if "test" not in res:
        return []
    t = res["test"]
    md = ["## Held out, judged once (test halves)", "", "| set · language | shipped | chosen |", "|---|---|---|"]
    md += [f"| {n} · {g} ({t['shipped'][n][g]['questions']}) | {_fig(t['shipped'][n][g])} | "
           f"{_fig(t['chosen'][n][g])} |"
           for n in ("seed", "xling") for g in ("all", *LANGS) if g in t["shipped"][n]]
    md += ["", "| answers test · language | " + " | ".join(ANSWER_COLS) + " |", "|---" * (len(ANSWER_COLS) + 1) + "|"]
    md += [f"| {g} · {label} | " + " | ".join(f"{t[label]['answers'][g][c]:.3f}" for c in ANSWER_COLS) + " |"
           for g in ("all", *LANGS) for label in ("shipped", "chosen") if g in t[label]["answers"]]
    turns = {label: json.dumps(t[label]["answers"].get("turns", {}), ensure_ascii=False) for label in t}
    lat = "; ".join(f"{label} {n} {t[label][n]['latency']['latency_p50_ms']:.0f} / "
                    f"{t[label][n]['latency']['latency_p95_ms']:.0f}" for label in ("shipped", "chosen")
                    for n in ("seed", "xling"))
    return md + ["", f"Follow-up turns (test): shipped {turns['shipped']}, chosen {turns['chosen']}.", "",
                 "Hybrid latency on test, p50 / p95 ms (query vectors from the on-disk cache where an earlier run "
                 f"had encoded them, else encoded in the search: not a served question's latency): {lat}.", ""]


def _cost_lines(res: dict) -> list[str]:
    c, q = res["cost"], res["cost"]["query_encoding_ms"]
    search = "; ".join(f"a={a} seed {v['seed']['latency_p50_ms']:.0f} / {v['seed']['latency_p95_ms']:.0f}, xling "
                       f"{v['xling']['latency_p50_ms']:.0f} / {v['xling']['latency_p95_ms']:.0f}"
                       for a, v in res["latency_dev_hybrid_ms"].items())

    def answers_ms(a: dict) -> str:
        return f"{a['all']['latency_p50_ms']:.0f} / {a['all']['latency_p95_ms']:.0f}"

    answers = f"dev shipped {answers_ms(res['shipped_answers_dev'])}"
    if res["chosen"]:
        answers += f", chosen {answers_ms(res['chosen']['answers_dev'])}"
    if "test" in res:
        answers += (f"; test shipped {answers_ms(res['test']['shipped']['answers'])}, "
                    f"chosen {answers_ms(res['test']['chosen']['answers'])}")
    return ["## Cost", "",
            f"- USE model: {c['use_load_s']:.1f} s to load, +{c['use_model_rss_mb']:.0f} MB resident.",
            f"- One question's query vector (seed dev questions, uncached, p50 / p95): e5-small "
            f"{q['e5']['p50']:.0f} / {q['e5']['p95']:.0f} ms, USE {q['use']['p50']:.0f} / {q['use']['p95']:.0f} ms.",
            "- Hybrid search on dev with the query vectors cached, p50 / p95 ms (the mix: a second dense leg and "
            f"both encoders' centring): {search}.",
            f"- A second vector set: USE {c['use_vectors_mb']:.2f} MB beside e5-small's {c['e5_vectors_mb']:.2f} MB "
            f"({c['passages']} passages + {c['units']} units; dimension 512 against 384); index "
            f"{'read from the cache' if c['use_index_cached'] else 'built'} in {c['use_index_s']:.1f} s.",
            "- Answer benchmark latency, p50 / p95 ms (both query encodings uncached; loaded 2-core machine): "
            f"{answers}.",
            "- Per question with a weight above 0: one more query encoding (USE) and a second dense search.", ""]


def markdown(res: dict) -> str:
    head = ["# Dense-leg encoder ensemble, weight per question language (measured, not shipped)", "",
            f"`{res['command']}` (then `python -m eval.xling_measure test`), encoders {', '.join(res['encoders'])}. "
            "A passage in another language than the question's is scored `(1 - a) * e5 + a * USE` (each encoder's "
            "score centred on its language's mean, over the centring sample's std); `a` per question language, "
            "0 keeps the shipped leg. Hybrid mode.", "", f"Rule: {res['rule']}.", ""]
    return "\n".join(head + _dev_lines(res) + [""] + _chosen_lines(res) + [""] + _test_lines(res) + _cost_lines(res))


def main(argv: list[str]) -> int:
    what = argv[0] if argv else "choose"
    if what == "report":
        res = json.loads((OUT / f"{NAME}.json").read_text(encoding="utf-8"))
        (OUT / f"{NAME}.md").write_text(markdown(res), encoding="utf-8")
        return 0
    setup = Setup()
    try:
        if what == "choose":
            cmd_choose(setup)
        elif what == "test":
            cmd_test(setup)
        elif what == "ensemble":
            s = setup.searcher()
            for c in json.loads(argv[2]):
                setup.weights = c
                print(c, {n: breakdown(setup.per_question(s, ds, argv[1])["questions"]) for n, ds in setup.sets()},
                      flush=True)
        else:
            raise SystemExit(f"unknown command {what!r}: choose | test | report | ensemble SPLIT JSON")
    finally:
        setup.e5.save()
        setup.use.save()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
