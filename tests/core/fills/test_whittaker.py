"""The Whittaker smoother against a dense solve, and its gap fill."""

import numpy as np
import pytest

from gapfill.core.fills.whittaker import difference_penalty, whittaker_fill, whittaker_smooth


@pytest.mark.parametrize("order", [1, 2, 3])
def test_smoother_matches_a_dense_solve(order):
    rng = np.random.default_rng(order)
    steps, lam = 11, 7.5
    values = rng.normal(size=(steps, 3, 4))
    weights = (rng.random((steps, 3, 4)) > 0.3) * rng.uniform(0.5, 2.0, (steps, 3, 4))
    weights[:order, 0, 0] = 1.0
    smooth = whittaker_smooth(values, weights, lam, order)
    penalty = difference_penalty(steps, order)
    for i in range(3):
        for j in range(4):
            w = weights[:, i, j]
            if (w > 0).sum() < order:
                assert np.isnan(smooth[:, i, j]).all()
                continue
            expected = np.linalg.solve(np.diag(w) + lam * penalty, w * values[:, i, j])
            np.testing.assert_allclose(smooth[:, i, j], expected, rtol=1e-9, atol=1e-12)


def test_fill_keeps_observations_and_handles_sparse_pixels():
    values = np.arange(24, dtype=float).reshape(6, 2, 2) * 1.5
    valid = np.ones(values.shape, bool)
    valid[2:4, 0, 0] = False  # two gaps in a line: the smoother keeps the line
    valid[:, 0, 1] = False  # never observed
    valid[1:, 1, 0] = False  # one observation: that value everywhere
    filled, exists = whittaker_fill(values, valid, lam=100.0)
    assert np.array_equal(filled[valid], values[valid])
    np.testing.assert_allclose(filled[2:4, 0, 0], values[2:4, 0, 0], atol=1e-6)
    assert np.isnan(filled[:, 0, 1]).all() and not exists[:, 0, 1].any()
    assert np.all(filled[:, 1, 0] == values[0, 1, 0])


@pytest.mark.parametrize("order", [1, 2])
def test_uneven_times_match_a_dense_divided_difference_solve(order):
    rng = np.random.default_rng(10 + order)
    times = np.cumsum(rng.integers(1, 20, 9)).astype(float)
    values = rng.normal(size=(9, 2, 3))
    weights = (rng.random((9, 2, 3)) > 0.3).astype(float)
    weights[:order + 1] = 1.0
    smooth = whittaker_smooth(values, weights, 3.0, order, times)
    penalty = difference_penalty(9, order, times)
    for i in range(2):
        for j in range(3):
            w = weights[:, i, j]
            expected = np.linalg.solve(np.diag(w) + 3.0 * penalty, w * values[:, i, j])
            np.testing.assert_allclose(smooth[:, i, j], expected, rtol=1e-9, atol=1e-12)
    even = np.arange(9) * 5.0 + 100  # equal spacing gives the unit-step smoother
    np.testing.assert_allclose(whittaker_smooth(values, weights, 3.0, order, even),
                               whittaker_smooth(values, weights, 3.0, order), rtol=1e-10)
