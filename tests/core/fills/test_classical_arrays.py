"""Numerical pieces of the classical fills, against hand computations and brute force."""

from datetime import date

import numpy as np
import pytest

from gapfill.core.errors import Cancelled, GapfillError
from gapfill.core.fills.histogram_matched_fill import (
    fill_by_histogram_matching,
    fill_nearest_matched,
    fill_weighted_matched,
    gain_offset,
    matched_values,
)
from gapfill.core.fills.temporal_interpolation import interpolate_in_time
from gapfill.core.raster.fill_engine import Block
from gapfill.core.raster.morphology import box_mean, box_sum, dilate
from gapfill.core.raster.pipeline import run_pipeline


def test_box_sum_matches_brute_force():
    rng = np.random.default_rng(0)
    array = rng.random((7, 9))
    radius = 2
    expected = np.zeros_like(array)
    for y in range(7):
        for x in range(9):
            expected[y, x] = array[max(0, y - 2) : y + 3, max(0, x - 2) : x + 3].sum()
    np.testing.assert_allclose(box_sum(array, radius), expected)
    np.testing.assert_allclose(box_mean(np.full((5, 5), 3.0), 4), 3.0)


def test_dilate_grows_a_disk():
    mask = np.zeros((9, 9), dtype=bool)
    mask[4, 4] = True
    grown = dilate(mask, 2)
    ys, xs = np.nonzero(grown)
    assert ((ys - 4) ** 2 + (xs - 4) ** 2 <= 4).all()
    assert grown.sum() == 13  # the radius-2 digital disk
    assert (dilate(mask, 0) == mask).all()


def test_dilate_reaches_across_an_array_smaller_than_its_radius():
    """A 5-px image and a 6-px cloud margin: offsets beyond the array move nothing."""
    mask = np.zeros((4, 5), dtype=bool)
    mask[0, 0] = True
    grown = dilate(mask, 6)
    ys, xs = np.indices(mask.shape)
    np.testing.assert_array_equal(grown, ys**2 + xs**2 <= 36)


def test_interpolation_between_dates_is_linear_in_time():
    shape = (1, 1, 3)
    before = (date(2020, 1, 1), np.full(shape, 100.0), np.array([[True, True, False]]))
    after = (date(2020, 1, 11), np.full(shape, 200.0), np.array([[True, False, True]]))
    values, filled = interpolate_in_time(date(2020, 1, 4), [before, after])
    # 3 days after the first of 10: 100 + 0.3 * 100; one side only: that side's value
    np.testing.assert_allclose(values[0, 0], [130.0, 100.0, 200.0])
    assert filled.all()


def test_interpolation_prefers_the_nearest_usable_date():
    shape = (1, 1, 2)
    far = (date(2020, 1, 1), np.full(shape, 10.0), np.array([[True, True]]))
    near = (date(2020, 1, 9), np.full(shape, 50.0), np.array([[True, False]]))
    values, filled = interpolate_in_time(date(2020, 1, 10), [far, near])
    np.testing.assert_allclose(values[0, 0], [50.0, 10.0])
    empty = (date(2020, 1, 9), np.full(shape, 1.0), np.array([[False, False]]))
    _, none = interpolate_in_time(date(2020, 1, 10), [empty])
    assert not none.any()


def test_gain_offset_maps_mean_and_std():
    source = np.array([1.0, 2.0, 3.0, 4.0])
    target = 3.0 * source + 7.0
    sums = [target.sum(), (target**2).sum(), source.sum(), (source**2).sum()]
    gain, offset = gain_offset(np.float64(4), *(np.float64(v) for v in sums))
    assert gain == pytest.approx(3.0) and offset == pytest.approx(7.0)


def test_histogram_matching_recovers_a_linear_change():
    rng = np.random.default_rng(1)
    target = rng.random((2, 40, 40)) * 1000
    source = (target - 50.0) / 1.5  # another date: other gain and offset
    clear = np.ones((40, 40), dtype=bool)
    clear[10:30, 10:30] = False  # a cloud on the target
    adjusted = matched_values(target, clear, source, np.ones_like(clear), 15, 50)
    np.testing.assert_allclose(adjusted[:, ~clear], target[:, ~clear], rtol=1e-9)
    np.testing.assert_allclose(adjusted[:, 15:25, 15:25], target[:, 15:25, 15:25], rtol=1e-6)


def test_local_regression_leans_to_the_mean_where_the_date_agrees_little():
    """A date that is the target under another gain plus its own texture (noise the target does
    not share): matching copies that texture at full contrast, the least-squares fit shrinks it
    and errs less; on a purely linear change both are exact."""
    rng = np.random.default_rng(3)
    target = 500 + 100 * rng.standard_normal((1, 60, 60))
    gap = np.zeros((60, 60), dtype=bool)
    gap[20:40, 20:40] = True
    noisy = 2.0 * target + 400 * rng.standard_normal(target.shape)
    everywhere = np.ones_like(gap)
    data = np.where(gap, 0.0, target)
    block = Block((0, 0, 60, 60), (0, 0, 60, 60), data, gap, data, None)
    errors = {}
    for regression in (False, True):
        values, filled = fill_nearest_matched(
            date(2020, 6, 1), block, [(date(2020, 6, 2), noisy, everywhere)], 15, 50,
            regression=regression,
        )
        assert filled[gap].all()
        errors[regression] = np.square(values[:, gap] - target[:, gap]).mean()
    assert errors[True] < 0.85 * errors[False]  # expected: 8000 against 11056
    linear = (target - 50.0) / 1.5
    exact = matched_values(target, ~gap, linear, everywhere, 15, 50, regression=True)
    np.testing.assert_allclose(exact[:, gap], target[:, gap], rtol=1e-6)
    with pytest.raises(GapfillError, match="two methods: choose one"):
        fill_by_histogram_matching(None, date(2020, 6, 1), [], "never.tif", weighted=True,
                                   regression=True)


def test_every_date_weighted_by_its_fit_beats_the_nearest_unlike_one():
    """The nearest date holds another scene (a harvest between, say); a farther one is the
    target under another gain and offset: the weighted fill follows the alike date, the
    nearest-date fill the unlike one. Pixels only one date covers take it; none, no value."""
    rng = np.random.default_rng(2)
    target = rng.random((2, 60, 60)) * 1000
    gap = np.zeros((60, 60), dtype=bool)
    gap[20:40, 20:40] = True
    unlike, alike = rng.random((2, 60, 60)) * 1000, (target - 50.0) / 1.5
    everywhere = np.ones_like(gap)
    only_left = everywhere.copy()
    only_left[:, 30:] = False  # the alike date is cloudy on the right half
    observations = [(date(2020, 6, 2), unlike, everywhere), (date(2020, 7, 1), alike, only_left)]
    data = np.where(gap, 0.0, target)
    block = Block((0, 0, 60, 60), (0, 0, 60, 60), data, gap, data, None)
    weighted, filled = fill_weighted_matched(block, observations, 15, 50)
    nearest, _ = fill_nearest_matched(date(2020, 6, 1), block, observations, 15, 50)
    left, right = gap & only_left, gap & ~only_left
    assert filled[gap].all() and not filled[~gap].any()
    error = np.abs(weighted - target)
    assert error[:, left].max() < 1e-3 * np.abs(nearest - target)[:, left].mean()
    np.testing.assert_allclose(weighted[:, right], nearest[:, right])  # one date there
    nothing = [(date(2020, 6, 2), unlike, np.zeros_like(gap))]
    assert not fill_weighted_matched(block, nothing, 15, 50)[1].any()


def test_pipeline_writes_in_order_and_stops_on_cancel():
    written = []
    run_pipeline(range(10), 10, lambda i: i, lambda i: i * i, lambda i, r: written.append(r))
    assert written == [i * i for i in range(10)]
    calls = []

    def cancelled():
        return len(calls) >= 3

    with pytest.raises(Cancelled):
        run_pipeline(
            range(10),
            10,
            lambda i: calls.append(i) or i,
            lambda i: i,
            lambda i, r: None,
            cancelled=cancelled,
        )
    assert len(calls) == 3


def test_pipeline_stops_while_a_block_still_computes():
    """A cancel is honoured while the current block computes, not once it is done."""
    import threading

    release, cancel, finished = threading.Event(), threading.Event(), threading.Event()

    def compute(item: int) -> int:
        cancel.set()  # the user cancels while this block computes
        release.wait(10)
        finished.set()
        return item

    try:
        with pytest.raises(Cancelled):
            run_pipeline(range(3), 3, lambda i: i, compute, lambda i, r: None,
                         workers=1, cancelled=cancel.is_set)
        assert not finished.is_set()  # the block was still computing when Cancelled came
    finally:
        release.set()


def test_filled_values_never_land_on_the_nodata_value():
    from gapfill.core.raster.output import cast_to

    values = np.array([-0.3, 0.4, 0.6, 70000.0])
    np.testing.assert_array_equal(cast_to(values, np.uint16, 0), [1, 1, 1, 65535])
    np.testing.assert_array_equal(cast_to(values, np.uint16, 65535), [0, 0, 1, 65534])
    np.testing.assert_array_equal(cast_to(values, np.uint16), [0, 0, 1, 65535])
    assert cast_to(np.array([-9999.0]), np.float32, -9999.0)[0] != -9999.0
    wide = np.array([-3e9, 2.5, 3e9], dtype=np.float32)  # float32 cannot hold 2**31 − 1
    np.testing.assert_array_equal(cast_to(wide, np.int32), [-(2**31), 2, 2**31 - 1])
