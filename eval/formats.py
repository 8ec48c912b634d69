"""``python -m eval formats``: the seed corpus as PDF / Word / web page / slides instead of
Markdown, and the PDF path's speed.

* **parity** — the seed gold questions (held-out half) against the seed documents as each
  format (``tests/fixtures/formats/seed``, printed by Chromium, exported by the libraries);
  the gold names documents and anchor sentences, so each anchor is found again in the
  format's text (whitespace and Markdown marks ignored) in the same document.
* **cited pages** — every question answered over the PDF corpus; each quoted sentence of a
  PDF citation must be in the text PDFium extracts from the page(s) the citation names.
* **extraction** — pages per second of the PDF reader on a 300-page PDF (the seed
  documents printed eight times with edits); **OCR** — character accuracy per language on
  the scanned fixture.
* **big file** — ingest of that PDF next to the seed index: seconds until keyword-searchable,
  seconds until fully embedded, texts encoded; answer latency while it embeds vs idle.

Writes ``formats.json`` and ``formats.md`` (``eval/results/`` for the full run).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from eval import metrics
from eval.datasets import SEED_QUESTIONS, Anchor, Dataset, Query
from ingest.loader import load_corpus
from ingest.readers import Limits, extract
from rag.types import Document

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "formats"
FORMATS = ("md", "pdf", "docx", "html", "pptx")
_SKIP = re.compile(r"[\s*#`>|\-]")


def find_anchor(text: str, anchor: str) -> tuple[int, int] | None:
    """``(start, end)`` of ``anchor`` in ``text`` ignoring whitespace and Markdown marks."""
    keep = [i for i, ch in enumerate(text) if not _SKIP.match(ch)]
    norm = "".join(text[i] for i in keep)
    want = _SKIP.sub("", anchor)
    if not want:
        return None
    p = norm.find(want)
    if p < 0:
        return None
    return keep[p], keep[p + len(want) - 1] + 1


def seed_as(fmt: str, folder: Path) -> tuple[Dataset, int, int]:
    """The seed gold set over the seed documents in format ``fmt`` (copied into ``folder``);
    also the number of anchors found and missing."""
    corpus = folder / fmt
    corpus.mkdir(parents=True, exist_ok=True)
    for src in sorted((ROOT / "corpus").iterdir()):
        if fmt == "md":
            shutil.copy(src, corpus / src.name)
        else:
            shutil.copy(FIXTURES / "seed" / f"{src.stem}.{fmt}", corpus / f"{src.stem}.{fmt}")
    docs = load_corpus(corpus)
    by_stem = {Path(d.doc_id).stem: d for d in docs}
    queries, anchors, found, missing = [], {}, 0, 0
    for line in SEED_QUESTIONS.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        got = []
        for rel in r["relevant"]:
            d = by_stem.get(Path(rel["doc"]).stem)
            span = find_anchor(d.text, rel["anchor"]) if d is not None else None
            if span is None:
                missing += 1
                continue
            found += 1
            got.append(Anchor(d.doc_id, *span))
        queries.append(Query(r["qid"], r["query"], r["lang"], r["type"], r["split"]))
        anchors[r["qid"]] = got
    return Dataset(f"seed-{fmt}", docs, queries, "chunk", anchors=anchors), found, missing


def parity(encoder, folder: Path, *, split: str = "test", formats=FORMATS) -> dict:
    from eval.runner import build_index, evaluate_modes
    from rag.search import Searcher

    out = {}
    for fmt in formats:
        ds, found, missing = seed_as(fmt, folder)
        sub = ds.subset(split)
        built = build_index(sub, encoder, progress=False)
        searcher = Searcher(built.index, encoder=encoder)
        res = evaluate_modes(searcher, sub, ["hybrid"], progress=False)["modes"]["hybrid"]
        out[fmt] = {
            "hit@1": res["hit@1"], "mrr@10": res["mrr@10"], "hit@5": res["hit@5"],
            "anchors_found": found, "anchors_missing": missing, "chunks": len(built.index.chunks),
            "questions": len(sub.queries),
        }
        print(f"parity {fmt}: {out[fmt]}", file=sys.stderr)
    return out


class NoVectors:
    """An encoder that gives every text the same zero vector: for keyword (BM25) runs only,
    which never read vectors (so the comparison needs no model time)."""

    id, dim = "no-vectors", 8

    def encode(self, texts, *, query: bool):
        import numpy as np

        return np.zeros((len(list(texts)), self.dim), dtype=np.float32)


def parity_bm25(folder: Path, *, formats=FORMATS) -> dict:
    """:func:`parity` for the keyword leg alone (``--mode bm25``), every format, both halves."""
    from eval.runner import build_index, evaluate_modes
    from rag.search import Searcher

    out = {}
    for fmt in formats:
        ds, found, missing = seed_as(fmt, folder)
        built = build_index(ds, NoVectors(), progress=False)
        searcher = Searcher(built.index, encoder=NoVectors())
        row = {"anchors_found": found, "anchors_missing": missing, "chunks": len(built.index.chunks)}
        for split in ("dev", "test"):
            res = evaluate_modes(searcher, ds.subset(split), ["bm25"], progress=False)["modes"]["bm25"]
            row[split] = {"hit@1": res["hit@1"], "mrr@10": res["mrr@10"], "hit@5": res["hit@5"]}
        out[fmt] = row
        print(f"parity bm25 {fmt}: {row}", file=sys.stderr)
    return out


def sentences_on_pages(folder: Path) -> dict:
    """Every sentence (unit) of every chunk of the seed PDFs — everything an answer can quote —
    checked against the PDFium text of the page(s) its origin names."""
    from ingest.chunker import chunk_document
    from rag.origin import locate
    from rag.rules.sentences import unit_spans

    ds, _, _ = seed_as("pdf", folder)
    checked = ok = first = 0
    failures = []
    for d in ds.docs:
        pages = _page_texts(folder / "pdf" / d.doc_id)
        for c in chunk_document(d):
            for s, e in unit_spans(c.text):
                s, e = c.start + s, c.start + e
                text = _bare(d.text[s:e])
                if len(text) < 4:
                    continue
                where = locate(d.origin, [(s, e)])
                checked += 1
                hit = _pieces_on_pages(d, s, e, pages)  # each piece of the sentence on the page its line names
                ok += hit
                first += text in pages[where.number - 1]
                if not hit and len(failures) < 5:
                    failures.append({"doc": d.doc_id, "location": where.label, "sentence": text[:80]})
    return {"sentences": checked, "in_named_pages": ok / max(checked, 1), "in_first_page": first / max(checked, 1),
            "failures": failures}


def _page_texts(path: Path) -> list[str]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(path.read_bytes())
    try:
        # PDFium writes a hyphen that ends a line as U+FFFE
        return [re.sub(r"\s+", "", pdf[i].get_textpage().get_text_range()).replace("\ufffe", "-") for i in range(len(pdf))]
    finally:
        pdf.close()


def _pieces_on_pages(doc: Document, s: int, e: int, pages: list[str]) -> bool:
    """Whether each piece of ``doc.text[s:e]`` (one per PDF line) is in the text of the page
    its line names: a quote may run over a page break, past a running header or footer."""
    return all(_bare(doc.text[max(s, ln.start) : min(e, ln.end)]) in pages[ln.page - 1]
               for ln in doc.origin.lines if ln.start < e and s < ln.end)


def cited_pages(encoder, folder: Path) -> dict:
    """Share of quoted sentences (PDF citations) found in the page(s) their citation names."""
    from eval.runner import build_index
    from rag.answer import ask
    from rag.search import Searcher

    ds, _, _ = seed_as("pdf", folder)
    built = build_index(ds, encoder, progress=False)
    searcher = Searcher(built.index, encoder=encoder)
    pages = {d.doc_id: _page_texts(folder / "pdf" / d.doc_id) for d in ds.docs}
    checked = first_page = named_pages = answered = 0
    failures = []
    for q in ds.queries:
        a = ask(searcher, q.text)
        if a.abstained:
            continue
        answered += 1
        for c in a.citations:
            doc = searcher.index.documents[c.chunk.doc_id]
            if c.location is None:
                continue
            nums = doc.origin.numbers(c.quotes[0][0], c.quotes[-1][1]) if c.quotes else (c.location.number,)
            for s, e in c.quotes or [(c.chunk.start, c.chunk.end)]:
                quoted = _bare(doc.text[s:e])
                checked += 1
                first_page += quoted in pages[doc.doc_id][c.location.number - 1]
                ok = quoted in "".join(pages[doc.doc_id][n - 1] for n in nums) or _pieces_on_pages(doc, s, e, pages[doc.doc_id])
                named_pages += ok
                if not ok and len(failures) < 5:
                    failures.append({"qid": q.qid, "doc": doc.doc_id, "location": c.location.label, "quote": quoted[:80]})
    return {
        "questions": len(ds.queries), "answered": answered, "quotes": checked,
        "in_named_pages": named_pages / max(checked, 1), "in_first_page": first_page / max(checked, 1),
        "failures": failures,
    }


def _bare(text: str) -> str:
    """Text without whitespace and the Markdown a reader wrote (headings, bullets, the
    numbers of auto-numbered paragraphs, bold, code fences): what the original file holds."""
    return re.sub(r"\s+|\*\*|```", "", re.sub(r"(?m)^\s*(?:(?:#+|[-*+]|\d{1,3}[.)])\s+)+", "", text))


def _slide_texts(path: Path) -> list[str]:
    """Each slide's text (every shape, table and the speaker notes) as python-pptx reads it."""
    from pptx import Presentation

    out = []
    for slide in Presentation(str(path)).slides:
        parts = []
        for shape in slide.shapes:
            if shape.has_text_frame:
                parts.append(shape.text_frame.text)
            if getattr(shape, "has_table", False) and shape.has_table:
                parts += [c.text for row in shape.table.rows for c in row.cells]
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            parts.append(slide.notes_slide.notes_text_frame.text)
        out.append(_bare("\n".join(parts).replace("\v", "\n")))
    return out


def unit_texts(fmt: str, path: Path) -> list[str] | None:
    """The text of each page (PDF, by PDFium) or slide (.pptx, by python-pptx) of an original
    file, read independently of the reader; None for formats cited by paragraph."""
    if fmt == "pdf":
        return _page_texts(path)
    if fmt == "pptx":
        return _slide_texts(path)
    return None


def answers_parity(encoder, folder: Path, *, formats=FORMATS) -> dict:
    """The answers benchmark (``python -m eval answers``'s questions, asked as the app asks
    them) over the seed documents in each format; and, for PDF and slides, every sentence a
    citation quotes checked against the text of the page(s)/slide(s) the citation names."""
    from eval import answers as bench
    from eval.runner import build_index
    from rag.search import Searcher

    items = bench.load_items()
    out = {}
    for fmt in formats:
        ds, _, _ = seed_as(fmt, folder)
        searcher = Searcher(build_index(ds, encoder, progress=False).index, encoder=encoder)
        encoder.save()
        for it in items[:3]:
            bench.ask(searcher, it.question)
        outs = bench.run(searcher, items, progress=False)
        row = {sp: bench.summarize([o for o in outs if o.item.split == sp]) for sp in ("dev", "test")}
        checked = ok = 0
        failures = []
        units = {d.doc_id: unit_texts(fmt, folder / fmt / d.doc_id) for d in ds.docs}
        for o in outs:
            for c in o.answer.citations if o.answer.answered else ():
                doc = searcher.index.documents[c.chunk.doc_id]
                pages = units.get(doc.doc_id)
                if pages is None or c.location is None:
                    continue
                for s, e in c.quotes or [(c.chunk.start, c.chunk.end)]:
                    text = doc.text[s:e]  # normalised as the unit texts are
                    quoted = _bare(text) if fmt == "pptx" else re.sub(r"\s+|\*\*", "", text).lstrip("#")
                    if len(quoted) < 4:
                        continue
                    named = "".join(pages[n - 1] for n in doc.origin.numbers(s, e))
                    checked += 1
                    if doc.origin.lines:  # a PDF: each piece on the page its line names
                        hit = _pieces_on_pages(doc, s, e, pages)
                    else:
                        hit = quoted in named
                    ok += hit
                    if not hit and len(failures) < 5:
                        failures.append({"qid": o.item.qid, "doc": doc.doc_id, "location": c.location.label,
                                         "quote": quoted[:80]})
        if checked:
            row["cited_units"] = {"quotes": checked, "in_named_units": ok / checked, "failures": failures}
        out[fmt] = row
        print(f"answers {fmt}: " + json.dumps({sp: {k: row[sp][k] for k in ("all_points", "half_points", "mean_point_share")}
                                               for sp in ("dev", "test")}) + f" cited {row.get('cited_units', {}).get('in_named_units')}",
              file=sys.stderr)
    return out


def big_pdf(path: Path, repeats: int = 8) -> Path:
    """The seed documents printed ``repeats`` times with edits (a part number in every
    heading and paragraph), ~300 pages; made once with Chromium and kept."""
    if path.exists():
        return path
    sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
    import make_fixtures

    parts = []
    for k in range(1, repeats + 1):
        for name, title, body in make_fixtures.seed_documents():
            edited = "\n".join(
                (f"{ln} (第{k}部)" if ln.strip() and not ln.lstrip().startswith(("|", "```", "$$")) else ln)
                for ln in body.splitlines()
            )
            html = make_fixtures.to_html(f"{title} 第{k}部", edited, name)
            parts.append(html[html.index("<body>") + 6 : html.index("</body>")])
    page = make_fixtures.to_html("StudyRAG big PDF", "", "x.md")
    page = page.replace("<body></body>", "<body>" + '<div style="break-after: page"></div>'.join(parts) + "</body>")
    path.parent.mkdir(parents=True, exist_ok=True)
    make_fixtures.print_pdf(page, path)
    return path


def _cpu() -> float:
    import resource

    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def extraction_speed(pdf: Path) -> dict:
    """Wall-clock and CPU seconds (this process and its page workers) of the PDF reader:
    on a shared machine the CPU figure says what two idle cores would do."""
    data = pdf.read_bytes()
    t, c = time.perf_counter(), _cpu()
    got = extract(pdf.name, data, Limits())
    in_process, cpu = time.perf_counter() - t, _cpu() - c
    from ingest.readers.sandbox import read_isolated

    t = time.perf_counter()
    read_isolated(pdf.name, data, Limits())
    isolated = time.perf_counter() - t
    n = len(got.origin.sizes)
    return {"pages": n, "chars": len(got.text), "seconds": in_process, "pages_per_s": n / in_process,
            "cpu_seconds": cpu, "pages_per_cpu_s": n / cpu, "load_average": os.getloadavg()[0],
            "seconds_in_subprocess": isolated, "pages_per_s_in_subprocess": n / isolated}


def ocr_accuracy() -> dict:
    got = extract("scanned.pdf", (FIXTURES / "scanned.pdf").read_bytes(), Limits())
    want = dict(line.split("\t") for line in (FIXTURES / "scanned.txt").read_text(encoding="utf-8").splitlines())
    out = {}
    for page, lang in enumerate(("ja", "zh", "en"), start=1):
        text = "".join(got.text[s:e] for s, e, n in got.origin.units if n == page)
        a, b = re.sub(r"\s+", "", want[lang]), re.sub(r"\s+", "", text)
        sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
        matched = sum(m.size for m in sm.get_matching_blocks())
        out[lang] = {"char_accuracy": matched / len(a), "ratio": sm.ratio(), "got": text[:200]}
    return out


def big_file(pdf: Path, encoder, folder: Path, questions: list[str], *, seed_encoder=None) -> dict:
    """Seed index first (``seed_encoder``: the same model, vectors cached); then the big PDF
    added with the keyword-only build first, every text encoded afresh by ``encoder``, while
    answers are timed; the same answers timed idle before, back to back."""
    from ingest.pipeline import ingest
    from rag.answer import ask
    from rag.index import open_index
    from rag.search import Searcher

    corpus, index = folder / "big-corpus", folder / "big-index"
    shutil.rmtree(corpus, ignore_errors=True)
    shutil.rmtree(index, ignore_errors=True)
    shutil.copytree(ROOT / "corpus", corpus)
    ingest(corpus, index, encoder=seed_encoder if seed_encoder is not None else encoder)
    searcher = Searcher(open_index(index), encoder=encoder)

    def timed() -> list[float]:
        out = []
        for q in questions:
            t = time.perf_counter()
            ask(searcher, q)
            out.append((time.perf_counter() - t) * 1000)
        return out

    timed()  # warm
    idle = timed()
    shutil.copy(pdf, corpus / pdf.name)
    stages: dict[str, float] = {}
    counts: dict[str, int] = {}
    t0 = time.perf_counter()

    def on_progress(stage, n, total):
        stages.setdefault(stage, time.perf_counter() - t0)
        if total:
            counts[stage] = total

    report = {}

    def run():
        report["r"] = ingest(corpus, index, encoder=encoder, keyword_first=True, on_progress=on_progress)

    th = threading.Thread(target=run)
    th.start()
    busy: list[float] = []
    while th.is_alive():
        busy += timed()
    th.join()
    r = report["r"]
    return {
        "pages": len(open_index(index).documents[pdf.name].origin.sizes),
        "keyword_searchable_s": r.searchable_seconds,
        "fully_embedded_s": r.seconds,
        "stage_started_s": stages,
        "texts_to_encode": counts,
        "answer_ms_idle_p50": statistics.median(idle),
        "answer_ms_while_embedding_p50": statistics.median(busy) if busy else None,
        "answers_while_embedding": len(busy),
        "ratio_p50": statistics.median(busy) / statistics.median(idle) if busy else None,
    }


ALTERNATE_S = 3.0  # seconds per block when answers are timed with the embedding paused / running


def big_file_window(pdf: Path, encoder_name: str, folder: Path, questions: list[str], *, window_s: float = 90.0) -> dict:
    """The 300-page PDF through ``python -m ingest --keyword-first`` in a child process (as an
    upload would run beside the app): seconds until its keyword-only build is live (CURRENT
    appears), answer latency over a small index during ``window_s`` of the child's embedding
    vs idle (back to back), then for another ``window_s`` with the child paused and running in
    alternating blocks (the ratio a shared machine's swinging load cannot bias); then the child
    is stopped. The full embedding time is the number of texts to encode over the measured
    encoding rate."""
    import os
    import subprocess

    from ingest.pipeline import ingest
    from ingest.readers import extract
    from rag.answer import ask
    from rag.encoders import load_encoder
    from rag.index import open_index
    from rag.search import Searcher

    enc = load_encoder(encoder_name)
    small_corpus, small_index = folder / "small-corpus", folder / "small-index"
    small_corpus.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "corpus" / "senior-ai-engineer-questions-ja.md", small_corpus)
    ingest(small_corpus, small_index, encoder=enc)
    searcher = Searcher(open_index(small_index), encoder=enc)

    def timed(until: float | None = None) -> list[float]:
        out = []
        while True:
            for q in questions:
                searcher.clear_query_cache()  # every answer encodes its question
                t = time.perf_counter()
                ask(searcher, q)
                out.append((time.perf_counter() - t) * 1000)
                if until is not None and time.perf_counter() >= until:
                    return out
            if until is None:
                return out

    load_before = os.getloadavg()[0]
    timed()
    idle = timed()
    corpus, index = folder / "big-corpus", folder / "big-index"
    corpus.mkdir(parents=True, exist_ok=True)
    shutil.copy(pdf, corpus / pdf.name)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "ingest", "--corpus", str(corpus), "--index", str(index),
                              "--keyword-first", "--quiet", "--encoder", encoder_name], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not (index / "CURRENT").exists() and child.poll() is None:
            time.sleep(0.05)
        searchable = time.perf_counter() - t0
        try:  # the child's CPU seconds so far, its finished reader subprocess included
            f = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()
            searchable_cpu = sum(int(x) for x in f[11:15]) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            searchable_cpu = None
        kw = Searcher(open_index(index), encoder=enc)
        hits = kw.search("LoRAとQLoRAのファインチューニングの違い", k=3)
        busy = timed(until=time.perf_counter() + window_s)
        # The same answers with the child paused (SIGSTOP) and running, in alternating blocks:
        # other jobs' load then weighs on both sides alike (a shared machine's load swings).
        paused, running = [], []
        end = time.perf_counter() + window_s
        while time.perf_counter() < end and child.poll() is None:
            child.send_signal(signal.SIGSTOP)
            time.sleep(0.2)
            paused += timed(until=time.perf_counter() + ALTERNATE_S)
            child.send_signal(signal.SIGCONT)
            time.sleep(0.5)
            running += timed(until=time.perf_counter() + ALTERNATE_S)
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGCONT)
        child.kill()
        child.wait()
    got = extract(pdf.name, pdf.read_bytes(), Limits())
    from ingest.chunker import chunk_document
    from ingest.pipeline import unit_texts
    from rag.types import Document as Doc

    chunks = chunk_document(Doc(pdf.name, got.text, got.title, "ja", "x", origin=got.origin))
    texts = {c.text for c in chunks} | {c.heading for c in chunks if c.heading} | set(unit_texts(chunks)[0])
    sample = sorted(texts)[:256]
    from ingest.pipeline import BACKGROUND_NICE, BACKGROUND_THREADS
    from rag.encoders import batch_threads

    t = time.perf_counter()
    with batch_threads(BACKGROUND_THREADS):  # as the background embedding encodes
        for i in range(0, len(sample), 64):
            enc.encode(sample[i : i + 64], query=False)
    rate = len(sample) / (time.perf_counter() - t)
    return {
        "pages": len(got.origin.sizes),
        "keyword_searchable_s": searchable,
        "keyword_searchable_cpu_s": searchable_cpu,
        "keyword_build_pending": kw.index.manifest.get("pending"),
        "keyword_top_hit": hits[0].chunk.doc_id if hits else None,
        "texts_to_encode": len(texts),
        "encode_texts_per_s": rate,
        "fully_embedded_s_estimate": searchable + len(texts) / rate,
        "answer_ms_idle_p50": statistics.median(idle),
        "answer_ms_while_embedding_p50": statistics.median(busy),
        "answers_while_embedding": len(busy),
        "ratio_p50": statistics.median(busy) / statistics.median(idle),
        "alternating": {
            "block_s": ALTERNATE_S, "answers_paused": len(paused), "answers_running": len(running),
            "answer_ms_paused_p50": statistics.median(paused) if paused else None,
            "answer_ms_running_p50": statistics.median(running) if running else None,
            "ratio_p50": statistics.median(running) / statistics.median(paused) if paused and running else None,
        },
        "load_average": os.getloadavg()[0],
        "load_average_before": load_before,
        "background": {"nice": BACKGROUND_NICE, "encoder_threads": BACKGROUND_THREADS},
    }


def run(out_dir: Path, *, encoder_name: str, parts=("parity", "cited", "ocr", "speed", "big"), stem: str = "formats") -> dict:
    """Run ``parts`` and write ``<stem>.json`` and ``<stem>.md`` into ``out_dir``, keeping the
    figures of parts not run this time. Parts: keyword, parity, answers, pages, cited, ocr,
    speed, window, big (add md/pdf/docx/html/pptx to limit parity and answers to formats)."""
    from eval.runner import CachingEncoder
    from rag.encoders import load_encoder

    enc = CachingEncoder(load_encoder(encoder_name), cache_queries=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    old = out_dir / f"{stem}.json"  # parts not run this time keep their last figures
    result: dict = json.loads(old.read_text(encoding="utf-8")) if old.exists() else {}
    result["encoder"] = encoder_name

    def save() -> None:  # after every part: a long run stopped early keeps what it measured
        (out_dir / f"{stem}.json").write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        (out_dir / f"{stem}.md").write_text(markdown(result), encoding="utf-8")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if "ocr" in parts:
            result["ocr"] = ocr_accuracy()
            save()
        if "speed" in parts or "big" in parts or "window" in parts:
            pdf = big_pdf(ROOT / "eval" / "runs" / "formats" / "big-300.pdf")
        if "speed" in parts:
            result["extraction"] = extraction_speed(pdf)
            print(f"extraction: {result['extraction']}", file=sys.stderr)
            save()
        if "keyword" in parts:
            result["parity_bm25"] = parity_bm25(tmp / "parity-bm25")
            save()
        if "pages" in parts:
            result["sentences_on_pages"] = sentences_on_pages(tmp / "pages")
            print(f"sentences on pages: {result['sentences_on_pages']}", file=sys.stderr)
            save()
        if "parity" in parts:
            result.setdefault("parity", {})
            for fmt in [f for f in FORMATS if f in parts] or FORMATS:  # e.g. --parts parity,md,pdf
                result["parity"].update(parity(enc, tmp / "parity", formats=(fmt,)))
                enc.save()
                save()
        if "answers" in parts:
            result.setdefault("answers", {})
            for fmt in [f for f in FORMATS if f in parts] or FORMATS:  # e.g. --parts answers,md,pptx
                result["answers"].update(answers_parity(enc, tmp / "answers", formats=(fmt,)))
                save()
        if "cited" in parts:
            result["cited_pages"] = cited_pages(enc, tmp / "cited")
            print(f"cited pages: {result['cited_pages']}", file=sys.stderr)
            enc.save()
            save()
        if "window" in parts:
            qs = [json.loads(x)["query"] for x in SEED_QUESTIONS.read_text(encoding="utf-8").splitlines()[:10]]
            result["big_file_window"] = big_file_window(pdf, encoder_name, tmp / "window", qs)
            print(f"big file window: {result['big_file_window']}", file=sys.stderr)
            save()
        if "big" in parts:
            qs = [json.loads(x)["query"] for x in SEED_QUESTIONS.read_text(encoding="utf-8").splitlines()[:10]]
            result["big_file"] = big_file(pdf, load_encoder(encoder_name), tmp / "big", qs, seed_encoder=enc)
            print(f"big file: {result['big_file']}", file=sys.stderr)
            save()
    return result


def markdown(r: dict) -> str:
    lines = ["# Formats: parity, cited pages, extraction, OCR, big files", "",
             "Made by `python -m eval formats`. 2 shared CPU cores; timings are noisy under load.", ""]
    if "parity_bm25" in r:
        base = r["parity_bm25"].get("md", {})
        lines += ["## Format parity, keyword leg (`--mode bm25`; seed gold, both halves)", "",
                  "| format | test hit@1 | Δ | test MRR@10 | Δ | dev hit@1 | Δ | dev MRR@10 | Δ | anchors found / missing | chunks |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for fmt, m in r["parity_bm25"].items():
            cells = []
            for split in ("test", "dev"):
                for k in ("hit@1", "mrr@10"):
                    v = m[split][k]
                    cells += [f"{v:.3f}", f"{v - base.get(split, m[split])[k]:+.3f}"]
            lines.append(f"| {fmt} | " + " | ".join(cells) + f" | {m['anchors_found']} / {m['anchors_missing']} | {m['chunks']} |")
        lines.append("")
    if "sentences_on_pages" in r:
        c = r["sentences_on_pages"]
        lines += ["## Every quotable sentence is on the page it names (seed PDFs)", "",
                  f"{c['sentences']:,} sentences (every unit of every chunk — all an answer can quote): "
                  f"**{100 * c['in_named_pages']:.1f} %** are in the PDFium text of the page(s) their citation names (each piece on its page); "
                  f"{100 * c['in_first_page']:.1f} % on the first page alone (the rest run over a page break).", ""]
    if "parity" in r:
        base = r["parity"].get("md", {})
        lines += ["## Format parity (seed gold, held-out half, hybrid)", "",
                  "| format | hit@1 | Δ | MRR@10 | Δ | hit@5 | anchors found / missing | chunks |", "|---|---|---|---|---|---|---|---|"]
        for fmt, m in r["parity"].items():
            d1 = m["hit@1"] - base.get("hit@1", m["hit@1"])
            d2 = m["mrr@10"] - base.get("mrr@10", m["mrr@10"])
            lines.append(f"| {fmt} | {m['hit@1']:.3f} | {d1:+.3f} | {m['mrr@10']:.3f} | {d2:+.3f} | {m['hit@5']:.3f} | "
                         f"{m['anchors_found']} / {m['anchors_missing']} | {m['chunks']} |")
        lines.append("")
    if "answers" in r:
        base = r["answers"].get("md", {})
        keys = ("all_points", "half_points", "mean_point_share", "wrongly_abstained", "offtopic_abstained")
        lines += ["## Answers benchmark per format (`eval/data/answer_*.jsonl`, as `python -m eval answers` asks them)", "",
                  "| format | half | " + " | ".join(keys) + " | cited page/slide holds the quote |",
                  "|---|---|" + "---|" * len(keys) + "---|"]
        for fmt, m in r["answers"].items():
            for sp in ("test", "dev"):
                cells = [f"{m[sp][k]:.3f} ({m[sp][k] - base.get(sp, m[sp])[k]:+.3f})" for k in keys]
                cu = m.get("cited_units")
                cited = f"{100 * cu['in_named_units']:.1f} % of {cu['quotes']}" if cu and sp == "test" else ""
                lines.append(f"| {fmt} | {sp} | " + " | ".join(cells) + f" | {cited} |")
        lines += ["", "The cited-unit check covers every quote of every answer (both halves), each against the text "
                  "PDFium (pages) or python-pptx (slides) reads from the unit(s) its citation names.", ""]
    if "cited_pages" in r:
        c = r["cited_pages"]
        lines += ["## Cited pages (PDF corpus, every seed question)", "",
                  f"{c['quotes']} quoted sentences from {c['answered']} answered questions: "
                  f"**{100 * c['in_named_pages']:.1f} %** are in the text of the page(s) the citation names; "
                  f"{100 * c['in_first_page']:.1f} % on its first page alone.", ""]
    if "extraction" in r:
        e = r["extraction"]
        lines += ["## PDF extraction", "",
                  f"{e['pages']} pages in {e['seconds']:.1f} s wall clock ({e['pages_per_s']:.0f} pages/s; "
                  f"{e['pages_per_s_in_subprocess']:.0f} pages/s through the limited subprocess) with the machine's "
                  f"load average at {e['load_average']:.0f} on 2 cores; **{e['pages_per_cpu_s']:.0f} pages per CPU "
                  f"second** ({e['cpu_seconds']:.1f} CPU s), so two idle cores read "
                  f"~{2 * e['pages_per_cpu_s']:.0f} pages/s (pages are split between one process per core).", ""]
    if "ocr" in r:
        lines += ["## OCR (scanned fixture, Tesseract jpn+chi_sim+eng)", "", "| language | character accuracy |", "|---|---|"]
        lines += [f"| {k} | {v['char_accuracy']:.3f} |" for k, v in r["ocr"].items()]
        lines.append("")
    if "big_file_window" in r:
        b = r["big_file_window"]
        lines += ["## A 300-page PDF added beside the app (`python -m ingest --keyword-first` in a child process)", "",
                  f"* {b['pages']} pages; keyword-searchable (its keyword-only build live) after "
                  f"**{b['keyword_searchable_s']:.1f} s** wall clock with the load average at {b['load_average']:.0f} on 2 cores; "
                  f"the ingest process used **{b['keyword_searchable_cpu_s'] or 0:.1f} CPU s** to get there (read, chunk, analyse, write)",
                  f"* fully embedded: **~{b['fully_embedded_s_estimate']:.0f} s** (estimate: {b['texts_to_encode']:,} "
                  f"distinct passages, headings and sentences at the measured {b['encode_texts_per_s']:.1f} texts/s) — "
                  "bounded by the encoder (e5-small on the CPU), not by reading or BM25",
                  f"* answer latency p50 over a small index: idle {b['answer_ms_idle_p50']:.0f} ms, while the child embeds "
                  f"{b['answer_ms_while_embedding_p50']:.0f} ms (**{b['ratio_p50']:.2f}×**, {b['answers_while_embedding']} answers "
                  "in a 90 s window)"
                  + (f"; the embedding ran at nice {b['background']['nice']} on {b['background']['encoder_threads']} encoder "
                     "thread" if "background" in b else ""),
                  *([f"* the same answers with the embedding paused and running in alternating {b['alternating']['block_s']:.0f} s blocks "
                     f"(other jobs' load weighs on both alike): {b['alternating']['answer_ms_paused_p50']:.0f} ms vs "
                     f"{b['alternating']['answer_ms_running_p50']:.0f} ms, **{b['alternating']['ratio_p50']:.2f}×** "
                     f"({b['alternating']['answers_paused']} + {b['alternating']['answers_running']} answers)"]
                    if b.get("alternating", {}).get("ratio_p50") else []),
                  f"* load average {b.get('load_average_before', b['load_average']):.1f} before, {b['load_average']:.1f} after "
                  "on 2 cores — " + ("**load-affected: other jobs shared the cores; re-run on an idle machine**"
                                     if max(b.get("load_average_before", 0), b["load_average"]) > 1.5 else "an idle machine"),
                  ""]
    for b in r.get("big_file_window_repeats", []):
        lines += [f"* repeated: idle {b['answer_ms_idle_p50']:.0f} ms, while embedding {b['answer_ms_while_embedding_p50']:.0f} ms "
                  f"(**{b['ratio_p50']:.2f}×**, {b['answers_while_embedding']} answers), keyword-searchable after "
                  f"{b['keyword_searchable_s']:.1f} s; load average {b.get('load_average_before', b['load_average']):.1f} before, "
                  f"{b['load_average']:.1f} after — load-affected", ""]
    if "big_file" in r:
        b = r["big_file"]
        ratio = "–" if b["ratio_p50"] is None else f"{b['ratio_p50']:.2f}×"
        lines += ["## A 300-page PDF added to the seed index", "",
                  f"* pages: {b['pages']}; keyword-searchable after **{b['keyword_searchable_s']:.1f} s**; "
                  f"fully embedded after **{b['fully_embedded_s']:.0f} s**",
                  f"* texts encoded per stage: {b['texts_to_encode']}; stages started at (s): "
                  + ", ".join(f"{k} {v:.1f}" for k, v in b["stage_started_s"].items()),
                  f"* answer latency p50: idle {b['answer_ms_idle_p50']:.0f} ms, while embedding "
                  f"{b['answer_ms_while_embedding_p50'] or 0:.0f} ms ({ratio}, {b['answers_while_embedding']} answers)", ""]
    return "\n".join(lines) + "\n"
