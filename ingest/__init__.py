"""Ingest: documents in, chunks and a hybrid index out."""
