"""Command line: ``python -m rag search …`` and ``python -m rag ask …`` (``studyrag search`` /
``studyrag ask`` run the same functions)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rag.context import resolve
from rag.corpus import UPLOADS, UnreadableFileError, decode_text, printable, read_by_older_readers, stale_documents
from rag.errors import RagError
from rag.safety import terminal_json, terminal_text
from rag.search import MAX_K, MODES, Searcher, check_query
from rag.shell import EXIT_ERROR, EXIT_OK, EXIT_SOME_FAILED, add_location_options, guarded


def _json_line(obj) -> str:
    """One line of strict JSON (never NaN or Infinity: Hit.to_dict makes them null), control
    characters escaped (:func:`rag.safety.terminal_json`)."""
    return terminal_json(json.dumps(obj, ensure_ascii=False, allow_nan=False)) + "\n"


def _print_hits(query: str, hits, as_json: bool, out) -> None:
    if as_json:
        out.write(_json_line({"query": query, "hits": [h.to_dict() for h in hits]}))
        return
    if not hits:
        out.write(f"no passages match {query!r}\n")
        return
    for h in hits:
        c = h.chunk
        stages = " ".join(f"{k}={v:.3f}" for k, v in h.scores.items() if v is not None)
        where = c.section or c.title
        # names from the notes on one line: a newline in a file name cannot forge a result line
        head = f"[{h.rank}] {h.score:.3f}  {printable(c.doc_id)} · {printable(where)} · {c.lang}  ({stages})"
        out.write(terminal_text(head + "\n"))
        text = " ".join(c.text.split())
        out.write(terminal_text(f"    {text[:240]}{'…' if len(text) > 240 else ''}\n"))
        if c.parallel:
            out.write(terminal_text(f"    parallel: {printable(c.parallel)}\n"))


EPILOG = """--batch writes one JSON line per query, {"query", "hits"}; a line that cannot be
searched gets {"line", "query", "error"} instead and the run goes on. Blank lines are
skipped (a 'warning:' line on stderr names them).

exit status: 0 every query answered; 1 (--batch) some lines failed; 2 error.
"""


def search_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m rag search",
        description="Search the study index.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("query", nargs="?", help="question or keywords (ja / zh / en)")
    p.add_argument("--batch", type=Path, help="file with one query per line; writes JSON Lines")
    p.add_argument("--k", type=int, default=None, help="number of passages (default 5)")
    p.add_argument("--mode", choices=MODES, default=None, help="pipeline depth (default: the tuned mode, see rag/tuned.json)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--reranker", default="auto", help="auto (the tuned one, if any) | none | cross:<CrossEncoder id or path>")
    add_location_options(p, "index", "corpus", "data", "encoder",
                         encoder_help="query encoder (default: the one that built the index)")
    return p


def _read_batch(path: Path) -> list[tuple[int, str]]:
    """``(line number, query)`` for every non-blank line; blank lines are reported on stderr.
    Line numbers are the file's own: lines end at ``\\n``, ``\\r\\n`` or ``\\r`` (as a notes file's,
    :func:`rag.corpus.decode_text`), not at the form feeds and Unicode separators
    ``str.splitlines`` also cuts at."""
    try:
        text = decode_text(path.read_bytes(), path.name)  # as a notes file is: a BOM, UTF-16, Shift_JIS …
    except OSError as e:
        raise RagError(f"cannot read batch file {path}: {e}") from None
    except UnreadableFileError as e:
        raise RagError(f"cannot read batch file {path}: {e.reason}") from None
    lines = text.split("\n")  # line ends already \n
    if lines and lines[-1] == "":
        lines.pop()
    queries = [(n, line.strip()) for n, line in enumerate(lines, start=1) if line.strip()]
    if not queries:
        raise RagError(f"batch file {path} has no queries")
    blank = [n for n, line in enumerate(lines, start=1) if not line.strip()]
    if blank:
        shown = ", ".join(map(str, blank[:10])) + ("…" if len(blank) > 10 else "")
        print(f"warning: skipped {len(blank)} blank line(s) of {path}: {shown}", file=sys.stderr)
    return queries


def _run_batch(lines: list[tuple[int, str]], answer_one, field: str, plural: str, out) -> int:
    """``answer_one(text)`` for every line; a line that fails becomes an error record
    ``{"line", field, "error"}`` and the run goes on."""
    failed = 0
    for n, q in lines:
        try:
            answer_one(q)
        except (RagError, ValueError) as e:
            failed += 1
            out.write(_json_line({"line": n, field: q[:200], "error": " ".join(str(e).split())}))
        out.flush()
    if failed:
        print(f"warning: {failed} of {len(lines)} {plural} failed (see their error records)", file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK


@guarded
def search_main(argv: list[str] | None = None) -> int:
    args = search_parser().parse_args(argv)
    if (args.query is None) == (args.batch is None):
        raise ValueError("give a query or --batch FILE (not both)")
    ctx = resolve(index=args.index, corpus=args.corpus, data=args.data, k=args.k)
    queries = _read_batch(args.batch) if args.batch is not None else []
    if not 1 <= ctx.k <= MAX_K:  # the same for every line: an error, not a per-line failure
        raise ValueError(f"k must be between 1 and {MAX_K}, got {ctx.k}")
    searcher = Searcher.open(ctx.index_target, encoder=args.encoder, reranker=args.reranker)
    _warn_if_stale(searcher, ctx.corpus, ctx.uploads)
    if args.batch is not None:
        return _run_batch(
            queries, lambda q: _print_hits(q, searcher.search(q, k=ctx.k, mode=args.mode), True, sys.stdout),
            "query", "queries", sys.stdout,
        )
    _print_hits(args.query, searcher.search(args.query, k=ctx.k, mode=args.mode), args.json, sys.stdout)
    return EXIT_OK


def _warn_if_stale(searcher: Searcher, corpus: Path, uploads: Path | None = None) -> None:
    if not corpus.is_dir():
        return
    manifest = searcher.index.manifest
    stale = stale_documents(manifest, corpus, uploads=uploads)
    # a document of the index with no file in the folder checked: the index was built from other
    # notes (--corpus not given) — "run ingest" would rebuild it from this folder and drop them
    missing = [d for d in stale if d in manifest.get("documents", {}) and not _has_file(d, corpus, uploads)]
    stale = [d for d in stale if d not in missing]
    older = read_by_older_readers(manifest, besides=stale + missing)
    for docs, what in ((stale, "changed"), (older, "read by an older version of their reader")):
        if docs:
            print(
                terminal_text(f"warning: the index is stale ({len(docs)} document(s) {what}: {_names(docs)}); "
                              "run `python -m ingest` to update it"),
                file=sys.stderr,
            )
    if missing:
        print(
            terminal_text(f"warning: {len(missing)} document(s) of the index are not in {corpus} ({_names(missing)}): "
                          "was it built from another folder? Give that folder with --corpus (`python -m ingest` "
                          "with this one would drop them)"),
            file=sys.stderr,
        )


def _names(docs: list[str]) -> str:
    return ", ".join(docs[:3]) + ("…" if len(docs) > 3 else "")


def _has_file(doc_id: str, corpus: Path, uploads: Path | None) -> bool:
    upload = doc_id.removeprefix(UPLOADS + "/")
    if upload != doc_id and uploads is not None and (Path(uploads) / upload).exists():
        return True
    return (corpus / doc_id).exists()



# --- ask ------------------------------------------------------------------------------------

ASK_EPILOG = """--json prints one object: {"question", "answer", "abstained", "lang", "citations": [{"n",
"chunk_id", "doc_id", "title", "start", "end", "text", "parallel_text", "page", "slide", "location",
"boxes", …}], "relevance", "ms", …}; "page"/"boxes" (PDFs) say where the quotes are in the original;
every [n] in "answer" is in "citations". When "abstained" is true, "answer" says what the notes
do not cover and names the nearest topics they do.

--batch writes one such JSON line per question (each line answered on its own); a line that
cannot be answered gets {"line", "question", "error"} and the run goes on. Blank lines are
skipped (a 'warning:' line on stderr names them).

exit status: 0 every question answered (or abstained); 1 (--batch) some lines failed; 2 error.
"""


def ask_parser() -> argparse.ArgumentParser:
    from rag.answer import ANSWER_LANGS, ANSWERERS

    p = argparse.ArgumentParser(
        prog="python -m rag ask",
        description="Answer a question from the study notes, every sentence cited.",
        epilog=ASK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("question", nargs="?", help="the question (ja / zh / en)")
    p.add_argument("--batch", type=Path, help="file with one question per line; writes JSON Lines")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--lang", choices=ANSWER_LANGS, default="auto", help="answer language (default: the question's)")
    p.add_argument("--k", type=int, default=None, help="passages to retrieve (default 5)")
    p.add_argument("--mode", choices=MODES, default=None, help="retrieval depth (default: the tuned mode)")
    p.add_argument("--answerer", choices=ANSWERERS, default="extractive",
                   help="extractive (offline, default) or endpoint (an OpenAI-compatible chat endpoint)")
    p.add_argument("--llm-url", default=None, help="endpoint URL (or STUDYRAG_LLM_URL)")
    p.add_argument("--llm-model", default=None, help="model name (or STUDYRAG_LLM_MODEL)")
    add_location_options(p, "index", "corpus", "data", "encoder",
                         encoder_help="query encoder (default: the one that built the index)")
    return p


def _print_answer(answer, as_json: bool, out) -> None:
    if as_json:
        out.write(_json_line(answer.to_dict()))
        return
    out.write(terminal_text(answer.text.rstrip() + "\n"))
    for c in answer.citations:
        ch = c.chunk
        page = c.location.label if c.location is not None else ""
        # a newline in a file name (or the title made of it) cannot split the citation's line
        where = printable(" · ".join(x for x in (ch.title, ch.section_title, page) if x))
        out.write(terminal_text(f"  [{c.number}] {where} ({printable(ch.doc_id)}, {ch.lang}, characters {ch.start}-{ch.end})\n"))
    for f in answer.flagged:  # what the app marks in the answer: a link, an instruction, a marker citing nothing
        out.write(terminal_text(f"not backed by the notes: “{' '.join(f.text.split())}” ({f.problem})\n"))
    if answer.note:
        out.write(terminal_text(f"note: {answer.note}\n"))


@guarded
def ask_main(argv: list[str] | None = None) -> int:
    from rag.answer import Settings, ask

    args = ask_parser().parse_args(argv)
    if (args.question is None) == (args.batch is None):
        raise ValueError("give a question or --batch FILE (not both)")
    ctx = resolve(index=args.index, corpus=args.corpus, data=args.data, k=args.k)
    questions = _read_batch(args.batch) if args.batch is not None else []
    settings = Settings(mode=args.mode, k=ctx.k, answer_lang=args.lang, answerer=args.answerer,
                        llm_url=args.llm_url if args.llm_url is not None else ctx.llm_url,
                        llm_model=args.llm_model if args.llm_model is not None else ctx.llm_model,
                        llm_api_key=ctx.llm_api_key)
    if args.batch is None:
        check_query(args.question)  # a bad question is an error before the model loads
    searcher = Searcher.open(ctx.index_target, encoder=args.encoder)
    _warn_if_stale(searcher, ctx.corpus, ctx.uploads)
    if args.batch is None:
        _print_answer(ask(searcher, args.question, settings), args.json, sys.stdout)
        return EXIT_OK
    return _run_batch(questions, lambda q: _print_answer(ask(searcher, q, settings), True, sys.stdout),
                      "question", "questions", sys.stdout)


USAGE = (
    "usage: python -m rag search QUERY [--k K] [--mode MODE] [--json] | --batch FILE\n"
    "       python -m rag ask QUESTION [--json] [--lang auto|ja|zh|en] | --batch FILE"
)


def main(argv: list[str] | None = None) -> int:
    """``python -m rag search …`` / ``python -m rag ask …``"""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "search":
        return search_main(argv[1:])
    if argv and argv[0] == "ask":
        return ask_main(argv[1:])
    print(USAGE, file=sys.stderr)
    return EXIT_ERROR
