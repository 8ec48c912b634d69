"""Standard retrieval-benchmark layouts read into a :class:`~eval.datasets.Dataset`.

* BEIR (Thakur et al., NeurIPS 2021 Datasets): a folder with ``corpus.jsonl`` (``_id``,
  ``title``, ``text``), ``queries.jsonl`` (``_id``, ``text``) and ``qrels/test.tsv`` and/or
  ``qrels/dev.tsv`` (``query-id  corpus-id  score`` with a header line; graded scores kept,
  0 = judged not relevant). — beir ``datasets/data_loader.py``.
* Mr. TyDi (Zhang et al., 2021) and MIRACL (Zhang et al., TACL 2023) as their publishers ship
  them: JSONL (or ``.jsonl.gz``) lines ``{"query_id", "query", "positive_passages":
  [{"docid", "title", "text"}], "negative_passages": [...]}``. The corpus is every passage the
  file lists; positives are relevant (1), negatives judged not relevant.
* JQaRA (hotchpotch/JQaRA): one row per (question, passage) — ``q_id``, ``question``,
  ``passage_row_id``, ``title``, ``text``, ``label`` (1 relevant, 0 not) — as JSONL or the
  published Parquet files.

Every reader returns a per-document (``level="doc"``) set whose ``doc_grades`` hold the
graded judgements. Queries of ``qrels/dev.tsv`` (or a file named ``*dev*``) are the dev half,
everything else the test half.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from pathlib import Path

from eval.datasets import Dataset, Query
from eval.lines import json_lines, qrels_lines
from ingest.loader import parse_document
from rag.lang import detect_lang
from rag.types import Document

_SPACE = re.compile(r"\s")


class FormatError(ValueError):
    """A benchmark file that does not have the layout it claims; the message names file and line."""


def _id(value, where: str, field: str) -> str:
    s = str(value if value is not None else "").strip()
    if not s:
        raise FormatError(f"{where}: empty {field}")
    if _SPACE.search(s):  # TREC run and qrels files are whitespace-separated
        raise FormatError(f"{where}: {field} {s[:60]!r} contains whitespace")
    return s


def _document(doc_id: str, title: str, text: str) -> Document:
    """A passage as the indexer sees it: BEIR's convention of title, then text."""
    title = (title or "").strip()
    body = f"{title}\n\n{text}" if title else text
    if not body.strip():
        raise FormatError(f"passage {doc_id!r} has neither title nor text")
    return parse_document(doc_id, body.encode("utf-8"))


def _judge(docs: dict[str, Document], judged: dict[str, int], did: str, title: str, text: str, grade: int) -> None:
    """Passage ``did`` joins the corpus (its first text wins) and the query keeps its best grade for it."""
    if did not in docs:
        docs[did] = _document(did, title, text)
    judged[did] = max(grade, judged.get(did, 0))


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8")
    return open(path, encoding="utf-8")


def _jsonl(path: Path):
    """``(line number, object)`` for every non-blank line; a bad line is a :class:`FormatError`."""
    with _open_text(path) as f:
        yield from json_lines(f, path.name, error=FormatError)


def _split_of_file(path: Path) -> str:
    return "dev" if "dev" in path.name.lower() else "test"


def _finish(name: str, docs: dict[str, Document], texts: dict[str, str], qrels: dict[str, dict[str, int]],
            splits: dict[str, str]) -> Dataset:
    queries = []
    for qid in texts:  # file order, so --limit samples the same queries as the file's other readers
        if qid not in qrels or not any(g > 0 for g in qrels[qid].values()):
            continue  # a query with no relevant passage cannot be scored (BEIR drops them too)
        text = texts[qid]
        queries.append(Query(qid, text, detect_lang(text), "question", splits[qid]))
    grades = {q.qid: {d: g for d, g in qrels[q.qid].items() if g > 0} for q in queries}
    if not queries:
        raise FormatError(f"{name}: no query has a relevant passage in the corpus")
    return Dataset(name, list(docs.values()), queries, "doc",
                   gold_docs={q: set(g) for q, g in grades.items()}, doc_grades=grades)


# --- BEIR -----------------------------------------------------------------------------------


def load_beir(folder: Path, name: str | None = None) -> Dataset:
    folder = Path(folder)
    for need in ("corpus.jsonl", "queries.jsonl"):
        if not (folder / need).is_file():
            raise FormatError(f"{folder}: no {need} (a BEIR folder has corpus.jsonl, queries.jsonl, qrels/test.tsv)")
    qrel_files = [p for p in (folder / "qrels" / "test.tsv", folder / "qrels" / "dev.tsv") if p.is_file()]
    if not qrel_files:
        raise FormatError(f"{folder}: no qrels/test.tsv or qrels/dev.tsv")
    docs: dict[str, Document] = {}
    for n, obj in _jsonl(folder / "corpus.jsonl"):
        did = _id(obj.get("_id"), f"corpus.jsonl:{n}", "_id")
        docs[did] = _document(did, str(obj.get("title") or ""), str(obj.get("text") or ""))
    texts = {}
    for n, obj in _jsonl(folder / "queries.jsonl"):
        texts[_id(obj.get("_id"), f"queries.jsonl:{n}", "_id")] = str(obj.get("text") or "").strip()
    qrels: dict[str, dict[str, int]] = {}
    splits: dict[str, str] = {}
    for path in qrel_files:
        for where, qid, did, grade in qrels_lines(path, f"qrels/{path.name}", error=FormatError):
            qid, did = _id(qid, where, "query-id"), _id(did, where, "corpus-id")
            if qid not in texts:
                raise FormatError(f"{where}: query {qid!r} is not in queries.jsonl")
            if did not in docs:
                raise FormatError(f"{where}: passage {did!r} is not in corpus.jsonl")
            if not texts[qid]:
                raise FormatError(f"{where}: query {qid!r} has no text")
            qrels.setdefault(qid, {})[did] = grade
            splits[qid] = _split_of_file(path)
    return _finish(name or folder.name, docs, texts, qrels, splits)


# --- Mr. TyDi / MIRACL ------------------------------------------------------------------------


def load_passages(path: Path, name: str | None = None) -> Dataset:
    """Mr. TyDi / MIRACL JSONL: one query per line with its positive and negative passages."""
    path = Path(path)
    docs: dict[str, Document] = {}
    texts, qrels, splits = {}, {}, {}
    split = _split_of_file(path)
    for n, obj in _jsonl(path):
        where = f"{path.name}:{n}"
        if "positive_passages" not in obj or "query" not in obj:
            raise FormatError(f"{where}: expected query_id, query, positive_passages, negative_passages")
        qid = _id(obj.get("query_id"), where, "query_id")
        texts[qid] = str(obj.get("query") or "").strip()
        if not texts[qid]:
            raise FormatError(f"{where}: empty query")
        judged = qrels.setdefault(qid, {})
        for key, grade in (("negative_passages", 0), ("positive_passages", 1)):
            for p in obj.get(key) or []:
                if not isinstance(p, dict):
                    raise FormatError(f"{where}: {key} must be a list of objects")
                did = _id(p.get("docid"), where, "docid")
                _judge(docs, judged, did, str(p.get("title") or ""), str(p.get("text") or ""), grade)
        splits[qid] = split
    return _finish(name or _stem(path), docs, texts, qrels, splits)


# --- JQaRA ------------------------------------------------------------------------------------


def _rows(path: Path):
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for n, row in enumerate(pq.read_table(path).to_pylist(), 1):
            yield n, row
    else:
        yield from _jsonl(path)


def load_jqara(path: Path, name: str | None = None) -> Dataset:
    """JQaRA rows: ``q_id``, ``question``, ``passage_row_id``, ``title``, ``text``, ``label``."""
    path = Path(path)
    docs: dict[str, Document] = {}
    texts, qrels, splits = {}, {}, {}
    split = _split_of_file(path)
    for n, row in _rows(path):
        where = f"{path.name}:{n}"
        missing = [k for k in ("q_id", "question", "passage_row_id", "text", "label") if k not in row]
        if missing:
            raise FormatError(f"{where}: missing {', '.join(missing)}")
        qid = _id(row["q_id"], where, "q_id")
        did = _id(row["passage_row_id"], where, "passage_row_id")
        texts[qid] = str(row["question"] or "").strip()
        try:
            grade = int(row["label"])
        except (TypeError, ValueError):
            raise FormatError(f"{where}: label {row['label']!r} is not 0 or 1") from None
        _judge(docs, qrels.setdefault(qid, {}), did, str(row.get("title") or ""), str(row["text"] or ""), grade)
        splits[qid] = split
    return _finish(name or _stem(path), docs, texts, qrels, splits)


# --- which reader -----------------------------------------------------------------------------


def _stem(path: Path) -> str:
    name = path.name
    for ext in (".gz", ".jsonl", ".json", ".parquet"):
        name = name.removesuffix(ext)
    return name


def _first_row(path: Path) -> dict:
    for _, row in _rows(path) if path.suffix == ".parquet" else _jsonl(path):
        return row
    raise FormatError(f"{path.name}: empty file")


def load_any(path: Path, name: str | None = None) -> Dataset:
    """A BEIR folder, a Mr. TyDi / MIRACL JSONL file or a JQaRA file, told apart by their fields."""
    path = Path(path)
    if path.is_dir():
        return load_beir(path, name)
    if not path.is_file():
        raise FormatError(f"{path}: no such file or folder")
    first = _first_row(path)
    if "positive_passages" in first:
        return load_passages(path, name)
    if "passage_row_id" in first and "q_id" in first:
        return load_jqara(path, name)
    raise FormatError(f"{path.name}: neither a BEIR folder nor Mr. TyDi/MIRACL (positive_passages) "
                      "nor JQaRA (q_id, passage_row_id) rows")


# --- SQuAD -> BEIR ----------------------------------------------------------------------------


def squad_to_beir(squad: Path, out: Path) -> Path:
    """Write a SQuAD-format file as a BEIR folder with the same passages, queries, ids and
    dev/test halves as :func:`eval.datasets.load_squad` (passage titles left empty, as the
    SQuAD path indexes only the context)."""
    from eval.datasets import load_squad

    ds = load_squad(squad)
    out = Path(out)
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as f:
        for d in ds.docs:
            f.write(json.dumps({"_id": d.doc_id, "title": "", "text": d.text}, ensure_ascii=False) + "\n")
    with open(out / "queries.jsonl", "w", encoding="utf-8") as f:
        for q in ds.queries:
            f.write(json.dumps({"_id": q.qid, "text": q.text}, ensure_ascii=False) + "\n")
    for split in ("dev", "test"):
        with open(out / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for q in ds.queries:
                if q.split == split:
                    for d in sorted(ds.gold_docs[q.qid]):
                        f.write(f"{q.qid}\t{d}\t1\n")
    return out
