"""Pipeline defaults. Each value was chosen with the eval harness (``python -m eval``);
``eval/results/report.md`` has the runs behind them."""

ANALYZER = "words+bigram"
CHUNK_MAX_CHARS = 800
FUSION = "wsum"
FUSION_WEIGHTS = (0.9, 0.1)  # (bm25, dense) after min-max normalisation
RRF_K = 60
ADAPTIVE_FUSION = True  # scale the BM25 weight by the query's vocabulary coverage
CANDIDATES = 50  # per leg; the reranker reorders the fused top CANDIDATES
DEFAULT_MODE = "rerank"
