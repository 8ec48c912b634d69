"""Progress: due today, reviews per day, retention and mastery per topic, as figures and plots."""

from __future__ import annotations

import altair as alt
import streamlit as st

from study import progress
from ui import render as r
from ui import i18n, state
from ui.state import tr

DAYS = 14


def render() -> None:
    ctx = state.study()
    st.title(tr("prog.title"))
    data = progress.summary(ctx.store, ctx.profile.id, days=DAYS)
    due, ret = data["due"], data["retention"]
    cols = st.columns(4)
    cols[0].metric(tr("prog.due_now"), due["due_now"])
    cols[1].metric(tr("prog.due_today"), due["due_today"])
    cols[2].metric(tr("prog.new_left"), due["new_left_today"])
    cols[3].metric(tr("prog.retention"), r.pct(ret["retention"]))
    per_day = data["reviews_per_day"]
    st.subheader(tr("prog.per_day"))
    if any(d["reviews"] for d in per_day):
        st.altair_chart(_per_day(per_day), width="stretch")
    else:
        # no chart of zeros: its axis would read "0.000000"
        st.info(tr("prog.nothing"))
    st.subheader(tr("prog.mastery"))
    if data["mastery"]:
        # Text, not a chart: a chart drops labels that overlap (8 of 16 were shown).
        r.html(mastery_html(data["mastery"], topic_labels(ctx, state.lang())))


_GENERIC = {
    "intro": frozenset("はじめに 序論 前言 引言 导言 introduction intro".split()),
    "summary": frozenset("まとめ おわりに 結論 结论 总结 summary conclusion conclusions".split()),
}


def topic_labels(ctx: state.Study, lang: str):
    """A card topic as the learner reads it in ``lang``: a Q&A list's title in ``lang`` when the
    notes have that list in ``lang`` too, file-name titles replaced by shown titles, and a
    generic heading ("はじめに", "まとめ") in ``lang``; other headings as the notes write them."""
    names = state.topic_names(ctx.searcher)
    shown = state.titles(ctx.searcher)
    twin: dict[str, str] = {}
    for c in ctx.deck.cards:
        if c.kind == "qa" and lang in c.sources and c.topic not in twin:
            twin[c.topic] = shown.get(c.sources[lang].doc_id, c.topic)

    def label(topic: str) -> str:
        if topic in twin:
            return twin[topic]
        name = names(topic)
        head, sep, last = name.rpartition(" — ")
        for key, words in _GENERIC.items():
            if last.strip().lower() in words:
                return f"{head}{sep}{tr(f'topic.{key}')}" if sep else tr(f"topic.{key}")
        return name

    return label


def mastery_html(rows: list[dict], label) -> str:
    """Mastery per topic as labelled bars of text (every topic named; names are escaped)."""
    out = []
    for m in rows:
        pct = max(0.0, min(100.0, 100 * float(m["mastery"])))
        seen = i18n.count("prog.cards_seen", state.lang(), m["cards"], seen=m["seen"], cards=m["cards"])
        out.append(
            f'<div class="topic">{r.escape(label(m["topic"]))}</div>'
            f'<div class="bar" title="{r.escape(seen)}"><div class="fill" style="width: {pct:.0f}%"></div>'
            f'<span class="pct">{pct:.0f}% · {r.escape(seen)}</span></div>'
        )
    return f'<div class="studyrag-mastery">{"".join(out)}</div>'


def _per_day(per_day: list[dict]) -> alt.Chart:
    remembered, forgot = tr("col.remembered"), tr("col.again")  # the two parts of a day's reviews
    values = [
        {"day": d["date"][5:], "kind": k, "n": n}
        for d in per_day
        for k, n in ((remembered, d["reviews"] - d["again"]), (forgot, d["again"]))
    ]
    return (
        alt.Chart(alt.Data(values=values), height=240)
        .mark_bar()
        .encode(
            x=alt.X("day:O", title=tr("col.date"), axis=alt.Axis(labelAngle=0)),
            y=alt.Y("n:Q", title=tr("col.reviews"), axis=alt.Axis(tickMinStep=1)),
            color=alt.Color(
                "kind:N",
                title=None,
                scale=alt.Scale(domain=[remembered, forgot], range=["#4e8fd6", "#e07b67"]),
                legend=alt.Legend(orient="bottom"),
            ),
            tooltip=["day:O", "kind:N", "n:Q"],
        )
    )
