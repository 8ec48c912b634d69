"""``python -m eval phrasing``: does a polite request around a question change what is found?

Learners type 「…について教えてください」, 「请介绍一下…」, "Tell me about …". The words of the
wrapper say how to answer, not what about, yet they match every list of interview
questions in the notes. Each seed question (both halves) is asked as written and inside
request wrappers (:data:`WRAPPERS`: two per question, picked by a stable hash from four
per language, one of which the wrapper rule does not know). Three rankings of the default
mode are compared:

* ``as written``: the gold question;
* ``wrapped, searched verbatim``: the wrapped question with every word searched (the
  pipeline before :func:`rag.text.search_text`);
* ``wrapped (default)``: the wrapped question as the searcher handles it.

Writes ``eval/results/phrasing.{md,json}``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
import warnings
from pathlib import Path

import numpy as np

from eval import metrics, report
from eval.datasets import load_seed
from eval.runner import CachingEncoder, build_index, fused_run
from rag.encoders import DEFAULT_ENCODER, load_encoder
from rag.search import Searcher
from rag.types import Query

WRAPPERS = {
    "ja": ("{q}について教えてください", "{q}を説明して", "{q}について詳しく教えてもらえますか？", "{q}、ざっくりでいいので知りたいです"),
    "zh": ("请介绍一下{q}", "请解释一下{q}", "{q}，请详细说明一下", "能讲讲{q}吗？"),
    "en": ("Please explain: {q}", "Tell me about {q}", "Can you walk me through {q}?", "{q} I'd like a short answer."),
}


def wrapped(qid: str, text: str, lang: str) -> list[str]:
    """Two request-wrapped forms of ``text`` (a stable choice per question)."""
    forms = WRAPPERS.get(lang, WRAPPERS["en"])
    core = text.strip().rstrip("？?。.")
    i = int(hashlib.sha1(qid.encode()).hexdigest(), 16) % len(forms)
    return [forms[i].format(q=core), forms[(i + 1) % len(forms)].format(q=core)]


def verbatim(searcher: Searcher, text: str) -> Query:
    """``text`` searched word for word (no wrapper removed)."""
    q = searcher.make_query(text, dense=False)  # checked, language detected; nothing encoded yet
    return dataclasses.replace(q, tokens=searcher.query_tokens(q.text), coverage=searcher.vocabulary_coverage(q.text),
                               vector=searcher.query_vector(q.text))


def main(*, out: Path, encoder: str = DEFAULT_ENCODER) -> int:
    warnings.simplefilter("ignore")
    t0 = time.time()
    ds = load_seed()
    enc = CachingEncoder(load_encoder(encoder))
    index = build_index(ds, enc, progress=False).index
    s = Searcher(index, encoder=enc)
    mode = s.default_mode
    qrels_all = ds.qrels(index.chunks)

    def run_of(q: Query) -> dict[str, float]:
        hits = s.search_query(q, k=10, mode=mode)
        return fused_run(ds, index.chunks, {index.by_id[h.chunk.id]: float(len(hits) - h.rank + 1) for h in hits})

    results: dict[str, dict] = {}
    examples = []
    for split in ("dev", "test"):
        runs: dict[str, dict] = {"as written": {}, "wrapped, searched verbatim": {}, "wrapped (default)": {}}
        qrels, langs = {}, {}
        for q in ds.queries:
            if q.split != split or q.qid not in qrels_all:
                continue
            runs["as written"][q.qid] = run_of(s.make_query(q.text))
            for j, w in enumerate(wrapped(q.qid, q.text, q.lang)):
                wid = f"{q.qid}~{j}"
                qrels[wid], langs[wid] = qrels_all[q.qid], q.lang
                runs["wrapped, searched verbatim"][wid] = run_of(verbatim(s, w))
                runs["wrapped (default)"][wid] = run_of(s.make_query(w))
                if len(examples) < 4 and j == 0 and split == "dev":
                    examples.append(w)
        orig_qrels = {k: v for k, v in qrels_all.items() if k in runs["as written"]}
        res = {"as written": metrics.score(orig_qrels, runs["as written"])}
        for name in ("wrapped, searched verbatim", "wrapped (default)"):
            res[name] = metrics.score(qrels, runs[name])
            for lang in ("ja", "zh", "en"):
                sub = {k: v for k, v in qrels.items() if langs[k] == lang}
                res[f"{name} / {lang}"] = metrics.score(sub, {k: runs[name][k] for k in sub})
        results[split] = res
        enc.save()
    cols = ("hit@1", "hit@5", "mrr@10", "ndcg@10")
    md = ["# Questions wrapped in a request", "",
          f"Command: `python -m eval phrasing --encoder {encoder}` ({time.time() - t0:.0f} s); mode `{mode}`. "
          "Every seed question with a judgement, as written and inside two request wrappers "
          "(eval/phrasing.py: four per language, one of which the wrapper rule does not know), e.g. "
          + ", ".join(f"「{e}」" for e in examples) + ".", ""]
    for split, res in results.items():
        md += [f"## {split} half", "", report.table(res, cols, "ranking"), ""]
    out.mkdir(parents=True, exist_ok=True)
    (out / "phrasing.md").write_text("\n".join(md), encoding="utf-8")
    report.write_json(out / "phrasing.json", {"mode": mode, "encoder": encoder, "results": results,
                                              "wrappers": WRAPPERS})
    print("\n".join(md))
    gap = {sp: float(np.round(r["as written"]["hit@1"] - r["wrapped (default)"]["hit@1"], 3)) for sp, r in results.items()}
    print(f"hit@1 lost to the wrapper (as written - wrapped): {gap}")
    return 0
