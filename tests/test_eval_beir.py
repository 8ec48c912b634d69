"""Standard benchmark layouts (BEIR, Mr. TyDi, MIRACL, JQaRA), TREC run files, ``eval compare``,
the uniform ``--json`` and "test my own notes" (``eval mine``).

The fixtures under ``tests/fixtures/`` are small files in each publisher's layout."""

from __future__ import annotations

import functools
import gzip
import json
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, FakeEncoder
from eval.beir import FormatError, load_any, load_beir, load_jqara, load_passages, squad_to_beir
from eval.datasets import load_squad
from eval.runner import CachingEncoder
from rag.search import MODES

FIX = Path(__file__).resolve().parent / "fixtures"
BEIR = FIX / "beir-small"
MRTYDI = FIX / "mrtydi-japanese-test.jsonl"
MIRACL = FIX / "miracl-zh-dev.jsonl"
JQARA = FIX / "jqara-test.jsonl"
RESULTS_DIR = ROOT / "eval" / "results"


# --- readers ----------------------------------------------------------------------------------


def test_beir_reader_keeps_grades_and_drops_zero_and_unjudged():
    ds = load_beir(BEIR)
    assert ds.level == "doc" and len(ds.docs) == 10
    assert [q.qid for q in ds.queries] == [f"q{i}" for i in range(1, 9)]  # file order; q9 has no judgement
    qrels = ds.qrels([])
    assert qrels["q2"] == {"d3": 2, "d4": 1}
    assert qrels["q8"] == {"d1": 1}  # d10 judged 0 = not relevant
    assert {q.split for q in ds.queries} == {"test"}
    d6 = next(d for d in ds.docs if d.doc_id == "d6")
    assert d6.text.startswith("検索拡張生成\n\n") and "RAG" in d6.text  # title, then text
    assert {q.qid: q.lang for q in ds.queries}["q4"] == "ja"


def test_beir_dev_qrels_are_the_dev_half(tmp_path):
    folder = shutil.copytree(BEIR, tmp_path / "b")
    (folder / "qrels" / "test.tsv").rename(folder / "qrels" / "dev.tsv")
    ds = load_beir(folder)
    assert {q.split for q in ds.queries} == {"dev"} and not ds.subset("test").queries


@pytest.mark.parametrize(
    "qrels_line, needle",
    [("q1\tnope\t1", "passage 'nope' is not in corpus.jsonl"), ("qx\td1\t1", "query 'qx' is not in queries.jsonl"),
     ("q1\td1\thigh", "score 'high' is not a whole number"), ("q1 d1", "expected query-id, corpus-id, score")],
)
def test_beir_bad_qrels_name_the_line(tmp_path, qrels_line, needle):
    folder = shutil.copytree(BEIR, tmp_path / "b")
    with open(folder / "qrels" / "test.tsv", "a", encoding="utf-8") as f:
        f.write(qrels_line + "\n")
    with pytest.raises(FormatError) as e:
        load_beir(folder)
    assert needle in str(e.value) and "test.tsv:12" in str(e.value)


def test_beir_ids_with_whitespace_are_refused(tmp_path):
    folder = shutil.copytree(BEIR, tmp_path / "b")
    with open(folder / "corpus.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"_id": "a b", "title": "", "text": "x"}) + "\n")
    with pytest.raises(FormatError, match=r"corpus.jsonl:11: _id 'a b' contains whitespace"):
        load_beir(folder)


def test_beir_missing_files_are_one_clear_error(tmp_path):
    with pytest.raises(FormatError, match="no corpus.jsonl"):
        load_beir(tmp_path)


def test_mrtydi_reader_unions_passages_and_judges_positives(tmp_path):
    ds = load_passages(MRTYDI)
    assert [q.qid for q in ds.queries] == ["101", "102", "103", "104"]
    assert {d.doc_id for d in ds.docs} == {"5001#0", "5002#1", "5003#0", "5004#0", "5005#2", "5006#0"}
    assert ds.qrels([]) == {"101": {"5001#0": 1}, "102": {"5003#0": 1}, "103": {"5005#2": 1}, "104": {"5006#0": 1}}
    assert {q.split for q in ds.queries} == {"test"} and {q.lang for q in ds.queries} == {"ja"}
    # the publisher ships .jsonl.gz: the same reader, the same set
    gz = tmp_path / "test.jsonl.gz"
    gz.write_bytes(gzip.compress(MRTYDI.read_bytes()))
    again = load_any(gz)
    assert again.qrels([]) == ds.qrels([]) and [d.text for d in again.docs] == [d.text for d in ds.docs]


def test_miracl_reader_two_positives_and_dev_half():
    ds = load_any(MIRACL)
    assert ds.name == "miracl-zh-dev"
    assert ds.qrels([])["203"] == {"9004#0": 1, "9004#1": 1}
    assert {q.split for q in ds.queries} == {"dev"} and {q.lang for q in ds.queries} == {"zh"}
    assert len(ds.docs) == 6  # 9002#0 is a positive of 202 and a negative of 201: one passage


def test_jqara_reader_jsonl_and_parquet_agree(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    ds = load_jqara(JQARA)
    assert ds.qrels([]) == {"QA20CAPR-0002": {"1000001": 1}, "QA20CAPR-0005": {"1000003": 1},
                            "QA20CAPR-0009": {"1000005": 1}}
    assert len(ds.docs) == 5  # 1000001 appears for two questions
    rows = [json.loads(line) for line in JQARA.read_text(encoding="utf-8").splitlines()]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "test-00000-of-00001.parquet")
    other = load_any(tmp_path / "test-00000-of-00001.parquet")
    assert other.qrels([]) == ds.qrels([]) and [d.text for d in other.docs] == [d.text for d in ds.docs]


def test_unknown_rows_are_refused(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"a": 1}\n', encoding="utf-8")
    with pytest.raises(FormatError, match="neither a BEIR folder"):
        load_any(p)
    p.write_text('{"query_id": "1", "query": "q", "positive_passages": [{"docid": "d", "text": "t"}]}\nnot json\n')
    with pytest.raises(FormatError, match=r"x.jsonl:2: not JSON"):
        load_any(p)


def test_json_lines_skip_blanks_and_name_the_bad_line():
    from eval.lines import json_lines

    assert list(json_lines(['{"a": 1}', "  ", '{"b": [2]}\n'], "x.jsonl")) == [(1, {"a": 1}), (3, {"b": [2]})]
    with pytest.raises(FormatError, match=r"^x.jsonl:2: not JSON"):
        list(json_lines(['{"a": 1}', "{oops"], "x.jsonl", error=FormatError))
    with pytest.raises(ValueError, match=r"^x.jsonl:1: expected a row object$"):
        list(json_lines(["[1, 2]"], "x.jsonl", expect="a row object"))


def test_qrels_lines_read_beir_and_trec_alike(tmp_path):
    from eval.lines import qrels_lines

    beir, trec = tmp_path / "test.tsv", tmp_path / "run.qrels"
    beir.write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\n\nq1\td2\t0\n", encoding="utf-8")
    trec.write_text("q1 0 d1 2\nq1 0 d2 0\n", encoding="utf-8")
    want = [("q1", "d1", 2), ("q1", "d2", 0)]  # judged-not-relevant rows kept: the caller decides
    assert [r[1:] for r in qrels_lines(beir)] == [r[1:] for r in qrels_lines(trec)] == want
    assert [r[0] for r in qrels_lines(beir, "qrels/test.tsv")] == ["qrels/test.tsv:2", "qrels/test.tsv:4"]
    trec.write_text("q1 0 d1 2\nq1 0 d2 high\n", encoding="utf-8")  # only line 1 may be a header
    with pytest.raises(ValueError, match=r"run.qrels:2: score 'high' is not a whole number"):
        list(qrels_lines(trec))
    trec.write_text("q1 d1\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"run.qrels:1: expected query-id, corpus-id, score"):
        list(qrels_lines(trec, error=FormatError))


@pytest.fixture
def tiny_squad_file(tmp_path) -> Path:
    data = json.loads((ROOT / "eval" / "benchmarks" / "cmrc2018" / "trial.json").read_text(encoding="utf-8"))
    data["data"] = data["data"][:10]
    p = tmp_path / "tiny.json"
    p.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return p


def test_squad_to_beir_is_the_same_set(tiny_squad_file, tmp_path):
    a = load_squad(tiny_squad_file)
    b = load_beir(squad_to_beir(tiny_squad_file, tmp_path / "beir"))
    assert [(d.doc_id, d.text, d.sha256) for d in a.docs] == [(d.doc_id, d.text, d.sha256) for d in b.docs]
    assert sorted((q.qid, q.text, q.split) for q in a.queries) == sorted((q.qid, q.text, q.split) for q in b.queries)
    assert a.qrels([]) == b.qrels([])
    assert {q.split for q in b.queries} == {"dev", "test"}


# --- the CLI: beir, --save-run, --json, compare -------------------------------------------------


def _tree(folder: Path) -> dict:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*")} if folder.exists() else {}


@pytest.fixture
def fake_cli(tmp_path, monkeypatch):
    import eval.cli as cli

    monkeypatch.setattr(cli, "load_encoder", lambda name: FakeEncoder())
    monkeypatch.setattr(cli, "CachingEncoder", functools.partial(CachingEncoder, cache_dir=tmp_path / "vectors"))
    monkeypatch.setenv("STUDYRAG_DATA", str(tmp_path / "data"))
    before = _tree(RESULTS_DIR)
    yield cli.main
    assert _tree(RESULTS_DIR) == before


def _ranx_ndcg(qrels_file: Path, run_file: Path) -> float:
    import ranx

    q = ranx.Qrels.from_file(str(qrels_file), kind="trec")
    r = ranx.Run.from_file(str(run_file), kind="trec")
    return float(ranx.evaluate(q, r, "ndcg@10", make_comparable=True))


def test_beir_cli_saves_trec_runs_that_ranx_scores_the_same(fake_cli, tmp_path, capsys):
    out, runs = tmp_path / "out", tmp_path / "runs"
    assert fake_cli(["beir", str(BEIR), "--json", "--out", str(out), "--save-run", str(runs)]) == 0
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert set(payload) == {"modes", "default_mode", "n_queries"} and payload["n_queries"] == 8
    assert set(payload["modes"]) == set(MODES)
    for mode, s in payload["modes"].items():
        for key in ("ndcg@10", "recall@100", "mrr@10", "hit@1", "hit@5"):
            assert 0 <= s[key] <= 1, (mode, key)
        assert s["recall@10"] <= s["recall@100"] and s["hit@1"] <= s["hit@5"]
        # the saved TREC run, read back by ranx, gives the report's figure
        assert _ranx_ndcg(runs / "beir-small-test.qrels", runs / f"beir-small-test.{mode}.run") == \
            pytest.approx(s["ndcg@10"], abs=1e-9)
    lines = (runs / "beir-small-test.hybrid.run").read_text().splitlines()
    first = [line.split() for line in lines if line.startswith("q1 ")]
    assert all(len(p) == 6 and p[1] == "Q0" and p[5] == "hybrid" for p in first)
    assert [int(p[3]) for p in first] == list(range(1, len(first) + 1))
    assert [float(p[4]) for p in first] == sorted((float(p[4]) for p in first), reverse=True)
    assert len(first) == 10  # every passage of a 10-passage corpus: runs go 100 deep
    assert "q2 0 d4 1" in (runs / "beir-small-test.qrels").read_text()  # graded qrels written as judged
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "recall@100" in md and "Against bm25 (ndcg@10" in md
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert res["results"]["beir-small"]["index_cached"] is False
    assert set(res["significance"]["beir-small"]) == set(MODES)
    assert (out / "hit_at_k.png").is_file()


def test_beir_index_is_cached_by_content(fake_cli, tmp_path, capsys):
    out = tmp_path / "out"
    assert fake_cli(["beir", str(BEIR), "--out", str(out), "--modes", "bm25"]) == 0
    cached = list((tmp_path / "data" / "cache" / "eval-index").iterdir())
    assert len(cached) == 1 and cached[0].name.startswith("beir-small-")
    first = json.loads((out / "results.json").read_text())["results"]["beir-small"]
    assert fake_cli(["beir", str(BEIR), "--out", str(out), "--modes", "bm25"]) == 0
    second = json.loads((out / "results.json").read_text())["results"]["beir-small"]
    assert second["index_cached"] is True and second["modes"]["bm25"]["ndcg@10"] == first["modes"]["bm25"]["ndcg@10"]
    # a changed passage is a different index
    folder = shutil.copytree(BEIR, tmp_path / "beir-small")
    with open(folder / "corpus.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"_id": "d11", "title": "", "text": "one more passage"}) + "\n")
    assert fake_cli(["beir", str(folder), "--out", str(out), "--modes", "bm25"]) == 0
    assert json.loads((out / "results.json").read_text())["results"]["beir-small"]["index_cached"] is False
    assert len(list((tmp_path / "data" / "cache" / "eval-index").iterdir())) == 2
    capsys.readouterr()


@pytest.mark.parametrize("path", [MRTYDI, MIRACL, JQARA])
def test_every_reader_runs_through_the_cli(fake_cli, tmp_path, capsys, path):
    assert fake_cli(["beir", str(path), "--json", "--modes", "bm25,hybrid", "--out", str(tmp_path / "o")]) == 0
    payload = json.loads(capsys.readouterr().out)
    n = len(load_any(path).queries)
    assert payload["n_queries"] == n and set(payload["modes"]) == {"bm25", "hybrid"}


def test_json_has_the_same_keys_for_squad_and_beir(fake_cli, tiny_squad_file, tmp_path, capsys):
    assert fake_cli(["squad", str(tiny_squad_file), "--json", "--out", str(tmp_path / "a")]) == 0
    squad = json.loads(capsys.readouterr().out)
    beir_dir = squad_to_beir(tiny_squad_file, tmp_path / "tiny-beir")
    assert fake_cli(["beir", str(beir_dir), "--json", "--out", str(tmp_path / "b")]) == 0
    beir = json.loads(capsys.readouterr().out)
    assert set(squad) == set(beir) == {"modes", "default_mode", "n_queries"}
    assert squad["n_queries"] == beir["n_queries"] > 0
    for m in MODES:  # same passages, same queries: the two paths agree
        assert beir["modes"][m]["ndcg@10"] == pytest.approx(squad["modes"][m]["ndcg@10"], abs=0.002)
        assert beir["modes"][m]["hit@1"] == pytest.approx(squad["modes"][m]["hit@1"], abs=0.002)


def test_squad_and_beir_paths_agree_on_every_shared_metric(fake_cli, tmp_path):
    """The BEIR path runs 100 deep, but its @10 figures come from the same default-depth search
    as the SQuAD-format path's (a deeper fused pool would reorder the top ten)."""
    from eval.cli import run_sets

    data = json.loads((ROOT / "eval" / "benchmarks" / "cmrc2018" / "trial.json").read_text(encoding="utf-8"))
    data["data"] = data["data"][:60]
    path = tmp_path / "sixty.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    squad = load_squad(path, "tiny")
    beir = load_beir(squad_to_beir(path, tmp_path / "b"), "tiny-beir")
    assert len(squad.docs) > 30  # more passages than a default-depth search returns
    kw = dict(split="test", limit=40, encoder_name="fake", progress=False)
    a = run_sets([squad], list(MODES), **kw)["tiny"]
    b = run_sets([beir], list(MODES), deep=True, **kw)["tiny-beir"]
    for m in MODES:
        for q in squad.subset("test", 40).queries:
            ten = sorted(a["_runs"][m][q.qid], key=lambda d: -a["_runs"][m][q.qid][d])
            deep = sorted(b["_runs"][m][q.qid], key=lambda d: -b["_runs"][m][q.qid][d])
            assert deep[:10] == ten, (m, q.qid)
        for key in ("ndcg@10", "mrr@10", "hit@1", "hit@5", "recall@10"):
            assert b["modes"][m][key] == pytest.approx(a["modes"][m][key], abs=1e-12), (m, key)
        assert b["modes"][m]["recall@100"] >= b["modes"][m]["recall@10"]


def test_beir_check_agrees_and_its_run_files_give_the_reported_ndcg(fake_cli, tmp_path, monkeypatch):
    import eval.beir_check as check

    data = json.loads((ROOT / "eval" / "benchmarks" / "cmrc2018" / "trial.json").read_text(encoding="utf-8"))
    data["data"] = data["data"][:40]
    path = tmp_path / "forty.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setattr(check, "BENCHMARKS", {"forty": path})
    out, runs = tmp_path / "out", tmp_path / "runs"
    assert check.main(out=out, runs=runs, encoder="fake", limit=30) == 0
    res = json.loads((out / "beir_check.json").read_text(encoding="utf-8"))
    assert res["max_abs_diff"] == res["max_abs_diff_shared_metrics"] == 0
    assert res["max_file_gap"] < 1e-9
    assert {r["queries"] for r in res["rows"].values()} == {30} and len(res["rows"]) == len(MODES)
    for m in MODES:
        assert _ranx_ndcg(runs / "forty-beir-test.qrels", runs / f"forty-beir-test.{m}.run") == \
            pytest.approx(res["sets"]["forty"]["beir"][m]["ndcg@10"], abs=1e-9)
    assert "forty / hybrid" in (out / "beir_check.md").read_text(encoding="utf-8")


def test_json_payload_of_several_sets_weights_by_queries():
    from eval.cli import json_payload

    def res(n, v):
        return {"queries": n, "modes": {"bm25": {"hit@1": v, "queries": n, "by": {}, "latencies_ms": [1.0]}}}

    p = json_payload({"a": res(1, 1.0), "b": res(3, 0.0)}, "hybrid")
    assert p["n_queries"] == 4 and p["modes"]["bm25"]["hit@1"] == pytest.approx(0.25)
    assert set(p["sets"]["a"]) == {"modes", "default_mode", "n_queries"}
    assert "by" not in p["sets"]["a"]["modes"]["bm25"]


def test_beir_cli_errors_are_one_line(fake_cli, tmp_path, capsys):
    assert fake_cli(["beir", str(tmp_path / "missing")]) == 2
    assert fake_cli(["beir", str(tmp_path)]) == 2  # a folder that is not a BEIR folder
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("error:") for e in err) and "no corpus.jsonl" in err[1]


def _write_run(path: Path, run: dict, tag: str) -> Path:
    with open(path, "w") as f:
        for q, docs in run.items():
            for rank, (d, s) in enumerate(sorted(docs.items(), key=lambda kv: -kv[1]), 1):
                f.write(f"{q} Q0 {d} {rank} {s} {tag}\n")
    return path


def test_compare_reads_trec_and_beir_qrels_and_finds_the_better_run(tmp_path, capsys):
    from eval.compare import main as compare, read_qrels

    qrels = {f"q{i}": {f"d{i}": 1} for i in range(40)}
    good = {q: {d: 2.0 for d in rel} | {"x": 1.0} for q, rel in qrels.items()}
    bad = {q: {"x": 2.0} | {d: 1.0 for d in rel} for q, rel in qrels.items()}
    bad["q0"] = {"d0": 3.0}  # one query right
    trec = tmp_path / "q.qrels"
    trec.write_text("".join(f"{q} 0 {d} 1\n" for q, rel in qrels.items() for d in rel))
    beir = tmp_path / "test.tsv"
    beir.write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, rel in qrels.items() for d in rel)
                    + "q0\tzz\t0\n")
    assert read_qrels(trec) == read_qrels(beir) == qrels
    a, b = _write_run(tmp_path / "a.run", good, "ours"), _write_run(tmp_path / "b.run", bad, "theirs")
    assert compare([a, b], qrels=beir, as_json=True) == 0
    payload = json.loads(capsys.readouterr().out)
    assert set(payload) >= {"modes", "default_mode", "n_queries"} and payload["n_queries"] == 40
    assert payload["modes"]["ours"]["mrr@10"] == pytest.approx(1.0)
    assert payload["modes"]["theirs"]["mrr@10"] == pytest.approx((1 + 39 * 0.5) / 40)
    assert payload["p_values_ndcg@10"]["ours"]["theirs"] < 0.05
    assert compare([a, b], qrels=trec) == 0
    table = capsys.readouterr().out
    assert "ours" in table and "theirs" in table and "ndcg@10" in table.lower().replace("ndcg@10", "ndcg@10")


def test_compare_bad_input_is_one_line(tmp_path, capsys):
    from eval.compare import main as compare

    bad = tmp_path / "bad.run"
    bad.write_text("q1 Q0 d1 1\n")
    q = tmp_path / "q.qrels"
    q.write_text("q1 0 d1 1\n")
    assert compare([bad], qrels=q) == 2
    assert compare([bad], qrels=None) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "bad.run:1: expected `qid Q0 docid rank score tag`" in err[0]


# --- the real encoder: the default mode never loses to BM25 on these sets ----------------------


@pytest.mark.model
@pytest.mark.parametrize("path", [BEIR, MRTYDI, MIRACL, JQARA])
def test_default_mode_at_least_bm25_with_the_bundled_encoder(path, tmp_path, monkeypatch):
    from eval.cli import load_encoder_id, run_sets
    from rag.tuned import load_tuned

    monkeypatch.setenv("STUDYRAG_DATA", str(tmp_path / "data"))
    from rag.tuned import FALLBACK

    ds = load_any(path)
    tuned = load_tuned(load_encoder_id("e5-small"))
    assert tuned is not FALLBACK, "not the bundled encoder's tuned values (a stand-in encoder left behind?)"
    default = tuned.default_mode
    res = run_sets([ds], ["bm25", default], split="all", limit=None, encoder_name="e5-small", progress=False,
                   deep=True)[ds.name]
    assert res["modes"][default]["ndcg@10"] >= res["modes"]["bm25"]["ndcg@10"]


# --- test my own notes ------------------------------------------------------------------------


def test_read_questions_csv_and_jsonl():
    from eval.mine import MineQuestion, read_questions

    csv_bytes = "\ufeffQuestion,Document,Phrase\nWhat is RRF?,en-guide.md,Reciprocal\n,,\n温度は？,ja-qa.md,\n".encode()
    assert read_questions(csv_bytes, "q.csv") == [MineQuestion(2, "What is RRF?", "en-guide.md", "Reciprocal"),
                                                  MineQuestion(4, "温度は？", "ja-qa.md", "")]
    jsonl = '{"question": "What is RRF?", "document": "en-guide.md"}\n\n{"question": "q2", "document": "x", "phrase": "p"}\n'
    assert read_questions(jsonl.encode(), "q.jsonl") == [MineQuestion(1, "What is RRF?", "en-guide.md", ""),
                                                        MineQuestion(3, "q2", "x", "p")]


@pytest.mark.parametrize("data, name, needle", [
    (b"question,phrase\nq,p\n", "q.csv", "must name the columns question,document"),
    (b"question,document\nq,\n", "q.csv", "q.csv:2: no document"),
    (b"question,document\n,doc\n", "q.csv", "q.csv:2: no question"),
    (b"question,document\n", "q.csv", "no questions"),
    (b"\xff\xfe\x00", "q.csv", "not UTF-8"),
    (b'{"question": "q", "document": "d"}\n[1]\n', "q.jsonl", "q.jsonl:2: expected an object"),
])
def test_read_questions_errors_name_the_line(data, name, needle):
    from eval.mine import QuestionsError, read_questions

    with pytest.raises(QuestionsError, match=needle):
        read_questions(data, name)


def test_documents_resolve_by_id_name_stem_or_title(small_searcher):
    from eval.mine import MineQuestion, QuestionsError, resolve_documents

    idx = small_searcher.index
    qs = [MineQuestion(2, "q", "en-guide.md"), MineQuestion(3, "q", "EN-GUIDE"), MineQuestion(4, "q", "retrieval guide")]
    assert set(resolve_documents(idx, qs).values()) == {"en-guide.md"}
    with pytest.raises(QuestionsError, match=r"line 5: 'nope.md'.*The notes have: en-guide.md"):
        resolve_documents(idx, [*qs, MineQuestion(5, "q", "nope.md")])


def test_mine_scores_every_mode_and_lists_the_misses(small_searcher):
    from eval.mine import MineQuestion, markdown, run

    right = MineQuestion(2, "Reciprocal rank fusion adds one over k plus rank", "en-guide.md", "reciprocal RANK fusion")
    wrong = MineQuestion(3, "Reciprocal rank fusion adds one over k plus rank", "ja-qa.md", "温度")
    rep = run(small_searcher, [right, wrong])
    assert set(rep.modes) == set(MODES) and rep.questions == 2
    # the BM25 top hit is the fusion passage (the words are the passage's own); the second
    # question expects a passage that does not mention fusion: a miss everywhere
    assert rep.modes["bm25"] == {"hit@1": 0.5, "hit@5": 0.5}
    assert all(s["hit@5"] <= 0.5 for s in rep.modes.values())
    missed = {m.question.line: m for m in rep.misses}
    assert 3 in missed
    m = missed[3]
    assert m.doc_id == "ja-qa.md" and m.expected is not None and "温度" in m.expected.text
    assert m.expected.doc_id == "ja-qa.md" and m.found is not None and m.found.doc_id != "ja-qa.md"
    text = markdown(rep, "mine.csv")
    assert "| 3 |" in text and "ja-qa.md:" in text and "hit@5" in text
    d = rep.to_dict()
    assert set(d) >= {"modes", "default_mode", "n_queries"} and d["misses"][-1]["expected"]["doc_id"] == "ja-qa.md"


def test_mine_cli_bad_input_is_one_line(tmp_path, capsys):
    from eval.cli import main

    assert main(["mine", str(tmp_path / "missing.csv")]) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("question\nq\n")
    assert main(["mine", str(bad), "--index", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("error:") for e in err) and "question,document" in err[1]


@pytest.mark.model
def test_mine_on_the_example_file_with_the_real_index(real_index, tmp_path):
    from conftest import run_cli

    proc = run_cli("eval", "mine", str(ROOT / "eval" / "data" / "mine_example.csv"), "--index", str(real_index),
                   "--json", "--out", str(tmp_path / "out"), timeout=600)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    n = sum(1 for line in (ROOT / "eval" / "data" / "mine_example.csv").read_text().splitlines()[1:] if line.strip())
    assert payload["n_queries"] == n and set(payload["modes"]) == set(MODES)
    for s in payload["modes"].values():
        assert 0 <= s["hit@1"] <= s["hit@5"] <= 1
    assert len(payload["misses"]) == round(n * (1 - payload["modes"][payload["default_mode"]]["hit@5"]))
    assert (tmp_path / "out" / "mine.md").is_file()


def test_beir_scale_qrels_are_the_copies_of_each_questions_passage(tiny_squad_file):
    from eval.beir_scale import synthetic_set
    from eval.runner import build_index
    from eval.scale import sources, synthesize

    enc = FakeEncoder()
    sets = [load_squad(tiny_squad_file, "a")]
    bases = [build_index(ds, enc, progress=False).index for ds in sets]
    ds = synthetic_set(bases, sets, 300, 1000)
    index, _ = synthesize(bases, 300, per_doc=1)
    assert ds.queries and {q.split for q in ds.queries} == {"test"}
    by_id = {c.doc_id: c for c in index.chunks}
    copied = [bases[k].chunks[i].doc_id for k, i in sources(bases, 300)]
    for q in ds.queries:
        rel = ds.qrels(index.chunks)[q.qid]
        gold = sets[0].gold_docs[q.qid]
        assert rel and all(copied[int(d.split("/")[1])] in gold for d in rel)
        assert len(rel) == sum(c in gold for c in copied)  # every copy, nothing else
        assert all(by_id[d].text == bases[0].chunks[sources(bases, 300)[int(d.split("/")[1])][1]].text for d in rel)


def test_beir_scale_report_says_what_is_synthetic_and_measures_each_size(tmp_path, monkeypatch):
    import eval.beir_scale as bs

    data = json.loads((ROOT / "eval" / "benchmarks" / "cmrc2018" / "trial.json").read_text(encoding="utf-8"))
    data["data"] = data["data"][:12]
    path = tmp_path / "twelve.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setattr(bs, "BENCHMARKS", {"twelve": path})
    monkeypatch.setattr(bs, "SIZES", (200, 400))
    monkeypatch.setattr(bs, "QUERIES", 15)
    monkeypatch.setattr(bs, "load_encoder", lambda name: FakeEncoder())
    monkeypatch.setattr(bs, "CachingEncoder", functools.partial(CachingEncoder, cache_dir=tmp_path / "vectors"))
    assert bs.main(out=tmp_path / "out") == 0
    res = json.loads((tmp_path / "out" / "beir_scale.json").read_text(encoding="utf-8"))
    assert [r["passages"] for r in res["rows"].values()] == [200, 400]
    for r in res["rows"].values():
        assert r["queries"] == 15 and r["sentences"] >= r["passages"]
        assert r["peak_rss_mb"] >= r["rss_before_mb"] > 0 and r["build_s"] > 0
        assert all(r[f"{m}_qps"] > 0 for m in MODES)
    assert set(res["quality"]) == {f"{n} / {m}" for n in (200, 400) for m in MODES}
    md = (tmp_path / "out" / "beir_scale.md").read_text(encoding="utf-8")
    assert "**The passages are synthetic**" in md and "The queries are real" in md
