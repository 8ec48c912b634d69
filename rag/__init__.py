"""studyrag retrieval core: records, analyzers, hybrid index, fusion, reranking.

Importing ``rag`` is cheap: models, FAISS and torch load only when used.
"""

from rag.errors import RagError
from rag.types import Chunk, Document, Hit

__all__ = ["Chunk", "Document", "Hit", "RagError"]
