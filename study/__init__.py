"""Study mode: flashcards with FSRS reviews, quizzes, a mock-interview drill, progress and export.

Everything here is a library the command line (``studyrag study …``) and the app's pages
call; nothing imports Streamlit. ``import study`` is cheap: the scheduler, the encoder and
Anki packaging load only when used.
"""

from study.types import Card, DrillQuestion, Source

__all__ = ["Card", "DrillQuestion", "Source"]
