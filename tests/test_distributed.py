"""Encoding on a local Ray cluster gives the plain loop's vectors and the same index."""

from __future__ import annotations

import importlib.util
import os
import warnings

import numpy as np
import pytest
from conftest import SMALL_CORPUS, write_corpus

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed (pip install -e '.[dev]')"),
]


@pytest.fixture(scope="module")
def cluster():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}})
    yield ray
    ray.shutdown()


def test_ray_ingest_writes_the_plain_loops_index(cluster, tmp_path):
    from ingest.distributed import RayEncoder
    from ingest.pipeline import ingest
    from rag.backends import open_index
    from rag.encoders import load_encoder

    warnings.simplefilter("ignore")
    corpus = write_corpus(tmp_path / "corpus", SMALL_CORPUS)
    plain = load_encoder("use-m3")
    ingest(corpus, tmp_path / "plain", encoder=plain)
    enc = RayEncoder("use-m3", workers=2)
    assert enc.id == plain.id and enc.dim == plain.dim and enc.workers == 2
    ingest(corpus, tmp_path / "ray", encoder=enc)
    a, b = open_index(tmp_path / "plain"), open_index(tmp_path / "ray")
    assert [c.id for c in a.chunks] == [c.id for c in b.chunks]
    assert np.abs(a.dense.vectors - b.dense.vectors).max() < 1e-5
    assert np.abs(a.units - b.units).max() < 1e-5
    # an odd count is split into uneven shards and comes back in order
    texts = [c.text for c in a.chunks][:7]
    np.testing.assert_allclose(enc.encode(texts, query=False), plain.encode(texts, query=False), atol=1e-5)
    assert enc.encode([], query=True).shape == (0, plain.dim)
    enc.close()


def test_bad_worker_counts_are_refused(cluster):
    from ingest.distributed import RayEncoder

    with pytest.raises(ValueError, match="workers"):
        RayEncoder("use-m3", workers=0)
