"""What the stale-index check costs on a large corpus folder: ``python -m eval.stale_check``.

Makes ``--files`` small Markdown files (in 100 folders, modified an hour ago, as files are
that existed before the last ingest), writes the manifest an ingest would (hashes from
:func:`rag.corpus.document_hashes`, stamps from :func:`rag.corpus.file_stamps`), then times
:func:`rag.corpus.stale_documents`:

* ``hashed``  — a manifest without stamps (an index built before they were kept): every file read;
* ``stamped`` — with stamps, nothing changed: no file read;
* ``changed`` — with stamps, ``--changed`` files edited: only those read.

Writes ``eval/results/stale_check.json`` and ``.md``. Timings on a shared machine are noisy:
the ratio of the two, measured back to back, is the figure to trust.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from rag import corpus

RESULTS = Path(__file__).resolve().parent / "results"


def make_corpus(root: Path, n: int) -> None:
    old = time.time() - 3600
    for i in range(n):
        folder = root / f"d{i % 100:02d}"
        folder.mkdir(exist_ok=True)
        p = folder / f"note-{i:05d}.md"
        p.write_text(f"# Note {i}\n\nLoRA note number {i} says something small.\n", encoding="utf-8")
        os.utime(p, (old, old))


def timed(fn, repeat: int) -> tuple[float, list[float], float, object]:
    """Median wall seconds, every run's, median CPU seconds of the calling thread (the check is
    single-threaded; the process's time also counted threads that other work left spinning in it,
    an OpenMP pool on a busy machine: 0.88 CPU s for a stamped check that takes 0.04), the last result."""
    runs, cpu, out = [], [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.thread_time()
        out = fn()
        runs.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    return statistics.median(runs), runs, statistics.median(cpu), out


def run(files: int, changed: int, repeat: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "corpus"
        root.mkdir()
        make_corpus(root, files)
        hashes = corpus.document_hashes(root)
        docs = {k: {"sha256": v, "chunks": 1} for k, v in hashes.items()}
        plain = {"documents": docs, "skipped": {}}
        stamped = {**plain, "stamps": corpus.file_stamps(root, list(docs), since_ns=time.time_ns())}
        assert len(stamped["stamps"]) == files
        t_hashed, r_hashed, c_hashed, s1 = timed(lambda: corpus.stale_documents(plain, root), repeat)
        t_stamped, r_stamped, c_stamped, s2 = timed(lambda: corpus.stale_documents(stamped, root), repeat)
        edited = sorted(docs)[:: max(1, files // changed)][:changed]
        for d in edited:
            (root / d).write_text("# Edited\n\nA new line.\n", encoding="utf-8")
        t_changed, r_changed, c_changed, s3 = timed(lambda: corpus.stale_documents(stamped, root), repeat)
        assert s1 == [] and s2 == [] and s3 == edited, (s1[:3], s2[:3], s3[:3])
    return {
        "files": files,
        "changed": changed,
        "repeat": repeat,
        "seconds": {"hashed": round(t_hashed, 4), "stamped": round(t_stamped, 4), "changed": round(t_changed, 4)},
        "cpu_seconds": {"hashed": round(c_hashed, 4), "stamped": round(c_stamped, 4), "changed": round(c_changed, 4)},
        "load_average": round(os.getloadavg()[0], 1),
        "runs": {"hashed": [round(x, 4) for x in r_hashed], "stamped": [round(x, 4) for x in r_stamped],
                 "changed": [round(x, 4) for x in r_changed]},
        "speedup": round(t_hashed / t_stamped, 1),
        "cores": os.cpu_count(),
    }


def markdown(r: dict) -> str:
    s, c = r["seconds"], r["cpu_seconds"]
    return (
        "# Stale-index check\n\n"
        f"`python -m eval.stale_check --files {r['files']} --changed {r['changed']}` — median of {r['repeat']} runs, "
        f"{r['cores']} cores shared with other work (load average {r['load_average']} during the run: wall-clock "
        "seconds are inflated by waiting for a core; CPU seconds are the checking thread's own work).\n\n"
        "| manifest | what is read | wall s | CPU s |\n|---|---|---|---|\n"
        f"| without stamps (older indexes) | all {r['files']:,} files | {s['hashed']:.3f} | {c['hashed']:.3f} |\n"
        f"| with stamps, nothing changed | no file | {s['stamped']:.3f} | {c['stamped']:.3f} |\n"
        f"| with stamps, {r['changed']} files edited | {r['changed']} files | {s['changed']:.3f} | {c['changed']:.3f} |\n\n"
        f"Stamps make the check {r['speedup']}× faster on {r['files']:,} files.\n"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.stale_check", description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--changed", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    r = run(args.files, args.changed, args.repeat)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stale_check.json").write_text(json.dumps(r, indent=1) + "\n", encoding="utf-8")
    (args.out / "stale_check.md").write_text(markdown(r), encoding="utf-8")
    print(markdown(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
