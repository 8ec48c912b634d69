"""The sidebar: interface language, learner, saved conversations, answer settings."""

from __future__ import annotations

import streamlit as st

from rag.answer import ANSWER_LANGS, ANSWERERS
from rag.context import DEFAULT_K
from rag.highlight import md_escape
from rag.messages import lang_name
from rag.safety import reveal
from rag.search import MODES
from study.store import MAX_PROFILE_NAME, ProfileError, StoreError, check_profile_name
from ui import i18n, session, state
from ui.state import tr
from study.conversations import Conversations

MAX_LISTED = 30


def render() -> None:
    with st.sidebar:
        st.selectbox(
            tr("side.language"), i18n.LANGS, format_func=i18n.NATIVE.get, key="ui_lang", persist_state="session"
        )
        s = state.store()
        p = state.profile(s)
        unknown = session.get(session.Learner).unknown_profile
        if s is not None and p is None and unknown is not None:
            _unknown_profile(s, unknown)
        elif s is None or p is None:
            st.warning(tr("store.unavailable", path=md_escape(state.store_label())))
            with st.expander(tr("store.reason")):
                st.caption(md_escape(session.get(session.Learner).store_error or ""))
        else:
            _profiles(s, p)
            _conversations(s, p)
        _settings()


def _profiles(s, p) -> None:
    names = [x.name for x in s.profiles()]
    if st.session_state.get("profile_pick") not in names:
        st.session_state["profile_pick"] = p.name
    picked = st.selectbox(tr("side.profile"), names, key="profile_pick", help=tr("side.profile_help"))
    if picked and picked != p.name:
        state.switch_profile(picked)
        st.rerun()
    _profiles_add(s)


def _profiles_add(s) -> None:
    """The "new learner" form."""
    with st.popover(tr("side.new_profile"), icon=":material/person_add:"):
        with st.form("new-profile", clear_on_submit=True, border=False):
            name = st.text_input(tr("side.new_profile_name"), key="new_profile_name")
            if st.form_submit_button(tr("side.add_profile")):
                try:
                    made = s.add_profile(name or "")
                except ProfileError:
                    st.error(tr("side.profile_bad", limit=MAX_PROFILE_NAME))
                except StoreError as e:
                    state.not_saved(e)
                else:
                    state.switch_profile(made.name)
                    st.session_state.pop("profile_pick", None)
                    st.rerun()


def _unknown_profile(s, name: str) -> None:
    """The address named a learner nobody is: create it, or continue as one who exists."""
    try:
        ok = check_profile_name(name)
    except ProfileError:
        ok = None
    shown = md_escape(reveal(name) if ok is None else ok)
    if ok is None:
        st.warning(tr("side.profile_unknown_bad", name=shown))
    else:
        st.warning(tr("side.profile_unknown", name=shown))
        if st.button(tr("side.profile_create", name=shown), key="profile-create", icon=":material/person_add:"):
            try:
                made = s.add_profile(ok)
            except (ProfileError, StoreError) as e:
                state.not_saved(e)
            else:
                state.switch_profile(made.name)
                st.rerun()
    names = [x.name for x in s.profiles()]
    picked = st.selectbox(tr("side.profile_continue"), names, index=None, placeholder=tr("side.profile_choose"),
                          key="profile-continue")
    if picked:
        state.switch_profile(picked)
        st.session_state.pop("profile-continue", None)
        st.rerun()
    _profiles_add(s)


def _conversations(s, p) -> None:
    st.subheader(tr("side.conversations"), divider=False)
    if st.button(tr("side.new_chat"), icon=":material/add_comment:", key="new-chat", width="stretch"):
        state.new_conversation()
        state.go("ask")
    convs = Conversations(s).list(p.id)[:MAX_LISTED]
    if not convs:
        st.caption(tr("side.no_chats"))
    active = session.get(session.Chat).conv_id
    for c in convs:
        left, right = st.columns([0.84, 0.16], vertical_alignment="center", gap="small")
        label = md_escape(c.title)
        if left.button(label, key=f"chat-{c.id}", type="secondary" if c.id == active else "tertiary", width="stretch"):
            state.open_conversation(c.id)
            session.get(session.Chat).scroll_turn = -1
            state.go("ask")
        if right.button(
            "", key=f"del-chat-{c.id}", icon=":material/delete:", help=tr("side.delete_chat"), type="tertiary"
        ):
            try:
                Conversations(s).delete(p.id, c.id)
            except StoreError as e:
                state.not_saved(e)
                continue
            if c.id == active:
                state.new_conversation()
            st.rerun()


def _settings() -> None:
    ss = st.session_state
    lang = state.lang()  # fixed now: a format function may be called outside this run
    with st.expander(tr("side.settings"), icon=":material/tune:"):
        st.selectbox(
            tr("side.mode"),
            (None, *MODES),
            format_func=lambda m: i18n.t(f"mode.{m or 'auto'}", lang),
            key="mode",
            persist_state="session",
        )
        st.slider(tr("side.k"), 1, 20, DEFAULT_K, key="k", persist_state="session")
        st.selectbox(
            tr("side.answer_lang"),
            ANSWER_LANGS,
            format_func=lambda x: i18n.t("answer_lang.auto", lang) if x == "auto" else i18n.NATIVE[x],
            key="answer_lang",
            persist_state="session",
        )
        st.radio(
            tr("side.answerer"),
            ANSWERERS,
            format_func=lambda x: i18n.t(f"answerer.{x}", lang),
            key="answerer",
            persist_state="session",
        )
        _answer_lang_note(lang)
        if ss.get("answerer") == "endpoint":
            st.text_input(
                tr("side.llm_url"), placeholder="http://localhost:11434", key="llm_url", persist_state="session"
            )
            st.text_input(tr("side.llm_model"), key="llm_model", persist_state="session")
    st.toggle(tr("side.details"), key="details", persist_state="session")


def _answer_lang_note(lang: str) -> None:
    """Say what a chosen answer language does: notes without text in it are quoted in their own
    languages (with a line in the chosen one) unless a language-model server writes the answer."""
    want = st.session_state.get("answer_lang", "auto")
    if want not in i18n.NATIVE:
        return
    name = lang_name(lang, want)
    if st.session_state.get("answerer") == "endpoint":
        st.caption(tr("side.answer_lang_endpoint", lang=name))
        return
    have = state.notes_languages()
    if have and want not in have:
        langs = i18n.join((lang_name(lang, x) for x in sorted(have)), lang)
        st.caption(tr("side.answer_lang_no_notes", lang=name, langs=langs))
