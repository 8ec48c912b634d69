"""The signal-mixing diagnostic (eval/signals.py): its linear and mixed-integer programs on
small hand-made candidate sets whose answers are known."""

import numpy as np
import pytest

from eval import signals as S

pytest.importorskip("scipy")
K = len(S.SIGNALS)


def cands(*rows):
    """Candidates with signal values only in the first two columns."""
    f = np.zeros((len(rows), K))
    f[:, :2] = rows
    return f


# question A: the relevant candidate (0) wins on signal 0; B: it wins on signal 1;
# C: it loses to candidate 1 on both signals (dominated: no weighting puts it first)
A = (cands((1.0, 0.0), (0.0, 0.5)), np.array([1, 0]))
B = (cands((0.0, 1.0), (0.6, 0.0)), np.array([1, 0]))
C = (cands((0.2, 0.2), (0.9, 0.9)), np.array([1, 0]))


def test_a_question_counts_only_when_some_weighting_puts_a_relevant_passage_first():
    assert S.separable(*A) and S.separable(*B)
    assert not S.separable(*C)
    assert not S.separable(cands((1.0, 1.0)), np.array([0]))  # nothing relevant


def test_hit_rate_ranks_by_the_weighted_sum():
    mats, labels = [A[0], B[0], C[0]], [A[1], B[1], C[1]]
    w = np.zeros(K)
    w[0] = 1.0
    assert S.hit_rate(mats, labels, w) == pytest.approx(1 / 3)  # A only
    w[:2] = 0.5
    assert S.hit_rate(mats, labels, w) == pytest.approx(2 / 3)  # A (0.5 > 0.25) and B (0.5 > 0.3)


def test_the_best_shared_weighting_is_found_and_proven():
    mats, labels = [A[0], B[0], C[0]], [A[1], B[1], C[1]]
    best = S.shared_weights(mats, labels, seconds=30)
    assert best["optimal"]
    assert best["found"] == pytest.approx(2 / 3)  # C can never be first
    assert best["bound"] == pytest.approx(2 / 3, abs=1e-6)
    w = np.array([best["weights"][s] for s in S.SIGNALS])
    assert (w >= -1e-9).all() and w.sum() == pytest.approx(1.0)


def test_two_questions_that_want_opposite_weightings_cannot_both_be_first():
    # D is first only when 0.4 w0 > w1, E only when 0.4 w1 > w0: never both
    d = (cands((1.0, 0.0), (0.6, 1.0)), np.array([1, 0]))
    e = (cands((0.0, 1.0), (1.0, 0.6)), np.array([1, 0]))
    both = S.shared_weights([d[0], e[0]], [d[1], e[1]], seconds=30)
    assert S.separable(*d) and S.separable(*e)
    assert both["found"] == pytest.approx(0.5)
