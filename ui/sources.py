"""Documents page: the notes listed, and one document shown as notes, the cited passage
highlighted and scrolled into view, with a way back to where the learner came from."""

from __future__ import annotations

import streamlit as st

from rag.highlight import md_escape
from rag.messages import lang_name
from ui import render as r
from ui import session, state
from ui.notes import document_html, metadata_line
from ui.state import tr


def cited_span(doc, target: dict | None) -> tuple[int, int] | None:
    """Where the target passage is in ``doc`` now: its recorded offsets, or (the document was
    edited) wherever its text is; ``None`` when it is gone."""
    if not target or target.get("doc_id") != doc.doc_id:
        return None
    s, e, text = int(target["start"]), int(target["end"]), target.get("text", "")
    if doc.text[s:e] == text:
        return s, e
    i = doc.text.find(text) if text else -1
    return (i, i + len(text)) if i >= 0 else None


def render() -> None:
    searcher = state.load_searcher()
    index = searcher.index
    titles = state.titles(searcher)
    lang = state.lang()
    ss = st.session_state  # the document picker's widget value ("source_doc")
    src = session.get(session.Sources)
    target = src.target
    back = (target or {}).get("back") or {}
    if back.get("page"):
        label = tr("sources.back") if back["page"] == "ask" else tr("sources.back_card")
        if back["page"] == "benchmarks":
            label = tr("mine.back")
        if st.button(label, key="source-back"):  # the label has its arrow: one, not two
            session.get(session.Chat).scroll_turn = back.get("turn")
            src.target = None
            state.go(back["page"])
    st.title(tr("sources.title"))
    st.dataframe(
        [
            {
                tr("col.title"): titles.get(d["doc_id"], d["title"]),
                tr("col.language"): lang_name(lang, d["lang"]),
                tr("col.sections"): d["chunks"],
                tr("col.file"): d["doc_id"],
            }
            for d in state.documents(searcher)
        ],
        hide_index=True,
    )
    docs = list(index.documents)
    if target and target.get("doc_id") not in index.documents:  # the index was rebuilt without it
        st.info(tr("sources.gone", file=md_escape(str(target.get("doc_id", "")))))
    if ss.get("source_doc") not in index.documents:
        ss["source_doc"] = target["doc_id"] if target and target.get("doc_id") in index.documents else docs[0]
    doc_id = st.selectbox(
        tr("sources.pick"), docs, format_func=lambda d: titles.get(d, d), key="source_doc", persist_state="session"
    )
    doc = index.documents[doc_id]
    span = cited_span(doc, target)
    quotes = [tuple(q) for q in (target or {}).get("quotes", ())] if span else []
    st.subheader(md_escape(titles.get(doc_id, doc.title)), anchor=False)
    meta = " · ".join(x for x in (doc_id, lang_name(lang, doc.lang), metadata_line(doc)) if x)
    r.html(f'<div class="studyrag-meta">{r.text(meta)}</div>')
    if target and target.get("doc_id") == doc_id:
        st.caption(tr("sources.cited") if span else tr("sources.moved"))
    page_col = _cited_page(doc, span, quotes)
    with (page_col or st.container()), st.container(height=640, border=True, key="document"):
        r.html(document_html(doc, cited=span, quotes=quotes, lang=lang))
    if span:
        r.scroll_to("#cited", block="center")


def _cited_page(doc, span, quotes):
    """For a passage of a PDF: the cited page, its quoted sentences highlighted, in a left
    column; returns the right column for the extracted text (None when not a PDF page)."""
    from rag.origin import locate
    from ui.pdfview import original_bytes, page_html

    if span is None or doc.origin is None or doc.origin.kind != "page":
        return None
    where = locate(doc.origin, quotes or [span])
    if where is None:
        return None
    data = original_bytes(state.corpus_dir(), doc.doc_id, doc.sha256, uploads=state.uploads_dir())
    left, right = st.columns(2, gap="medium")
    with left:
        st.caption(tr("sources.page", page=where.label))
        if data is None:
            st.info(tr("sources.no_original"))
        else:
            png = _page_png(data, where.number, doc.sha256)
            boxes = [b for b in where.boxes if b.page == where.number]
            alt = tr("sources.page", page=where.label)
            with st.container(height=640, border=False, key="pdf-page"):
                r.html(page_html(png, doc.origin.sizes[where.number - 1], boxes, alt=alt))
    return right


@st.cache_data(max_entries=32, show_spinner=False, hash_funcs={bytes: lambda b: len(b)})
def _page_png(data: bytes, page: int, sha256: str) -> bytes:
    from ui.pdfview import render_page

    return render_page(data, page)
