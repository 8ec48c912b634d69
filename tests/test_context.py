"""The composition root (rag.context) and the shared command-line shell (rag.shell)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import context, shell
from rag.errors import RagError

VARS = ("STUDYRAG_CORPUS", "STUDYRAG_INDEX", "STUDYRAG_DATA", "STUDYRAG_ENCODER", "STUDYRAG_LLM_URL",
        "STUDYRAG_LLM_MODEL", "STUDYRAG_LLM_API_KEY", "STUDYRAG_EVAL_RESULTS", "STUDYRAG_EVAL_RUNS")


@pytest.fixture
def clean_env(monkeypatch):
    for v in VARS:
        monkeypatch.delenv(v, raising=False)
    return monkeypatch


def test_defaults_are_folders_of_the_current_directory(clean_env):
    ctx = context.resolve()
    assert (ctx.corpus, ctx.index, ctx.data) == (Path("corpus"), "index", Path("data"))
    assert ctx.encoder == "e5-small" and ctx.k == context.DEFAULT_K == 5
    assert ctx.llm_url == "" and ctx.llm_api_key is None
    assert ctx.results == context.ROOT / "eval" / "results" and ctx.tuned_file.name == "tuned.json"


def test_option_beats_environment_beats_default(clean_env, tmp_path):
    clean_env.setenv("STUDYRAG_DATA", str(tmp_path / "env-data"))
    clean_env.setenv("STUDYRAG_INDEX", str(tmp_path / "env-index"))
    clean_env.setenv("STUDYRAG_ENCODER", "use-m3")
    clean_env.setenv("STUDYRAG_LLM_URL", " http://localhost:11434/v1 ")
    ctx = context.resolve()
    assert ctx.data == tmp_path / "env-data" and ctx.index_folder == tmp_path / "env-index"
    assert ctx.encoder == "use-m3" and ctx.llm_url == "http://localhost:11434/v1"
    ctx = context.resolve(data=tmp_path / "opt", index="other", encoder="minilm", k=3)
    assert (ctx.data, ctx.index, ctx.encoder, ctx.k) == (tmp_path / "opt", "other", "minilm", 3)


def test_the_cli_store_and_the_app_open_the_same_data_folder(clean_env, tmp_path):
    """One rule: the store's default is the context's (the app once used the repository root
    and the command line the current directory)."""
    from study.store import Store

    clean_env.chdir(tmp_path)
    with Store.open() as store:
        assert Path(store.path).resolve().parent == (tmp_path / "data").resolve()
    assert context.resolve().data.resolve() == (tmp_path / "data").resolve()


def test_index_location_is_a_string_resolved_in_one_place(clean_env):
    assert context.index_folder("builds/x") == Path("builds/x")
    with pytest.raises(ValueError, match=r"is a milvus index, not a folder"):
        context.index_folder("milvus://localhost:19530")
    with pytest.raises(ValueError, match=r"milvus://HOST:PORT"):
        context.index_folder("milvus://localhost:19530/notes")
    assert context.index_target("builds/x") == Path("builds/x")
    assert context.index_target("classes.db") == "classes.db"  # Milvus Lite, opened by rag.backends
    with pytest.raises(ValueError, match="k must be"):
        context.resolve(k=0)


@pytest.mark.parametrize("error, line", [
    (RagError("no index at  x:\n build one"), "error: no index at x: build one"),
    (ValueError("k must be > 0"), "error: k must be > 0"),
    (KeyError("no card 'x'"), "error: no card 'x'"),
    (FileNotFoundError(2, "No such file or directory", "q.txt"), "error: q.txt: No such file or directory"),
])
def test_one_error_wrapper(error, line, capsys):
    def main():
        raise error

    assert shell.guarded(main)() == shell.EXIT_ERROR
    assert capsys.readouterr().err == line + "\n"


def test_studyrag_tree_lists_every_command(capsys):
    from ui.cli import COMMANDS, studyrag

    assert set(COMMANDS) == {"ingest", "search", "ask", "study", "eval"}
    assert studyrag(["--help"]) == 0 and "ingest" in capsys.readouterr().out
    assert studyrag(["nosuch"]) == shell.EXIT_ERROR and "usage: studyrag" in capsys.readouterr().err
