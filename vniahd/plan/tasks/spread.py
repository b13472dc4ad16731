"""Counting and ordering: k needles spread over the haystack, in the item's order.

- ``placement="reference"``, the released rule (``videorope_plus/v_ruler/eval/
  eval_v_ruler_counting.py:445-463``; ``eval_v_ruler_order_frames.py`` is the same code):
  ``choose = numpy.linspace(0, n − 1, k, dtype=int)`` and needle ``j`` goes right *after* haystack
  frame ``choose[j]``, i.e. at slot ``choose[j] + 1 + j``. Depth is ignored (the released code
  computes ``query_frame_idx`` and never uses it), so every depth row repeats the same trials.
  ``k = 0`` gives the bare haystack. Where ``choose`` repeats a frame (``k > n``) the released loop
  (``if i in choose``) inserts one needle there and silently drops the rest; that is an error here.
- ``placement="depth"``, an alternative that honours depth: the window is
  ``[s, e) = [⌊d·n⌋, min(⌊(d + 0.2)·n⌋, n))`` (the multi-key window) of width ``W = e − s``, and
  needle ``j`` goes *before* haystack frame ``s + ⌊j·W/k⌋`` (integer arithmetic), i.e. at slot
  ``s + ⌊j·W/k⌋ + j``. So needle 0 sits where a single V-NIAH needle at depth ``d`` would, and the
  others follow at equal steps inside the window. When ``W < k`` some needles share a frame and are
  consecutive; when the window is empty (``d = 1``, or ``⌊(d + 0.2)·n⌋ = ⌊d·n⌋``) all needles go
  consecutively before frame ``s`` — for ``d = 1`` that is the end of the video.

Neither rule draws random numbers (``draws="none"``). The same image may appear several times in
one item (released ``counting.json`` item 3 shows ``balloons_1`` twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from functools import partial

from vniahd.errors import UnknownNameError, VniahdError
from vniahd.plan.planner import sample_id
from vniahd.plan.tasks.trial import DEPTH_WINDOW, ItemSpec, TaskTrial, as_depth, check_grid, depth_window

__all__ = [
    "SPREAD_PLACEMENTS",
    "depth_spread_slots",
    "linspace_int",
    "plan_counting",
    "plan_ordering",
    "plan_spread",
    "reference_spread_slots",
]

SPREAD_PLACEMENTS = ("reference", "depth")


def linspace_int(stop: int, k: int) -> list[int]:
    """``numpy.linspace(0, stop, k, dtype=int)`` for ``stop ≥ 0``, in plain floats.

    numpy computes ``i · (stop / (k − 1))``, sets the last value to ``stop`` and floors; Python floats
    are the same IEEE doubles, so this matches value for value.
    """
    if k <= 0:
        return []
    if k == 1:
        return [0]
    step = stop / (k - 1)
    vals = [int(i * step) for i in range(k)]
    vals[-1] = stop
    return vals


def reference_spread_slots(n: int, k: int) -> tuple[int, ...]:
    """Released rule: needle ``j`` right after haystack frame ``linspace_int(n − 1, k)[j]``."""
    choose = linspace_int(n - 1, k)
    if len(set(choose)) != len(choose):
        raise VniahdError(
            f"{k} needles in {n} haystack frames: the released rule would put two needles after the "
            "same frame and drop one; use a longer haystack, fewer needles or placement 'depth'"
        )
    return tuple(c + 1 + j for j, c in enumerate(choose))


def depth_spread_slots(n: int, k: int, depth: Decimal, width: Decimal = DEPTH_WINDOW) -> tuple[int, ...]:
    """Depth rule: needle ``j`` before haystack frame ``s + ⌊j·W/k⌋`` (see module docstring)."""
    s, e = depth_window(depth, n, width)
    w = max(e - s, 0)
    return tuple(s + j * w // k + j for j in range(k))


def plan_spread(
    task: str,
    lengths: Sequence[int],
    depths: Sequence[Decimal | str | float],
    items: Sequence[ItemSpec],
    *,
    placement: str = "reference",
    window: Decimal = DEPTH_WINDOW,
) -> list[TaskTrial]:
    """All trials of a spread task, ordered by length, depth, item (see module docstring)."""
    if placement not in SPREAD_PLACEMENTS:
        raise UnknownNameError(f"{task} placement", placement, SPREAD_PLACEMENTS)
    decs = [as_depth(d) for d in depths]
    check_grid(task, lengths, decs, items)
    out: list[TaskTrial] = []
    for n in lengths:
        for d in decs:
            for item_id, nids in items:
                k = len(nids)
                if placement == "reference":
                    slots = reference_spread_slots(n, k)
                else:
                    slots = depth_spread_slots(n, k, d, window)
                out.append(
                    TaskTrial(
                        task=task,
                        sample_id=sample_id(n, d, item_id, 0),
                        length=n,
                        depth=float(d),
                        item_id=item_id,
                        needle_ids=tuple(nids),
                        needle_slots=slots,
                        num_frames=n + k,
                        placement=placement,
                        draws="none",
                    )
                )
    return out


#: Counting trials (``eval_v_ruler_counting.py:445-463``); see module docstring.
plan_counting = partial(plan_spread, "counting")
#: Ordering trials (``eval_v_ruler_order_frames.py:445-463``, byte for byte the counting code).
plan_ordering = partial(plan_spread, "ordering")
