"""The plan: one sample per (length, depth, needle, repeat), with the final frame slots.

Pure functions, no I/O. The needle goes before haystack frame ``q = ⌊depth·N⌋`` (the reference rule). The
product is computed exactly from the decimal depth; on the reference grid (depth k/5, N a multiple
of 100) that equals the reference's float ``int(depth * N)``, and elsewhere it avoids float slips
such as ``int(0.29 * 100) == 28``.

Randomness is per sample, never a shared stream, so a sub-grid plans the same samples as the full
grid: every draw uses ``random.Random(derive_seed(seed, purpose, key))`` where ``derive_seed`` takes
the first 8 bytes of SHA-256 over ``"{seed}|{purpose}|{key}"`` (stable across machines and Python
versions).

- Window offsets (``purpose="offset"``, key = length): repeat 0 reads the haystack from frame 0 (the
  reference); repeats 1, 2, … draw offsets one after another, avoiding offsets already used while
  distinct ones remain. All depths and needles share a length's offsets, so a heatmap row compares
  the same haystack windows. Window frame ``i`` is haystack frame ``(offset + i) mod M``: with
  ``M ≥ N`` offsets stay in ``[0, M − N]`` (no wrap); a shorter haystack is tiled (offset < M).
- The reference schedule's before/after draw (``purpose="side"``, key = sample_id): one
  ``rng.random() < 0.5`` → before. This is ``draws="hashed"``, the default.
- ``draws="reference"`` replays the released V-NIAH-D loop instead: one shared stream
  ``random.Random(seed)`` (what ``random.seed(seed)`` sets up), one ``random()`` per sample in plan
  order — lengths, then depths, then needles (then repeats), in the order given — whether or not
  the schedule needs it. Only the before/after choice reads the draw, as above. The draws then
  depend on the whole grid: a sub-grid no longer plans the same samples.
- Distractor images: slot k (nearest to the needle first) shows the needle's distractor image
  ``k mod len(distractors)``.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from decimal import Decimal

from vniahd.errors import UnknownNameError, VniahdError
from vniahd.plan.grid import depth_label
from vniahd.plan.schedules import get_schedule, insert_slots
from vniahd.records import Sample as Sample  # re-exported: the planner makes Samples

#: Where the schedule's before/after draws come from (see module docstring).
DRAWS = ("hashed", "reference")

COLUMNS = (
    "sample_id",
    "length",
    "depth",
    "needle_id",
    "repeat",
    "haystack_offset",
    "needle_slot",
    "distractor_slots",
    "needle_image",
    "distractor_images",
    "num_frames",
    "schedule",
    "task",
    "needle_slots",
    "needle_ids",
    "needle_images",
    "text_tokens",
)


def derive_seed(seed: int, purpose: str, key: object) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}|{purpose}|{key}".encode()).digest()[:8], "little")


def needle_image_name(needle_id: str) -> str:
    return f"needle-{needle_id}.png"


def distractor_image_name(needle_id: str, k: int) -> str:
    return f"distractor-{needle_id}-{k}.png"


def sample_id(length: int, depth: Decimal, needle_id: str, repeat: int) -> str:
    """Stable, unique, readable: ``L1100_D0.2_red-cat_r0``."""
    return f"L{length}_D{depth_label(depth)}_{needle_id}_r{repeat}"


def needle_position(depth: Decimal, length: int) -> int:
    """``⌊depth·N⌋`` exactly (the reference code's ``int(depth * N)`` without float slips)."""
    return int(Decimal(depth) * length)


def window_offsets(seed: int, length: int, haystack_frames: int, repeats: int) -> list[int]:
    """Haystack window offsets for repeats 0..R−1 of one length (see module docstring)."""
    max_off = haystack_frames - length if haystack_frames >= length else haystack_frames - 1
    rng = random.Random(derive_seed(seed, "offset", length))
    offsets, used = [0], {0}
    for _ in range(1, repeats):
        o = rng.randint(0, max_off)
        while o in used and len(used) <= max_off:
            o = rng.randint(0, max_off)
        offsets.append(o)
        used.add(o)
    return offsets


class _Drawn(random.Random):
    """A generator whose ``random()`` returns one value drawn beforehand from a shared stream."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self._value = value

    def random(self) -> float:
        return self._value


def plan_samples(
    *,
    lengths: Sequence[int],
    depths: Sequence[Decimal | str | float],
    needles: Sequence[tuple[str, int]],
    schedule: str,
    period: int,
    seed: int,
    haystack_frames: int,
    repeats: int = 1,
    max_distractors: int | None = None,
    draws: str = "hashed",
) -> list[Sample]:
    """All samples, ordered by length, depth, needle, repeat.

    ``needles`` is ``[(needle_id, number_of_distractor_images), …]``. ``haystack_frames`` is M, the
    untiled sampled haystack's length (for window offsets); with temporal groups of several
    frames, every count here (lengths, M, slots) is in groups. ``draws``: ``"hashed"`` (per-sample
    generators) or ``"reference"`` (the released loop's shared stream), see the module docstring.
    """
    sched = get_schedule(schedule)
    if draws not in DRAWS:
        raise UnknownNameError("draw stream", draws, DRAWS)
    stream = random.Random(seed) if draws == "reference" else None
    if period < 1:
        raise VniahdError(f"period must be at least 1 frame, got {period}")
    if repeats < 1:
        raise VniahdError(f"--repeats must be at least 1, got {repeats}")
    if haystack_frames < 1:
        raise VniahdError("the haystack has no frames; use a video with at least one frame")
    if max_distractors is not None and max_distractors < 0:
        raise VniahdError(f"--max-distractors must be ≥ 0, got {max_distractors}")
    if sched.name != "none":
        for nid, nd in needles:
            if nd < 1:
                raise VniahdError(
                    f"needle {nid!r} has no distractor image, which schedule "
                    f"{sched.name!r} needs; add one or use --schedule none"
                )
    out: list[Sample] = []
    for n in lengths:
        offsets = window_offsets(seed, n, haystack_frames, repeats)
        for d in depths:
            d = Decimal(str(d)) if not isinstance(d, Decimal) else d
            q = needle_position(d, n)
            for nid, nd in needles:
                for r in range(repeats):
                    sid = sample_id(n, d, nid, r)
                    rng = (
                        _Drawn(stream.random())
                        if stream is not None
                        else random.Random(derive_seed(seed, "side", sid))
                    )
                    pos = sched.positions(n, q, period, rng, max_distractors)
                    needle_slot, dslots, total = insert_slots(n, q, pos)
                    # image k goes to the k-th nearest distractor (nearest gets image 0)
                    by_distance = sorted(range(len(pos)), key=lambda i: (abs(pos[i] - q), pos[i]))
                    rank = {i: k for k, i in enumerate(by_distance)}
                    images = [distractor_image_name(nid, rank[i] % nd) for i in range(len(pos))]
                    out.append(
                        Sample(
                            sid,
                            n,
                            float(d),
                            nid,
                            r,
                            offsets[r],
                            needle_slot,
                            dslots,
                            needle_image_name(nid),
                            images,
                            total,
                            sched.name,
                        )
                    )
    return out
