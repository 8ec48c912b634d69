"""Pipeline defaults. Each value was chosen with the eval harness (``python -m eval``);
``eval/results/report.md`` has the runs behind them."""

ANALYZER = "words+bigram"
CHUNK_MAX_CHARS = 800
FUSION = "wsum"
FUSION_WEIGHTS = (0.8, 0.2)  # (bm25, dense) after min-max normalisation; chosen by `python -m eval tune`
RRF_K = 60
ADAPTIVE_FUSION = True  # BM25 weight x the query's vocabulary coverage; dense gets the rest
CANDIDATES = 50  # per leg; the reranker reorders the fused top CANDIDATES
DEFAULT_MODE = "rerank"
