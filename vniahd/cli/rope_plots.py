"""``vniahd positions --plot`` and ``vniahd freqs --plot``: the VideoRoPE paper's Fig. 5 and Fig. 4
for any variants side by side (drawing: :mod:`vniahd.reporting.rope_figures`)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from vniahd.cli.rope_args import parse_grid, resolve_variant

if TYPE_CHECKING:
    from vniahd.rope.segments import Segment


def plot_positions(args: argparse.Namespace, segments: list[Segment]) -> int:
    from vniahd.reporting.rope_figures import adjacent_frames_figure
    from vniahd.rope.angles import token_labels

    kinds = [k.split(" (")[0] for k in token_labels(segments)]  # "frame F (r,c)" -> "frame F"
    panels = []
    for spec in args.variant:
        v = resolve_variant(spec, args.delta)
        pos = v.positions(segments)
        panels.append(
            {"name": v.name, "spec": v.spec, "streams": v.stream_names, "positions": pos, "kinds": kinds}
        )
    meta = {"sequence": {"text_before": args.text_before, "frames": args.frames, "grid": args.grid,
                         "text_after": args.text_after}}  # fmt: skip
    path = adjacent_frames_figure(panels, args.plot, meta)
    print(f"wrote {path} and {path.name}.json ({len(panels)} variant(s))")
    return 0


def plot_freqs(args: argparse.Namespace) -> int:
    from vniahd.reporting.rope_figures import temporal_angle_figure
    from vniahd.rope import parse_variant
    from vniahd.rope.allocations import check_sections, default_sections
    from vniahd.rope.angles import frame_distance_angles
    from vniahd.rope.bands import band_pairs
    from vniahd.rope.rotation import temporal_period

    num_pairs = args.head_dim // 2
    model_sections = args.model_sections
    if args.sections is not None:
        model_sections = check_sections(num_pairs, _sections(args.sections))
    panels = []
    for spec in args.variant:
        v = parse_variant(spec)
        plan = v.pair_plan(num_pairs, v.sections_for(num_pairs, model_sections), args.kv_heads)
        mask = band_pairs(plan, v.stream_names, args.band)
        angles = frame_distance_angles(
            v, args.head_dim, args.theta, args.frames, parse_grid(args.grid), model_sections, args.kv_heads
        )
        if plan.per_head:  # the union of the heads' pairs in the band, from the first head that has each
            head = mask.int().argmax(0)
            pairs = [j for j in range(num_pairs) if bool(mask[:, j].any())]
            angles = torch_stack_cols(angles, head, pairs)
        else:
            pairs = [j for j in range(num_pairs) if bool(mask[j])]
            angles = angles[:, pairs]
        panels.append({"name": v.name, "spec": v.spec, "band": args.band, "pairs": pairs, "angles": angles})
    t_section = (model_sections or default_sections(num_pairs, "mrope-blocks") or (0, 0, 0))[0]
    period = args.period if args.period is not None else temporal_period(args.head_dim, args.theta, t_section)
    meta = {"head_dim": args.head_dim, "theta": args.theta, "sections": model_sections, "grid": args.grid,
            "kv_heads": args.kv_heads}  # fmt: skip
    path = temporal_angle_figure(panels, args.plot, period, meta)
    counts = ", ".join(f"{p['name']} {len(p['pairs'])}" for p in panels)
    print(f"wrote {path} and {path.name}.json ({args.band} pairs: {counts})")
    return 0


def _sections(text: str) -> tuple[int, ...]:
    from vniahd.errors import VniahdError

    try:
        return tuple(int(x) for x in text.replace("/", ",").split(","))
    except ValueError:
        raise VniahdError(f"--sections must be three integers t,h,w, got {text!r}") from None


def torch_stack_cols(angles: Any, head: Any, pairs: list[int]) -> Any:
    """Column j of ``angles`` [G, F, P] taken from head ``head[j]``: [F, len(pairs)]."""
    import torch

    return torch.stack([angles[int(head[j]), :, j] for j in pairs], dim=1) if pairs else angles[0, :, :0]
