"""Grid parsing: ``a:b:step`` ranges and comma lists, exact (no float drift).

Values are parsed as :class:`decimal.Decimal`, so ``0:1:0.2`` is exactly 0, 0.2, 0.4, 0.6, 0.8, 1.0
(``numpy.arange(0, 1.2, 0.2)`` would give 0.6000000000000001 and may or may not include the end).
A range includes ``b`` when the steps land on it exactly. Items may be mixed: ``100,300:900:200``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from vniahd.errors import VniahdError

MAX_GRID_VALUES = 100_000  # a typo like 0:1:0.0000001 should fail fast, not allocate


def _num(text: str, what: str, spec: str) -> Decimal:
    try:
        d = Decimal(text.strip())
    except InvalidOperation:
        raise VniahdError(
            f"{what} {spec!r}: {text.strip()!r} is not a number; use a:b:step or a,b,c"
        ) from None
    if not d.is_finite():
        raise VniahdError(f"{what} {spec!r}: {text.strip()!r} is not a finite number")
    return d


def parse_values(spec: str, what: str = "grid") -> list[Decimal]:
    """Parse ``spec`` into exact decimals, in the order written. Duplicates are an error."""
    if not isinstance(spec, str) or not spec.strip():
        raise VniahdError(f"{what}: empty value; give a:b:step (e.g. 0:1:0.2) or a comma list")
    out: list[Decimal] = []
    for item in spec.split(","):
        if not item.strip():
            raise VniahdError(f"{what} {spec!r}: empty item between commas")
        parts = item.split(":")
        if len(parts) == 1:
            out.append(_num(parts[0], what, spec))
            continue
        if len(parts) != 3:
            raise VniahdError(f"{what} {spec!r}: range {item.strip()!r} must be a:b:step")
        a, b, step = (_num(p, what, spec) for p in parts)
        if step <= 0:
            raise VniahdError(f"{what} {spec!r}: step must be positive, got {step}")
        if b < a:
            raise VniahdError(f"{what} {spec!r}: range end {b} is below its start {a}")
        count = int((b - a) / step) + 1  # exact: the last k with a + k·step ≤ b
        if count > MAX_GRID_VALUES:
            raise VniahdError(f"{what} {spec!r}: {count} values; use a larger step")
        out.extend(a + k * step for k in range(count))
    seen = set()
    for v in out:
        if v in seen:
            raise VniahdError(f"{what} {spec!r}: value {v} appears twice; list each value once")
        seen.add(v)
    return out


def parse_lengths(spec: str) -> list[int]:
    """Haystack lengths in frames: positive integers."""
    vals = parse_values(spec, "--lengths")
    out = []
    for v in vals:
        if v != v.to_integral_value() or v < 1:
            raise VniahdError(f"--lengths {spec!r}: {v} is not a positive whole number of frames")
        out.append(int(v))
    return out


def parse_depths(spec: str) -> list[Decimal]:
    """Needle depths as exact decimals in [0, 1] (kept exact for the slot rule; see planner)."""
    vals = parse_values(spec, "--depths")
    for v in vals:
        if not 0 <= v <= 1:
            raise VniahdError(
                f"--depths {spec!r}: {v} is outside [0, 1]; depth is a fraction of the haystack"
            )
    return [v.normalize() if v != 0 else Decimal(0) for v in vals]


def depth_label(depth: Decimal) -> str:
    """Canonical text of a depth for ids: 0, 0.2, 1 (no exponent, no trailing zeros)."""
    d = Decimal(depth).normalize()
    return format(d, "f") if d != 0 else "0"
