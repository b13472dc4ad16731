"""What the RoPE inspection commands share (torch-free): the sequence flags, variant resolution
with ``--delta``, and plain-text tables."""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vniahd.rope.segments import Segment


def add_sequence_args(p: argparse.ArgumentParser) -> None:
    """``--text-before N --frames T --grid HxW --text-after M`` (positions, angles)."""
    p.add_argument(
        "--text-before", type=int, default=2, metavar="N", help="text tokens before the video (default 2)"
    )
    p.add_argument(
        "--frames", type=int, default=3, metavar="T", help="video frames / temporal groups (default 3)"
    )
    p.add_argument(
        "--grid", default="2x3", metavar="HxW", help="visual tokens per frame as HEIGHTxWIDTH (default 2x3)"
    )
    p.add_argument(
        "--text-after", type=int, default=2, metavar="M", help="text tokens after the video (default 2)"
    )


def sequence_from_args(args: argparse.Namespace) -> list[Segment]:
    """The segments ``Text(N), Video(T, H, W), Text(M)`` the sequence flags describe."""
    from vniahd.errors import VniahdError
    from vniahd.rope.segments import simple_sequence

    height, width = parse_grid(args.grid)
    for flag, value, low in (
        ("--text-before", args.text_before, 0),
        ("--frames", args.frames, 1),
        ("--text-after", args.text_after, 0),
    ):
        if value < low:
            raise VniahdError(f"{flag} must be >= {low}, got {value}")
    return simple_sequence(args.text_before, args.frames, height, width, args.text_after)


def num(x: float) -> int | float:
    """Integer-valued floats as int so JSON and tables read 3, not 3.0."""
    return int(x) if float(x).is_integer() else float(x)


def fmt(x: float) -> str:
    return f"{num(x)}" if isinstance(num(x), int) else f"{x:g}"


def parse_grid(text: str) -> tuple[int, int]:
    from vniahd.errors import VniahdError

    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise VniahdError(f"--grid must look like HxW with positive integers (e.g. 2x3), got {text!r}")
    return int(m.group(1)), int(m.group(2))


def params_text(params: dict[str, Any]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, (tuple, list)):
            return "/".join(fmt(x) for x in v)
        return f"{v:g}" if isinstance(v, float) else str(v)

    return ", ".join(f"{k}={fmt(v)}" for k, v in params.items()) or "-"


def text_table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def resolve_variant(spec: str, delta: float | None):
    from vniahd.errors import VniahdError
    from vniahd.rope import make_variant, parse_variant
    from vniahd.rope.layouts import get_layout

    variant = parse_variant(spec)
    if delta is None:
        return variant
    if "delta" not in get_layout(variant.layout).defaults:
        raise VniahdError(
            f"--delta applies to the diagonal layout only; variant {variant.name!r} "
            f"uses layout {variant.layout!r}"
        )
    params = {**variant.params, "delta": delta}
    return make_variant(
        variant.layout,
        variant.allocation,
        name=variant.name,
        sections=variant.sections,
        description=variant.description,
        source=variant.source,
        **params,
    )


def one_variant(args: argparse.Namespace) -> str:
    """The single --variant of a table / JSON command (several only go side by side in --plot)."""
    from vniahd.errors import VniahdError

    if len(args.variant) != 1:
        raise VniahdError(f"give one --variant (several only with --plot), got {len(args.variant)}")
    name: str = args.variant[0]
    return name


def rotary_from_model(spec: str) -> tuple[int, float, tuple[int, int, int], int | None]:
    """(rotated head dim, θ, the model's (t, h, w) sections, KV heads) of a model spec, loaded on
    the CPU; partial rotary counts only the rotated dims."""
    from vniahd.models import get_backend

    rot = get_backend(spec, device="cpu").rotary
    return rot.rotary_dim or rot.head_dim, rot.theta, rot.sections, rot.kv_heads
