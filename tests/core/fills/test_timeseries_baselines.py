"""Time-series baselines: hand-computed values, valid values kept, never-valid pixels unfilled,
and on a real Sentinel-5P block every artificial gap with data before or after gets a value."""

from __future__ import annotations

import numpy as np
import pytest

from gapfill.core.errors import GapfillError
from gapfill.core.evaluate.metrics import NO_SCALING, evaluate
from gapfill.core.evaluate.simulate_gaps import read_stpconv
from gapfill.core.fills.timeseries_baselines import temporal_linear, temporal_mean

# One row of three pixels over five steps: NaN = invalid.
SERIES = np.array([[1.0, 5.0, np.nan], [np.nan, np.nan, np.nan], [3.0, np.nan, np.nan],
                   [np.nan, 7.0, np.nan], [7.0, np.nan, np.nan]])[:, np.newaxis, :]


def valid_of(series: np.ndarray) -> np.ndarray:
    return np.isfinite(series)


def test_temporal_mean_by_hand():
    values, filled = temporal_mean(np.nan_to_num(SERIES), valid_of(SERIES))
    np.testing.assert_array_equal(values[:, 0, 0], [1, 11 / 3, 3, 11 / 3, 7])
    np.testing.assert_array_equal(values[:, 0, 1], [5, 6, 6, 7, 6])
    assert np.isnan(values[:, 0, 2]).all() and not filled[:, 0, 2].any()
    assert filled[:, 0, :2].all()


def test_temporal_linear_by_hand_with_nearest_value_at_the_ends():
    values, filled = temporal_linear(np.nan_to_num(SERIES), valid_of(SERIES))
    np.testing.assert_allclose(values[:, 0, 0], [1, 2, 3, 5, 7])
    np.testing.assert_allclose(values[:, 0, 1], [5, 17 / 3, 19 / 3, 7, 7])  # last: nearest
    assert np.isnan(values[:, 0, 2]).all() and not filled[:, 0, 2].any()


def test_temporal_linear_uses_the_given_times():
    series = np.array([2.0, np.nan, 12.0])[:, None, None]
    values, _ = temporal_linear(np.nan_to_num(series), valid_of(series), times=[0, 8, 10])
    assert values[1, 0, 0] == pytest.approx(10.0)
    with pytest.raises(GapfillError, match="increasing time"):
        temporal_linear(np.nan_to_num(series), valid_of(series), times=[0, 0, 1])


def test_shapes_are_checked():
    with pytest.raises(GapfillError, match="\\(time, y, x\\)"):
        temporal_mean(np.zeros((3, 4)), np.ones((3, 4), dtype=bool))


def test_real_sentinel5p_block(data_dir):
    block = read_stpconv(data_dir / "s5p_co" / "training", "0_3_12")
    valid = block.mask == 1
    evaluation = block.valmask == 1
    for baseline in (temporal_mean, temporal_linear):
        values, filled = baseline(block.x, valid)
        np.testing.assert_array_equal(values[valid], block.x[valid])
        reachable = evaluation & valid.any(axis=0)[np.newaxis]
        assert filled[reachable].all()
        metrics = evaluate(block.y, np.where(filled, values, np.nan), evaluation,
                           scaling=NO_SCALING, data_range=0.05)
        assert metrics.mae < 0.2 * np.abs(block.y[evaluation]).mean()
