"""``python -m eval languages``: the language rules of the search, off and on, per mode.

Four settings of the two switches in ``rag/tuned.json`` — ``centre_languages`` (the dense leg
scored against each notes language's mean) and ``language_fusion`` (a passage in another
language than the question's fused from the dense leg alone) — on the seed gold set and the
cross-lingual slice (Chinese and English questions answered only by the Japanese notes), both
halves, every mode. The setting is chosen on the dev halves (at or above "off" on both dev
sets, then the best mean dev hit@1) and judged on the test halves.

JSQuAD and CMRC 2018 are one notes language each (every JSQuAD passage reads as Japanese; CMRC's
two kana-bearing passages of 278 are under :data:`rag.rules.script.MIN_LANGUAGE_SHARE`), so both
switches leave them as they are: ``python -m eval jsquad|cmrc2018`` checks it.

Writes ``eval/results/languages.{json,md}``.
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from pathlib import Path

from eval import metrics, report
from eval.datasets import load_crosslingual, load_seed
from eval.runner import CachingEncoder, cached_index, run_mode
from rag.encoders import DEFAULT_ENCODER, load_encoder
from rag.search import MODES, Searcher
from rag.tuned import load_tuned

SETTINGS = {
    "off": {"centre_languages": False, "language_fusion": False},
    "centring": {"centre_languages": True, "language_fusion": False},
    "language fusion": {"centre_languages": False, "language_fusion": True},
    "both": {"centre_languages": True, "language_fusion": True},
}
METRICS = ("hit_rate@1", "hit_rate@5", "mrr@10", "ndcg@10")
COLS = ("hit@1", "hit@5", "mrr@10", "ndcg@10")


def measure(searcher: Searcher, sets, modes=MODES) -> dict:
    """``{set: {split: {mode: scores}}}`` for every setting's searcher."""
    out: dict = {}
    for ds in sets:
        qrels = ds.qrels(searcher.index.chunks)
        for split in ("dev", "test"):
            sub = ds.subset(split)
            q = {k: v for k, v in qrels.items() if k in {x.qid for x in sub.queries}}
            for mode in modes:
                run = run_mode(searcher, sub, mode, progress=False).run
                out.setdefault(ds.name, {}).setdefault(split, {})[mode] = metrics.score(q, run, METRICS)
    return out


def choose(results: dict, default: str = "hybrid") -> str:
    """The setting at or above "off" on hit@1 and MRR@10 of the default mode on every dev set,
    with the best mean dev hit@1 (ties: the earlier setting)."""
    def dev(name, set_name, m):
        return results[name][set_name]["dev"][default][m]

    sets = list(results["off"])
    ok = [n for n in results if all(dev(n, s, m) >= dev("off", s, m) for s in sets for m in ("hit@1", "mrr@10"))]
    return max(ok, key=lambda n: sum(dev(n, s, "hit@1") for s in sets))


def main(*, out: Path, encoder: str = DEFAULT_ENCODER) -> int:
    warnings.simplefilter("ignore")
    t0 = time.time()
    enc = CachingEncoder(load_encoder(encoder), cache_queries=False)
    seed, xling = load_seed(), load_crosslingual()
    index = cached_index(seed, enc, progress=False).index  # xling searches the same corpus
    enc.save()
    tuned = load_tuned(enc.id)
    results = {}
    for name, switches in SETTINGS.items():
        s = Searcher(index, encoder=enc, tuned=dataclasses.replace(tuned, **switches))
        results[name] = measure(s, [seed, xling])
        print(name, {k: v["dev"]["hybrid"]["hit@1"] for k, v in results[name].items()}, flush=True)
    chosen = choose(results, tuned.default_mode)
    payload = {"command": "python -m eval languages", "encoder": enc.id, "settings": SETTINGS, "chosen_on_dev": chosen,
               "shipped": {k: getattr(tuned, k) for k in ("centre_languages", "language_fusion")},
               "results": results, "seconds": round(time.time() - t0)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "languages.json").write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    md = ["# Language rules of the search: before / after", "",
          f"`python -m eval languages` ({payload['seconds']} s), encoder `{enc.id}`. Settings of "
          "`centre_languages` / `language_fusion` (see `rag/tuned.py`); chosen on the dev halves "
          f"(at or above off on hit@1 and MRR@10 of {tuned.default_mode} on both dev sets, best mean hit@1): "
          f"**{chosen}**; shipped: {payload['shipped']}.", ""]
    for set_name in (seed.name, xling.name):
        for split in ("dev", "test"):
            rows = {f"{n} · {m}": results[n][set_name][split][m] for n in SETTINGS for m in MODES}
            md += [f"## {set_name}, {split} half", "", report.table(rows, COLS, "setting · mode"), ""]
    (out / "languages.md").write_text("\n".join(md), encoding="utf-8")
    print(f"report: {out / 'languages.md'} (chosen on dev: {chosen})", flush=True)
    return 0
