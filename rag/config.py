"""Index-time defaults, each chosen with ``python -m eval ablations`` (see
``eval/results/ablations.md``). Search-time values (fusion, dense mix, reranker, default
mode) are tuned per encoder and live in ``rag/tuned.json`` (:mod:`rag.tuned`)."""

ANALYZER = "words+bigram"
CHUNK_MAX_CHARS = 800
