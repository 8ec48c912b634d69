"""StudyRAG — a multilingual (日本語 / 中文 / English) study assistant over your notes.

``streamlit run app.py``. A thin shell: retrieval is :mod:`rag.search`, answers and
citations :mod:`rag.answer`, inert HTML :mod:`rag.highlight`, uploads :mod:`ingest.uploads`.

Environment: ``STUDYRAG_INDEX`` / ``STUDYRAG_CORPUS`` point the app at other folders
(default ./index, ./corpus); ``STUDYRAG_LLM_URL`` / ``STUDYRAG_LLM_MODEL`` preset the
optional OpenAI-compatible answer endpoint; ``STUDYRAG_EVAL_RESULTS`` the benchmark
report folder (default ./eval/results).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rag import highlight  # noqa: E402
from rag.answer import (  # noqa: E402
    ANSWER_LANGS,
    LANG_NAMES,
    Settings,
    Turn,
    ask,
    chunk_lookup,
)
from rag.encoders import DEFAULT_ENCODER, load_encoder  # noqa: E402
from rag.errors import IndexCorruptError, IndexMissingError, RagError  # noqa: E402
from rag.index import Index, current_folder  # noqa: E402
from rag.search import MODES, Searcher  # noqa: E402
from ingest.uploads import MAX_UPLOAD_BYTES, UPLOAD_DIR, add_documents, overall_fraction, update_index  # noqa: E402

CORPUS = Path(os.environ.get("STUDYRAG_CORPUS") or ROOT / "corpus")
INDEX = Path(os.environ.get("STUDYRAG_INDEX") or ROOT / "index")
EVAL_RESULTS = Path(os.environ.get("STUDYRAG_EVAL_RESULTS") or ROOT / "eval" / "results")

MODE_LABELS = {
    "bm25": "BM25 (keywords)",
    "dense": "Dense (embeddings)",
    "hybrid": "Hybrid (BM25 + dense)",
    "rerank": "Hybrid + rerank",
}
LANG_LABELS = {"auto": "Auto (the question's)", **LANG_NAMES}
ANSWERER_LABELS = {"extractive": "Extractive (offline)", "endpoint": "LLM endpoint (OpenAI-compatible)"}
STAGE_TEXT = {
    "chunks": "Embedding passages",
    "headings": "Embedding headings",
    "sentences": "Embedding sentences",
    "analyze": "Building the keyword index",
}
WARM_UP = ("LLMとは何ですか", "什么是大语言模型", "what is a language model")

CSS = """
<style>
.studyrag-passage mark, .studyrag-document mark, .studyrag-answer mark { background: #ffe58f; padding: 0 1px; border-radius: 2px; }
.studyrag-document mark#cited { background: #d6ecff; outline: 2px solid #5b9bd5; }
.studyrag-document mark#cited mark { background: #ffe58f; }
.studyrag-passage { font-size: 0.92rem; }
</style>
"""


# --- Loading ------------------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def get_encoder(name: str):
    """The query/passage encoder, loaded once per process (the bundled model: no download)."""
    return load_encoder(name)


@st.cache_resource(show_spinner="Loading the search index…", max_entries=4)
def get_searcher(build: str) -> Searcher:
    """A searcher over one index build; keyed on the build folder named by ``index/CURRENT``.

    After an ingest the key changes and the next run loads the new build; sessions that
    still hold the old searcher keep using it (it is all in memory).
    """
    index = Index.load(Path(build))
    searcher = Searcher(index, encoder=get_encoder(index.encoder_id))
    for q in WARM_UP:  # loads the tokenizers and fills the encoder's first-call costs
        searcher.search(q, k=1)
    return searcher


def live_build() -> Path:
    """The live index build folder; builds the index first if there is none."""
    try:
        return current_folder(INDEX)
    except IndexMissingError:
        with st.spinner(f"Building the search index from {CORPUS} (first start, a few seconds)…"):
            update_index(CORPUS, INDEX, get_encoder(DEFAULT_ENCODER))
        return current_folder(INDEX)


def load_searcher() -> Searcher:
    """The cached searcher of the live build (a new one after an ingest swapped ``CURRENT``)."""
    try:
        for attempt in range(3):
            build = live_build()
            try:
                return get_searcher(str(build))
            except IndexCorruptError:
                # Another session's ingest may have swapped CURRENT and removed this build
                # between reading the pointer and loading it: read the pointer again.
                if attempt == 2 or current_folder(INDEX) == build:
                    raise
    except IndexCorruptError as e:
        st.error(f"The index cannot be read: {highlight.md_escape(str(e))}")
        if st.button("Rebuild the index from the corpus"):
            with st.spinner("Rebuilding…"):
                update_index(CORPUS, INDEX, get_encoder(DEFAULT_ENCODER), rebuild=True)
            st.rerun()
        st.stop()
    except RagError as e:
        st.error(highlight.md_escape(str(e)))
        st.stop()


def settings() -> Settings:
    ss = st.session_state
    return Settings(
        mode=ss.get("mode", "rerank"),
        k=int(ss.get("k", 5)),
        answer_lang=ss.get("answer_lang", "auto"),
        answerer=ss.get("answerer", "extractive"),
        llm_url=ss.get("llm_url") or os.environ.get("STUDYRAG_LLM_URL", ""),
        llm_model=ss.get("llm_model") or os.environ.get("STUDYRAG_LLM_MODEL", ""),
        llm_api_key=os.environ.get("STUDYRAG_LLM_API_KEY") or None,
    )


def sidebar() -> None:
    with st.sidebar:
        st.header("Settings")
        st.selectbox("Retrieval mode", MODES, index=MODES.index("rerank"), format_func=MODE_LABELS.get, key="mode")
        st.slider("Passages to retrieve (top-k)", 1, 20, 5, key="k")
        st.selectbox("Answer language", ANSWER_LANGS, format_func=LANG_LABELS.get, key="answer_lang")
        st.radio("Answerer", list(ANSWERER_LABELS), format_func=ANSWERER_LABELS.get, key="answerer")
        if st.session_state.get("answerer") == "endpoint":
            st.text_input(
                "Endpoint URL",
                value=os.environ.get("STUDYRAG_LLM_URL", ""),
                placeholder="http://localhost:8000",
                key="llm_url",
            )
            st.text_input("Model", value=os.environ.get("STUDYRAG_LLM_MODEL", ""), key="llm_model")
        st.toggle("Show scores", value=False, key="show_scores")
        if st.button("New conversation", width="stretch"):
            st.session_state["turns"] = []


# --- Ask ----------------------------------------------------------------------------------


def fmt_score(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def render_card(turn_no: int, turn: Turn, cit, lookup) -> None:
    c = cit.chunk
    doc_title = c.title or c.doc_id
    qlabel = f"Q{c.qnum}" if c.qnum is not None else ""
    where = " · ".join(x for x in (c.section, "" if qlabel and c.section.endswith(qlabel) else qlabel) if x)
    with st.container(border=True, key=f"card-{turn_no}-{cit.number}"):
        st.markdown(
            f"**[{cit.number}]** {highlight.inline(doc_title)} "
            f"<span style='color:#666'>({highlight.inline(c.doc_id)})</span>",
            unsafe_allow_html=True,
        )
        meta = [highlight.inline(where)] if where else []
        meta.append(LANG_NAMES.get(c.lang, c.lang))
        if cit.translated:
            meta.append(
                f"translation of the retrieved {LANG_NAMES.get(cit.hit.chunk.lang, cit.hit.chunk.lang)} passage #{cit.hit.rank}"
            )
        else:
            meta.append(f"retrieved #{cit.hit.rank}")
        st.caption(" · ".join(meta), unsafe_allow_html=True)
        if st.session_state.get("show_scores"):
            s = cit.hit.scores
            st.caption(
                f"bm25 {fmt_score(s.get('bm25'))} · dense {fmt_score(s.get('dense'))} · "
                f"fused {fmt_score(s.get('fused'))} · rerank {fmt_score(s.get('rerank'))}"
            )
        st.markdown(highlight.passage_html(c.text, turn.terms), unsafe_allow_html=True)
        other = cit.hit.chunk if cit.translated else (lookup(c.parallel) if c.parallel else None)
        if other is not None:
            with st.expander(
                f"Parallel passage ({LANG_NAMES.get(other.lang, other.lang)}) — {highlight.md_escape(other.title)}"
            ):
                st.markdown(highlight.passage_html(other.text, turn.terms), unsafe_allow_html=True)
        if st.button("Open source", key=f"open-{turn_no}-{cit.number}", help="Show the whole document at this passage"):
            st.session_state["source"] = {
                "doc_id": c.doc_id,
                "start": c.start,
                "end": c.end,
                "text": c.text,
                "terms": turn.terms,
                "number": cit.number,
            }
            st.session_state["source_doc"] = c.doc_id
            st.switch_page(PAGES["sources"])


def render_turn(turn_no: int, turn: Turn, lookup) -> None:
    with st.chat_message("user"):
        st.markdown(highlight.inline(turn.question), unsafe_allow_html=True)
    with st.chat_message("assistant"):
        a = turn.answer
        if turn.combined:
            st.caption(f"Follow-up — searched for: {highlight.inline(turn.query)}", unsafe_allow_html=True)
        if not a.answered:
            st.info(a.text)
            if a.note:
                st.caption(highlight.md_escape(a.note))
        else:
            st.markdown(highlight.answer_html(a.text, [f.text for f in a.flagged]), unsafe_allow_html=True)
            if a.flagged:  # the sentences are the LLM's text: escaped, no links
                flagged = " / ".join(
                    f"“{highlight.md_escape(f.text[:80])}” ({highlight.md_escape(f.problem)})" for f in a.flagged
                )
                st.warning(f"Not backed by a valid citation: {flagged}")
            if a.note:
                st.caption(highlight.md_escape(a.note))
        label = (
            "LLM endpoint" if a.answerer == "endpoint" else "extractive" if a.answerer == "extractive" else "no answer"
        )
        rel = "–" if a.relevance is None else f"{a.relevance:.2f}"
        st.caption(
            f"{len(turn.hits)} passages · {MODE_LABELS.get(turn.mode, turn.mode)} · {label} · relevance {rel} · {turn.ms:.0f} ms"
        )
        cited = a.cited() if a.answered else []
        for cit in cited:
            render_card(turn_no, turn, cit, lookup)
        cited_ids = {c.hit.chunk.id for c in cited}
        rest = [h for h in turn.hits if h.chunk.id not in cited_ids]
        if rest:
            with st.expander(f"Other retrieved passages ({len(rest)})"):
                for h in rest:
                    c = h.chunk
                    head = " · ".join(x for x in (c.title, c.section, LANG_NAMES.get(c.lang, c.lang)) if x)
                    st.markdown(f"**#{h.rank}** {highlight.inline(head)}", unsafe_allow_html=True)
                    if st.session_state.get("show_scores"):
                        s = h.scores
                        st.caption(
                            f"bm25 {fmt_score(s.get('bm25'))} · dense {fmt_score(s.get('dense'))} · "
                            f"fused {fmt_score(s.get('fused'))} · rerank {fmt_score(s.get('rerank'))}"
                        )
                    st.markdown(
                        highlight.passage_html(c.text[:600] + ("…" if len(c.text) > 600 else ""), turn.terms),
                        unsafe_allow_html=True,
                    )


def page_ask() -> None:
    searcher = load_searcher()
    lookup = chunk_lookup(searcher.index)
    st.title("Ask your study notes")
    turns: list[Turn] = st.session_state.setdefault("turns", [])
    if not turns:
        st.caption(
            f"{len(searcher.index.documents)} documents · {len(searcher.index.chunks)} passages. "
            "Ask in 日本語, 中文 or English — e.g. 「LoRAとQLoRAの違いは？」, “什么是注意力机制？”, “what is beam search?”"
        )
    for i, turn in enumerate(turns):
        render_turn(i, turn, lookup)
    question = st.chat_input("Ask a question (日本語 / 中文 / English)")
    if question:
        previous = turns[-1].query if turns else None
        try:
            with st.spinner("Searching…"):
                turn = ask(searcher, question, settings(), previous_query=previous)
        except RagError as e:
            st.error(highlight.md_escape(str(e)))
            return
        turns.append(turn)
        render_turn(len(turns) - 1, turn, lookup)


# --- Sources ------------------------------------------------------------------------------


def page_sources() -> None:
    searcher = load_searcher()
    idx = searcher.index
    st.title("Sources")
    counts = Counter(c.doc_id for c in idx.chunks)
    st.dataframe(
        [
            {"title": d.title, "language": LANG_NAMES.get(d.lang, d.lang), "chunks": counts[d.doc_id], "file": d.doc_id}
            for d in idx.documents.values()
        ],
        hide_index=True,
    )
    doc_ids = list(idx.documents)
    if st.session_state.get("source_doc") not in idx.documents:
        st.session_state.pop("source_doc", None)
    doc_id = st.selectbox(
        "Open a document", doc_ids, format_func=lambda d: f"{idx.documents[d].title} — {d}", key="source_doc"
    )
    doc = idx.documents[doc_id]
    target = st.session_state.get("source")
    start = end = None
    if target and target["doc_id"] == doc_id:
        start, end = target["start"], target["end"]
        if doc.text[start:end] != target["text"]:  # the document changed since: find the passage again
            i = doc.text.find(target["text"])
            start, end = (i, i + len(target["text"])) if i >= 0 else (None, None)
        if start is not None:
            st.caption(f"Cited passage [{target['number']}] is highlighted.")
    st.markdown(f"### {highlight.inline(doc.title)}", unsafe_allow_html=True)
    st.caption(
        highlight.inline(" · ".join(x for x in (doc.doc_id, LANG_NAMES.get(doc.lang, doc.lang), doc.source) if x)),
        unsafe_allow_html=True,
    )
    with st.container(height=640, border=True):
        st.markdown(
            highlight.document_html(doc.text, start, end, target["terms"] if start is not None else ()),
            unsafe_allow_html=True,
        )
    if start is not None:
        # Our own fixed script (no document content in it): scroll the cited passage into view.
        st.html(highlight.SCROLL_TO_CITED_JS, unsafe_allow_javascript=True)


# --- Add documents ------------------------------------------------------------------------


def page_add() -> None:
    st.title("Add documents")
    st.write(
        f"Upload Markdown or plain-text files (UTF-8, up to {MAX_UPLOAD_BYTES // 1_000_000} MB each). "
        f"They are saved in `{UPLOAD_DIR}/` of the corpus folder and indexed incrementally; "
        "searches keep working meanwhile."
    )
    st.session_state.setdefault("uploader_round", 0)
    files = st.file_uploader(
        "Markdown or text files",
        type=["md", "txt"],
        accept_multiple_files=True,
        max_upload_size=max(1, MAX_UPLOAD_BYTES // 1_000_000),
        key=f"uploader-{st.session_state['uploader_round']}",
    )
    if st.button("Add to the index", type="primary", disabled=not files):
        handle_upload([(f.name, f.getvalue()) for f in files])
    for kind, msg in st.session_state.get("upload_messages", []):
        getattr(st, kind)(msg)
    stale_notice()
    uploads = CORPUS / UPLOAD_DIR
    mine = sorted(p.name for p in uploads.glob("*") if p.suffix.lower() in (".md", ".txt")) if uploads.is_dir() else []
    if mine:
        st.caption("Added so far: " + ", ".join(highlight.md_escape(m) for m in mine))


def progress_bar(first: str):
    """An st.progress bar and the callback that moves it through the ingest stages."""
    bar = st.progress(0.0, text=first)

    def progress(desc: str, n: int, total: int | None) -> None:
        label = STAGE_TEXT.get(desc, desc)
        bar.progress(overall_fraction(desc, n, total), text=f"{label} {n}/{total or '?'}")

    return bar, progress


def stale_notice() -> None:
    """Offer to re-index when files in the corpus folder changed outside the app."""
    from rag.corpus import stale_documents

    try:
        stale = stale_documents(load_searcher().index.manifest, CORPUS)
    except (RagError, OSError):
        return
    if not stale:
        return
    st.warning(
        f"{len(stale)} file(s) in the corpus folder changed since the index was built: "
        + ", ".join(highlight.md_escape(d) for d in stale[:5])
        + ("…" if len(stale) > 5 else "")
    )
    if st.button("Update the index"):
        bar, progress = progress_bar("Updating the index…")
        try:
            report = update_index(CORPUS, INDEX, get_encoder(DEFAULT_ENCODER), progress=progress)
        except (RagError, OSError) as e:
            bar.empty()
            st.error(f"Indexing failed, the index is unchanged: {highlight.md_escape(str(e))}")
            return
        bar.progress(1.0, text="Done")
        st.session_state["upload_messages"] = [("success", report.summary())]
        st.rerun()


def handle_upload(files: list[tuple[str, bytes]]) -> None:
    bar, progress = progress_bar("Checking files…")

    messages: list[tuple[str, str]] = []
    try:
        result, report = add_documents(files, CORPUS, INDEX, get_encoder(DEFAULT_ENCODER), progress=progress)
    except (RagError, OSError) as e:
        bar.empty()
        messages.append(
            ("error", f"Indexing failed, nothing was added and the index is unchanged: {highlight.md_escape(str(e))}")
        )
        st.session_state["upload_messages"] = messages
        return
    bar.progress(1.0, text="Done")
    for _name, why in result.refused:
        messages.append(("error", f"Refused {highlight.md_escape(why)}"))
    for d in result.unchanged:
        messages.append(("info", f"Already in the corpus: {highlight.md_escape(d)}"))
    if result.saved:
        added = ", ".join(highlight.md_escape(d) for d in result.saved)
        messages.append(("success", f"Added {added} — {report.summary()}"))
    st.session_state["upload_messages"] = messages
    if result.saved:
        st.session_state["uploader_round"] += 1  # clears the uploader
        st.rerun()


# --- Benchmarks ---------------------------------------------------------------------------

_TQDM = re.compile(r"(\d{1,3})%\|")
_COUNT = re.compile(r"\b(\d+)/(\d+)\b")


def latest_reports() -> list[Path]:
    """Existing benchmark reports, newest first: the full run's and ``--quick``'s (eval/results/quick)."""
    found = [p for p in (EVAL_RESULTS / "report.md", EVAL_RESULTS / "quick" / "report.md") if p.is_file()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


_IMAGE_REF = re.compile(r"^\s*!\[([^\]]*)\]\(([^)\s]+)\)\s*$")


def render_report(report: Path) -> None:
    """The report's Markdown, with its local images (relative links) shown in place, then any other PNGs."""
    shown: set[Path] = set()
    buf: list[str] = []
    for line in report.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _IMAGE_REF.match(line)
        path = (report.parent / m.group(2)).resolve() if m and "://" not in m.group(2) else None
        if path is not None and path.is_file() and report.parent.resolve() in path.parents:
            st.markdown("\n".join(buf))
            buf = []
            st.image(str(path), caption=m.group(1) or path.name)
            shown.add(path)
        else:
            buf.append(line)
    st.markdown("\n".join(buf))
    for png in sorted(report.parent.glob("*.png")):
        if png.resolve() not in shown:
            st.image(str(png), caption=png.name)


def page_benchmarks() -> None:
    st.title("Benchmarks")
    reports = latest_reports()
    if not reports:
        st.info("No benchmark report yet.")
    else:
        report = reports[0]
        if len(reports) > 1:
            report = st.radio(
                "Report",
                reports,
                format_func=lambda p: "quick run" if p.parent.name == "quick" else "full run",
                horizontal=True,
            )
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(report.stat().st_mtime))
        st.caption(
            f"{report.relative_to(EVAL_RESULTS.parent) if EVAL_RESULTS.parent in report.parents else report} · {when}"
        )
        render_report(report)
    harness = (ROOT / "eval" / "__main__.py").is_file()
    if not harness:
        st.caption("The benchmark harness (`python -m eval`) is not in this checkout yet.")
    if st.button(
        "Run quick benchmark", disabled=not harness, help="python -m eval --quick (results in eval/results/quick)"
    ):
        run_eval()
    log = st.session_state.get("eval_log")
    if log:
        with st.expander("Last benchmark run log"):
            st.code(log[-6000:])


def run_eval() -> None:
    bar = st.progress(0.0, text="Starting python -m eval --quick…")
    tail = st.empty()
    lines: list[str] = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "eval", "--quick", "--out", str(EVAL_RESULTS / "quick")],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
    except OSError as e:
        st.error(f"Could not start the benchmark: {e}")
        return
    assert proc.stdout is not None
    for raw in proc.stdout:  # text mode splits on \r too, so each tqdm redraw is a line
        line = raw.rstrip()
        if not line:
            continue
        m = _TQDM.search(line)
        c = _COUNT.search(line)
        if m or c:
            frac = int(m.group(1)) / 100 if m else int(c.group(1)) / max(1, int(c.group(2)))
            bar.progress(min(1.0, frac), text=line[:120])
            if lines and (_TQDM.search(lines[-1]) or _COUNT.search(lines[-1])):
                lines[-1] = line
                continue
        lines.append(line)
        tail.code("\n".join(lines[-15:]))
    rc = proc.wait()
    st.session_state["eval_log"] = "\n".join(lines)
    if rc == 0:
        bar.progress(1.0, text="Done")
        st.success("Benchmark finished.")
        st.rerun()
    else:
        st.error(f"The benchmark exited with code {rc}; see the log below.")


# --- Shell --------------------------------------------------------------------------------

st.set_page_config(page_title="StudyRAG", page_icon="📚", layout="wide")
st.html(CSS)
PAGES = {
    "ask": st.Page(page_ask, title="Ask", icon="💬", url_path="ask", default=True),
    "sources": st.Page(page_sources, title="Sources", icon="📄", url_path="sources"),
    "add": st.Page(page_add, title="Add documents", icon="➕", url_path="add"),
    "benchmarks": st.Page(page_benchmarks, title="Benchmarks", icon="📊", url_path="benchmarks"),
}
page = st.navigation(list(PAGES.values()))
# Programmatic navigation: set st.session_state["goto"] to a key of PAGES (buttons, tests).
goto = st.session_state.pop("goto", None)
if goto in PAGES and PAGES[goto].url_path != page.url_path:
    st.switch_page(PAGES[goto])
sidebar()
page.run()
