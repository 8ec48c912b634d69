"""StudyRAG — a multilingual (日本語 / 中文 / English) study assistant over your notes.

``streamlit run app.py``. A thin entry point: one module per page under ``ui/`` (ask, sources,
add, flashcards, quiz, drill, progress, export, benchmarks) over the libraries (``rag``,
``ingest``, ``study``); folders and settings are described in :mod:`ui.state`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas  # noqa: F401 -- see below
import pyarrow  # noqa: F401
import streamlit as st

# pandas and pyarrow are imported here, whole, at the app's first run: altair and Streamlit import
# them on a first chart or table, and two learners' first charts at once, each in its session's
# thread, raised "partially initialized module 'pandas'" on the Progress page.

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ui import add, ask, benchmarks, drill, export, flashcards, progress, quiz, render, session, sidebar, sources, state  # noqa: E402
from ui.state import tr  # noqa: E402

st.set_page_config(page_title="StudyRAG", page_icon="📚", layout="wide")
state.init_session()
render.style()

PAGES = {
    "ask": st.Page(ask.render, title=tr("page.ask"), icon=":material/forum:", url_path="ask", default=True),
    "sources": st.Page(sources.render, title=tr("page.sources"), icon=":material/description:", url_path="sources"),
    "add": st.Page(add.render, title=tr("page.add"), icon=":material/upload_file:", url_path="add"),
    "flashcards": st.Page(
        flashcards.render, title=tr("page.flashcards"), icon=":material/style:", url_path="flashcards"
    ),
    "quiz": st.Page(quiz.render, title=tr("page.quiz"), icon=":material/quiz:", url_path="quiz"),
    "drill": st.Page(drill.render, title=tr("page.drill"), icon=":material/record_voice_over:", url_path="drill"),
    "progress": st.Page(progress.render, title=tr("page.progress"), icon=":material/insights:", url_path="progress"),
    "export": st.Page(export.render, title=tr("page.export"), icon=":material/swap_vert:", url_path="export"),
    "benchmarks": st.Page(
        benchmarks.render, title=tr("page.benchmarks"), icon=":material/speed:", url_path="benchmarks"
    ),
}
page = st.navigation(
    {
        tr("nav.notes"): [PAGES[k] for k in ("ask", "sources", "add")],
        tr("nav.study"): [PAGES[k] for k in ("flashcards", "quiz", "drill", "progress", "export")],
        tr("nav.info"): [PAGES["benchmarks"]],
    }
)
# Programmatic navigation: session.GOTO names a key of PAGES (buttons, tests).
goto = session.take_navigation()
if goto in PAGES and PAGES[goto].url_path != page.url_path:
    st.switch_page(PAGES[goto])
sidebar.render()
state.sync_address()
page.run()
