"""V-NIAH-D ("interrupt"): one needle and one distractor, by today's planner.

The released V-RULER interrupt task (``videorope_plus/v_ruler/eval/eval_v_ruler_interrupt.py:441-460``)
is the V-NIAH-D rule :func:`vniahd.plan.planner.plan_samples` already implements: the needle before
haystack frame ``q = int(d·n)``, one distractor 200 frames before or after it (``schedule
"reference"``), one ``random.random()`` per trial from ``random.Random(24242424)`` whether or not it
is read (``draws="reference"``). This module only delegates and turns each :class:`Sample` into a
:class:`TaskTrial`; placement here means the planner's schedule, and trial ids are the planner's
(built from the needle id).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from vniahd.errors import VniahdError
from vniahd.plan.planner import plan_samples
from vniahd.plan.schedules import SCHEDULES
from vniahd.plan.tasks.trial import RELEASED_SEED, ItemSpec, TaskTrial, as_depth, check_grid

__all__ = ["NIAH_PLACEMENTS", "plan_niah"]

NIAH_PLACEMENTS = tuple(SCHEDULES)
RELEASED_PERIOD = 200  # ``cycle = 200`` (eval_v_ruler_interrupt.py:441-460)


def plan_niah(
    lengths: Sequence[int],
    depths: Sequence[Decimal | str | float],
    items: Sequence[ItemSpec],
    *,
    placement: str = "reference",
    draws: str = "reference",
    seed: int = RELEASED_SEED,
    period: int = RELEASED_PERIOD,
    haystack_frames: int | None = None,
    repeats: int = 1,
    max_distractors: int | None = None,
    distractors: int = 1,
) -> list[TaskTrial]:
    """V-NIAH(-D) trials from :func:`plan_samples` (``placement`` is its schedule). Each item holds
    exactly one needle with ``distractors`` distractor images; ``haystack_frames`` defaults to the
    longest length (it only matters for window offsets when ``repeats > 1``)."""
    decs = [as_depth(d) for d in depths]
    check_grid("niah", lengths, decs, items)
    item_of: dict[str, str] = {}
    for item_id, nids in items:
        if len(nids) != 1:
            raise VniahdError(f"niah item {item_id!r} has {len(nids)} needles; a V-NIAH item has exactly one")
        if nids[0] in item_of:
            raise VniahdError(f"niah items {item_of[nids[0]]!r} and {item_id!r} share needle {nids[0]!r}")
        item_of[nids[0]] = item_id
    samples = plan_samples(
        lengths=lengths,
        depths=decs,
        needles=[(nid, distractors) for nid in item_of],
        schedule=placement,
        period=period,
        seed=seed,
        haystack_frames=haystack_frames if haystack_frames is not None else max(lengths, default=1),
        repeats=repeats,
        max_distractors=max_distractors,
        draws=draws,
    )
    return [
        TaskTrial(
            task="niah",
            sample_id=s.sample_id,
            length=s.length,
            depth=s.depth,
            item_id=item_of[s.needle_id],
            needle_ids=(s.needle_id,),
            needle_slots=(s.needle_slot,),
            num_frames=s.num_frames,
            placement=s.schedule,
            draws=draws,
            distractor_slots=tuple(s.distractor_slots),
            repeat=s.repeat,
            haystack_offset=s.haystack_offset,
        )
        for s in samples
    ]
