"""Ask page: a conversation with the notes. Answers quote the notes; every ``[n]`` opens its
passage in place; "open in its document" shows the whole document at that passage."""

from __future__ import annotations

import streamlit as st

from rag.answer import Answer, ask
from rag.errors import RagError
from rag.highlight import md_escape
from rag.messages import lang_name
from rag.search import MAX_QUERY_CHARS, Searcher, is_empty_question
from ui import session
from ui import render as r
from ui import i18n, state
from ui.notes import answer_html, passage_label
from ui.state import tr
from ui.suggest import as_question, overview, suggested_questions



@st.cache_data(show_spinner=False, max_entries=8)
def _landing(build: str, lang: str) -> tuple[list, list[str]]:
    index = state.get_searcher(build).index
    return overview(index), suggested_questions(index, lang)


def _ask_later(question: str) -> None:
    session.get(session.Chat).pending_question = question


def render() -> None:
    searcher = state.load_searcher()
    build = state.build_key(searcher)
    titles = state.titles(searcher)
    st.title(tr("ask.title"))
    doc_ids = _scope(searcher, titles)
    turns = state.turns()
    if not turns:
        _welcome(build)
    for i, a in enumerate(turns):
        _turn(i, a, titles)
    check = state.answer_settings(doc_ids)
    if check.problem:
        st.warning(tr(check.problem))
    typed = _form()
    chat = session.get(session.Chat)
    question, chat.pending_question = chat.pending_question or typed, None
    if question is not None:
        _answer(searcher, question, check, doc_ids)
    target, chat.scroll_turn = chat.scroll_turn, None
    if target is not None and turns:
        r.scroll_to(f".st-key-turn-{len(turns) - 1 if target == -1 else target}")


# --- the documents asked ------------------------------------------------------------------------


def _scope(searcher: Searcher, titles: dict[str, str]) -> frozenset[str] | None:
    """Checkboxes, one per document (all ticked by default); ``None`` means all."""
    docs = list(searcher.index.documents)
    ticked = [d for d in docs if st.session_state.get(f"scope-{d}", True)]
    summary = (
        tr("ask.scope_all", n=len(docs))
        if len(ticked) == len(docs)
        else tr("ask.scope_some", k=len(ticked), n=len(docs))
    )
    with st.expander(f"{tr('ask.scope')}: {summary}", icon=":material/library_books:"):
        for d in docs:
            st.checkbox(md_escape(titles.get(d, d)), value=True, key=f"scope-{d}", persist_state="session")
    ticked = [d for d in docs if st.session_state.get(f"scope-{d}", True)]
    return None if len(ticked) == len(docs) else frozenset(ticked)


# --- the welcome ---------------------------------------------------------------------------------


def _welcome(build: str) -> None:
    lang = state.lang()
    docs, questions = _landing(build, lang)
    st.write(tr("landing.intro"))
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.subheader(tr("landing.covers"))
        for d in docs:
            counts = [i18n.count("landing.qa", state.lang(), d.qa, n=d.qa)] if d.qa else []
            counts += [i18n.count("landing.sections", state.lang(), d.sections, n=d.sections)] if d.sections and not d.qa else []
            r.html(
                f"<b>{r.text(d.title)}</b> <span class='studyrag-meta'>· {r.escape(lang_name(lang, d.lang))}"
                f" · {r.escape(' · '.join(counts))}</span>"
            )
            if d.topics:
                r.caption(" · ".join(d.topics))
    with right:
        st.subheader(tr("landing.suggested"))
        for j, q in enumerate(questions):
            st.button(
                md_escape(q),
                key=f"suggest-{j}",
                on_click=_ask_later,
                args=(q,),
                icon=":material/help:",
                type="tertiary",
                wrap=True,
            )


# --- one question and its answer -----------------------------------------------------------------


def _target(c) -> dict:
    ch = c.chunk
    return {
        "doc_id": ch.doc_id,
        "start": ch.start,
        "end": ch.end,
        "text": ch.text,
        "quotes": [list(q) for q in c.quotes],
        "number": c.number,
    }


def _turn(i: int, a: Answer, titles: dict[str, str]) -> None:
    lang = state.lang()
    with st.container(key=f"turn-{i}"):
        with st.chat_message("user"):
            r.html(f'<div class="studyrag-question">{r.text(a.question)}</div>')
        with st.chat_message("assistant"):
            previous = state.turns()[i - 1] if i > 0 else None
            if a.followup and previous is not None:
                st.caption(tr("ask.followup", previous=md_escape(previous.question)))
            if a.answered:
                r.html(answer_html(a, key=f"sr-{i}", lang=lang, titles=titles))
                if a.flagged:
                    said = " / ".join(f"“{md_escape(f.text[:80])}”" for f in a.flagged)
                    st.warning(tr("ask.flagged", sentences=said))
                if a.error:
                    st.caption(tr("ask.endpoint_failed", error=md_escape(a.error)))
                if i == len(state.turns()) - 1:
                    st.caption(tr("ask.click_hint"))
                with st.container(horizontal=True, gap="small"):
                    for c in a.cited():
                        r.source_button(
                            tr("ask.open_source", n=c.number),
                            _target(c),
                            key=f"open-{i}-{c.number}",
                            back={"page": "ask", "turn": i},
                        )
            else:
                st.info("  \n".join(md_escape(line) for line in a.text.splitlines() if line.strip()))
                if a.suggestions:
                    st.caption(tr("ask.try"))
                    with st.container(horizontal=True, gap="small"):
                        for j, s in enumerate(a.suggestions):
                            q = as_question(s, lang)
                            st.button(
                                md_escape(q),
                                key=f"retry-{i}-{j}",
                                on_click=_ask_later,
                                args=(q,),
                                icon=":material/help:",
                            )
            unsaved = session.get(session.Chat).unsaved.get(i)
            if unsaved is not None:
                st.warning(tr("store.not_saved", error=md_escape(unsaved)))
            if st.session_state.get("details"):
                _details(a, titles)


def _details(a: Answer, titles: dict[str, str]) -> None:
    with st.expander(tr("ask.details")):
        rel = "–" if a.relevance is None else f"{a.relevance:.2f}"
        st.caption(
            tr(
                "ask.details_line",
                mode=tr(f"mode.{a.mode}") if a.mode else "",
                relevance=rel,
                ms=f"{a.ms:.0f}",
                answerer=tr(f"answerer.{a.answerer}"),
            )
        )
        if a.query and a.query != a.question:
            st.caption(tr("ask.details_searched", query=md_escape(a.query)))
        st.caption(tr("ask.details_hits"))
        for h in a.hits:
            c = h.chunk
            where = " · ".join(x for x in (titles.get(c.doc_id) or c.title, passage_label(c)) if x)
            s = h.scores
            fmt = {k: ("–" if s.get(k) is None else f"{s[k]:.3f}") for k in ("bm25", "dense", "fused", "rerank")}
            st.markdown(f"{h.rank}. {md_escape(where)}  \n{tr('ask.scores', **fmt)}")


def _form() -> str | None:
    chat = session.get(session.Chat)
    if chat.clear_box:
        chat.clear_box = False
        st.session_state["ask_box"] = ""  # the question box's own widget value
    with st.form("ask-form", border=True, enter_to_submit=False):
        text = st.text_area(
            tr("ask.box"), key="ask_box", placeholder=tr("ask.placeholder"), height=80, label_visibility="collapsed"
        )
        left, right = st.columns([4, 1], vertical_alignment="center")
        left.caption(tr("ask.limit", limit=f"{MAX_QUERY_CHARS:,}"))
        sent = right.form_submit_button(tr("ask.submit"), type="primary", icon=":material/send:", width="stretch")
    return text if sent else None


def _answer(searcher: Searcher, question: str, check: state.EndpointCheck, doc_ids) -> None:
    q = (question or "").strip()
    if is_empty_question(q):
        st.warning(tr("ask.empty"))
        return
    if len(q) > MAX_QUERY_CHARS:
        st.error(tr("ask.too_long", n=f"{len(q):,}", limit=f"{MAX_QUERY_CHARS:,}"))
        return
    if doc_ids is not None and not doc_ids:
        st.warning(tr("ask.scope_none"))
        return
    try:
        with st.spinner(tr("ask.thinking")):
            a = ask(searcher, q, check.settings, history=state.turns())
    except (RagError, ValueError) as e:
        st.error(tr("ask.failed", error=md_escape(str(e))))
        return
    state.save_turn(a)
    chat = session.get(session.Chat)
    chat.clear_box, chat.scroll_turn = True, len(state.turns()) - 1
    st.rerun()
