"""User-facing shells over the libraries: the ``studyrag`` command (and the app's pages)."""
