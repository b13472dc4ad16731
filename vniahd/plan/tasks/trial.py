"""One V-RULER trial: which frames go where, and the video it describes.

A :class:`TaskTrial` is the placement-only record of one forward of the released V-RULER
embedding tasks (``videorope_plus/v_ruler/eval/eval_v_ruler_{interrupt,multi_key_multi_value,
counting,order_frames}.py``): a haystack window of ``length`` frames (frame = one temporal group,
144 tokens in the released runs) with needle frames and distractor frames inserted. The slots are
the single source of truth; :attr:`TaskTrial.insert_before` and :func:`video_frames` are derived
from them, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from vniahd.errors import VniahdError

__all__ = [
    "DEPTH_WINDOW",
    "RELEASED_SEED",
    "ItemSpec",
    "TaskTrial",
    "as_depth",
    "check_grid",
    "depth_window",
    "slots_before",
    "video_frames",
]

#: An item as the planner sees it: ``(item_id, needle_ids in the item's order)``.
ItemSpec = tuple[str, Sequence[str]]

#: ``SEED = 24242424``, set at import of every released eval file (``eval_v_ruler_interrupt.py:47-50``).
RELEASED_SEED = 24242424

#: Width of the depth window as a fraction of the haystack. The released multi-key loop hard-codes
#: ``+ 0.2`` (``eval_v_ruler_multi_key_multi_value.py:445-459``), the grid's depth step.
DEPTH_WINDOW = Decimal("0.2")


@dataclass(frozen=True)
class TaskTrial:
    """One trial of a task.

    ``needle_slots[j]`` is the final 0-based slot of needle ``needle_ids[j]`` in a video of
    ``num_frames = length + len(needle_ids) + len(distractor_slots)`` frames; the haystack frames fill
    the other slots in order. ``placement`` names the rule that made the trial and ``draws`` where its
    random numbers came from (``"reference"`` shared stream, ``"hashed"`` per trial, ``"none"``).
    Haystack frame ``i`` of the window is frame ``haystack_offset + i`` of the source haystack.
    """

    task: str
    sample_id: str
    length: int
    depth: float
    item_id: str
    needle_ids: tuple[str, ...]
    needle_slots: tuple[int, ...]
    num_frames: int
    placement: str
    draws: str
    distractor_slots: tuple[int, ...] = ()
    repeat: int = 0
    haystack_offset: int = 0

    def __post_init__(self) -> None:
        where = f"trial {self.sample_id}"
        if self.length < 1:
            raise ValueError(f"{where}: length {self.length} < 1")
        if len(self.needle_ids) != len(self.needle_slots):
            raise ValueError(f"{where}: {len(self.needle_ids)} needle ids but {len(self.needle_slots)} slots")
        inserted = self.needle_slots + self.distractor_slots
        if self.num_frames != self.length + len(inserted):
            raise ValueError(f"{where}: num_frames {self.num_frames} != length + inserted frames")
        if len(set(inserted)) != len(inserted) or not all(0 <= s < self.num_frames for s in inserted):
            raise ValueError(f"{where}: slots {inserted} collide or fall outside [0, {self.num_frames})")

    @property
    def insert_before(self) -> tuple[int, ...]:
        """Per needle, the haystack frame it is inserted before (``length`` = appended at the end)."""
        return slots_before(self.needle_slots, self.needle_slots + self.distractor_slots)

    @property
    def distractor_insert_before(self) -> tuple[int, ...]:
        """Per distractor, the haystack frame it is inserted before."""
        return slots_before(self.distractor_slots, self.needle_slots + self.distractor_slots)


def slots_before(slots: Sequence[int], inserted: Sequence[int]) -> tuple[int, ...]:
    """Haystack index each slot is inserted before: its slot minus the inserted frames ahead of it."""
    return tuple(s - sum(1 for t in inserted if t < s) for s in slots)


def video_frames(trial: TaskTrial) -> list[tuple[str, int]]:
    """The assembled video, slot by slot: ``("haystack", i)``, ``("needle", j)`` (index into
    ``trial.needle_ids``) or ``("distractor", k)`` (index into ``trial.distractor_slots``)."""
    at = {s: ("needle", j) for j, s in enumerate(trial.needle_slots)}
    at.update({s: ("distractor", k) for k, s in enumerate(trial.distractor_slots)})
    out: list[tuple[str, int]] = []
    h = 0
    for slot in range(trial.num_frames):
        if slot in at:
            out.append(at[slot])
        else:
            out.append(("haystack", h))
            h += 1
    return out


def as_depth(value: Decimal | str | float) -> Decimal:
    """A depth as an exact decimal; floats go through ``str`` (``0.6000000000000001`` stays itself)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def depth_window(depth: Decimal, length: int, width: Decimal = DEPTH_WINDOW) -> tuple[int, int]:
    """``[⌊d·n⌋, min(⌊(d + width)·n⌋, n))``, exact in decimals.

    The released multi-key loop computes ``s = int(depth * n)``, ``e = min(int((depth + 0.2) * n), n)``
    in floats (``eval_v_ruler_multi_key_multi_value.py:445-459``); on the released grid the two agree.
    """
    return int(depth * length), min(int((depth + width) * length), length)


def check_grid(
    task: str, lengths: Sequence[int], depths: Sequence[Decimal], items: Sequence[ItemSpec] = ()
) -> None:
    """Lengths are positive whole frames, depths lie in [0, 1]; no length, depth or item id twice
    (trial ids must be unique)."""
    for what, values in (
        ("length", list(lengths)),
        ("depth", list(depths)),
        ("item id", [i for i, _ in items]),
    ):
        if len(set(values)) != len(values):
            raise VniahdError(f"{task}: a {what} appears twice in {values}; list each once")
    if not lengths or not depths:
        raise VniahdError(f"{task}: empty grid; give at least one length and one depth")
    for n in lengths:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise VniahdError(f"{task}: length {n!r} is not a positive whole number of frames")
    for d in depths:
        if not 0 <= d <= 1:
            raise VniahdError(f"{task}: depth {d} is outside [0, 1]; depth is a fraction of the haystack")
