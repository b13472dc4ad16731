"""Multi-key multi-value: k needles drawn at random inside one depth window.

The released rule (``videorope_plus/v_ruler/eval/eval_v_ruler_multi_key_multi_value.py:445-482``):
for depth ``d`` and haystack length ``n`` the window is ``[s, e)`` with ``s = int(d·n)`` and
``e = min(int((d + 0.2)·n), n)``; each needle draws ``random.randint(s, e − 1)`` (bounds inclusive),
the draws are sorted, and needle ``j`` *in the item's order* goes before haystack frame ``idx_j``, so
it lands at slot ``idx_j + j``. Equal draws make needles consecutive.

Draws:

- ``"reference"``: one shared ``random.Random(seed)`` stream (what ``random.seed(24242424)`` at
  import sets up, ``eval_v_ruler_multi_key_multi_value.py:49-52``), one ``randint`` per needle in
  the order length → depth → item → needle, as given. The draws depend on the whole grid.
- ``"hashed"``: a generator per trial, ``random.Random(derive_seed(seed, "multi-key", sample_id))``,
  so a sub-grid plans the same trials as the full grid.

An empty window (``e ≤ s``, e.g. depth 1) is an error: the released loop silently skips the cell
(``continue`` at L458-459), which would drop trials without a word.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from decimal import Decimal

from vniahd.errors import UnknownNameError, VniahdError
from vniahd.plan.planner import DRAWS, derive_seed, sample_id
from vniahd.plan.tasks.trial import (
    DEPTH_WINDOW,
    RELEASED_SEED,
    ItemSpec,
    TaskTrial,
    as_depth,
    check_grid,
    depth_window,
)

__all__ = ["MULTI_KEY_PLACEMENTS", "multi_key_slots", "plan_multi_key"]

MULTI_KEY_PLACEMENTS = ("reference",)


def multi_key_slots(draws: Sequence[int]) -> tuple[int, ...]:
    """Final slots for the drawn haystack indices: sorted, needle ``j`` before frame ``idx_j``."""
    return tuple(h + j for j, h in enumerate(sorted(draws)))


def plan_multi_key(
    lengths: Sequence[int],
    depths: Sequence[Decimal | str | float],
    items: Sequence[ItemSpec],
    *,
    placement: str = "reference",
    draws: str = "reference",
    seed: int = RELEASED_SEED,
    window: Decimal = DEPTH_WINDOW,
) -> list[TaskTrial]:
    """All multi-key trials, ordered by length, depth, item (see module docstring)."""
    if placement not in MULTI_KEY_PLACEMENTS:
        raise UnknownNameError("multi-key placement", placement, MULTI_KEY_PLACEMENTS)
    if draws not in DRAWS:
        raise UnknownNameError("draw stream", draws, DRAWS)
    decs = [as_depth(d) for d in depths]
    check_grid("multi-key", lengths, decs, items)
    for item_id, nids in items:
        if not nids:
            raise VniahdError(f"multi-key item {item_id!r} has no needle; give it at least one image")
    stream = random.Random(seed) if draws == "reference" else None
    out: list[TaskTrial] = []
    for n in lengths:
        for d in decs:
            s, e = depth_window(d, n, window)
            if e <= s:
                raise VniahdError(
                    f"multi-key: the depth window at depth {d}, length {n} is empty ([{s}, {e})); "
                    "the released grid stops at depth 0.8 (the released loop skips such cells); "
                    "drop this depth or use a longer haystack"
                )
            for item_id, nids in items:
                sid = sample_id(n, d, item_id, 0)
                rng = stream if stream is not None else random.Random(derive_seed(seed, "multi-key", sid))
                idx = [rng.randint(s, e - 1) for _ in nids]
                slots = multi_key_slots(idx)
                out.append(
                    TaskTrial(
                        task="multi-key",
                        sample_id=sid,
                        length=n,
                        depth=float(d),
                        item_id=item_id,
                        needle_ids=tuple(nids),
                        needle_slots=slots,
                        num_frames=n + len(slots),
                        placement=placement,
                        draws=draws,
                    )
                )
    return out
