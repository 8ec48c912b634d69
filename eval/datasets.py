"""Benchmark sets as one shape: documents to index, queries, and relevance judgements.

* the seed-corpus gold set (``eval/data/seed_questions.jsonl``): judgements are anchor
  texts inside documents, resolved to chunk ids at run time (a chunk is relevant when
  its span overlaps an anchor's span), so re-chunking never breaks the labels;
* any SQuAD-format file: every context is a document, every question a query, and the
  question's own context the one relevant document (scored at document level).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from ingest.loader import load_corpus, parse_document
from rag.lang import detect_lang
from rag.types import Chunk, Document

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SEED_QUESTIONS = HERE / "data" / "seed_questions.jsonl"
# Chinese and English questions whose answer is only in the Japanese notes (the two articles)
CROSSLINGUAL_QUESTIONS = HERE / "data" / "crosslingual_questions.jsonl"
BENCHMARKS = {
    "jsquad": HERE / "benchmarks" / "jsquad" / "valid-v1.3.json",
    "cmrc2018": HERE / "benchmarks" / "cmrc2018" / "trial.json",
}


@dataclass(frozen=True)
class Query:
    qid: str
    text: str
    lang: str
    type: str = "question"
    split: str = "test"


@dataclass(frozen=True)
class Anchor:
    doc_id: str
    start: int
    end: int


@dataclass
class Dataset:
    """``level`` is "chunk" (judgements on chunks) or "doc" (on whole documents)."""

    name: str
    docs: list[Document]
    queries: list[Query]
    level: str
    anchors: dict[str, list[Anchor]] = field(default_factory=dict)  # chunk level
    gold_docs: dict[str, set[str]] = field(default_factory=dict)  # doc level
    doc_grades: dict[str, dict[str, int]] = field(default_factory=dict)  # doc level, graded (BEIR & co.)

    def qrels(self, chunks: list[Chunk]) -> dict[str, dict[str, int]]:
        """``{qid: {unit_id: 1}}`` where units are chunk ids or doc ids (see ``level``)."""
        if self.level == "doc":
            if self.doc_grades:
                return {q: dict(g) for q, g in self.doc_grades.items()}
            return {q: {d: 1 for d in docs} for q, docs in self.gold_docs.items()}
        by_doc: dict[str, list[Chunk]] = {}
        for c in chunks:
            by_doc.setdefault(c.doc_id, []).append(c)
        out: dict[str, dict[str, int]] = {}
        for qid, anchors in self.anchors.items():
            rel = {
                c.id: 1
                for a in anchors
                for c in by_doc.get(a.doc_id, [])
                if c.start < a.end and a.start < c.end
            }
            if rel:
                out[qid] = rel
        return out

    def subset(self, split: str | None = None, limit: int | None = None, seed: int = 0) -> Dataset:
        qs = [q for q in self.queries if split in (None, "all") or q.split == split]
        if limit is not None and len(qs) > limit:
            qs = sorted(random.Random(seed).sample(qs, limit), key=lambda q: q.qid)
        keep = {q.qid for q in qs}
        return Dataset(
            self.name,
            self.docs,
            qs,
            self.level,
            {k: v for k, v in self.anchors.items() if k in keep},
            {k: v for k, v in self.gold_docs.items() if k in keep},
            {k: v for k, v in self.doc_grades.items() if k in keep},
        )


def load_seed(path: Path = SEED_QUESTIONS, corpus: Path = ROOT / "corpus") -> Dataset:
    docs = load_corpus(corpus)
    texts = {d.doc_id: d.text for d in docs}
    queries, anchors = [], {}
    for line_no, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        r = json.loads(line)
        found = []
        for rel in r["relevant"]:
            text = texts.get(rel["doc"])
            pos = text.find(rel["anchor"]) if text is not None else -1
            if pos < 0:
                raise ValueError(f"{path}:{line_no}: anchor {rel['anchor']!r} not found in {rel['doc']}")
            found.append(Anchor(rel["doc"], pos, pos + len(rel["anchor"])))
        queries.append(Query(r["qid"], r["query"], r["lang"], r["type"], r["split"]))
        anchors[r["qid"]] = found
    return Dataset("seed", docs, queries, "chunk", anchors=anchors)


def load_crosslingual(path: Path = CROSSLINGUAL_QUESTIONS, corpus: Path = ROOT / "corpus") -> Dataset:
    """The cross-lingual slice: the seed corpus, zh/en questions answered only by Japanese notes."""
    ds = load_seed(path, corpus)
    ds.name = "xling"
    return ds


def _split_of(key: str) -> str:
    """Deterministic half split (dev/test) by a stable hash: same key, same half."""
    return "dev" if int(hashlib.sha1(key.encode()).hexdigest(), 16) % 2 == 0 else "test"


def load_squad(path: Path, name: str | None = None) -> Dataset:
    """A SQuAD-format file as a passage-retrieval set. Queries are split dev/test by article,
    so no article has questions in both halves."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    docs, queries, gold = [], [], {}
    for a_i, article in enumerate(data["data"]):
        title = str(article.get("title") or article.get("id") or a_i)
        split = _split_of(title)
        for p_i, para in enumerate(article["paragraphs"]):
            doc_id = f"{a_i:04d}-{p_i:03d}"
            doc = parse_document(doc_id, para["context"].encode("utf-8"))
            docs.append(doc)
            for qa in para["qas"]:
                q = qa["question"].strip()
                if not q:
                    continue
                queries.append(Query(str(qa["id"]), q, detect_lang(q), "question", split))
                gold[str(qa["id"])] = {doc_id}
    return Dataset(name or Path(path).stem, docs, queries, "doc", gold_docs=gold)


def heading_questions(seed: Dataset, chunks: list[Chunk]) -> Dataset:
    """Questions written by the corpus itself: every Q&A item's question and every section
    heading of the seed corpus, asked as a query; relevant are the item's (or section's)
    chunks and its translation. A fourth, differently phrased source for fitting the
    reranker (never used to score the pipeline)."""
    from rag.text import plain

    by_id = {c.id: c for c in chunks}
    groups: dict[tuple, list[Chunk]] = {}
    for c in chunks:
        if c.heading and c.kind in ("qa", "section"):
            groups.setdefault((c.doc_id, c.kind, c.qnum if c.kind == "qa" else c.section), []).append(c)
    queries, anchors = [], {}
    for n, (_key, cs) in enumerate(sorted(groups.items(), key=lambda kv: (kv[1][0].doc_id, kv[1][0].start))):
        text = plain(cs[0].heading)
        if len(text) < 4:
            continue
        rel = list(cs) + [by_id[c.parallel] for c in cs if c.parallel in by_id]
        qid = f"h{n:03d}"
        queries.append(Query(qid, text, detect_lang(text), "heading", "dev"))
        anchors[qid] = [Anchor(c.doc_id, c.start, c.end) for c in rel]
    return Dataset("headings", seed.docs, queries, "chunk", anchors=anchors)


def default_sets() -> list[Dataset]:
    """The three sets every harness command runs on: seed, JSQuAD, CMRC 2018."""
    return [load_seed(), *(load_squad(path, name) for name, path in BENCHMARKS.items())]
