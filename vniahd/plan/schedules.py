"""Distractor schedules: where distractor frames go relative to the needle (docs/reference-protocol.md).

A schedule maps (haystack length ``n``, needle position ``q``, ``period``) to the haystack positions
before which distractors are inserted. A position ``h`` means "inserted before haystack frame h"
(``h = n`` appends). Final slots are then computed by :func:`insert_slots`.

- ``none``: no distractor (plain V-NIAH).
- ``reference``: the reference code's rule, verbatim: if ``q − p ≤ 0`` and ``q + p ≥ n`` none; elif
  ``q < p`` after (``q + p``); elif ``q + p ≥ n`` before (``q − p``); else a 50/50 draw,
  ``rng.random() < 0.5`` → before. Needle and distractor end up ``p + 1`` slots apart.
- ``periodic``: the paper's wording ("periodic distractors"): one distractor every ``p`` haystack
  frames on both sides, ``q ± k·p`` for k = 1, 2, …, kept while ``q − k·p > 0`` / ``q + k·p < n``
  (the reference's own in-range conditions). Consecutive inserted frames are exactly ``p + 1`` slots
  apart. ``max_distractors`` keeps the nearest ones (ties: before first).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from vniahd.errors import UnknownNameError


@dataclass(frozen=True)
class Schedule:
    name: str
    description: str
    positions: Callable[[int, int, int, random.Random, int | None], list[int]]
    uses_rng: bool = False


def _none(n: int, q: int, p: int, rng: random.Random, cap: int | None) -> list[int]:
    return []


def _reference(n: int, q: int, p: int, rng: random.Random, cap: int | None) -> list[int]:
    if q - p <= 0 and q + p >= n:
        return []
    if q < p:
        return [q + p]
    if q + p >= n:
        return [q - p]
    return [q - p] if rng.random() < 0.5 else [q + p]


def _periodic(n: int, q: int, p: int, rng: random.Random, cap: int | None) -> list[int]:
    out: list[int] = []
    k = 1
    while q - k * p > 0 or q + k * p < n:
        for h in (q - k * p, q + k * p):  # nearest first, before before after
            if 0 < h < n and (cap is None or len(out) < cap):
                out.append(h)
        k += 1
    return sorted(out)


SCHEDULES: dict[str, Schedule] = {
    s.name: s
    for s in (
        Schedule("none", "no distractor (plain V-NIAH)", _none),
        Schedule(
            "reference",
            "one distractor one period before or after the needle, as the reference "
            "code places it (seeded 50/50 draw when both fit)",
            _reference,
            uses_rng=True,
        ),
        Schedule(
            "periodic",
            "distractors every period frames on both sides of the needle, within the "
            "haystack (optional --max-distractors cap, nearest kept)",
            _periodic,
        ),
    )
}


def get_schedule(name: str) -> Schedule:
    if name not in SCHEDULES:
        raise UnknownNameError("schedule", name, list(SCHEDULES))
    return SCHEDULES[name]


def insert_slots(n: int, needle_pos: int, distractor_pos: list[int]) -> tuple[int, list[int], int]:
    """Final 0-based slots after inserting the needle and distractors into ``n`` haystack frames.

    Each item inserted before haystack frame ``h`` lands at ``h + (inserted items before it)``.
    Positions are distinct by construction (distractors are ``k·p ≠ 0`` away from the needle).
    Returns (needle slot, sorted distractor slots, total frames).
    """
    items = sorted([(needle_pos, 0)] + [(h, 1) for h in distractor_pos])
    if len({h for h, _ in items}) != len(items):
        raise ValueError(f"insert positions collide: {items}")
    needle_slot, dslots = -1, []
    for rank, (h, kind) in enumerate(items):
        if not 0 <= h <= n:
            raise ValueError(f"insert position {h} outside [0, {n}]")
        if kind == 0:
            needle_slot = h + rank
        else:
            dslots.append(h + rank)
    return needle_slot, dslots, n + len(items)
