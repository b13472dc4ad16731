"""How long the rest of a run will take: the FLOP model's cost of the work left, and the rate
measured on the work done so far.

Samples get longer with the haystack length, so a count of samples is a poor clock: an ETA from
"samples per second" on the short lengths undershoots badly. Costs come from the same FLOP model
that balances ranks (:func:`vniahd.evaluation.planning.work_plan.cost_profile`); the rate is cost per wall
second over the groups finished in this process. Estimate and rate share one unit, so the ETA is
consistent even where a backend has no FLOP model (the unit is then tokens).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

from vniahd.notices import status, warn

#: A CPU run whose ETA exceeds this many seconds gets a warning with the ways to cut it.
LONG_CPU_RUN_S = 3600.0


class RunEstimate:
    """Tracks the cost of the units this process runs; see the module docstring."""

    def __init__(
        self,
        costs: dict[Hashable, float],
        *,
        unit: str,
        device_type: str,
        announce: bool = True,
        say: Callable[[str], None] = status,
        warn_: Callable[[str], None] = warn,
    ):
        self.costs = costs
        self.total = sum(costs.values())
        self.unit = unit
        self.device_type = device_type
        self.announce = announce
        self.say, self.warn = say, warn_
        self.done = 0.0
        self.elapsed = 0.0
        self._warned = False
        self._t0: float | None = None

    def start(self, results_left: int) -> None:
        if self.announce and results_left:
            self.say(
                f"{results_left} results to score, about {self.total:.3g} {self.unit} of work "
                "(FLOP model); a time estimate follows the first group"
            )

    def unit_started(self) -> None:
        self._t0 = time.perf_counter()

    def unit_done(self, key: Hashable) -> None:
        if self._t0 is not None:
            self.elapsed += time.perf_counter() - self._t0
        self.done += self.costs.get(key, 0.0)
        first = not self._warned
        eta = self.eta_seconds()
        if first and eta is not None:
            self._warned = True
            if self.device_type == "cpu" and eta > LONG_CPU_RUN_S:
                self.warn(
                    f"this CPU run is headed for about {format_duration(eta)} more (rate measured "
                    "on the first group); for a quick look use --limit N, fewer --lengths or "
                    "--variant, or run on a GPU with --device cuda"
                )
            elif self.announce and eta > 60:
                self.say(f"estimated time left: about {format_duration(eta)}")

    def eta_seconds(self) -> float | None:
        """Seconds left at the rate measured so far (``None`` before any work is measured)."""
        if self.done <= 0 or self.elapsed <= 0:
            return None
        return (self.total - self.done) * self.elapsed / self.done

    def eta_text(self) -> str:
        eta = self.eta_seconds()
        return "" if eta is None else f"ETA {format_duration(eta)}"


def format_duration(seconds: float) -> str:
    """``75`` → ``1 min 15 s``; ``7300`` → ``2 h 1 min``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {(s % 3600) // 60} min"
