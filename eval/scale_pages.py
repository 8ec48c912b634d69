"""``python -m eval scale --backend KIND:SIZE --pages [--pages-before DIR]``: what opening each
page that lists the whole corpus costs an app process on an engine index: the study deck
(flashcards, quiz and drill pages: cards, mock-interview questions, the cards' vectors), the
documents page (titles, languages, passages per document), the landing page (documents
overview and suggested questions) and the topic gate (the checks against the corpus-wide
texts, for ``GATE_QUESTIONS`` seed questions). Writes ``eval/results/scale-pages.{md,json}``.

One writer process puts ``SIZE`` synthetic chunks (:func:`eval.scale.synthesize`, with
documents and the facts derived from them) on the engine; then each page runs in a fresh
process that opens the index as an app does: seconds and memory added (after, and at the
peak) by the page alone, and the chunk records it read. ``--pages-before DIR`` runs the same
pages also with the code at ``DIR`` (a checkout of an earlier commit: its own functions for
each page) against the same index — the "before" rows.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

PAGES = ("deck", "documents", "landing", "gate")
GATE_QUESTIONS = 20
PAGE_TIMEOUT_S = 900  # a page that takes longer is reported as not finished
PROBE = Path(__file__).resolve()


# --- the probe: runs in a fresh process on whichever code is first on its path ----------------


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _page(index, page: str, questions: list[str]):
    """One page's work, with the functions of the code that runs it (earlier code: what its
    pages called; current code: the same entry points, reading the stored tables)."""
    import study.cards as cards_mod
    import study.quiz as quiz_mod
    import ui.suggest as suggest

    if page == "deck":
        cards = cards_mod.cards_from_index(index)
        if hasattr(cards_mod, "drill_questions_from_index"):
            questions_ = cards_mod.drill_questions_from_index(index)
            vectors = quiz_mod.deck_vectors(index)
        else:
            questions_ = cards_mod.drill_questions(index.chunks, index.documents)
            vectors = quiz_mod.card_vectors(cards, index)
        return {"cards": len(cards), "questions": len(questions_), "vectors": int(len(vectors))}
    if page == "documents":
        if hasattr(index, "table"):
            docs = index.table("documents")
            titles = {d["doc_id"]: d["shown"] for d in docs}
            counts = {d["doc_id"]: d["chunks"] for d in docs}
            langs = {d["lang"] for d in docs}
        else:
            from collections import Counter

            from ui.notes import display_title

            titles = {d: display_title(doc, index.chunks) for d, doc in index.documents.items()}
            counts = Counter(c.doc_id for c in index.chunks)
            langs = {d.lang for d in index.documents.values()}
        return {"documents": len(titles), "passages": sum(counts.values()), "languages": len(langs)}
    if page == "landing":
        docs = suggest.overview(index)
        asked = suggest.suggested_questions(index, "ja")
        return {"documents": len(docs), "suggested": len(asked)}
    if page == "gate":
        from types import SimpleNamespace

        from rag.relevance import missing_word_share, missing_terms
        from rag.rules.script import detect_lang
        from study.drill import unknown_names

        missing, first_s, t = 0, 0.0, time.perf_counter()
        for j, q in enumerate(questions):
            lang = detect_lang(q)
            missing += len(missing_terms(index, q, lang))
            missing_word_share(index, SimpleNamespace(tokens=tuple(index.bm25.analyze(q))))
            missing += len(unknown_names(q, index.facts.answer_text))
            if j == 0:
                first_s = time.perf_counter() - t
        return {"questions": len(questions), "missing_terms": missing, "first_question_s": first_s}
    raise ValueError(page)


def probe(setting: str, page: str, questions: list[str]) -> dict:
    """Open the index at ``setting`` as an app does (and import the pages' code, load the
    analyzer), then run ``page``: its seconds, the memory it added (after and at the peak) and
    the chunk records it read."""
    warnings.simplefilter("ignore")
    from rag.backends import open_index

    t = time.perf_counter()
    index = open_index(setting)
    open_s = time.perf_counter() - t
    import importlib

    from rag.rules.script import detect_lang

    for module in ("rag.relevance", "study.cards", "study.drill", "study.quiz", "ui.notes", "ui.suggest"):
        importlib.import_module(module)  # the pages' code is loaded before the page is measured

    from rag.rules.names import proper_names
    from rag.text import distinctive_terms

    for q in questions[:2] + ["warm-up"]:  # the analyzer's and the term rules' dictionaries load on first use
        index.bm25.analyze(q), distinctive_terms(q, detect_lang(q)), proper_names(q)
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # the peak from here on
    rss0 = _status_mb("VmRSS")
    read0 = index.chunks.fetcher.fetched
    t = time.perf_counter()
    out = _page(index, page, questions)
    page_s = time.perf_counter() - t
    return {"open_s": open_s, "page_s": page_s, "rss_added_mb": _status_mb("VmRSS") - rss0,
            "peak_added_mb": _status_mb("VmHWM") - rss0, "app_rss_mb": _status_mb("VmRSS"),
            "records_read": index.chunks.fetcher.fetched - read0, **out}


def _run_probe(code: Path, setting: str, page: str, questions: list[str]) -> dict:
    """:func:`probe` in a fresh process whose imports come from ``code`` (its working folder)."""
    call = (f"import json, runpy; m = runpy.run_path({str(PROBE)!r}, run_name='probe'); "
            f"print('RESULT ' + json.dumps(m['probe']({setting!r}, {page!r}, {questions!r})))")
    env = {**os.environ, "PYTHONPATH": str(code)}
    try:
        proc = subprocess.run([sys.executable, "-c", call], capture_output=True, text=True, cwd=code, env=env,
                              timeout=PAGE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"page_s": None, "note": f"not finished in {PAGE_TIMEOUT_S} s (stopped)"}
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode != 0 or not line:
        return {"page_s": None, "note": f"failed: {' '.join(proc.stderr.split()[-30:])}"}
    return json.loads(line[-1][len("RESULT "):])


# --- the run --------------------------------------------------------------------------------------


def write_synthetic(kind: str, n: int, setting: str, encoder: str = "e5-small") -> dict:
    """(In a fresh process.) ``n`` synthetic chunks with documents and their facts, written to ``setting``."""
    from eval.datasets import load_seed
    from eval.runner import CachingEncoder
    from eval.scale import synthesize, with_documents
    from ingest.pipeline import build
    from rag.backends import write_index
    from rag.encoders import load_encoder
    from rag.facts import derive_facts

    warnings.simplefilter("ignore")
    enc = CachingEncoder(load_encoder(encoder))
    base = build(load_seed().docs, enc, faiss="flat", progress=False)
    index = with_documents(synthesize([base], n, faiss=False)[0])
    index.facts = derive_facts(index.documents, index.chunks, index.bm25.tokens, index.unit_spans, index.unit_offsets)
    t = time.perf_counter()
    write_index(index, setting)
    return {"write_s": time.perf_counter() - t, "documents": len(index.documents),
            "sentences": int(len(index.units)), "quotable_chars": len(index.facts.quotable_text),
            "notes_chars": len(index.facts.squashed_notes), "answer_chars": len(index.facts.answer_text)}


def main(*, out: Path, backend: str, before: Path | None = None, encoder: str = "e5-small",
         pages: tuple[str, ...] = PAGES) -> int:
    import tempfile

    from eval import report
    from eval.backends import available, setting_for
    from eval.datasets import load_seed
    from eval.scale import in_fresh_process, milvus_lite_server, wait_idle

    kind, _, size = backend.partition(":")
    n = int(size or 20_000)
    why = available(kind)
    if why or kind == "folder":
        print(f"{kind}: {why or 'the pages read the folder index held in memory: nothing to measure'}")
        return 2
    questions = [q.text for q in load_seed().queries][:GATE_QUESTIONS]
    codes = {"after": Path(__file__).resolve().parents[1]}
    if before is not None:
        codes = {"before": before.resolve(), **codes}
    rows: dict[str, dict] = {}
    cmd = (f"python -m eval scale --backend {backend} --pages" + (" --pages-before DIR" if before is not None else "")
           + (f" --page {','.join(pages)}" if tuple(pages) != PAGES else ""))
    with tempfile.TemporaryDirectory(prefix=f"pages-{kind}-") as tmp, contextlib.ExitStack() as stack:
        server = None
        if kind == "milvus-lite":
            setting, server = stack.enter_context(milvus_lite_server(Path(tmp) / "milvus"))
        else:
            setting = setting_for(kind, Path(tmp))
        written = in_fresh_process(f"write_synthetic({kind!r}, {n}, {setting!r}, {encoder!r})", "eval.scale_pages")
        if server:
            written["engine_idle_wait_s"] = wait_idle(server)
        print(written, flush=True)
        for page in pages:
            for label, code in codes.items():
                row = {"page": page, "code": label, "backend": kind, "chunks": n,
                       **_run_probe(code, setting, page, questions), "command": cmd}
                rows[f"{page} ({label})"] = row
                print(row, flush=True)
    try:  # rows of the pages not run now stay
        old = json.loads((out / "scale-pages.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = {}
    rows = {**{k: v for k, v in old.get("rows", {}).items() if k not in rows}, **rows}
    rows = dict(sorted(rows.items(), key=lambda kv: (PAGES.index(kv[1]["page"]), kv[1]["code"] != "before")))
    cols = ("page_s", "rss_added_mb", "peak_added_mb", "records_read", "app_rss_mb", "open_s")
    md = ["# Scale: opening the pages that list the whole corpus, on an engine index", "",
          f"Command: `{cmd}` (DIR: a checkout of the code before the pages read stored tables; `before` rows "
          "run that code, `after` rows this one, on the same index); rows of pages not run then are kept from "
          "earlier runs of the same synthetic chunks (each row's command is `command` in the JSON). "
          f"{n:,} synthetic chunks ({written['documents']:,} documents, {written['sentences']:,} sentences; "
          f"facts texts {written['quotable_chars']:,} / {written['notes_chars']:,} / {written['answer_chars']:,} "
          f"characters) on {kind}"
          + (" (`milvus-lite server` in its own process)" if kind == "milvus-lite" else "")
          + f", written in {written['write_s']:.0f} s. Each page in a fresh process that opens the index first: "
          "`page_s` the page's work alone (the pages' modules imported and the analyzer loaded before); `rss_added_mb` / `peak_added_mb` what it added to the process (after / at "
          "its peak); `records_read` chunk records read from the engine. Pages: `deck` = the study pages' deck "
          "(cards, mock-interview questions, the cards' vectors for quiz choices); `documents` = the documents "
          "page's list (shown titles, languages, passages per document); `landing` = documents overview and "
          "suggested questions; `gate` = the topic gate's checks against the corpus-wide texts for "
          f"{GATE_QUESTIONS} seed questions (`first_question_s` the first). A page stopped after "
          f"{PAGE_TIMEOUT_S} s says so. Shared 2-core machine (`nice -n 10`): timings are noisy.", "",
          report.table(rows, cols + ("first_question_s", "note"), "page"), ""]
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale-pages.md").write_text("\n".join(md), encoding="utf-8")
    report.write_json(out / "scale-pages.json", {"command": cmd, "written": written, "rows": rows})
    print("\n".join(md))
    return 0

