"""Command line: ``python -m ingest`` builds or updates the index from the corpus folder."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from rag import config
from rag.analyze import ANALYZERS
from rag.context import resolve
from rag.dense import FAISS_KINDS
from rag.encoders import load_encoder
from rag.shell import EXIT_ERROR, EXIT_OK, add_location_options, guarded
from rag.shell import EXIT_SOME_FAILED as EXIT_WARNINGS  # done, but some files were skipped

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_WARNINGS", "main", "parser"]

EPILOG = """exit status:
  0  done, every file indexed
  1  done with warnings: some files were skipped (one 'warning:' line each, naming the
     file and the reason); everything else is indexed
  2  error (one 'error:' line); nothing was written and the previous index still serves
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ingest",
        description="Build or update the search index.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_location_options(p, "corpus", "index", "data", "encoder",
                         encoder_help="e5-small (default; or $STUDYRAG_ENCODER) | use-m3 | minilm | st:<model>")
    p.add_argument("--uploads", type=Path, default=None,
                   help="the learner's uploaded documents, indexed as uploads/<name> when the folder exists "
                   "(default: the data folder's uploads/)")
    p.add_argument("--device", default="cpu", help="for st: models: cpu (default), cuda, mps …")
    p.add_argument("--analyzer", choices=ANALYZERS, default=config.ANALYZER)
    p.add_argument("--chunk-size", type=int, default=config.CHUNK_MAX_CHARS, help="max characters per chunk")
    p.add_argument("--faiss", choices=FAISS_KINDS, default="auto", help="dense index kind")
    p.add_argument("--rebuild", action="store_true", help="re-embed everything")
    p.add_argument("--keyword-first", action="store_true",
                   help="publish a keyword-only index first (searchable in seconds), then the full one")
    p.add_argument("--file-timeout", type=float, default=None,
                   help="seconds allowed to read one PDF/PPTX/DOCX/HTML file (default 120)")
    p.add_argument("--ray", metavar="ADDRESS", default=None,
                   help="encode on a Ray cluster: auto (the running one), local (start one here) or ray://HOST:PORT")
    p.add_argument("--ray-workers", type=int, default=None, metavar="N",
                   help="encoder copies on the cluster (default: one per CPU, or per GPU with --device cuda)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _encoder(args, name: str):
    if args.ray is not None:
        from ingest.distributed import RayEncoder

        return RayEncoder(name, address=args.ray, device=args.device, workers=args.ray_workers)
    return load_encoder(name) if args.device == "cpu" else load_encoder(name, device=args.device)


@guarded
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from ingest.pipeline import ingest
    from ingest.readers.base import Limits

    ctx = resolve(corpus=args.corpus, index=args.index, data=args.data, encoder=args.encoder)
    warnings.simplefilter("ignore")  # skipped files are reported below, once
    report = ingest(
        ctx.corpus,
        ctx.index_target,
        encoder=_encoder(args, ctx.encoder),
        analyzer=args.analyzer,
        max_chars=args.chunk_size,
        faiss=args.faiss,
        rebuild=args.rebuild,
        progress=not args.quiet,
        keyword_first=args.keyword_first,
        limits=Limits(seconds=args.file_timeout) if args.file_timeout is not None else None,
        uploads=args.uploads if args.uploads is not None else ctx.uploads,
    )
    for msg in report.skipped_files:
        print(f"warning: {msg}", file=sys.stderr)
    print(report.summary())
    return EXIT_OK if report.clean else EXIT_WARNINGS
