"""Benchmarks page: the shipped reports, readable, and a quick benchmark (under a minute);
the full run stays a command (``python -m eval``)."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections import Counter

import streamlit as st

from rag.highlight import md_escape
from ui import i18n, state
from ui import render as r
from ui.notes import markdown_html
from ui.reports import QUICK_QUESTIONS, available, pieces, quick_command, title
from rag.context import ROOT
from ui import session
from ui.state import tr

_PERCENT = re.compile(r"(\d{1,3})%\|")
_COUNT = re.compile(r"\b(\d+)/(\d+)\b")


def render() -> None:
    st.title(tr("bench.title"))
    st.write(tr("bench.intro", command="`python -m eval`"))
    reports = available(state.results_dir(), state.runs_dir())
    if not reports:
        st.info(tr("bench.none"))
    else:
        names = [n for n, _ in reports]
        bench = session.get(session.Bench)
        if bench.pick_next is not None:  # the radio's own widget value, set before it is drawn
            st.session_state["bench_pick"], bench.pick_next = bench.pick_next, None
        if st.session_state.get("bench_pick") not in names:
            st.session_state["bench_pick"] = names[0]
        lang = state.lang()  # fixed now: a format function may be called outside this run
        # a report the catalogue does not name shows its own heading; two alike, their file names too
        own = {n: title(p) for n, p in reports}
        seen = Counter(own.values())
        own = {n: t if seen[t] == 1 else f"{t} ({n})" for n, t in own.items()}
        name = st.radio(
            tr("bench.report"),
            names,
            format_func=lambda n: _label(n, lang, md_escape(own.get(n, n))),
            horizontal=True,
            key="bench_pick",
            persist_state="session",
        )
        path = dict(reports)[name]
        written = tr("bench.written", when=time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime)))
        # the reports are the evaluation's own output, in English: said in the learner's language
        st.caption(" ".join(x for x in (written, tr("bench.english")) if x))
        for piece in pieces(path):
            if piece.image is not None:
                st.image(str(piece.image), caption=md_escape(piece.caption), width="stretch")
            else:
                r.html(f'<div class="studyrag-notes studyrag-report">{markdown_html(piece.text)}</div>')
    st.divider()
    _quick()
    st.divider()
    _mine()


def _label(name: str, lang: str, fallback: str) -> str:
    try:
        return i18n.t(f"report.{name}", lang)
    except KeyError:
        return fallback


def _quick() -> None:
    out = state.runs_dir() / "quick"
    harness = (ROOT / "eval" / "__main__.py").is_file()
    st.caption(tr("bench.quick_help", n=QUICK_QUESTIONS, folder=f"`{md_escape(str(out))}`"))
    if not harness:
        st.caption(tr("bench.no_harness"))
    if st.button(tr("bench.quick"), disabled=not harness, key="bench-quick", icon=":material/play_arrow:"):
        _run(quick_command(out, index=state.index_dir()))
    bench = session.get(session.Bench)
    done, bench.done = bench.done, None
    if done is not None:
        st.success(tr("bench.done", s=done))
    log = bench.log
    if log:
        with st.expander(tr("bench.log")):
            st.code(log[-6000:], language=None)


def _run(cmd: list[str]) -> None:
    bar = st.progress(0.0, text=tr("bench.running"))
    tail = st.empty()
    lines: list[str] = []
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
    except OSError as e:
        st.error(tr("bench.failed", code=md_escape(str(e))))
        return
    assert proc.stdout is not None
    for raw in proc.stdout:  # text mode splits on \r too: each progress redraw is a line
        line = raw.rstrip()
        if not line:
            continue
        m, c = _PERCENT.search(line), _COUNT.search(line)
        if m or c:
            frac = int(m.group(1)) / 100 if m else int(c.group(1)) / max(1, int(c.group(2)))
            bar.progress(min(1.0, frac), text=tr("bench.running"))
            if lines and (_PERCENT.search(lines[-1]) or _COUNT.search(lines[-1])):
                lines[-1] = line
                continue
        lines.append(line)
        tail.code("\n".join(lines[-12:]), language=None)
    rc = proc.wait()
    bench = session.get(session.Bench)
    bench.log = "\n".join(lines)
    tail.empty()
    if rc == 0:
        bar.progress(1.0, text=tr("bench.done", s=f"{time.monotonic() - t0:.0f}"))
        bench.pick_next, bench.done = "quick", f"{time.monotonic() - t0:.0f}"
        st.rerun()
    else:
        bar.empty()
        st.error(tr("bench.failed", code=rc))


# --- test my own notes ------------------------------------------------------------------------

EXAMPLE = ROOT / "eval" / "data" / "mine_example.csv"


def _mine() -> None:
    """Upload questions with the document that should answer each (and optionally a phrase the
    right passage contains); see hit@1/hit@5 per search mode and the questions the default
    mode misses, with the passage it found and the one it should have, both openable."""
    try:
        from eval.mine import QuestionsError, read_questions, run
    except ImportError:
        return
    st.subheader(tr("mine.title"))
    st.caption(tr("mine.help"))
    if EXAMPLE.is_file():
        st.download_button(tr("mine.example"), EXAMPLE.read_bytes(), file_name=EXAMPLE.name, mime="text/csv",
                           key="mine-example", icon=":material/download:")
    r.uploader_in_language(["csv", "jsonl"])
    up = st.file_uploader(tr("mine.upload"), type=["csv", "jsonl"], key="mine-file")
    if up is not None and st.button(tr("mine.run"), key="mine-run", icon=":material/play_arrow:"):
        searcher = state.load_searcher()
        try:
            questions = read_questions(up.getvalue(), up.name)
            with st.spinner(tr("mine.running", n=len(questions))):
                st.session_state["mine_report"] = (up.name, run(searcher, questions))
        except QuestionsError as e:
            st.session_state.pop("mine_report", None)
            st.error(tr("mine.bad", reason=md_escape(str(e))))
    got = st.session_state.get("mine_report")
    if got is not None:
        _mine_report(*got)


def _mine_report(name: str, rep) -> None:
    st.caption(tr("mine.summary", n=rep.questions, file=md_escape(name), s=f"{rep.seconds:.1f}",
                  mode=rep.default_mode))
    st.table({tr("mine.mode"): list(rep.modes),
              "hit@1": [f"{v['hit@1']:.2f}" for v in rep.modes.values()],
              "hit@5": [f"{v['hit@5']:.2f}" for v in rep.modes.values()]})
    if not rep.misses:
        st.success(tr("mine.no_misses"))
        return
    st.markdown(f"**{tr('mine.misses', n=len(rep.misses), mode=rep.default_mode)}**")
    for i, m in enumerate(rep.misses):
        with st.expander(f"{m.question.line}: {md_escape(m.question.question[:120])}"):
            left, right = st.columns(2)
            for col, chunk, label, key in ((left, m.found, "mine.found", "f"), (right, m.expected, "mine.expected", "e")):
                with col:
                    st.markdown(f"**{tr(label)}**")
                    if chunk is None:
                        st.caption(tr("mine.none"))
                        continue
                    r.caption(chunk.doc_id)
                    st.markdown(md_escape(" ".join(chunk.text.split())[:600]))
                    r.source_button(tr("mine.open"), {"doc_id": chunk.doc_id, "start": chunk.start, "end": chunk.end,
                                                      "text": chunk.text, "quotes": []},
                                    key=f"mine-{key}-{i}", back={"page": "benchmarks"})
            if m.question.phrase:
                st.caption(tr("mine.phrase", phrase=md_escape(m.question.phrase)))
