"""The two parts of every RoPE variant and the helpers their pure functions share.

- A :class:`Layout` fills ``K`` named position streams for a sequence: ``layout(segments,
  **params) -> float64 [K, S]``. The paper's layouts fill three (t, h, w); VRoPE fills four.
- An :class:`Allocation` says, for a model's ``P`` rotary pairs (pair ``j`` has frequency
  ``β^(−2j/d)``, ``j = 0`` the highest), which stream each pair reads and by what factor its
  frequency is multiplied (``0`` = NoPE: the pair is never rotated), optionally per KV head.
  Its result is a :class:`PairPlan`.

Registries of both live in :mod:`vniahd.rope.layouts` and :mod:`vniahd.rope.allocations`; the
published designs after VideoRoPE each have one module under :mod:`vniahd.rope.published`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from vniahd.errors import VniahdError
from vniahd.rope.segments import Segment, Text, Video, check_segments

Positions = torch.Tensor  # float64 [K, S]
Sections = tuple[int, int, int]

#: The three streams of the classic layouts, in this order.
TTHW = ("t", "h", "w")
T, H, W = 0, 1, 2
#: The stream index an allocation gives a NoPE pair (its frequency multiplier is 0).
NOPE = -1


def jsonable(value: Any) -> Any:
    """A parameter value as JSON stores it (tuples become lists), so records compare equal after
    a round trip through run.json."""
    return list(value) if isinstance(value, tuple) else value


# ---------------------------------------------------------------------------------------------
# Layout helpers
# ---------------------------------------------------------------------------------------------


def frame_grid(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column index of each token of one frame, row-major, as float64 [H·W]."""
    rows = torch.arange(height, dtype=torch.float64).repeat_interleave(width)
    cols = torch.arange(width, dtype=torch.float64).repeat(height)
    return rows, cols


def text_run(start: float, n: int, step: float = 1.0, streams: int = 3) -> torch.Tensor:
    """``n`` text positions start, start+step, … on every stream: [streams, n]."""
    pos = start + step * torch.arange(n, dtype=torch.float64)
    return pos.expand(streams, n).clone()


def finish(chunks: list[torch.Tensor], streams: int = 3) -> Positions:
    """Concatenate per-segment position chunks along the sequence."""
    if not chunks:
        return torch.zeros(streams, 0, dtype=torch.float64)
    return torch.cat(chunks, dim=1)


def grid_positions(
    segments: Sequence[Segment],
    video: Callable[[float, Video], tuple[torch.Tensor, float]],
    streams: int = 3,
    text_step: float = 1.0,
) -> Positions:
    """Shared driver: text runs count up by ``text_step`` on every stream from the running start;
    ``video(start, seg)`` returns the segment's [K, n] positions and the next start."""
    nxt = 0.0
    chunks: list[torch.Tensor] = []
    for seg in segments:
        if isinstance(seg, Text):
            chunks.append(text_run(nxt, seg.n, text_step, streams))
            nxt += text_step * seg.n
        else:
            pos, nxt = video(nxt, seg)
            chunks.append(pos)
    return finish(chunks, streams)


def number_check(
    component: str, name: str, *, minimum: float = 0.0, strict: bool = True
) -> Callable[[Any], float]:
    """A parameter check: a finite number ``> minimum`` (``>=`` when ``strict`` is false)."""

    def check(value: Any) -> float:
        try:
            out = float(value)
        except (TypeError, ValueError):
            out = math.nan
        ok = math.isfinite(out) and (out > minimum if strict else out >= minimum)
        if not ok:
            bound = f"{'>' if strict else '>='} {minimum:g}"
            raise VniahdError(f"{component}: {name} must be a finite number {bound}, got {value!r}")
        return out

    return check


def int_check(component: str, name: str, *, minimum: int = 0) -> Callable[[Any], int]:
    """A parameter check: an integer ``>= minimum`` (``"3"`` and ``3.0`` are accepted)."""

    def check(value: Any) -> int:
        try:
            out = float(value)
        except (TypeError, ValueError):
            out = math.nan
        if not (math.isfinite(out) and out == int(out) and out >= minimum) or isinstance(value, bool):
            raise VniahdError(f"{component}: {name} must be an integer >= {minimum}, got {value!r}")
        return int(out)

    return check


def choice_check(component: str, name: str, choices: Mapping[str, str]) -> Callable[[Any], str]:
    """A parameter check: one of ``choices`` (name → what it means, shown in the error)."""

    def check(value: Any) -> str:
        if value not in choices:
            listed = "; ".join(f"{k!r}: {v}" for k, v in choices.items())
            raise VniahdError(f"{component}: {name} must be one of {listed}; got {value!r}")
        return str(value)

    return check


@dataclass(frozen=True)
class _Component:
    """What layouts and allocations share: a name, a source, parameters with defaults and checks."""

    name: str
    fn: Callable[..., Any]
    description: str
    source: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    checks: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)

    kind = "component"

    def resolve_params(self, **params: Any) -> dict[str, Any]:
        """Defaults overlaid with ``params``, each validated; unknown names raise."""
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            valid = ", ".join(sorted(self.defaults)) or "none"
            raise VniahdError(
                f"{self.kind} {self.name!r} has no parameter {', '.join(unknown)}; its parameters: {valid}"
            )
        out = dict(self.defaults)
        for key, value in params.items():
            out[key] = self.checks[key](value) if key in self.checks else value
        return out


@dataclass(frozen=True)
class Layout(_Component):
    """A named layout: ``layout(segments, **params) -> Tensor[K, S]`` (float64), one row per
    name in ``streams``."""

    streams: tuple[str, ...] = TTHW

    kind = "layout"

    def __call__(self, segments: Sequence[Segment], **params: Any) -> Positions:
        resolved = self.resolve_params(**params)
        pos: torch.Tensor = self.fn(check_segments(segments), **resolved)
        if pos.dim() != 2 or pos.shape[0] != len(self.streams):  # a registration mistake, not a user's
            raise AssertionError(f"layout {self.name} returned {tuple(pos.shape)} for streams {self.streams}")
        return pos


@dataclass(frozen=True)
class PairPlan:
    """What an allocation gives a model's pairs: ``streams`` (long, the stream each pair reads;
    ``[P]``, or ``[K_heads, P]`` for a per-KV-head allocation) and ``scale`` (float64, the same
    shape: the multiplier of each pair's frequency, 0 for a NoPE pair, else usually 1)."""

    streams: torch.Tensor
    scale: torch.Tensor

    @property
    def per_head(self) -> bool:
        return self.streams.dim() == 2

    @property
    def num_pairs(self) -> int:
        return int(self.streams.shape[-1])

    @property
    def plain(self) -> bool:
        """Every pair rotated at its own frequency (the classic allocations): no NoPE, no scaling,
        not per head; such plans run on the model's unchanged float32 path."""
        return not self.per_head and bool((self.scale == 1).all())

    def describe(self, stream_names: Sequence[str]) -> str:
        """``"tthhww"`` per pair (``-`` = NoPE; ``*`` after a scaled pair); per head joined by ``|``."""

        def row(streams: torch.Tensor, scale: torch.Tensor) -> str:
            out = []
            for s, c in zip(streams.tolist(), scale.tolist()):
                if c == 0:
                    out.append("-")
                else:
                    out.append(stream_names[int(s)] + ("" if c == 1 else "*"))
            return "".join(out)

        if self.per_head:
            return "|".join(row(s, c) for s, c in zip(self.streams, self.scale))
        return row(self.streams, self.scale)


def plan_from_axes(axes: torch.Tensor, scale: torch.Tensor | None = None) -> PairPlan:
    """A :class:`PairPlan` from axes in which :data:`NOPE` marks a NoPE pair (stream 0, scale 0)."""
    axes = torch.as_tensor(axes, dtype=torch.long)
    nope = axes == NOPE
    base = torch.ones(axes.shape, dtype=torch.float64) if scale is None else scale.to(torch.float64)
    return PairPlan(
        streams=torch.where(nope, torch.zeros_like(axes), axes), scale=torch.where(nope, 0.0, base)
    )


@dataclass(frozen=True)
class Allocation(_Component):
    """A named allocation: ``fn(num_pairs, sections, **params)`` returns the stream of each pair
    (long ``[P]``; :data:`NOPE` for a NoPE pair) or a whole :class:`PairPlan`; a per-head
    allocation also receives ``kv_heads``.

    ``uses_sections``: whether (t, h, w) sections shape it (``None`` = none); ``streams``: how
    many position streams it reads at most (a layout must fill at least as many)."""

    uses_sections: bool = True
    #: default (t, h, w) split when neither variant nor model fixes one (allocations.default_sections)
    section_rule: str = "quarter"
    per_head: bool = False
    streams: int = 3

    kind = "allocation"

    def plan(
        self,
        num_pairs: int,
        sections: Sections | None,
        kv_heads: int | None = None,
        **params: Any,
    ) -> PairPlan:
        resolved = self.resolve_params(**params)
        if self.per_head:
            if kv_heads is None:
                raise VniahdError(
                    f"allocation {self.name!r} gives each KV head its own axis, so it needs the "
                    "model's number of KV heads (--kv-heads K, or a model)"
                )
            resolved["kv_heads"] = kv_heads
        out = self.fn(num_pairs, sections, **resolved)
        return out if isinstance(out, PairPlan) else plan_from_axes(out)
