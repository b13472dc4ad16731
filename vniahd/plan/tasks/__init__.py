"""V-RULER embedding tasks: where each trial's needle frames go (pure functions, no I/O).

One rule per task behind :data:`TASKS` (``niah``, ``multi-key``, ``counting``, ``ordering``), each
producing :class:`TaskTrial` records; :func:`video_frames` assembles a trial's frame order. The
fifth task, ``stack`` (a clip inside filler text), produces :class:`StackTrial` records.
docs/vruler.md describes the released rules and their quirks.
"""

from vniahd.plan.tasks.multi_key import MULTI_KEY_PLACEMENTS, multi_key_slots, plan_multi_key
from vniahd.plan.tasks.niah import NIAH_PLACEMENTS, plan_niah
from vniahd.plan.tasks.registry import RELEASED_LENGTHS, TASKS, Task, get_task, plan_task, released_grid
from vniahd.plan.tasks.spread import (
    SPREAD_PLACEMENTS,
    depth_spread_slots,
    linspace_int,
    plan_counting,
    plan_ordering,
    plan_spread,
    reference_spread_slots,
)
from vniahd.plan.tasks.stack import (
    NOISE_TEXT,
    RELEASED_CONTEXT_LENGTHS,
    RELEASED_VISUAL_TOKENS,
    STACK_PLACEMENTS,
    StackTrial,
    noise_repeats,
    plan_stack,
)
from vniahd.plan.tasks.trial import (
    DEPTH_WINDOW,
    RELEASED_SEED,
    ItemSpec,
    TaskTrial,
    depth_window,
    video_frames,
)

__all__ = [
    "NOISE_TEXT",
    "RELEASED_CONTEXT_LENGTHS",
    "RELEASED_VISUAL_TOKENS",
    "STACK_PLACEMENTS",
    "StackTrial",
    "noise_repeats",
    "plan_stack",
    "DEPTH_WINDOW",
    "ItemSpec",
    "MULTI_KEY_PLACEMENTS",
    "NIAH_PLACEMENTS",
    "RELEASED_LENGTHS",
    "RELEASED_SEED",
    "SPREAD_PLACEMENTS",
    "TASKS",
    "Task",
    "TaskTrial",
    "depth_spread_slots",
    "depth_window",
    "get_task",
    "linspace_int",
    "multi_key_slots",
    "plan_counting",
    "plan_multi_key",
    "plan_niah",
    "plan_ordering",
    "plan_spread",
    "plan_task",
    "released_grid",
    "reference_spread_slots",
    "video_frames",
]
