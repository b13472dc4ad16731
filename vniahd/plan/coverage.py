"""How many samples a distractor schedule actually gives a distractor (pure, no I/O).

A schedule places a distractor only where it fits inside the haystack (:mod:`.schedules`): with a period
longer than the haystack, the reference rule places none. A V-NIAH-D dataset whose samples carry
no distractor is plain V-NIAH under another name, so :func:`check_distractor_coverage` refuses a
plan where no sample has one, and returns a one-line warning when some samples have none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from vniahd.errors import VniahdError


class Planned(Protocol):
    """What the count needs of a planned sample (:class:`vniahd.plan.Sample` has it)."""

    @property
    def length(self) -> int: ...

    @property
    def distractor_slots(self) -> list[int]: ...


MAX_LISTED = 8


@dataclass(frozen=True)
class DistractorCoverage:
    total: int
    without: int
    #: length -> (samples without a distractor, samples) for lengths with at least one without
    by_length: dict[int, tuple[int, int]]

    @property
    def none_placed(self) -> bool:
        return self.total > 0 and self.without == self.total

    def lengths_text(self) -> str:
        items = [f"{n} ({k} of {t})" for n, (k, t) in sorted(self.by_length.items())]
        more = len(items) - MAX_LISTED
        return ", ".join(items[:MAX_LISTED]) + (f", and {more} more" if more > 0 else "")


def distractor_coverage(samples: Sequence[Planned]) -> DistractorCoverage:
    """Count samples without a distractor slot, overall and per length."""
    per: dict[int, list[int]] = {}
    without = 0
    for s in samples:
        cell = per.setdefault(int(s.length), [0, 0])
        cell[1] += 1
        if not s.distractor_slots:
            cell[0] += 1
            without += 1
    return DistractorCoverage(len(samples), without, {n: (k, t) for n, (k, t) in per.items() if k})


def check_distractor_coverage(
    samples: Sequence[Planned], schedule: str, period: int | str, unit: str = "frames"
) -> str | None:
    """Refuse a distractor schedule that places no distractor at all; return a warning line when
    it leaves some samples without one (``None`` when every sample has one, or for ``none``).
    ``period`` is only shown (e.g. ``"auto:128,1e6,16 (199 frames)"``); ``unit`` names what the
    lengths count (``"groups"`` for temporal groups of several frames)."""
    if schedule == "none" or not samples:
        return None
    cov = distractor_coverage(samples)
    if cov.none_placed:
        lengths = sorted({int(s.length) for s in samples})
        shown = ", ".join(str(n) for n in lengths[:MAX_LISTED]) + (", …" if len(lengths) > MAX_LISTED else "")
        raise VniahdError(
            f"--schedule {schedule} with --period {period} places no distractor in any of the {cov.total} "
            f"samples (lengths {shown} {unit}): a distractor goes a period away from the needle inside "
            f"the haystack, which these lengths are too short for; use a --period below the lengths, "
            f"longer --lengths, or --schedule none for plain V-NIAH"
        )
    if cov.without:
        return (
            f"--schedule {schedule} with --period {period}: {cov.without} of {cov.total} samples get no "
            f"distractor (by length: {cov.lengths_text()}), so they test plain V-NIAH (reports "
            "still count them under V-NIAH-D, as the published protocol does, and say so); use a "
            "smaller --period or longer --lengths if every sample should have one"
        )
    return None
