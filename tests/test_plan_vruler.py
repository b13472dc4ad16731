"""V-RULER placement rules against replays of the released loops, pinned values and hand tables.

The replays below are written from the description of the released eval files
(``videorope_plus/v_ruler/eval/eval_v_ruler_*.py``): global ``random.seed(24242424)``, lengths
``range(100, 3001, 200)``, depths ``np.arange(...)`` as floats, items in order, and the video
assembled the way the released loops concatenate frames.
"""

from __future__ import annotations

import random
from decimal import Decimal

import numpy as np
import pytest

from vniahd.errors import UnknownNameError, VniahdError
from vniahd.plan import needle_position
from vniahd.plan.tasks import (
    TASKS,
    TaskTrial,
    depth_spread_slots,
    depth_window,
    linspace_int,
    multi_key_slots,
    plan_multi_key,
    plan_task,
    reference_spread_slots,
    released_grid,
    video_frames,
)

SEED = 24242424
MKMV = [  # item needles in JSON order (released multi_key_multi_value.json)
    ["balloon_jumping", "balloon_cleaning", "balloon_working"],
    ["minion_juggling", "minion_fishing", "minion_playing_violin"],
    ["marioplayingdrums", "mariomakingpizza", "mariodoingmagictrick"],
    ["basketball_player_tying_shoes", "boy_tying_shoes", "goat_tying_shoes"],
    ["businessman_", "chimpanzee_", "teenage_girl_", "grandma_reading_newspaper"],
]
COUNTING = [[], ["balloons_1"], ["cakes_1"], ["balloons_1", "balloons_1"], ["balloons_2", "balloons_1"]]
ORDERING = [
    ["balloons", "cakes"],
    ["balloons", "cakes", "shoes"],
    ["flowers", "shoes"],
    ["cakes", "balloons", "flowers", "shoes"],
    ["flowers", "shoes", "cakes", "balloons"],
]
NIAH = ["selenium_green", "beach_umbrella", "bicycle_shop", "bus_stop", "teddy_bear_times_square"]


def _specs(items):
    return [(f"item{i}", tuple(ids)) for i, ids in enumerate(items)]


def _labelled(trial: TaskTrial) -> list[tuple[str, object]]:
    """video_frames with needle indices replaced by the needle ids (what the replays build)."""
    out: list[tuple[str, object]] = []
    for kind, i in video_frames(trial):
        out.append(
            ("n", trial.needle_ids[i]) if kind == "needle" else ("i", 0) if kind == "distractor" else ("h", i)
        )
    return out


class _GlobalSeed:
    """Run a replay on the global ``random`` module, as the released code does, then restore it."""

    def __enter__(self):
        self.state = random.getstate()
        random.seed(SEED)

    def __exit__(self, *exc):
        random.setstate(self.state)


def _replay_multi_key():
    out = []
    with _GlobalSeed():
        for n in range(100, 3001, 200):
            for depth in np.arange(0, 1, 0.2):
                s = int(depth * n)
                e = min(int((depth + 0.2) * n), n)
                if e - s <= 0:
                    continue
                for needles in MKMV:
                    idx = sorted(random.randint(s, e - 1) for _ in needles)
                    frames: list[tuple[str, object]] = []
                    start = 0
                    for i, needle in zip(idx, needles):
                        frames += [("h", x) for x in range(start, i)] + [("n", needle)]
                        start = i
                    frames += [("h", x) for x in range(start, n)]
                    out.append((n, float(depth), idx, frames))
    return out


def _replay_spread(items):
    out = []
    for n in range(100, 3001, 200):
        for depth in np.arange(0, 1.2, 0.2):
            for needles in items:
                choose = np.linspace(0, n - 1, len(needles), dtype=int)
                frames: list[tuple[str, object]] = []
                idx = 0
                for i in range(n):
                    frames.append(("h", i))
                    if i in choose:
                        frames.append(("n", needles[idx]))
                        idx += 1
                out.append((n, float(depth), frames))
    return out


def _replay_interrupt():
    out, draws = [], []
    with _GlobalSeed():
        for n in range(100, 3001, 200):
            for depth in np.arange(0, 1.2, 0.2):
                for needle in NIAH:
                    q = int(depth * n)
                    p = random.random()
                    draws.append(p)
                    h: list[tuple[str, object]] = [("h", x) for x in range(n)]
                    nd: list[tuple[str, object]] = [("n", needle)]
                    dis: list[tuple[str, object]] = [("i", 0)]
                    if q - 200 <= 0 and q + 200 >= n:
                        frames = h[:q] + nd + h[q:]
                    elif q < 200 or (q + 200 < n and p >= 0.5):
                        frames = h[:q] + nd + h[q : q + 200] + dis + h[q + 200 :]
                    else:
                        frames = h[: q - 200] + dis + h[q - 200 : q] + nd + h[q:]
                    out.append((n, float(depth), frames))
    return out, draws


# --- the released grid ----------------------------------------------------------------------------


def test_released_grid_per_task():
    for name in ("niah", "counting", "ordering"):
        lengths, depths = released_grid(name)
        assert lengths == tuple(range(100, 3001, 200)) and len(lengths) == 15
        assert [float(d) for d in depths] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
        assert np.allclose([float(d) for d in depths], np.arange(0, 1.2, 0.2))
    lengths, depths = released_grid("multi-key")
    assert np.allclose([float(d) for d in depths], np.arange(0, 1, 0.2)) and len(depths) == 5
    assert set(TASKS) == {"niah", "multi-key", "counting", "ordering", "stack"}
    # the stack's grid counts context tokens (scripts/lengthy_multimodal_stack.sh:19)
    lengths, depths = released_grid("stack")
    assert lengths == tuple(range(224000, 296001, 8000)) and len(lengths) == 10
    assert [float(d) for d in depths] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    with pytest.raises(UnknownNameError, match="valid tasks"):
        released_grid("lengthy")


def test_decimal_window_equals_the_released_float_expression_on_the_grid():
    for n in range(100, 3001, 200):
        for fd, d in zip(np.arange(0, 1.2, 0.2), released_grid("niah")[1]):
            s, e = depth_window(d, n)
            assert s == int(fd * n) == needle_position(d, n)
            assert e == min(int((fd + 0.2) * n), n)


# --- multi-key ------------------------------------------------------------------------------------


def test_multi_key_equals_the_released_loop_on_every_trial():
    replay = _replay_multi_key()
    trials = plan_task("multi-key", _specs(MKMV))
    assert len(trials) == len(replay) == 375
    for t, (n, d, idx, frames) in zip(trials, replay):
        assert (t.length, t.num_frames) == (n, n + len(idx)) and abs(t.depth - d) < 1e-12
        assert t.insert_before == tuple(idx)
        assert _labelled(t) == frames
        assert t.needle_slots == tuple(i + j for j, i in enumerate(idx))
        assert (t.placement, t.draws, t.distractor_slots) == ("reference", "reference", ())
    assert sum(len(set(idx)) < len(idx) for *_, idx, _ in replay) == 8
    assert sum(len(set(t.insert_before)) < len(t.insert_before) for t in trials) == 8


def test_multi_key_pinned_draws():
    trials = plan_task("multi-key", _specs(MKMV))
    cell = [t.insert_before for t in trials[:5]]
    assert cell == [(1, 11, 14), (1, 1, 19), (5, 6, 11), (0, 12, 13), (2, 3, 14, 15)]
    assert trials[5].sample_id == "L100_D0.2_item0_r0" and trials[5].insert_before == (29, 30, 33)
    assert trials[-1].sample_id == "L2900_D0.8_item4_r0"
    assert trials[-1].insert_before == (2553, 2624, 2626, 2790)
    assert trials[1].needle_slots == (1, 2, 21)  # equal draws: consecutive needles


def test_multi_key_hand_table():
    assert multi_key_slots([3, 1, 3]) == (1, 4, 5)
    t = TaskTrial("multi-key", "x", 6, 0.0, "i", ("a", "b", "c"), (1, 4, 5), 9, "reference", "none")
    assert video_frames(t) == [
        ("haystack", 0),
        ("needle", 0),
        ("haystack", 1),
        ("haystack", 2),
        ("needle", 1),
        ("needle", 2),
        ("haystack", 3),
        ("haystack", 4),
        ("haystack", 5),
    ]
    assert t.insert_before == (1, 3, 3)


def test_multi_key_hashed_draws_are_per_trial():
    full = plan_task("multi-key", _specs(MKMV), draws="hashed")
    sub = plan_task("multi-key", _specs(MKMV)[2:4], lengths=[700], depths=["0.4"], draws="hashed")
    by_id = {t.sample_id: t for t in full}
    assert sub and all(by_id[t.sample_id] == t for t in sub)
    assert [t.insert_before for t in full] != [t.insert_before for t in plan_task("multi-key", _specs(MKMV))]
    for t in full:
        s, e = depth_window(Decimal(str(t.depth)), t.length)
        assert all(s <= h < e for h in t.insert_before) and t.draws == "hashed"
    assert plan_task("multi-key", _specs(MKMV), draws="hashed", seed=1) != full


def test_multi_key_errors():
    with pytest.raises(VniahdError, match="window at depth 1, length 100 is empty"):
        plan_multi_key([100], [Decimal(1)], _specs(MKMV))
    with pytest.raises(VniahdError, match="has no needle"):
        plan_multi_key([100], ["0"], [("item0", ())])
    with pytest.raises(UnknownNameError, match="multi-key placement"):
        plan_task("multi-key", _specs(MKMV), placement="depth")
    with pytest.raises(UnknownNameError, match="draw stream"):
        plan_task("multi-key", _specs(MKMV), draws="numpy")
    with pytest.raises(VniahdError, match="outside"):
        plan_multi_key([100], ["1.2"], _specs(MKMV))
    with pytest.raises(VniahdError, match="depth appears twice"):
        plan_multi_key([100], ["0.2", 0.2], _specs(MKMV))
    with pytest.raises(VniahdError, match="item id appears twice"):
        plan_task("counting", [("a", ()), ("a", ("x",))])


# --- counting / ordering ----------------------------------------------------------------------------


@pytest.mark.parametrize("task, items", [("counting", COUNTING), ("ordering", ORDERING)])
def test_spread_equals_the_released_loop_on_every_trial(task, items):
    replay = _replay_spread(items)
    trials = plan_task(task, _specs(items))
    assert len(trials) == len(replay) == 450
    for t, (n, d, frames) in zip(trials, replay):
        assert (t.task, t.length) == (task, n) and abs(t.depth - d) < 1e-12
        assert _labelled(t) == frames and t.num_frames == len(frames)
        assert (t.placement, t.draws) == ("reference", "none")
    by_cell: dict[tuple[int, str], set[tuple[int, ...]]] = {}
    for t in trials:  # depth is ignored: every depth row repeats the same slots
        by_cell.setdefault((t.length, t.item_id), set()).add(t.needle_slots)
    assert all(len(v) == 1 for v in by_cell.values())


def test_counting_pinned_and_bare_haystack():
    assert linspace_int(99, 4) == [0, 33, 66, 99]
    assert reference_spread_slots(100, 4) == (1, 35, 69, 103)  # after frames 0, 33, 66, 99
    t = plan_task("counting", _specs(COUNTING), lengths=[100], depths=["0.4"])
    assert t[0].needle_ids == () and t[0].needle_slots == () and t[0].num_frames == 100
    assert video_frames(t[0]) == [("haystack", i) for i in range(100)]
    assert t[3].needle_ids == ("balloons_1", "balloons_1") and t[3].needle_slots == (1, 101)


def test_linspace_int_matches_numpy():
    for stop in [0, 1, 2, 5, 9, 99, 299, 1099, 2899]:
        for k in range(0, 9):
            assert linspace_int(stop, k) == np.linspace(0, stop, k, dtype=int).tolist(), (stop, k)


def test_spread_hand_tables_n10():
    assert reference_spread_slots(10, 0) == ()
    assert reference_spread_slots(10, 1) == (1,)
    assert reference_spread_slots(10, 2) == (1, 11)  # after frames 0 and 9
    assert reference_spread_slots(10, 3) == (1, 6, 12)  # after 0, 4, 9
    assert reference_spread_slots(10, 4) == (1, 5, 9, 13)  # after 0, 3, 6, 9
    D = Decimal
    assert depth_spread_slots(10, 1, D(0)) == (0,)
    assert depth_spread_slots(10, 2, D("0.2")) == (2, 4)  # window [2, 4): before 2 and 3
    assert depth_spread_slots(10, 3, D("0.4")) == (4, 5, 7)  # window [4, 6): before 4, 4, 5
    assert depth_spread_slots(10, 4, D("0.8")) == (8, 9, 11, 12)  # window [8, 10): before 8, 8, 9, 9
    assert depth_spread_slots(10, 2, D(1)) == (10, 11)  # empty window at the end: appended
    assert depth_spread_slots(10, 0, D("0.4")) == ()


def test_depth_placement_inside_the_window_ordered_and_distinct():
    lengths, depths = released_grid("counting")
    for task, items in (("counting", COUNTING), ("ordering", ORDERING)):
        trials = plan_task(task, _specs(items), placement="depth")
        assert len(trials) == 450
        for t in trials:
            assert t.placement == "depth"
            s, e = depth_window(Decimal(str(t.depth)), t.length)
            before = t.insert_before
            assert list(before) == sorted(before)
            assert all(s <= h < e for h in before) if e > s else all(h == s for h in before)
            assert list(t.needle_slots) == sorted(set(t.needle_slots))
        # depth now matters: the rows differ
        rows = {t.depth: t.needle_slots for t in trials if t.length == 300 and t.item_id == "item4"}
        assert len(set(rows.values())) == 6
    for n in range(1, 40):
        for k in range(0, 6):
            for d in (Decimal(x) / 20 for x in range(21)):
                slots = depth_spread_slots(n, k, d)
                assert len(set(slots)) == k and list(slots) == sorted(slots) and all(s < n + k for s in slots)


def test_spread_errors():
    with pytest.raises(VniahdError, match="drop one"):
        plan_task("counting", [("item0", ("a", "b"))], lengths=[1], depths=["0"])
    assert plan_task("counting", [("item0", ("a", "b"))], lengths=[1], depths=["0"], placement="depth")
    with pytest.raises(UnknownNameError, match="counting placement"):
        plan_task("counting", _specs(COUNTING), placement="random")
    with pytest.raises(VniahdError, match="takes no option"):
        plan_task("ordering", _specs(ORDERING), draws="hashed")
    with pytest.raises(VniahdError, match="positive whole number"):
        plan_task("ordering", _specs(ORDERING), lengths=[0])


# --- niah -------------------------------------------------------------------------------------------


def test_niah_equals_the_released_interrupt_loop_on_every_trial():
    replay, draws = _replay_interrupt()
    assert draws[:3] == [0.45431070802562723, 0.36812934823910815, 0.745383594914867]
    trials = plan_task("niah", [(f"item{i}", (nid,)) for i, nid in enumerate(NIAH)])
    assert len(trials) == len(replay) == 450
    for t, (n, d, frames) in zip(trials, replay):
        assert t.length == n and abs(t.depth - d) < 1e-12
        assert _labelled(t) == frames and t.num_frames == len(frames)
    assert sum(not t.distractor_slots for t in trials) == 40
    assert trials[0].sample_id == "L100_D0_selenium_green_r0" and trials[0].item_id == "item0"


def test_niah_items_hold_one_needle():
    with pytest.raises(VniahdError, match="exactly one"):
        plan_task("niah", [("item0", ("a", "b"))])


# --- the trial record -------------------------------------------------------------------------------


def test_trial_checks_and_frames():
    t = TaskTrial("niah", "x", 5, 0.0, "i", ("a",), (3,), 7, "reference", "none", distractor_slots=(0,))
    assert video_frames(t) == [
        ("distractor", 0),
        ("haystack", 0),
        ("haystack", 1),
        ("needle", 0),
        ("haystack", 2),
        ("haystack", 3),
        ("haystack", 4),
    ]
    assert t.insert_before == (2,) and t.distractor_insert_before == (0,)
    with pytest.raises(ValueError, match="num_frames"):
        TaskTrial("counting", "x", 5, 0.0, "i", ("a",), (3,), 5, "reference", "none")
    with pytest.raises(ValueError, match="collide"):
        TaskTrial("counting", "x", 5, 0.0, "i", ("a", "b"), (3, 3), 7, "reference", "none")
    with pytest.raises(ValueError, match="needle ids"):
        TaskTrial("counting", "x", 5, 0.0, "i", ("a",), (3, 4), 7, "reference", "none")
