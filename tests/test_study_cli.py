"""``studyrag study …`` as a user runs it: JSON cards citing their documents, export and import,
and one ``error:`` line (never a traceback) for every bad input."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from rag.index import open_index
from study import cli
from study.store import DB_NAME


@pytest.fixture
def study_dirs(corpus_fake_index, tmp_path):
    return corpus_fake_index[0], tmp_path / "data"


def call(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean_error(code, err, *needles):
    assert code == 2, err
    assert err.startswith(("error:", "usage:")) and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


def test_cards_json_cites_the_documents(study_dirs, capsys):
    index_dir, _ = study_dirs
    code, out, _ = call(capsys, "cards", "--json", "--index", index_dir)
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    docs = open_index(index_dir).documents
    assert len(rows) == 139  # the fake encoder links no translations: 100 Q&A cards + 39 sections
    for r in rows:
        assert {"id", "kind", "front", "back", "source"} <= set(r) and r["kind"] in ("qa", "section")
        src = r["source"]
        assert docs[src["doc_id"]].text[src["start"] : src["end"]] == src["text"]
        assert set(r["front"]) == set(r["back"]) and set(r["front"]) <= {"ja", "zh", "en"}


def test_export_import_round_trip(study_dirs, capsys, tmp_path):
    index_dir, data = study_dirs
    assert call(capsys, "profiles", "--add", "ana <1>", "--data", data)[0] == 0
    for flag, name in (("--anki", "deck.apkg"), ("--csv", "deck.csv"), ("--json", "p.json")):
        code, out, err = call(
            capsys, "export", flag, tmp_path / name, "--profile", "ana <1>", "--index", index_dir, "--data", data
        )
        assert code == 0, err
        assert (tmp_path / name).stat().st_size > 0 and "wrote" in out
    code, out, err = call(
        capsys, "import", tmp_path / "p.json", "--profile", "bo", "--index", index_dir, "--data", data
    )
    assert code == 2 and not out  # ana's progress: not merged into bo's unless asked
    assert_clean_error(code, err, "is the progress of 'ana <1>', not of 'bo'; add --any-learner")
    code, out, err = call(
        capsys, "import", tmp_path / "p.json", "--profile", "bo", "--any-learner", "--index", index_dir, "--data", data
    )
    assert code == 0, err
    assert "imported into 'bo'" in out
    code, out, _ = call(capsys, "profiles", "--data", data)
    assert out.splitlines() == ["ana <1>", "bo"]
    code, out, _ = call(capsys, "progress", "--profile", "bo", "--json", "--data", data)
    assert code == 0 and json.loads(out)["due"]["cards"] == 139


def test_sync_reports_changes(study_dirs, capsys):
    index_dir, data = study_dirs
    assert "139 added" in call(capsys, "sync", "--index", index_dir, "--data", data)[1]
    assert "139 unchanged" in call(capsys, "sync", "--index", index_dir, "--data", data)[1]


def test_errors_are_one_line(study_dirs, capsys, tmp_path):
    index_dir, data = study_dirs
    assert_clean_error(
        *call(
            capsys, "export", "--anki", tmp_path / "d.apkg", "--profile", "nobody", "--index", index_dir, "--data", data
        )[::2],
        "no profile named 'nobody'",
    )
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    assert_clean_error(
        *call(capsys, "import", tmp_path / "x.csv", "--profile", "ana", "--index", index_dir, "--data", data)[::2],
        "not a StudyRAG progress file",
    )
    assert_clean_error(*call(capsys, "cards", "--index", tmp_path / "none")[::2], "no index at")
    assert_clean_error(*call(capsys, "export", "--profile", "ana", "--index", index_dir)[::2], "required")
    assert_clean_error(*call(capsys, "profiles", "--add", "   ", "--data", data)[::2], "empty")
    assert_clean_error(
        *call(
            capsys,
            "export",
            "--anki",
            tmp_path / "no" / "such" / "d.apkg",
            "--profile",
            "ana <1>",
            "--index",
            index_dir,
            "--data",
            data,
        )[::2]
    )
    assert_clean_error(*call(capsys)[::2], "usage: studyrag study")


def test_corrupt_progress_file_is_refused_and_kept(study_dirs, capsys):
    index_dir, data = study_dirs
    data.mkdir(parents=True)
    (data / DB_NAME).write_bytes(b"garbage" * 100)
    assert_clean_error(*call(capsys, "sync", "--index", index_dir, "--data", data)[::2], "left untouched")
    assert (data / DB_NAME).read_bytes() == b"garbage" * 100


def test_studyrag_dispatches_study_in_a_fresh_process(study_dirs, tmp_path):
    index_dir, data = study_dirs
    proc = run_cli(
        "ui.cli",
        "study",
        "export",
        "--csv",
        str(tmp_path / "d.csv"),
        "--profile",
        "nobody",
        "--index",
        str(index_dir),
        "--data",
        str(data),
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error: no profile named") and "Traceback" not in proc.stderr
    proc = run_cli("ui.cli", "study", "cards", "--json", "--index", str(index_dir), cwd=tmp_path)
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 139


@pytest.mark.model
def test_a_drill_answer_over_the_limit_is_refused_not_cut(real_index, capsys):
    """It was graded on its first 4,000 characters without a word (the points at its end missed)."""
    from study.drill import MAX_ANSWER_CHARS

    long = "LoRA adds low-rank matrices. " * (MAX_ANSWER_CHARS // 29 + 1)
    assert_clean_error(
        *call(capsys, "drill", "LoRAとQLoRAのファインチューニングの違いは？", "--answer", long, "--index", real_index)[::2],
        f"the answer is {len(long.strip()):,} characters; the limit is {MAX_ANSWER_CHARS:,}",
    )
