"""Add documents: uploads checked before anything is written, then read into the notes
(incrementally; searching keeps working); files changed outside the app can be re-read."""

from __future__ import annotations

import streamlit as st

from ingest.uploads import (
    MAX_FILE_UPLOAD_BYTES,
    MAX_UPLOAD_BYTES,
    SUFFIXES,
    UploadError,
    add_documents,
    current_job,
    overall_fraction,
    start_adding,
    update_index,
)
from rag.corpus import CONVERTIBLE, UPLOADS, is_file_format, printable, read_by_older_readers, stale_documents
from rag.errors import RagError
from rag.highlight import md_escape
from ui import i18n, session
from ui import render as r
from ui import state
from ui.state import tr

STAGES = ("chunks", "headings", "sentences", "analyze")


def _file_names(doc_ids) -> str:
    """Uploaded files as the learner named them (their ids are ``uploads/<name>``), escaped."""
    return r.joined(d.removeprefix(UPLOADS + "/") for d in doc_ids)


def render() -> None:
    searcher = state.load_searcher()
    st.title(tr("add.title"))
    st.write(tr("add.intro", mb=MAX_UPLOAD_BYTES // 1_000_000, file_mb=MAX_FILE_UPLOAD_BYTES // 1_000_000))
    up = session.get(session.Uploads)
    r.uploader_in_language(SUFFIXES, MAX_FILE_UPLOAD_BYTES // 1_000_000)
    files = st.file_uploader(
        tr("add.files"),
        # the formats no reader reads get through too, to be refused with what to save them as
        type=[s.lstrip(".") for s in (*SUFFIXES, *CONVERTIBLE)],
        accept_multiple_files=True,
        max_upload_size=max(1, MAX_FILE_UPLOAD_BYTES // 1_000_000),
        key=f"uploader-{up.round}",
    )
    if st.button(tr("add.button"), type="primary", disabled=not files, key="add-files"):
        _upload([(f.name, f.getvalue()) for f in files], searcher.index.encoder_id)
    if up.job is not None:
        _job_panel()
    for kind, key, values in up.messages:  # worded now: in the language chosen since
        if key == "add.refused":
            values = {"reason": md_escape(_refusal(values["name"], values["why"]))}
        getattr(st, kind)(tr(key, **values))
    _stale(searcher)
    uploads = state.uploads_dir()
    mine = sorted(p.name for p in uploads.glob("*") if p.suffix.lower() in SUFFIXES) if uploads.is_dir() else []
    if mine:
        st.caption(tr("add.so_far", names=r.joined(mine)))


def _refusal(name: str, why: str) -> str:
    """``name: reason`` with the reason in the interface language (rag/reasons.py words it)."""
    shown = printable(name) if name else ""
    if shown and why.startswith(f"{shown}: "):
        return f"{shown}: {i18n.reason(why[len(shown) + 2 :], state.lang())}"
    return i18n.reason(why, state.lang())


def _progress_bar():
    """A progress bar and the callback that moves it through the ingest stages."""
    bar = st.progress(0.0, text=tr("stage.checking"))

    def progress(desc: str, n: int, total: int | None) -> None:
        label = tr(f"stage.{desc}") if desc in STAGES else tr("stage.checking")
        bar.progress(overall_fraction(desc, n, total), text=f"{label} {n}/{total or '?'}")

    return bar, progress


def _upload(files: list[tuple[str, bytes]], encoder: str) -> None:
    """Text files are read at once (seconds); PDFs, slides, Word files and web pages in the
    background: the learner can keep asking meanwhile, and the files are searchable by
    keyword as soon as their keyword-only build is live."""
    if not any(is_file_format(name) for name, _ in files):
        _upload_now(files, encoder)
        return
    up = session.get(session.Uploads)
    up.messages = []
    try:
        up.job = start_adding(
            files, state.corpus_dir(), state.index_dir(), state.get_encoder(encoder), uploads=state.uploads_dir()
        )
    except UploadError:  # another session's upload is still being read (one at a time)
        up.messages = [("warning", "add.busy", {})]


@st.fragment(run_every=1.0)
def _job_panel() -> None:
    """Progress of this session's upload, per stage, in the learner's language; the outcome
    when it is done."""
    up = session.get(session.Uploads)
    job = up.job
    if job is None:
        return
    names = r.joined(job.names)
    if not job.finished:
        label = tr(f"stage.{job.stage}") if job.stage in STAGES else tr("stage.checking")
        count = f" {job.done}/{job.total}" if job.total else ""
        st.progress(overall_fraction(job.stage, job.done, job.total), text=f"{names} — {label}{count}")
        if job.searchable_s is not None:
            st.info(tr("add.searchable", names=names, s=f"{job.searchable_s:.1f}"))
        return
    up.job = None
    messages: list[tuple[str, str, dict]] = []  # (kind, i18n key, values)
    if job.error:
        messages.append(("error", "add.failed", {"error": md_escape(job.error)}))
    result = job.result
    if result is not None:
        for name, why in result.refused:
            messages.append(("error", "add.refused", {"name": name, "why": why}))
        for d in result.unchanged:
            messages.append(("info", "add.unchanged", {"name": _file_names([d])}))
        if result.saved and job.report is not None:
            messages.append(("success", "add.added", {"names": _file_names(result.saved), "docs": job.report.documents}))
            up.round += 1  # a new uploader: the old one's files are cleared
    up.messages = messages
    st.rerun(scope="app")


def _upload_now(files: list[tuple[str, bytes]], encoder: str) -> None:
    up = session.get(session.Uploads)
    bar, progress = _progress_bar()
    messages: list[tuple[str, str, dict]] = []  # (kind, i18n key, values)
    try:
        result, report = add_documents(
            files,
            state.corpus_dir(),
            state.index_dir(),
            state.get_encoder(encoder),
            progress=progress,
            uploads=state.uploads_dir(),
        )
    except (RagError, OSError) as e:
        bar.empty()
        up.messages = [("error", "add.failed", {"error": md_escape(str(e))})]
        return
    bar.progress(1.0, text=tr("stage.done"))
    for name, why in result.refused:
        messages.append(("error", "add.refused", {"name": name, "why": why}))
    for d in result.unchanged:
        messages.append(("info", "add.unchanged", {"name": _file_names([d])}))
    if result.saved:
        messages.append(("success", "add.added", {"names": _file_names(result.saved), "docs": report.documents}))
    up.messages = messages
    if result.saved:
        up.round += 1  # a new uploader: the old one's files are cleared
        st.rerun()


def _stale(searcher) -> None:
    """Offer to re-read files that changed in the notes folder outside the app."""
    job = current_job()
    if job is not None and not job.finished:  # its files are saved but not read yet: not "changed"
        return
    try:
        stale = stale_documents(searcher.index.manifest, state.corpus_dir(), uploads=state.uploads_dir())
    except (RagError, OSError):
        stale = []
    older = read_by_older_readers(searcher.index.manifest, besides=stale)
    if not stale and not older:
        return
    for key, docs in (("add.stale", stale), ("add.reread", older)):
        if docs:
            st.warning(tr(key, n=len(docs), names=r.joined(docs[:5]) + ("…" if len(docs) > 5 else "")))
    if st.button(tr("add.update"), key="update-index"):
        bar, progress = _progress_bar()
        try:
            report = update_index(
                state.corpus_dir(),
                state.index_dir(),
                state.get_encoder(searcher.index.encoder_id),
                progress=progress,
                uploads=state.uploads_dir(),
            )
        except (RagError, OSError) as e:
            bar.empty()
            st.error(tr("add.failed", error=md_escape(str(e))))
            return
        bar.progress(1.0, text=tr("stage.done"))
        session.get(session.Uploads).messages = [("success", "add.updated", {"docs": report.documents})]
        st.rerun()
