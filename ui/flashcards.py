"""Flashcards: the due queue with FSRS reviews (Again / Hard / Good / Easy), a daily limit
of new cards, the back cited and one click from its source, the card in the learner's language."""

from __future__ import annotations

import time
from datetime import timezone

import streamlit as st

from rag.highlight import md_escape
from rag.messages import lang_name
from study import schedule
from study.store import StoreError
from ui import session
from ui import render as r
from ui import state
from ui.notes import card_panel_head, cited_text_html, source_panel, source_target
from ui.state import tr


def render() -> None:
    ctx = state.study()
    s, p = ctx.store, ctx.profile
    ss = st.session_state
    st.title(tr("fc.title"))
    per_day = int(ss.get("fc_new_per_day", schedule.DEFAULT_NEW_PER_DAY))
    with st.popover(f"{tr('fc.new_per_day')}: {per_day}", icon=":material/settings:"):
        st.number_input(
            tr("fc.new_per_day"),
            min_value=0,
            max_value=500,
            value=schedule.DEFAULT_NEW_PER_DAY,
            step=5,
            key="fc_new_per_day",
            persist_state="session",
        )
    q = schedule.queue(s, p.id, new_per_day=int(ss.get("fc_new_per_day", per_day)))
    start, end = schedule.day_window()
    done = len(s.reviews(p.id, since=start, until=end))
    st.caption(tr("fc.counts", due=len(q.due), new=len(q.new), done=done))
    fc = session.get(session.Flashcards)
    saved, fc.saved = fc.saved, None
    if saved:
        st.toast(tr("fc.saved", rating=tr(f"rating.{saved}")))
    if q.empty:
        st.success(tr("fc.done"))
        if q.next_due:
            st.caption(tr("fc.next", when=r.when(q.next_due)))
        return
    card = ctx.deck.by_id.get(q.next_id)
    if card is None:
        stored = s.card(q.next_id)
        card = stored.card if stored else None
    if card is None:
        st.info(tr("study.no_cards"))
        return
    _card(ctx, card)


def _card(ctx: state.Study, card) -> None:
    fc = session.get(session.Flashcards)
    ui = state.lang()
    lang = card.pick(ui)
    titles = state.titles(ctx.searcher)
    with st.container(border=True, key="fc-card"):
        topic = state.topic_names(ctx.searcher)(card.topic)
        st.caption(" · ".join([tr(f"fc.kind.{card.kind}"), tr("study.topic", topic=md_escape(topic))]))
        if lang != ui:
            st.caption(tr("study.shown_in", lang=lang_name(ui, lang), ui=lang_name(ui, ui)))
        r.html(f'<div class="studyrag-card-front">{r.text(card.front[lang])}</div>')
        if fc.shown != card.id:
            if st.button(tr("fc.show"), key="fc-show", type="primary", icon=":material/visibility:"):
                fc.shown, fc.started = card.id, time.time()
                st.rerun()
            return
        st.divider()
        src = card.sources[lang]
        spans = card.key_spans if lang == card.langs[0] else ()
        title = titles.get(src.doc_id, src.doc_id)
        panel = source_panel(1, src, card_panel_head(title, card.qnum, topic), spans)
        r.html(cited_text_html(card.back[lang], "sr-card", panel, close=tr("ask.panel_close")))
        r.source_button(tr("study.source"), source_target(src), key="fc-source", back={"page": "flashcards"})
    _rate(ctx, card)


def _rate(ctx: state.Study, card) -> None:
    fc = session.get(session.Flashcards)
    st.write(tr("fc.rate"))
    sched = schedule.make_scheduler()
    due = schedule.preview(sched, ctx.store.state(ctx.profile.id, card.id), card.id)
    cols = st.columns(4)
    for col, name in zip(cols, schedule.RATINGS):
        label = f"{tr(f'rating.{name}')} · {r.when(due[name].astimezone(timezone.utc).timestamp())}"
        if col.button(label, key=f"rate-{name}", width="stretch", type="primary" if name == "good" else "secondary"):
            started, fc.started = fc.started, None
            ms = int((time.time() - started) * 1000) if started else None
            try:
                schedule.review(ctx.store, ctx.profile.id, card.id, name, scheduler=sched, duration_ms=ms)
            except StoreError as e:  # a full disk, a read-only data folder: the card stays to rate again
                fc.started = started
                state.not_saved(e)
                return
            fc.saved, fc.shown = name, None
            st.rerun()
