"""What the pages share: folders, the cached searcher / store / deck, and the session's
language, learner profile, conversation and answer settings.

Folders, the encoder, the answer endpoint and the default number of passages come from
:func:`rag.context.resolve`, the function the command line calls too (``STUDYRAG_INDEX``,
``STUDYRAG_CORPUS``, ``STUDYRAG_DATA``, ``STUDYRAG_STORE``, ``STUDYRAG_ENCODER``, ``STUDYRAG_LLM_*``,
``STUDYRAG_EVAL_RESULTS`` / ``STUDYRAG_EVAL_RUNS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from rag.answer import Answer, Settings
from rag.context import DEFAULT_K, Context, resolve
from rag.encoders import load_encoder
from rag.errors import IndexCorruptError, IndexMissingError, RagError
from rag.backends import live_key, open_live
from rag.search import Searcher
from study import db
from study.store import Profile, ProfileError, Store, StoreError
from ui import i18n, session
from ui.conversation import from_record, title_for, to_record
from study.conversations import Conversations

DEFAULT_PROFILE = "learner"
WARM_UP = ("LLMとは何ですか", "什么是大语言模型", "what is a language model")


# --- folders -----------------------------------------------------------------------------------


def context() -> Context:
    """The app's paths and settings, resolved by the same function as the command line's
    (:func:`rag.context.resolve`)."""
    return resolve()


def corpus_dir() -> Path:
    return context().corpus


def index_dir() -> str | Path:
    """The index: a folder, or an engine setting (``STUDYRAG_INDEX=milvus://…``, :mod:`rag.backends`)."""
    return context().index_target


def data_dir() -> Path:
    return context().data


def store_where() -> str:
    """Where progress lives: a PostgreSQL URL (``$STUDYRAG_STORE``), else the data folder."""
    return context().store


def store_label() -> str:
    """:func:`store_where` for display (a URL without its password)."""
    return context().store_label


def results_dir() -> Path:
    return context().results


def runs_dir() -> Path:
    return context().runs


def uploads_dir() -> Path:
    """The learner's uploaded documents: in the data folder, never in the checkout."""
    return context().uploads


def build_encoder() -> str:
    return context().encoder


# --- language ------------------------------------------------------------------------------------


def lang() -> str:
    v = st.session_state.get("ui_lang")
    return v if v in i18n.LANGS else i18n.DEFAULT_LANG


def tr(key: str, /, **values) -> str:
    """The interface text ``key`` in the session's language."""
    return i18n.t(key, lang(), **values)


def init_session() -> None:
    """First run of a session: language, learner and conversation from the address (a reload
    keeps them), else from the browser's language and the stored profiles."""
    me = session.get(session.Learner)
    if me.initialised:
        return
    me.initialised = True
    qp = st.query_params
    want = qp.get("lang")
    st.session_state["ui_lang"] = want if want in i18n.LANGS else i18n.from_locale(_browser_locale())
    me.want_profile = qp.get("profile")
    chat = qp.get("chat")
    me.want_chat = int(chat) if chat and chat.isdigit() else None


def _browser_locale() -> str | None:
    try:
        return st.context.locale
    except Exception:  # noqa: BLE001 -- older Streamlit or no browser (tests): English
        return None


def sync_address() -> None:
    """Write the language, learner and open conversation into the address bar."""
    me, chat = session.get(session.Learner), session.get(session.Chat)
    want = {"lang": lang()}
    if me.profile:
        want["profile"] = me.profile
    if chat.conv_id is not None:
        want["chat"] = str(chat.conv_id)
    qp = st.query_params
    if {k: qp.get(k) for k in ("lang", "profile", "chat")} != {k: want.get(k) for k in ("lang", "profile", "chat")}:
        for k in ("profile", "chat"):
            if k not in want and k in qp:
                del qp[k]
        qp.update(want)


def go(page: str) -> None:
    """Switch to ``page`` (a key of the app's pages); set the page's state first."""
    session.navigate(page)
    st.rerun()


# --- the searcher ------------------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def get_encoder(name: str):
    """The encoder, loaded once per process."""
    return load_encoder(name)


@st.cache_resource(show_spinner=False, max_entries=4)
def get_searcher(build: str) -> Searcher:
    """A searcher over one index build (keyed on the build folder ``index/CURRENT`` names):
    after an ingest the next run loads the new build; older sessions keep theirs."""
    from rag.answer import ask

    index = open_live(build)
    searcher = Searcher(index, encoder=get_encoder(index.encoder_id))
    for q in WARM_UP:  # the analyzers' dictionaries, the encoder's first call, the answerer's caches
        try:
            ask(searcher, q)
        except RagError:
            pass
    return searcher


def live_build() -> str:
    """The live build (folder, or engine URI and version); on a first start the index is built
    from the corpus first."""
    try:
        return live_key(index_dir())
    except IndexMissingError:
        from ingest.uploads import update_index

        with st.spinner(tr("index.building")):
            update_index(corpus_dir(), index_dir(), get_encoder(build_encoder()), uploads=uploads_dir())
        return live_key(index_dir())


def load_searcher() -> Searcher:
    """The cached searcher of the live build, or a friendly stop."""
    from rag.highlight import md_escape

    try:
        for attempt in range(3):
            build = live_build()
            try:
                with st.spinner(tr("index.loading")):
                    return get_searcher(str(build))
            except IndexCorruptError:
                # another session's ingest may have switched builds meanwhile: read CURRENT again
                if attempt == 2 or live_key(index_dir()) == build:
                    raise
    except IndexCorruptError:
        st.error(tr("index.unreadable"))
        if st.button(tr("index.rebuild"), key="rebuild-index"):
            from ingest.uploads import update_index

            try:
                with st.spinner(tr("index.rebuilding")):
                    update_index(
                        corpus_dir(), index_dir(), get_encoder(build_encoder()), rebuild=True, uploads=uploads_dir()
                    )
            except RagError as e:  # a full disk, no notes: said, and the button stays to try again
                st.error(tr("index.error", error=md_escape(str(e))))
                st.stop()
            st.rerun()
        st.stop()
    except RagError as e:
        st.error(tr("index.error", error=md_escape(str(e))))
        st.stop()
    raise AssertionError("unreachable")


def build_key(searcher: Searcher) -> str:
    be = getattr(searcher.index, "backend", None)
    return str(searcher.index.path) if be is None else f"{be.uri}#{be.version}"


@st.cache_data(show_spinner=False, max_entries=8)
def _documents(build: str) -> list[dict]:
    """The build's documents as the pages list them (``ui.suggest.document_table``; an engine
    index reads the table stored with its version, not every chunk and document text)."""
    return get_searcher(build).index.table("documents")


def _titles(build: str) -> dict[str, str]:
    return {d["doc_id"]: d["shown"] for d in _documents(build)}


def notes_languages() -> frozenset[str]:
    """The languages of the live build's documents (empty while there is no index yet)."""
    try:
        build = live_key(index_dir())
    except RagError:
        return frozenset()
    try:
        return frozenset(d["lang"] for d in _documents(build))
    except RagError:
        return frozenset()


def documents(searcher: Searcher) -> list[dict]:
    """The documents as the pages list them (see :func:`_documents`)."""
    return _documents(build_key(searcher))


def titles(searcher: Searcher) -> dict[str, str]:
    """Document id -> the title a learner sees (see :func:`ui.notes.display_title`)."""
    return _titles(build_key(searcher))


def topic_names(searcher: Searcher):
    """A function naming a card's topic as a learner reads it: a topic that starts with a
    document's file-name title ("llm-technical-foundations-ja — はじめに") gets the shown title."""
    swap = {d["title"]: d["shown"] for d in _documents(build_key(searcher)) if d["shown"] and d["shown"] != d["title"]}

    def name(topic: str) -> str:
        for old, new in swap.items():
            if topic == old or topic.startswith(f"{old} — "):
                return new + topic[len(old) :]
        return topic

    return name


# --- the store, the learner ----------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def _open_store(path: str) -> Store:
    return Store.open(path)


def store() -> Store | None:
    """The study store, or ``None`` when it cannot be opened (the reason is in
    ``Learner.store_error``; the file is left as it is)."""
    try:
        s = _open_store(store_where())
    except StoreError as e:
        session.get(session.Learner).store_error = str(e)
        return None
    session.get(session.Learner).store_error = None
    return s


def profile(s: Store | None) -> Profile | None:
    """The session's learner: the one chosen, else the address's (``?profile=``), else the first
    stored, else :data:`DEFAULT_PROFILE` created. A name in the address that no learner has
    never joins another learner: it is kept in ``Learner.unknown_profile`` and ``None`` returned until
    the learner is created or another one chosen in the sidebar."""
    if s is None:
        return None
    me = session.get(session.Learner)
    name, me.want_profile = me.profile or me.want_profile, None
    try:
        if name:
            try:
                p = s.profile(name)
            except ProfileError:
                p = None
            if p is not None:
                me.profile = p.name
                return p
            me.unknown_profile, me.profile = name, None
        if me.unknown_profile is not None:
            return None
        known = s.profiles()
        p = known[0] if known else s.add_profile(DEFAULT_PROFILE)
    except (StoreError, *db.errors()) as e:
        me.store_error = str(e)
        return None
    me.profile = p.name
    return p


def switch_profile(name: str) -> None:
    """Make ``name`` the session's learner: the learner's pages (conversation, quiz, cards,
    drill) start afresh."""
    me = session.get(session.Learner)
    me.unknown_profile = None
    if me.profile != name:
        me.profile = name
        session.reset(*session.LEARNER_PAGES)
        new_conversation()


# --- the conversation ------------------------------------------------------------------------------


def turns() -> list[Answer]:
    """The open conversation's answers, oldest first (loaded from the store after a reload)."""
    chat, me = session.get(session.Chat), session.get(session.Learner)
    if chat.turns is None:
        chat.turns = []
        want, me.want_chat = me.want_chat, None
        if want is not None:
            open_conversation(want)
    return chat.turns


def open_conversation(conv_id: int) -> None:
    chat = session.get(session.Chat)
    s = store()
    p = profile(s)
    if s is None or p is None or Conversations(s).get(p.id, conv_id) is None:
        chat.turns, chat.conv_id = [], None
        return
    loaded = []
    for rec in Conversations(s).messages(p.id, conv_id):
        try:
            loaded.append(from_record(rec))
        except ValueError:
            continue  # a message this version cannot read is skipped, not fatal
    chat.turns, chat.conv_id, chat.unsaved = loaded, conv_id, {}


def new_conversation() -> None:
    chat = session.get(session.Chat)
    chat.turns, chat.conv_id, chat.unsaved = [], None, {}


def save_turn(a: Answer) -> None:
    """Append ``a`` to the open conversation (and save it when the store is there; when the
    store refuses the write, the turn is marked unsaved with the reason)."""
    chat = session.get(session.Chat)
    turns().append(a)
    s = store()
    p = profile(s)
    if s is None or p is None:
        return
    convs = Conversations(s)
    try:
        if chat.conv_id is None or convs.get(p.id, chat.conv_id) is None:
            chat.conv_id = convs.add(p.id, title_for(a.question)).id
        convs.add_message(p.id, chat.conv_id, to_record(a))
    except (StoreError, *db.errors(), KeyError) as e:
        chat.unsaved[len(chat.turns) - 1] = str(e)


def not_saved(e: BaseException) -> None:
    """Say that a write to the progress store failed, and why (the store changed nothing)."""
    from rag.highlight import md_escape

    st.error(tr("store.not_saved", error=md_escape(str(e))))


# --- answer settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointCheck:
    """The answerer the learner chose, and what to tell them when it cannot be used."""

    settings: Settings
    problem: str = ""  # an i18n key, or ""


def answer_settings(doc_ids: frozenset[str] | None) -> EndpointCheck:
    """:class:`Settings` from the sidebar; an endpoint without a usable address falls back to
    quoting the notes, with the reason."""
    ss, ctx = st.session_state, context()
    url = (ss.get("llm_url") or ctx.llm_url).strip()
    answerer = ss.get("answerer", "extractive")
    problem = ""
    if answerer == "endpoint" and not url:
        answerer, problem = "extractive", "ask.endpoint_no_url"
    elif answerer == "endpoint" and not url.lower().startswith(("http://", "https://")):
        answerer, problem = "extractive", "ask.endpoint_bad_url"
    mode = ss.get("mode")
    return EndpointCheck(
        Settings(
            mode=mode if mode else None,
            k=int(ss.get("k", DEFAULT_K)),
            answer_lang=ss.get("answer_lang", "auto"),
            answerer=answerer,
            llm_url=url,
            llm_model=(ss.get("llm_model") or ctx.llm_model).strip(),
            llm_api_key=ctx.llm_api_key,
            doc_ids=doc_ids,
        ),
        problem,
    )


# --- study ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deck:
    """The cards and mock-interview questions of one index build (made once per build)."""

    cards: tuple
    by_id: dict
    questions: tuple
    vectors: object  # one unit vector per card (for quiz distractors)


@st.cache_resource(show_spinner=False, max_entries=8)
def _deck(build: str) -> Deck:
    from study.cards import cards_from_index, drill_questions_from_index
    from study.quiz import deck_vectors

    index = get_searcher(build).index  # the tables of rag.pages: an engine index reads them, not every row
    cards = tuple(cards_from_index(index))
    return Deck(cards, {c.id: c for c in cards}, tuple(drill_questions_from_index(index)), deck_vectors(index))


@st.cache_resource(show_spinner=False, max_entries=8)
def _synced(build: str, db: str) -> bool:
    """Bring the stored deck up to date with the build's cards (once per build and store)."""
    _open_store(db).sync_cards(_deck(build).cards)
    return True


def deck(searcher: Searcher) -> Deck:
    return _deck(build_key(searcher))


@dataclass(frozen=True)
class Study:
    searcher: Searcher
    store: Store
    profile: Profile
    deck: Deck


def study() -> Study:
    """What a study page needs: the searcher, the store (its deck synced), the learner; a
    friendly stop when the store cannot be opened."""
    searcher = load_searcher()
    s = store()
    p = profile(s)
    if s is not None and p is None and session.get(session.Learner).unknown_profile is not None:
        st.info(tr("study.no_profile"))
        st.stop()
    if s is None or p is None:
        st.warning(tr("study.no_store"))
        st.stop()
    try:
        _synced(build_key(searcher), store_where())
    except (StoreError, *db.errors()) as e:
        session.get(session.Learner).store_error = str(e)
        st.warning(tr("study.no_store"))
        st.stop()
    return Study(searcher, s, p, deck(searcher))
