"""Aggregation: pinned pivot tables and a known-answer summary from hand-made results."""

import math

import numpy as np
import pandas as pd
import pytest
from test_report_fixtures import write_results

from vniahd.errors import VniahdError
from vniahd.reporting import aggregate
from vniahd.reporting.load import load_inputs


def _pinned(v, s, L, d, n, r):
    """Cells by hand (needles n0, n1 × repeats 0, 1 = 4 samples per cell):
    L=100: depth 0 all right (1.0); depth 0.5 only n0 (0.5); depth 1 n0 + n1's repeat 1 (0.75).
    L=300: depth 0 none (0.0); depth 0.5 only n0 repeat 0 (0.25); depth 1 has no samples."""
    if L == 100:
        return {0.0: True, 0.5: n == "n0", 1.0: n == "n0" or r == 1}[d]
    return {0.0: False, 0.5: n == "n0" and r == 0}[d]


@pytest.fixture
def pinned(tmp_path):
    d = write_results(
        tmp_path / "r",
        correct=_pinned,
        lengths=(100, 300),
        depths=(0.0, 0.5, 1.0),
        needles=("n0", "n1"),
        repeats=2,
        skip=lambda v, s, L, dp: L == 300 and dp == 1.0,
    )
    return load_inputs([d]).records


def test_pinned_pivot_frames(pinned):
    table = aggregate.pivot(pinned, "frames")
    assert list(table.index) == [0.0, 50.0, 100.0]
    assert list(table.columns) == [100.0, 300.0]
    expected = np.array([[1.0, 0.0], [0.5, 0.25], [0.75, np.nan]])
    np.testing.assert_array_equal(table.to_numpy(), expected)  # NaN stays NaN, never 0
    counts = aggregate.counts(pinned, "frames")
    np.testing.assert_array_equal(counts.to_numpy(), [[4, 4], [4, 4], [4, 0]])


def test_pinned_pivot_tokens(pinned):
    table = aggregate.pivot(pinned, "tokens")  # 144 tokens per frame in the fixture
    assert list(table.columns) == [14400.0, 43200.0]
    assert table.loc[50.0, 43200.0] == 0.25


def test_pinned_summary(pinned):
    row = aggregate.summary(pinned).iloc[0]
    # 10 of 20 right overall; near = length 100 (9 of 12), far = length 300 (1 of 8).
    assert (row["n"], row["mean"]) == (20, 0.5)
    assert row["ci_low"] == pytest.approx(0.2992980081982123)
    assert row["ci_high"] == pytest.approx(0.7007019918017877)
    assert (row["near_n"], row["near_mean"], row["near_lengths"]) == (12, 0.75, "100")
    assert row["near_ci_low"] == pytest.approx(0.4676946650664343)
    assert (row["far_n"], row["far_mean"], row["far_lengths"]) == (8, 0.125, "300")
    assert row["far_ci_high"] == pytest.approx(0.4708881822128535)
    assert row["benchmark"] == "V-NIAH" and (row["lengths"], row["depths"]) == (2, 3)


def test_known_answer_near_right_far_wrong(tmp_path):
    d = write_results(
        tmp_path / "r",
        correct=lambda v, s, L, dp, n, r: L <= 200,
        lengths=(100, 200, 300, 400),
        depths=(0.0, 0.25, 0.5, 0.75, 1.0),
        needles=("a", "b", "c", "d", "e"),
        schedules=("reference",),
    )
    row = aggregate.summary(load_inputs([d]).records).iloc[0]
    assert (row["n"], row["mean"], row["near_mean"], row["far_mean"]) == (100, 0.5, 1.0, 0.0)
    assert (row["near_lengths"], row["far_lengths"]) == ("100-200", "300-400")
    # Wilson(50, 100) and Wilson(50, 50), Wilson(0, 50) by hand.
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((0.4038315303659956, 0.5961684696340044))
    assert (row["near_ci_low"], row["near_ci_high"]) == pytest.approx((0.9286524008666414, 1.0))
    assert (row["far_ci_low"], row["far_ci_high"]) == pytest.approx((0.0, 0.07134759913335872))
    assert row["benchmark"] == "V-NIAH-D"


def test_split_lengths():
    assert aggregate.split_lengths([300, 100, 200, 100]) == ([100, 200], [300])
    assert aggregate.split_lengths([1, 2, 3, 4]) == ([1, 2], [3, 4])
    assert aggregate.split_lengths([7]) == ([7], [])


def test_wide_summary_and_curve(tmp_path):
    d = write_results(
        tmp_path / "r",
        variants=("vanilla", "videorope"),
        schedules=("none", "reference"),
        correct=lambda v, s, L, dp, n, r: v == "videorope" or (s == "none" and L == 100),
        lengths=(100, 300),
        depths=(0.0, 1.0),
        needles=("n0",),
    )
    records = load_inputs([d]).records
    summ = aggregate.summary(records)
    assert list(summ["variant"]) == ["vanilla", "vanilla", "videorope", "videorope"]
    assert list(summ["schedule"]) == ["none", "reference", "none", "reference"]
    wide = aggregate.wide_summary(summ)
    assert list(dict.fromkeys(b for b, _ in wide.columns)) == ["V-NIAH", "V-NIAH-D"]
    assert wide[("V-NIAH", "mean")].tolist() == [0.5, 1.0]
    assert wide[("V-NIAH-D", "mean")].tolist() == [0.0, 1.0]
    key = aggregate.GroupKey("random:qwen2-vl", "f00d", "vanilla", "reference", "none", "abc123")
    g = dict(aggregate.groups(records))[key]
    c = aggregate.curve(g, "frames")
    assert c["x"].tolist() == [100.0, 300.0] and c["mean"].tolist() == [1.0, 0.0]
    assert c["n"].tolist() == [2, 2]


def test_delta_union_grid():
    a = pd.DataFrame([[1.0, 0.5]], index=[0.0], columns=[100.0, 300.0])
    b = pd.DataFrame([[0.25], [1.0]], index=[0.0, 50.0], columns=[100.0])
    d = aggregate.delta(a, b)
    assert d.loc[0.0, 100.0] == 0.75
    assert math.isnan(d.loc[0.0, 300.0]) and math.isnan(d.loc[50.0, 100.0])


def test_tokens_axis_needs_tokens_per_frame(pinned):
    with pytest.raises(VniahdError, match="--x frames"):
        aggregate.pivot(pinned.assign(tokens_per_frame=np.nan), "tokens")
    with pytest.raises(VniahdError, match="unknown x axis"):
        aggregate.pivot(pinned, "seconds")
