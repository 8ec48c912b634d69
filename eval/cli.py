"""``python -m eval``: benchmarks, ablations, tuning and the scale check.

    python -m eval                          # every set, every mode -> eval/results/ (the shipped report)
    python -m eval --quick                  # <= 150 queries per set -> eval/runs/quick/
    python -m eval seed --modes bm25,dense,hybrid,rerank          # -> eval/runs/seed/
    python -m eval squad PATH.json --modes bm25,hybrid,rerank --json  # -> eval/runs/<file name>/
    python -m eval ablations                # analyzers x chunk sizes on the dev halves
    python -m eval tune                     # dense mix, fusion, reranker on the dev halves -> rag/tuned.json
    python -m eval answers [--calibrate] [--misses] [--oracle-first]  # the answer benchmark (key points, abstention, support, latency)
    python -m eval ceiling                  # what the offline features can reach (diagnostic)
    python -m eval signals                  # every offline signal mixed at its best, seed + xling (diagnostic)
    python -m eval scale                    # 1k / 10k / 100k synthetic chunks
    python -m eval scale --backend folder,milvus-lite,qdrant-local   # 100k chunks per index backend
    python -m eval scale --backend milvus-lite:20000 --pages          # opening the corpus-wide pages on an engine
    python -m eval backends                 # the seed index on every backend: same top 10? HNSW recall
    python -m eval ray                      # ingest encoding on a local Ray cluster vs the plain loop
    python -m eval sparse                   # the encoder's sparse head as a third leg? (dev halves)
    python -m eval languages                # the search's language rules off / on: seed and cross-lingual, per mode
    python -m eval phrasing                 # questions wrapped in a request ("…について教えてください")
    python -m eval speed                    # ingest time, encoding rate, latency idle and beside a busy encoder
    python -m eval drill [--tune] [--index DIR]   # mock-interview grading vs hand labels
    python -m eval planted                  # planted orders to an AI vs notes' sentences (hand labels)
    python -m eval store --url postgresql://…      # study store: SQLite vs PostgreSQL latency, concurrent ratings
    python -m eval beir DIR|FILE [--save-run RUNS]  # a BEIR folder, Mr. TyDi / MIRACL or JQaRA file -> eval/runs/beir/
    python -m eval compare A.run B.run … --qrels FILE   # ranx table with paired significance
    python -m eval mine QUESTIONS.csv [--index DIR]     # "test my own notes": hit@1/hit@5 per mode and the misses
    python -m eval to-beir SQUAD.json OUT_DIR           # a SQuAD-format file as a BEIR folder
    python -m eval beir-check [jsquad] [cmrc2018]   # SQuAD path vs BEIR path (within 0.002)
    python -m eval beir-scale               # BEIR-style runs over 10k / 100k synthetic passages
    python -m eval formats [--parts parity,cited,ocr,speed,big]  # the seed corpus as PDF/DOCX/HTML/PPTX; big PDFs
    python -m eval formats --parts speed,window    # timings only (re-run on an idle machine): formats-idle.{json,md}

Progress goes to stderr; ``--json`` prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import warnings
from pathlib import Path

from eval import report
from eval.datasets import BENCHMARKS, Dataset, load_crosslingual, load_seed, load_squad
from eval.runner import BuiltIndex, CachingEncoder, build_index, cached_index, evaluate_modes
from rag import config
from rag.encoders import DEFAULT_ENCODER, load_encoder
from rag.errors import RagError
from rag.search import MODES, Searcher
from rag.tuned import load_tuned

RESULTS = Path(__file__).resolve().parent / "results"  # the shipped report: only `python -m eval` (all sets) writes here
RUNS = Path(__file__).resolve().parent / "runs"  # everything else (quick, single sets, ad-hoc files); git-ignored
QUICK_LIMIT = 150


BEIR_TARGETS = ("beir", "miracl", "mrtydi", "jqara")  # one reader tells the layouts apart


def _datasets(names: list[str], squad_path: Path | None) -> list[Dataset]:
    from eval.beir import load_any

    out = []
    for n in names:
        if n == "seed":
            out.append(load_seed())
        elif n == "xling":
            out.append(load_crosslingual())
        elif n == "squad":
            out.append(load_squad(squad_path))
        elif n == "beir":
            out.append(load_any(squad_path))
        else:
            out.append(load_squad(BENCHMARKS[n], n))
    return out


def prebuilt_index(index_dir: Path, ds: Dataset):
    """The seed set's index from an index folder (the app's): a read, not a rebuild — the
    quick benchmark's minute was mostly embedding the notes again. ``(BuiltIndex, "")``, or
    ``(None, why)`` when it was not built from the same documents (then one is built)."""
    from rag.index import open_index

    t = time.perf_counter()
    try:
        index = open_index(index_dir)
    except RagError as e:
        return None, str(e)
    docs = index.manifest.get("documents", {})
    differ = [d.doc_id for d in ds.docs if docs.get(d.doc_id, {}).get("sha256") != d.sha256]
    if differ:
        return None, f"{len(differ)} of the seed documents differ in {index_dir} (e.g. {differ[0]})"
    return BuiltIndex(index, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), ""


def run_sets(datasets: list[Dataset], modes: list[str], *, split: str, limit: int | None,
             encoder_name: str, progress: bool, index_dir: Path | None = None, deep: bool = False,
             cache_queries: bool = False) -> dict:
    """Each set's modes on its held-out (or chosen) half. ``index_dir``: the seed set is searched
    in that index (with the encoder it records) when it holds the same documents. ``deep``
    (BEIR-style sets): the index is a throw-away one cached by content hash under the data
    folder, runs are 100 deep, recall@100 is scored and the significance test is on nDCG@10.
    ``cache_queries`` keeps query vectors in the on-disk cache (comparisons without latency)."""
    from eval.metrics import DEEP_METRICS, METRICS

    results = {}
    for ds in datasets:
        built, why = prebuilt_index(index_dir, ds) if index_dir is not None and ds.name == "seed" else (None, "")
        if why:
            print(f"warning: not using {index_dir}: {why}; building an index", file=sys.stderr)
        reused = built is not None
        if reused:
            enc = _encoder(built.index.encoder_id)
        else:
            enc = CachingEncoder(_encoder(encoder_name), cache_queries=cache_queries)
            built = cached_index(ds, enc, progress=progress) if deep else build_index(ds, enc, progress=progress)
        sub = ds.subset(split, limit)
        searcher = Searcher(built.index, encoder=enc)
        res = evaluate_modes(searcher, sub, modes, progress=progress, k=100 if deep else 10,
                             metric_names=DEEP_METRICS if deep else METRICS)
        results[ds.name] = {
            "split": split,
            "queries": len(sub.queries),
            "documents": len(ds.docs),
            "chunks": len(built.index.chunks),
            "index_build_s": built.seconds,
            "peak_rss_mb": built.peak_rss_mb,
            "index_cached": built.cached,
            "modes": res["modes"],
            "_sig_metric": "ndcg@10" if deep else "mrr@10",
            "_runs": res["runs"],
            "_qrels": res["qrels"],
        }
        save = getattr(enc, "save", None)  # a CachingEncoder keeps new query vectors for the next run
        if callable(save):
            save()
    return results


def _significance(results: dict) -> dict:
    from eval.metrics import compare

    return {n: compare(r["_qrels"], r["_runs"], r.get("_sig_metric", "mrr@10"))
            for n, r in results.items() if len(r["_runs"]) > 1}


def write_report(results: dict, folder: Path, *, title: str, settings: dict, extra_md: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sig = _significance(results)
    for name, r in results.items():
        report.write_trec(folder / "runs", f"{name}-{r['split']}", r["_qrels"], r["_runs"])
    public = {n: {k: v for k, v in r.items() if not k.startswith("_")} for n, r in results.items()}
    plots = report.plot_sets(results, folder)
    md = [f"# {title}", "", f"Command: `{settings['command']}`. Encoder `{settings['encoder']}`; default mode "
          f"`{settings['tuned']['default_mode']}` (rag/tuned.json). Held-out halves unless noted; "
          "latency is warm, per query, on this machine (2 cores).", ""]
    for n, r in results.items():
        built = (f"index read from the content-hash cache in {r['index_build_s']:.1f} s" if r.get("index_cached") else
                 f"index build {r['index_build_s']:.1f} s (embeddings cached after the first run)")
        md += [f"## {n} — {r['split']} split, {r['queries']} queries over {r['chunks']} chunks "
               f"({r['documents']} documents); {built}, peak process memory so far {r['peak_rss_mb']:.0f} MB", "",
               report.table(r["modes"]), ""]
        if n in sig:
            metric = r.get("_sig_metric", "mrr@10")
            better = {m: v["significantly_better_than"] for m, v in sig[n].items() if v["significantly_better_than"]}
            md += [f"Paired randomisation test on {metric} (p < 0.05): "
                   + ("; ".join(f"{m} > {', '.join(b)}" for m, b in better.items()) or "no significant differences"), ""]
            if "bm25" in sig[n]:
                vs = [f"{m} {v['score'] - sig[n]['bm25']['score']:+.3f} (p = {v['p_values']['bm25']:.3g})"
                      for m, v in sig[n].items() if m != "bm25"]
                md += [f"Against bm25 ({metric}, difference and paired p): " + "; ".join(vs), ""]
        for group in ("lang", "type"):
            rows = {f"{m} / {g}": v for m, r2 in r["modes"].items() for g, v in r2["by"][group].items()}
            if len({g for m, r2 in r["modes"].items() for g in r2["by"][group]}) > 1:
                md += [f"By query {group}:", "", report.table(rows, ("queries", "hit@1", "hit@5", "mrr@10", "ndcg@10"), "mode / " + group), ""]
    md += [f"![{p}]({p})" for p in plots] + ["", extra_md]
    (folder / "report.md").write_text("\n".join(md))
    report.write_json(folder / "results.json", {"results": public, "significance": sig, "config": settings})
    return folder / "report.md"


def load_encoder_id(name: str) -> str:
    """The id an encoder records (``e5-small`` -> ``e5-small@0.3.0``) without loading it twice."""
    return _encoder(name).id


_LOADED: dict = {}


def _encoder(name: str):
    """The encoder ``name`` names, loaded once per process by the loader in place when asked:
    keyed by the loader too, so a swapped-in loader (a stand-in encoder) never leaves its
    encoder behind under a real encoder's name once the real loader is back."""
    key = (load_encoder, name)
    if key not in _LOADED:
        _LOADED[key] = load_encoder(name)
    return _LOADED[key]


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval", description=__doc__.split("\n")[0])
    p.add_argument("target", nargs="?", default="all",
                   help="all | seed | xling | jsquad | cmrc2018 | squad PATH | beir PATH | compare RUN… | mine FILE"
                        " | to-beir SQUAD OUT | answers | drill | phrasing | speed | sparse | languages | ablations | tune | ceiling | signals"
                        " | scale | formats | beir-check | beir-scale | backends | ray | planted")
    p.add_argument("paths", nargs="*", type=Path,
                   help="squad: a SQuAD-format file; beir: a BEIR folder or a Mr. TyDi/MIRACL/JQaRA file; "
                        "compare: TREC run files; mine: a CSV/JSONL of questions")
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated: " + ",".join(MODES))
    p.add_argument("--split", default=None, choices=("dev", "test", "all"),
                   help="query half (default: held-out test; beir: test if the set has one, else all)")
    p.add_argument("--quick", action="store_true", help=f"at most {QUICK_LIMIT} queries per set (for CI)")
    p.add_argument("--limit", type=_positive_int, help="at most this many queries per set")
    p.add_argument("--encoder", default=DEFAULT_ENCODER, help="e5-small (default) | use-m3 | minilm | st:<model>")
    p.add_argument("--index", type=Path, default=None,
                   help="drill: grade against this index; seed: search this index (built from ./corpus, e.g. the "
                   "app's) instead of building one; mine: the notes' index (default ./index)")
    p.add_argument("--save-run", type=Path, default=None, metavar="DIR",
                   help="also write one TREC run file per mode (qid Q0 docid rank score tag) and the qrels into DIR")
    p.add_argument("--qrels", type=Path, default=None, help="compare: TREC or BEIR qrels file")
    p.add_argument("--json", action="store_true", help="print the scores as one JSON object on stdout")
    p.add_argument("--backend", default=None,
                   help="scale / backends: comma-separated index backends (folder,milvus-lite,qdrant-local)")
    p.add_argument("--pages", action="store_true",
                   help="scale: time and memory of opening each page that lists the whole corpus on an engine index "
                        "(--backend KIND:SIZE, default milvus-lite:20000)")
    p.add_argument("--pages-before", type=Path, default=None, metavar="DIR",
                   help="scale --pages: also run the pages with the code checked out at DIR (the 'before' rows)")
    p.add_argument("--page", default=None, help="scale --pages: only these pages (comma-separated: deck,documents,landing,gate)")
    p.add_argument("--calibrate", action="store_true", help="answers: refit the relevance model on the dev half first")
    p.add_argument("--tune", action="store_true",
                   help="answers: choose the extraction values on the dev half first; drill: tune the grading thresholds")
    p.add_argument("--oracle-first", action="store_true",
                   help="answers: also write answers-oracle.md, the figures with the passage holding the key points first")
    p.add_argument("--misses", action="store_true",
                   help="answers: also write answers-misses.md, each dev miss and padded citation with its cause")
    p.add_argument("--out", type=Path, default=None, help="results folder (default eval/results[/quick])")
    p.add_argument("--url", default=None, help="store: admin URL of a PostgreSQL server (default $STUDYRAG_TEST_PG)")
    p.add_argument("--parts", default="parity,cited,ocr,speed,big",
                   help="formats: which parts to run (keyword, parity, answers, pages, cited, ocr, speed, window, big; "
                        "md/pdf/docx/html/pptx limit parity and answers to those formats)")
    args = p.parse_args(argv)
    args.path = args.paths[0] if args.paths else None
    if args.split is None and args.target not in BEIR_TARGETS:
        args.split = "test"
    if args.target not in ("compare", "to-beir", "beir-check") and len(args.paths) > 1:
        print(f"error: `{args.target}` takes one path, got {len(args.paths)}", file=sys.stderr)
        return 2
    warnings.simplefilter("ignore")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        print(f"error: unknown mode(s) {bad}; choose from {', '.join(MODES)}", file=sys.stderr)
        return 2
    limit = args.limit if args.limit is not None else (QUICK_LIMIT if args.quick else None)
    progress = True
    if args.target == "ablations":
        from eval.ablations import main as ablate

        return ablate(limit=limit, out=args.out or RESULTS, encoder=args.encoder)
    if args.target == "tune":
        from eval.tune import main as tune

        return tune(limit=limit, out=args.out or RESULTS, encoder=args.encoder)
    if args.target == "formats":
        from eval.formats import run as formats

        parts = tuple(x.strip() for x in args.parts.split(",") if x.strip())
        # the timing parts alone are the one-shot re-measurement for an idle machine: formats-idle.{json,md}
        timing = set(parts) <= {"speed", "window"}
        stem = "formats-idle" if timing else "formats"
        out = args.out or (RESULTS if timing or set(parts) >= {"parity", "cited", "ocr", "speed", "big"} else RUNS / "formats")
        formats(out, encoder_name=args.encoder, parts=parts, stem=stem)
        return 0
    if args.target == "answers":
        from eval.answers import main as answers

        out = args.out or (RESULTS if args.split in ("test", "all") and limit is None else RUNS / "answers")
        answers(out=out, encoder=args.encoder, split="all" if args.split == "test" else args.split,
                do_calibrate=args.calibrate, do_tune=args.tune, do_misses=args.misses, do_oracle=args.oracle_first)
        return 0
    if args.target == "ceiling":
        from eval.ceiling import main as ceiling

        return ceiling(limit=limit, out=args.out or RESULTS, encoder=args.encoder)
    if args.target == "signals":
        from eval.signals import main as signals

        return signals(out=args.out or RESULTS, encoder=args.encoder)
    if args.target == "languages":
        from eval.languages import main as languages

        return languages(out=args.out or RESULTS, encoder=args.encoder)
    if args.target == "sparse":
        from eval.sparse import main as sparse

        return sparse(out=args.out or RESULTS, encoder=args.encoder, limit=limit)
    if args.target == "phrasing":
        from eval.phrasing import main as phrasing

        return phrasing(out=args.out or RESULTS, encoder=args.encoder)
    if args.target == "speed":
        from eval.speed import main as speed

        return speed(out=args.out or RESULTS, encoder=args.encoder)
    if args.target == "planted":
        from eval.planted import main as planted

        planted(out=args.out or RESULTS)
        return 0
    if args.target == "drill":
        from eval.drill import main as drill

        return drill(out=args.out or RESULTS, index_dir=args.index, encoder=args.encoder, do_tune=args.tune)
    if args.target == "store":
        from eval.store import main as store

        return store(out=args.out or (RUNS / "store" if args.quick else RESULTS), url=args.url, quick=args.quick)
    if args.target == "backends":
        from eval.backends import NEEDS
        from eval.backends import main as backends

        return backends(out=args.out or RESULTS, encoder=args.encoder,
                        backends=tuple(args.backend.split(",")) if args.backend else tuple(NEEDS))
    if args.target == "ray":
        from eval.ray_bench import main as ray_bench

        return ray_bench(out=args.out or RESULTS, encoder=args.encoder)
    if args.target == "scale" and args.pages:
        from eval.scale_pages import main as scale_pages

        return scale_pages(out=args.out or RESULTS, backend=args.backend or "milvus-lite:20000",
                           before=args.pages_before, encoder=args.encoder,
                           **({"pages": tuple(args.page.split(","))} if args.page else {}))
    if args.target == "scale" and args.backend:
        from eval.scale import compare_backends

        return compare_backends(out=args.out or RESULTS, backends=tuple(args.backend.split(",")), quick=args.quick,
                                encoder=args.encoder)
    if args.target == "scale":
        from eval.scale import main as scale

        return scale(out=args.out or RESULTS, quick=args.quick, encoder=args.encoder)
    if args.target == "compare":
        from eval.compare import main as compare

        return compare(args.paths, qrels=args.qrels, as_json=args.json)
    if args.target == "mine":
        from eval.mine import main as mine

        return mine(args.path, index_dir=args.index, modes=modes, out=args.out or RUNS / "mine", as_json=args.json)
    if args.target == "to-beir":
        from eval.beir import squad_to_beir

        if len(args.paths) != 2 or not args.paths[0].is_file():
            print("error: `python -m eval to-beir SQUAD.json OUT_DIR` needs a SQuAD-format file and a folder",
                  file=sys.stderr)
            return 2
        try:
            print(f"BEIR folder: {squad_to_beir(*args.paths)}", file=sys.stderr)
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"error: cannot convert {args.paths[0]}: {e}", file=sys.stderr)
            return 2
        return 0
    if args.target == "beir-check":
        from eval.beir_check import main as beir_check

        unknown = [str(p) for p in args.paths if str(p) not in BENCHMARKS]
        if unknown:
            print(f"error: beir-check knows {', '.join(BENCHMARKS)}, not {', '.join(unknown)}", file=sys.stderr)
            return 2
        return beir_check(out=args.out or RESULTS, runs=RUNS / "beir-check", encoder=args.encoder, limit=limit,
                          names=[str(p) for p in args.paths],
                          command="python -m eval " + " ".join(argv if argv is not None else sys.argv[1:]))
    if args.target == "beir-scale":
        from eval.beir_scale import main as beir_scale

        return beir_scale(out=args.out or RESULTS, quick=args.quick, encoder=args.encoder,
                          command="python -m eval " + " ".join(argv if argv is not None else sys.argv[1:]))
    deep = args.target in BEIR_TARGETS
    if args.target == "squad":
        if args.path is None or not args.path.is_file():
            print("error: `python -m eval squad PATH` needs a SQuAD-format JSON file", file=sys.stderr)
            return 2
        names = ["squad"]
    elif deep:
        if args.path is None or not args.path.exists():
            print(f"error: `python -m eval {args.target} PATH` needs a BEIR folder (corpus.jsonl, queries.jsonl, "
                  "qrels/test.tsv) or a Mr. TyDi / MIRACL / JQaRA JSONL file", file=sys.stderr)
            return 2
        names = ["beir"]
    elif args.target == "all":
        names = ["seed", "xling", "jsquad", "cmrc2018"]
    elif args.target in ("seed", "xling", *BENCHMARKS):
        names = [args.target]
    else:
        print(f"error: unknown target {args.target!r}", file=sys.stderr)
        return 2
    try:
        datasets = _datasets(names, args.path)
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"error: cannot load benchmark: {e}", file=sys.stderr)
        return 2
    if args.split is None:
        args.split = "all" if deep and not datasets[0].subset("test").queries else "test"
    empty = [ds.name for ds in datasets if not ds.subset(args.split).queries]
    if empty:
        print(f"error: no queries in the {args.split} split of {', '.join(empty)} (try --split all)", file=sys.stderr)
        return 2
    results = run_sets(datasets, modes, split=args.split, limit=limit, encoder_name=args.encoder, progress=progress,
                       index_dir=args.index, deep=deep)
    if args.out is not None:
        out = args.out
    elif args.quick:
        out = RUNS / "quick"
    elif args.target == "all" and args.split == "test" and limit is None:
        out = RESULTS
    else:
        out = RUNS / ("beir/" + datasets[0].name if deep else args.path.stem if args.target == "squad"
                      else args.target) / args.split
    settings = {"command": "python -m eval " + " ".join(argv if argv is not None else sys.argv[1:]),
                "encoder": load_encoder_id(args.encoder), "tuned": load_tuned(load_encoder_id(args.encoder)).to_dict(),
                "analyzer": config.ANALYZER, "chunk_max_chars": config.CHUNK_MAX_CHARS}
    extra = ""
    if args.target == "all" and not args.quick and limit is None:
        # The full benchmark also scores the answers a learner reads (eval/results/answers.md).
        from eval.answers import COLS, main as answers

        ans = answers(out=out, encoder=args.encoder)
        rows = {sp: g["all"] for sp, g in ans["splits"].items()}
        extra = "\n".join(["## Answers (`python -m eval answers`, details in [answers.md](answers.md))", "",
                           report.table(rows, COLS, "half"), ""])
    path = write_report(results, out, title="Retrieval and answer benchmarks" if extra else
                        "Retrieval benchmarks" + (" (quick)" if args.quick else ""), settings=settings, extra_md=extra)
    print(f"report: {path}", file=sys.stderr)
    if args.save_run is not None:
        for name, r in results.items():
            report.write_trec(args.save_run, f"{name}-{r['split']}", r["_qrels"], r["_runs"])
        print(f"TREC runs: {args.save_run}", file=sys.stderr)
    if args.json:
        print(json.dumps(json_payload(results, load_tuned(load_encoder_id(args.encoder)).default_mode),
                         ensure_ascii=False))
    return 0


def json_payload(results: dict, default_mode: str) -> dict:
    """The ``--json`` object, the same keys for every target: ``modes`` ({mode: {metric: value}}),
    ``default_mode`` and ``n_queries``; with several sets, ``modes`` is the query-weighted mean
    over them and ``sets`` holds each set in the same shape."""
    sets = {}
    for n, r in results.items():
        modes = {m: {k: v for k, v in s.items() if k not in ("by", "latencies_ms")} for m, s in r["modes"].items()}
        sets[n] = {"modes": modes, "default_mode": default_mode, "n_queries": r["queries"]}
    if len(sets) == 1:
        return next(iter(sets.values()))
    total = sum(s["n_queries"] for s in sets.values())
    pooled = {}
    for m in next(iter(sets.values()))["modes"]:
        keys = set.intersection(*(set(s["modes"][m]) for s in sets.values()))
        pooled[m] = {k: sum(s["modes"][m][k] * s["n_queries"] for s in sets.values()) / total
                     for k in sorted(keys) if k != "queries"} | {"queries": total}
    return {"modes": pooled, "default_mode": default_mode, "n_queries": total, "sets": sets}
