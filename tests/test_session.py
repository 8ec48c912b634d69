"""ui/session.py: one typed state object per page; switching learner resets the learner's pages."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _script():
    import streamlit as st

    from ui import session

    quiz = session.get(session.Quiz)
    quiz.i += 1
    st.session_state.setdefault("quiz_choice_0", 2)  # a widget value the quiz page owns
    bench = session.get(session.Bench)
    bench.log = "kept"
    session.get(session.Chat).conv_id = 7
    if st.session_state.get("switch"):
        session.reset(*session.LEARNER_PAGES)
    st.write(f"quiz.i={session.get(session.Quiz).i} chat={session.get(session.Chat).conv_id} bench={bench.log}")


def test_page_state_objects_persist_and_learner_reset_clears_only_the_learners_pages():
    at = AppTest.from_function(_script)
    at.run()
    at.run()
    assert at.markdown[0].value == "quiz.i=2 chat=7 bench=kept"
    assert isinstance(at.session_state["_state.Quiz"].i, int) and at.session_state["quiz_choice_0"] == 2
    at.session_state["switch"] = True
    at.run()
    assert at.markdown[0].value == "quiz.i=0 chat=None bench=kept"
    assert "quiz_choice_0" not in at.session_state


def test_navigation_is_taken_once():
    def script():
        import streamlit as st

        from ui import session

        if not st.session_state.get("asked"):
            st.session_state["asked"] = True
            session.navigate("quiz")
        st.write(f"goto={session.take_navigation()}")

    at = AppTest.from_function(script)
    at.run()
    assert at.markdown[0].value == "goto=quiz"
    at.run()
    assert at.markdown[0].value == "goto=None"
