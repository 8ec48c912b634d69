"""Errors a user can act on. The CLI and the app print their message, never a traceback."""


class RagError(Exception):
    """Base class: the message says what went wrong and what to do."""


class QueryError(RagError, ValueError):
    """The query is empty, too long or otherwise unusable."""


class IndexMissingError(RagError):
    """No index at the given path."""


class IndexCorruptError(RagError):
    """The index folder exists but cannot be read."""


class EncoderMismatchError(RagError):
    """The query encoder differs from the one that built the index."""


class ModelLoadError(RagError):
    """A model name or path could not be loaded."""


class CorpusError(RagError):
    """The corpus is empty or unusable."""


class IndexWriteError(RagError, OSError):
    """A new index build could not be written (disk full, no permission); the old one still serves."""
