"""The plan: grid parsing, schedules (hand-worked and exhaustive), determinism, offsets, period."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from vniahd.errors import UnknownNameError, VniahdError
from vniahd.plan import (
    COLUMNS,
    get_schedule,
    insert_slots,
    needle_position,
    parse_depths,
    parse_lengths,
    parse_period,
    parse_values,
    plan_samples,
    window_offsets,
)

P = 200


# --- grid ---------------------------------------------------------------------------------------


def test_ranges_are_exact_and_inclusive():
    assert [float(d) for d in parse_depths("0:1:0.2")] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert parse_lengths("100:2900:200") == list(range(100, 3000, 200))
    assert len(parse_lengths("100:2900:200")) == 15
    assert [float(d) for d in parse_depths("0:1:0.3")] == [0.0, 0.3, 0.6, 0.9]  # 1 not landed on
    assert [float(d) for d in parse_depths("0:1:0.1")][-1] == 1.0 and len(parse_depths("0:1:0.1")) == 11
    assert parse_lengths("16, 64,128:512:128") == [16, 64, 128, 256, 384, 512]
    assert parse_lengths("7") == [7] and parse_depths("0.50") == [Decimal("0.5")]


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("0:10:0", "step must be positive"),
        ("0:10:-1", "step must be positive"),
        ("10:0:1", "below its start"),
        ("a:b:c", "is not a number"),
        ("1:2", "must be a:b:step"),
        ("1,,2", "empty item"),
        ("", "empty value"),
        ("1,1", "appears twice"),
        ("0:1:1e-9", "use a larger step"),
        ("nan", "not a finite number"),
    ],
)
def test_grid_errors(spec, fragment):
    with pytest.raises(VniahdError, match=fragment):
        parse_values(spec, "--x")


def test_lengths_and_depths_validation():
    for bad in ("0", "1.5", "-100:100:100"):
        with pytest.raises(VniahdError, match="positive whole number"):
            parse_lengths(bad)
    for bad in ("1.2", "-0.1", "0:2:0.5"):
        with pytest.raises(VniahdError, match=r"outside \[0, 1\]"):
            parse_depths(bad)


def test_needle_position_is_exact_and_matches_reference_floats_on_its_grid():
    assert needle_position(Decimal("0.29"), 100) == 29  # float int(0.29*100) would give 28
    for n in parse_lengths("100:2900:200"):
        for d in parse_depths("0:1:0.2"):
            assert needle_position(d, n) == int(float(d) * n)


# --- reference schedule -------------------------------------------------------------------------


def _one(n, depth, seed=24242424, schedule="reference", period=P, **kw):
    (s,) = plan_samples(
        lengths=[n],
        depths=[depth],
        needles=[("x", 1)],
        schedule=schedule,
        period=period,
        seed=seed,
        haystack_frames=10_000,
        **kw,
    )
    return s


@pytest.mark.parametrize(
    "n, depth, needle, dslots, total",
    [
        (100, "0.5", 50, [], 101),  # q-200 <= 0 and q+200 >= N: none
        (300, "0", 0, [201], 302),  # q < 200: after (before haystack frame 200)
        (300, "1", 301, [100], 302),  # q+200 >= N: before (before haystack frame 100)
        (400, "0.5", 200, [], 401),  # q=200: q-200=0 <= 0 and q+200=400 >= 400: none
        (500, "0.2", 100, [301], 502),  # q=100 < 200: after
        (2900, "1", 2901, [2700], 2902),  # depth 1 appends the needle; distractor before frame 2700
        (2900, "0", 0, [201], 2902),
    ],
)
def test_reference_hand_worked(n, depth, needle, dslots, total):
    s = _one(n, depth)
    assert (s.needle_slot, s.distractor_slots, s.num_frames) == (needle, dslots, total)


def test_reference_draw_both_sides_hand_worked():
    # N=700, depth 0.6: q=420, both sides fit → the draw decides.
    seen = set()
    for seed in range(40):
        s = _one(700, "0.6", seed=seed)
        seen.add((s.needle_slot, tuple(s.distractor_slots)))
    assert seen == {(421, (220,)), (420, (621,))}


def _reference_by_list(n: int, q: int, side: str | None) -> tuple[int, list[int], int]:
    """Independent model of the reference code: build the frame list by concatenation."""
    hay = [f"h{i}" for i in range(n)]
    if side is None:
        seq = hay[:q] + ["N"] + hay[q:]
    elif side == "before":
        seq = hay[: q - P] + ["D"] + hay[q - P : q] + ["N"] + hay[q:]
    else:
        seq = hay[:q] + ["N"] + hay[q : q + P] + ["D"] + hay[q + P :]
    return seq.index("N"), [i for i, x in enumerate(seq) if x == "D"], len(seq)


def test_reference_exhaustive_against_list_model():
    sched = get_schedule("reference")
    for n in list(range(1, 460, 3)) + [899, 900, 901, 2900]:
        qs = (
            range(n + 1)
            if n < 460
            else sorted(set(range(0, n + 1, 11)) | {P - 1, P, P + 1, n - P - 1, n - P, n - P + 1, n})
        )
        for q in qs:
            rng = random.Random(n * 7919 + q)
            pos = sched.positions(n, q, P, rng, None)
            needle, ds, total = insert_slots(n, q, pos)
            if q - P <= 0 and q + P >= n:
                assert pos == [] and (needle, total) == (q, n + 1)
                continue
            assert len(ds) == 1 and abs(ds[0] - needle) == P + 1 and total == n + 2
            side = "before" if ds[0] < needle else "after"
            if q < P:
                assert side == "after"
            elif q + P >= n:
                assert side == "before"
            assert (needle, ds, total) == _reference_by_list(n, q, side)


def test_reference_draw_is_seeded_balanced_and_grid_independent():
    kw = dict(
        lengths=[1500, 2100, 2900],
        depths=["0.4", "0.6"],
        needles=[(f"n{i}", 1) for i in range(40)],
        schedule="reference",
        period=P,
        haystack_frames=500,
    )
    a = plan_samples(seed=1, **kw)
    assert a == plan_samples(seed=1, **kw)
    b = plan_samples(seed=2, **kw)
    assert [s.distractor_slots for s in a] != [s.distractor_slots for s in b]
    before = sum(s.distractor_slots[0] < s.needle_slot for s in a)
    assert 0.35 < before / len(a) < 0.65
    # a sub-grid plans exactly the same samples
    sub = plan_samples(seed=1, **{**kw, "lengths": [2100], "needles": kw["needles"][5:7]})
    assert all(s in a for s in sub)


# --- periodic and none --------------------------------------------------------------------------


@pytest.mark.parametrize("period", [1, 7, 63, 200])
def test_periodic_spacing_exact(period):
    sched = get_schedule("periodic")
    for n in (1, 50, 199, 200, 201, 1000, 1234):
        for q in sorted({0, 1, n // 3, n // 2, n - 1, n, period, n - period}):
            if not 0 <= q <= n:
                continue
            pos = sched.positions(n, q, period, random.Random(0), None)
            expected = [q - k * period for k in range(1, n + 1) if q - k * period > 0] + [
                q + k * period for k in range(1, n + 1) if q + k * period < n
            ]
            assert pos == sorted(expected)
            needle, ds, total = insert_slots(n, q, pos)
            slots = sorted(ds + [needle])
            assert all(b - a == period + 1 for a, b in zip(slots, slots[1:]))
            assert total == n + 1 + len(pos)


def test_periodic_cap_keeps_nearest():
    s = _one(1000, "0.5", schedule="periodic", period=200)
    assert (s.needle_slot, s.distractor_slots, s.num_frames) == (502, [100, 301, 703, 904], 1005)
    s = _one(1000, "0.5", schedule="periodic", period=200, max_distractors=3)
    assert (s.needle_slot, s.distractor_slots) == (502, [100, 301, 703])  # k=2 before kept, after dropped
    s = _one(1000, "0.5", schedule="periodic", period=200, max_distractors=0)
    assert s.distractor_slots == [] and s.num_frames == 1001


def test_periodic_distractor_images_cycle_nearest_first():
    (s,) = plan_samples(
        lengths=[1000],
        depths=["0.5"],
        needles=[("a", 2)],
        schedule="periodic",
        period=200,
        seed=0,
        haystack_frames=1000,
    )
    # slots 100 (k=-2), 301 (k=-1), 703 (k=+1), 904 (k=+2); nearest order: 300,700,100,900
    assert s.distractor_images == [
        "distractor-a-0.png",
        "distractor-a-0.png",
        "distractor-a-1.png",
        "distractor-a-1.png",
    ]


def test_none_schedule():
    s = _one(500, "0.4", schedule="none")
    assert (s.needle_slot, s.distractor_slots, s.num_frames, s.distractor_images) == (200, [], 501, [])


# --- samples, offsets, ids, validation ----------------------------------------------------------


def test_sample_rows_ids_and_columns():
    samples = plan_samples(
        lengths=[100, 300],
        depths=parse_depths("0:1:0.5"),
        needles=[("a", 1), ("b-2", 1)],
        schedule="reference",
        period=P,
        seed=3,
        haystack_frames=250,
        repeats=3,
    )
    assert len(samples) == 2 * 3 * 2 * 3
    assert tuple(samples[0].to_row()) == COLUMNS
    ids = [s.sample_id for s in samples]
    assert len(set(ids)) == len(ids)
    assert ids[:4] == ["L100_D0_a_r0", "L100_D0_a_r1", "L100_D0_a_r2", "L100_D0_b-2_r0"]
    assert "L300_D0.5_b-2_r2" in ids and "L300_D1_a_r0" in ids
    assert all(s.needle_image == f"needle-{s.needle_id}.png" for s in samples)


def test_window_offsets():
    offs = window_offsets(5, 100, 250, 20)
    assert offs[0] == 0 and len(set(offs)) == 20 and all(0 <= o <= 150 for o in offs)
    assert offs[:5] == window_offsets(5, 100, 250, 5)  # prefix-stable
    assert window_offsets(5, 100, 250, 20) == offs and window_offsets(6, 100, 250, 20) != offs
    tiled = window_offsets(5, 300, 250, 30)
    assert all(0 <= o < 250 for o in tiled) and len(set(tiled)) == 30
    assert window_offsets(5, 250, 250, 4) == [0, 0, 0, 0]  # only one window exists
    few = window_offsets(1, 98, 100, 5)
    assert sorted(set(few)) == [0, 1, 2]  # all distinct windows used before repeating


def test_plan_validation():
    kw = dict(
        lengths=[10],
        depths=["0.5"],
        needles=[("a", 1)],
        schedule="reference",
        period=P,
        seed=0,
        haystack_frames=10,
    )
    with pytest.raises(UnknownNameError, match="valid schedules: none, periodic, reference"):
        plan_samples(**{**kw, "schedule": "sometimes"})
    with pytest.raises(VniahdError, match="no distractor image"):
        plan_samples(**{**kw, "needles": [("a", 0)]})
    assert plan_samples(**{**kw, "needles": [("a", 0)], "schedule": "none"})
    for bad in ({"period": 0}, {"repeats": 0}, {"haystack_frames": 0}, {"max_distractors": -1}):
        with pytest.raises(VniahdError):
            plan_samples(**{**kw, **bad})


def test_period_parsing():
    p = parse_period("auto:128,1e6,16")
    assert p.frames == 199 and abs(p.exact - 198.6918) < 1e-3
    assert parse_period("auto:32,1e4,4").frames == 63
    assert parse_period("200").frames == 200 and parse_period(150).exact == 150.0
    for bad in ("0", "abc", "auto:128,1e6", "auto:127,1e6,16", "auto:128,1e6,99", "2.5"):
        with pytest.raises(VniahdError, match="--period"):
            parse_period(bad)
