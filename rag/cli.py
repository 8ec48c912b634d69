"""Command line: ``python -m rag search …`` (``studyrag search`` runs the same function)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rag.corpus import stale_documents
from rag.errors import RagError
from rag.search import MODES, Searcher

DEFAULT_INDEX = Path("index")
DEFAULT_CORPUS = Path("corpus")


def _print_hits(query: str, hits, as_json: bool, out) -> None:
    if as_json:
        out.write(json.dumps({"query": query, "hits": [h.to_dict() for h in hits]}, ensure_ascii=False) + "\n")
        return
    if not hits:
        out.write(f"no passages match {query!r}\n")
        return
    for h in hits:
        c = h.chunk
        stages = " ".join(f"{k}={v:.3f}" for k, v in h.scores.items() if v is not None)
        where = c.section or c.title
        out.write(f"[{h.rank}] {h.score:.3f}  {c.doc_id} · {where} · {c.lang}  ({stages})\n")
        text = " ".join(c.text.split())
        out.write(f"    {text[:240]}{'…' if len(text) > 240 else ''}\n")
        if c.parallel:
            out.write(f"    parallel: {c.parallel}\n")


def search_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m rag search", description="Search the study index.")
    p.add_argument("query", nargs="?", help="question or keywords (ja / zh / en)")
    p.add_argument("--batch", type=Path, help="file with one query per line; writes JSON Lines")
    p.add_argument("--k", type=int, default=5, help="number of passages (default 5)")
    p.add_argument("--mode", choices=MODES, default=None, help="pipeline depth (default: the tuned mode, see rag/tuned.json)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--index", type=Path, default=DEFAULT_INDEX, help="index folder (default ./index)")
    p.add_argument("--encoder", help="query encoder (default: the one that built the index)")
    p.add_argument("--reranker", default="auto", help="auto (the tuned one, if any) | none | cross:<CrossEncoder id or path>")
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="corpus folder, to check the index is fresh")
    return p


def search_main(argv: list[str] | None = None) -> int:
    args = search_parser().parse_args(argv)
    if (args.query is None) == (args.batch is None):
        print("error: give a query or --batch FILE (not both)", file=sys.stderr)
        return 2
    try:
        if args.batch is not None:
            try:
                queries = [line.strip() for line in args.batch.read_text(encoding="utf-8").splitlines()]
            except (OSError, UnicodeDecodeError) as e:
                raise RagError(f"cannot read batch file {args.batch}: {e}") from None
            queries = [q for q in queries if q]
            if not queries:
                raise RagError(f"batch file {args.batch} has no queries")
        searcher = Searcher.open(args.index, encoder=args.encoder, reranker=args.reranker)
        _warn_if_stale(searcher, args.corpus)
        if args.batch is not None:
            for q in queries:
                _print_hits(q, searcher.search(q, k=args.k, mode=args.mode), True, sys.stdout)
        else:
            _print_hits(args.query, searcher.search(args.query, k=args.k, mode=args.mode), args.json, sys.stdout)
    except (RagError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def _warn_if_stale(searcher: Searcher, corpus: Path) -> None:
    if not corpus.is_dir():
        return
    stale = stale_documents(searcher.index.manifest, corpus)
    if stale:
        print(
            f"warning: the index is stale ({len(stale)} document(s) changed: {', '.join(stale[:3])}"
            f"{'…' if len(stale) > 3 else ''}); run `python -m ingest` to update it",
            file=sys.stderr,
        )



def main(argv: list[str] | None = None) -> int:
    """``python -m rag search …``"""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "search":
        print("usage: python -m rag search QUERY [--k K] [--mode MODE] [--json] | --batch FILE", file=sys.stderr)
        return 2
    return search_main(argv[1:])
