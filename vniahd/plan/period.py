"""The distractor period: a number of frames, or derived from a model's rotary config.

The period is the wavelength of the first rotary pair that M-RoPE does not give to time,
``2π·θ^(2·s_t/d)`` (≈198.7 frames for Qwen2-VL-7B: d=128, θ=1e6, s_t=16; the reference rounds to
200). ``auto:HEAD_DIM,THETA,T_SECTION`` computes it (rounded to the nearest whole frame) with
:func:`vniahd.rope.rotation.temporal_period` (derivation: docs/rope-math.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vniahd.errors import VniahdError

PERIOD_HELP = (
    "distractor spacing in frames: a whole number (reference: 200), or "
    "auto:HEAD_DIM,THETA,T_SECTION to use 2π·θ^(2·T_SECTION/HEAD_DIM) rounded "
    "(auto:128,1e6,16 → 199 for Qwen2-VL; auto:32,1e4,4 → 63 for the tiny model)"
)


@dataclass(frozen=True)
class Period:
    frames: int
    exact: float
    spec: str

    def to_dict(self) -> dict[str, Any]:
        return {"frames": self.frames, "exact": self.exact, "spec": self.spec}


def parse_period(spec: str | int) -> Period:
    text = str(spec).strip()
    if text.startswith("auto:"):
        parts = text[5:].split(",")
        try:
            head_dim, theta, t_section = int(parts[0]), float(parts[1]), int(parts[2])
            if len(parts) != 3:
                raise ValueError
        except (ValueError, IndexError):
            raise VniahdError(
                f"--period {text!r}: expected auto:HEAD_DIM,THETA,T_SECTION, e.g. auto:128,1e6,16"
            ) from None
        if head_dim <= 0 or head_dim % 2 or theta <= 1 or not 0 <= t_section <= head_dim // 2:
            raise VniahdError(
                f"--period {text!r}: need an even HEAD_DIM > 0, THETA > 1 and 0 ≤ T_SECTION ≤ HEAD_DIM/2"
            )
        from vniahd.rope.rotation import temporal_period

        exact = float(temporal_period(head_dim, theta, t_section))
        frames = round(exact)
        if frames < 1:
            raise VniahdError(f"--period {text!r} gives {exact:.3g} frames; it must be at least 1")
        return Period(frames, exact, text)
    try:
        frames = int(text)
    except ValueError:
        raise VniahdError(f"--period {text!r}: {PERIOD_HELP}") from None
    if frames < 1:
        raise VniahdError(f"--period {text!r}: must be at least 1 frame")
    return Period(frames, float(frames), text)
