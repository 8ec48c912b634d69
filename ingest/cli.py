"""Command line: ``python -m ingest`` builds or updates the index from the corpus folder."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from rag import config
from rag.analyze import ANALYZERS
from rag.dense import FAISS_KINDS
from rag.encoders import DEFAULT_ENCODER, load_encoder
from rag.errors import RagError

EXIT_OK = 0
EXIT_WARNINGS = 1  # done, but some files were skipped (each named in a warning line)
EXIT_ERROR = 2  # nothing was written; the previous index (if any) is unchanged

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
    p.add_argument("--corpus", type=Path, default=Path("corpus"), help="documents folder (default ./corpus)")
    p.add_argument("--index", default="index",
                   help="index: a folder (default ./index), a Milvus Lite file (.db), milvus://HOST:PORT[?token=T], "
                        "qdrant+local:///ABS/PATH or qdrant://HOST:PORT[?api_key=K]")
    p.add_argument("--encoder", default=DEFAULT_ENCODER,
                   help="e5-small (default, bundled) | use-m3 | minilm | st:<sentence-transformers id or path>")
    p.add_argument("--device", default="cpu", help="for st: models: cpu (default), cuda, mps …")
    p.add_argument("--analyzer", choices=ANALYZERS, default=config.ANALYZER)
    p.add_argument("--chunk-size", type=int, default=config.CHUNK_MAX_CHARS, help="max characters per chunk")
    p.add_argument("--faiss", choices=FAISS_KINDS, default="auto", help="dense index kind")
    p.add_argument("--rebuild", action="store_true", help="re-embed everything")
    p.add_argument("--ray", metavar="ADDRESS", default=None,
                   help="encode on a Ray cluster: auto (the running one), local (start one here) or ray://HOST:PORT")
    p.add_argument("--ray-workers", type=int, default=None, metavar="N",
                   help="encoder copies on the cluster (default: one per CPU, or per GPU with --device cuda)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _encoder(args):
    if args.ray is not None:
        from ingest.distributed import RayEncoder

        return RayEncoder(args.encoder, address=args.ray, device=args.device, workers=args.ray_workers)
    return load_encoder(args.encoder) if args.device == "cpu" else load_encoder(args.encoder, device=args.device)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from ingest.pipeline import ingest

    warnings.simplefilter("ignore")  # skipped files are reported below, once
    try:
        report = ingest(
            args.corpus,
            args.index,
            encoder=_encoder(args),
            analyzer=args.analyzer,
            max_chars=args.chunk_size,
            faiss=args.faiss,
            rebuild=args.rebuild,
            progress=not args.quiet,
        )
    except (RagError, ValueError, OSError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return EXIT_ERROR
    for msg in report.skipped_files:
        print(f"warning: {msg}", file=sys.stderr)
    print(report.summary())
    return EXIT_OK if report.clean else EXIT_WARNINGS
