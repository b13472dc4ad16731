"""The task registry: name → placement rule, released files and the released grid.

The released grid is the same in all four shell scripts (``videorope_plus/v_ruler/scripts/
v_niah_d.sh:40-46``, ``multi_key_multi_value.sh:50-56``, ``couting.sh:47-53``, ``ordering.sh:41-47``):
lengths ``range(100, 3001, 200)`` (100 … 2900; 3000 is never reached), depths
``np.arange(0, 1.2, 0.2)`` (0 … 1, 6 values) except multi-key's ``np.arange(0, 1, 0.2)`` (0 … 0.8, 5
values; ``eval_v_ruler_multi_key_multi_value.py:445``), one trial per item. Depths are exact
decimals here; numpy's ``0.6000000000000001`` gives the same frame indices on this grid.

The fifth task, the lengthy multimodal stack (:mod:`vniahd.plan.tasks.stack`), has its own grid:
context lengths 224000 … 296000 tokens step 8000 (``scripts/lengthy_multimodal_stack.sh:19``) and
the six depths; its trials are :class:`~vniahd.plan.tasks.stack.StackTrial`, a clip in filler text.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from vniahd.errors import UnknownNameError, VniahdError
from vniahd.plan.tasks.multi_key import MULTI_KEY_PLACEMENTS, plan_multi_key
from vniahd.plan.tasks.niah import NIAH_PLACEMENTS, plan_niah
from vniahd.plan.tasks.spread import SPREAD_PLACEMENTS, plan_counting, plan_ordering
from vniahd.plan.tasks.stack import RELEASED_CONTEXT_LENGTHS, STACK_PLACEMENTS, plan_stack
from vniahd.plan.tasks.trial import ItemSpec

__all__ = ["RELEASED_LENGTHS", "TASKS", "Task", "get_task", "plan_task", "released_grid"]

RELEASED_LENGTHS: tuple[int, ...] = tuple(range(100, 3001, 200))
_SIX = tuple(Decimal(k) / 5 for k in range(6))  # 0, 0.2, …, 1


@dataclass(frozen=True)
class Task:
    """One task: its placement rule and what the release used."""

    name: str
    description: str
    plan: Callable[..., list[Any]]  # TaskTrial, or StackTrial for the stack
    placements: tuple[str, ...]
    released_depths: tuple[Decimal, ...]
    released_file: str  # the needle JSON in videorope_plus/v_ruler/data/
    eval_file: str  # the eval script in videorope_plus/v_ruler/eval/
    released_lengths: tuple[int, ...] = RELEASED_LENGTHS  # frames (groups); tokens for the stack


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task(
            "niah",
            "one needle, one distractor 200 frames away (V-NIAH-D, today's planner)",
            plan_niah,
            NIAH_PLACEMENTS,
            _SIX,
            "v_niah_d.json",
            "eval_v_ruler_interrupt.py",
        ),
        Task(
            "multi-key",
            "k needles at random frames inside the depth window, in the item's order",
            plan_multi_key,
            MULTI_KEY_PLACEMENTS,
            _SIX[:5],
            "multi_key_multi_value.json",
            "eval_v_ruler_multi_key_multi_value.py",
        ),
        Task(
            "counting",
            "k needles spread evenly over the haystack (released rule ignores depth)",
            plan_counting,
            SPREAD_PLACEMENTS,
            _SIX,
            "counting.json",
            "eval_v_ruler_counting.py",
        ),
        Task(
            "ordering",
            "k needles spread evenly, in the item's order (released rule ignores depth)",
            plan_ordering,
            SPREAD_PLACEMENTS,
            _SIX,
            "ordering.json",
            "eval_v_ruler_order_frames.py",
        ),
        Task(
            "stack",
            "a short video clip inside filler text, a multiple-choice question about the clip",
            plan_stack,
            STACK_PLACEMENTS,
            _SIX,
            "lengthy_multimodal_stack.json",
            "eval_v_ruler_lengthy_multimodal_stack.py",
            RELEASED_CONTEXT_LENGTHS,
        ),
    )
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise UnknownNameError("task", name, list(TASKS))
    return TASKS[name]


def released_grid(task: str) -> tuple[tuple[int, ...], tuple[Decimal, ...]]:
    """``(lengths, depths)`` of the released run of ``task`` (see module docstring)."""
    t = get_task(task)
    return t.released_lengths, t.released_depths


def plan_task(
    task: str,
    items: Sequence[ItemSpec],
    lengths: Sequence[int] | None = None,
    depths: Sequence[Decimal | str | float] | None = None,
    **options: Any,
) -> list[Any]:
    """Plan ``task`` over a grid (default: its released grid) with the rule's ``options``
    (``placement``, ``draws``, ``seed``, … as that task's rule accepts)."""
    t = get_task(task)
    accepted = [p for p in inspect.signature(t.plan).parameters if p not in ("lengths", "depths", "items")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise VniahdError(f"task {task!r} takes no option(s) {unknown}; its options: {', '.join(accepted)}")
    rl, rd = released_grid(task)
    return t.plan(
        list(rl if lengths is None else lengths), list(rd if depths is None else depths), items, **options
    )
