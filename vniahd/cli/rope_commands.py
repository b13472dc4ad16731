"""Inspection commands for RoPE variants: ``variants``, ``positions``, ``freqs`` (and ``angles``,
in :mod:`vniahd.cli.angles_command`, which shares this module's sequence flags and table).

These are how users debug a variant: which positions each token gets, which stream each rotary
pair reads, and (``angles``) the angle every pair of every token is rotated by — the whole variant
in one table. Output formats (``--json``) are a contract other tools rely on.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from vniahd.cli.rope_args import (
    add_sequence_args,
    fmt,
    num,
    one_variant,
    params_text,
    parse_grid,
    resolve_variant,
    rotary_from_model,
    sequence_from_args,
    text_table,
)
from vniahd.variant_spec import SPEC_HELP

if TYPE_CHECKING:
    pass

ORDER = 10

_POS_EPILOG = """\
Examples:
  vniahd positions --variant videorope
  vniahd positions --variant videorope --delta 0.5 --grid 3x4 --json
  vniahd positions --variant 'diagonal+mrope-blocks:delta=1,text_after=paper'

The sequence is N text tokens, a video of T frames of HxW visual tokens (row-major), then M
text tokens. --json prints {"variant": NAME, "t": [...], "h": [...], "w": [...]}, one number per
token (integers unless the positions are fractional).
"""

_FREQ_EPILOG = """\
Examples:
  vniahd freqs --variant videorope --head-dim 128
  vniahd freqs --variant mrope --head-dim 32 --theta 1e4 --sections 4,6,6 --json

The wavelength of pair n is 2*pi*theta^(2n/d) positions; pair 0 turns fastest. --json prints
{"variant": NAME, "axes": [...]} with the stream name per pair ("t", "h" or "w" for most
variants, "t" for every pair of a uniform allocation, "-" for a NoPE pair), plus "scale" (each
pair's frequency multiplier) when any differs from 1; a per-head variant (--kv-heads K) gives one
list per KV head and "kv_heads": K. `vniahd angles` combines these axes with the positions: the angle of every
pair of every token.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "variants",
        help="list the RoPE variant presets",
        description="Table of RoPE variant presets: name, layout, allocation, parameters and a "
        "one-line description. Any layout can be combined with any allocation as "
        "'LAYOUT+ALLOCATION:key=value,...' wherever a variant is accepted.",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list of Variant.to_dict() records instead of a table",
    )
    p.set_defaults(func=cmd_variants)

    p = subparsers.add_parser(
        "positions",
        help="show the (t,h,w) position of every token under a variant",
        description="Print the three position streams a variant assigns to text, video frames and "
        "text, frame by frame.",
        epilog=_POS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_variants(p)
    add_sequence_args(p)
    p.add_argument(
        "--plot",
        default=None,
        metavar="PNG",
        help="draw the positions of the frames and the text around them in 3-D, one panel per "
        "--variant (VideoRoPE Fig. 5; try --frames 2), to PNG, with the numbers in PNG.json",
    )
    p.add_argument(
        "--delta",
        type=float,
        default=None,
        metavar="D",
        help="override the diagonal layout's temporal spacing δ (e.g. 0.5)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_positions)

    p = subparsers.add_parser(
        "freqs",
        help="show which stream (t/h/w) each rotary pair reads under a variant",
        description="Print every rotary pair of a head: its wavelength in positions and the "
        "position stream (t, h or w) its angle comes from.",
        epilog=_FREQ_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_variants(p)
    p.add_argument(
        "--head-dim",
        type=int,
        default=None,
        metavar="D",
        help="attention head dimension (default 128, Qwen2-VL-7B); pairs = D/2",
    )
    p.add_argument(
        "--theta",
        type=float,
        default=None,
        help="RoPE base θ (default 1e6, Qwen2-VL); only affects wavelengths",
    )
    p.add_argument(
        "--sections",
        default=None,
        metavar="t,h,w",
        help="pairs per stream, summing to D/2 (default: the variant's, e.g. 16,24,24 for D=128)",
    )
    p.add_argument(
        "--kv-heads",
        type=int,
        default=None,
        metavar="K",
        help="the model's KV heads; needed by per-head variants (mhrope), one map per KV head",
    )
    p.add_argument(
        "--model",
        default=None,
        metavar="SPEC",
        help="read the rotated head dim, θ, sections and KV heads from a model (hf:PATH, "
        "random:FAMILY, ...; loaded on the CPU) instead of --head-dim/--theta/--kv-heads",
    )
    p.add_argument(
        "--plot",
        default=None,
        metavar="PNG",
        help="draw, for the pairs of --band, the cosine of the angle a visual token turns by "
        "between frame 0 and frame f, against f (VideoRoPE Fig. 4), one panel per --variant, to "
        "PNG, with the numbers in PNG.json",
    )
    p.add_argument(
        "--band",
        default="temporal",
        help="pairs to plot: temporal, height, width, high, low, nope, all, or pair ranges A:B "
        "(default temporal: the pairs a variant gives to time)",
    )
    p.add_argument(
        "--frames",
        type=int,
        default=400,
        metavar="N",
        help="frame distances 0..N-1 on the plot's x axis (default 400)",
    )
    p.add_argument(
        "--grid",
        default="1x1",
        metavar="HxW",
        help="visual tokens per frame for the plot (layouts that step by the grid size care; default 1x1)",
    )
    p.add_argument(
        "--period",
        type=float,
        default=None,
        metavar="FRAMES",
        help="distractor spacing marked on the plot (default the temporal period 2*pi*theta^(2*s_t/d) "
        "of the sections, as 'vniahd generate --period auto' computes it)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_freqs)


def _add_variants(p: argparse.ArgumentParser) -> None:
    """``--variant``, repeatable: one for a table or JSON, several side by side with ``--plot``."""
    p.add_argument(
        "--variant",
        required=True,
        action="append",
        metavar="NAME",
        help="the variant (repeat it with --plot for panels side by side): " + SPEC_HELP,
    )


def cmd_variants(args: argparse.Namespace) -> int:
    from vniahd.rope import NATIVE_VARIANT, PRESETS
    from vniahd.rope.allocations import ALLOCATIONS
    from vniahd.rope.layouts import LAYOUTS

    if args.json:
        print(json.dumps([v.to_dict() for v in [*PRESETS.values(), NATIVE_VARIANT]], indent=2))
        return 0
    rows = []
    for v in PRESETS.values():
        params = v.params
        if v.sections is not None:
            params["sections"] = "/".join(map(str, v.sections))
        rows.append([v.name, v.layout, v.allocation, params_text(params), v.description])
    # resolved per model family when a model is loaded (vniahd.models.families)
    rows.append(["native", "(model's)", "(model's)", "", "the model family's own positions and allocation"])
    print(text_table(rows, ["name", "layout", "allocation", "parameters", "description"]))
    print()
    print("layouts:     " + ", ".join(LAYOUTS))
    print("allocations: " + ", ".join(ALLOCATIONS))
    print("custom:      LAYOUT+ALLOCATION[:key=value,...], e.g. diagonal+lta:delta=0.5")
    print()
    print("sources (paper; the code each preset follows, file and line):")
    for v in PRESETS.values():
        print(f"  {v.name}: {v.source}")
    return 0


def cmd_positions(args: argparse.Namespace) -> int:
    segments = sequence_from_args(args)
    height, width = parse_grid(args.grid)
    if args.plot:
        from vniahd.cli.rope_plots import plot_positions

        return plot_positions(args, segments)
    args.variant = one_variant(args)
    variant = resolve_variant(args.variant, args.delta)
    pos = variant.positions(segments)
    streams = variant.stream_names
    if args.json:
        out = {"variant": args.variant}
        for i, axis in enumerate(streams):
            out[axis] = [num(x) for x in pos[i].tolist()]
        print(json.dumps(out))
        return 0

    cols = pos.t().tolist()  # [S, K]
    cell = lambda p: "(" + ",".join(fmt(x) for x in p) + ")"  # noqa: E731
    print(
        f"variant {variant.name}: layout {variant.layout} "
        f"({params_text(dict(variant.layout_params))}), allocation {variant.allocation}"
    )
    print(
        f"sequence: {args.text_before} text, {args.frames} frames of {height}x{width}, "
        f"{args.text_after} text; cells are ({','.join(streams)})"
    )
    idx = 0

    def text_block(title: str, n: int) -> None:
        nonlocal idx
        if n == 0:
            return
        print(f"\n{title}")
        for _ in range(n):
            print(f"  token {idx:>3}  {cell(cols[idx])}")
            idx += 1

    text_block("text before", args.text_before)
    hw = height * width
    for f in range(args.frames):
        frame = cols[idx : idx + hw]
        cells = [cell(p) for p in frame]
        wcell = max(len(c) for c in cells)
        print(f"\nframe {f} (tokens {idx}..{idx + hw - 1})")
        for r in range(height):
            print("  " + "  ".join(c.rjust(wcell) for c in cells[r * width : (r + 1) * width]))
        idx += hw
    text_block("text after", args.text_after)
    return 0


def cmd_freqs(args: argparse.Namespace) -> int:
    from vniahd.errors import VniahdError
    from vniahd.rope import make_variant, parse_variant
    from vniahd.rope.rotation import temporal_period, wavelengths

    args.model_sections = None
    if args.model is not None:
        given = [f for f, v in (("--head-dim", args.head_dim), ("--theta", args.theta)) if v is not None]
        given += ["--kv-heads"] * (args.kv_heads is not None)
        if given:
            raise VniahdError(f"--model gives the rotary config; drop {', '.join(given)} (or drop --model)")
        args.head_dim, args.theta, args.model_sections, args.kv_heads = rotary_from_model(args.model)
    args.head_dim = 128 if args.head_dim is None else args.head_dim
    args.theta = 1e6 if args.theta is None else args.theta
    if args.head_dim < 2 or args.head_dim % 2:
        raise VniahdError(f"--head-dim must be a positive even integer, got {args.head_dim}")
    if not args.theta > 0:
        raise VniahdError(f"--theta must be positive, got {args.theta}")
    num_pairs = args.head_dim // 2
    if args.plot:
        from vniahd.cli.rope_plots import plot_freqs

        return plot_freqs(args)
    args.variant = one_variant(args)
    variant = parse_variant(args.variant)
    if args.sections is not None:
        from vniahd.rope.allocations import ALLOCATIONS

        if not ALLOCATIONS[variant.allocation].uses_sections:
            raise VniahdError(
                f"variant {variant.name!r} uses the {variant.allocation} allocation, which has no "
                "sections; drop --sections"
            )
        variant = make_variant(
            variant.layout,
            variant.allocation,
            name=variant.name,
            sections=args.sections,
            description=variant.description,
            source=variant.source,
            **variant.params,
        )
    plan = variant.pair_plan(num_pairs, variant.sections_for(num_pairs, args.model_sections), args.kv_heads)
    streams = variant.stream_names
    heads = list(zip(plan.streams, plan.scale)) if plan.per_head else [(plan.streams, plan.scale)]
    names = [["-" if float(c) == 0 else streams[int(s)] for s, c in zip(st, sc)] for st, sc in heads]
    if args.json:
        out: dict[str, Any] = {"variant": args.variant, "axes": names if plan.per_head else names[0]}
        if not bool((plan.scale == 1).all()):  # NoPE (0) or rescaled pairs
            out["scale"] = plan.scale.tolist()
        if plan.per_head:
            out["kv_heads"] = len(names)
        print(json.dumps(out))
        return 0
    sections = variant.sections_for(num_pairs, args.model_sections)
    waves = wavelengths(args.head_dim, args.theta).tolist()
    print(
        f"variant {variant.name}: allocation {variant.allocation}, head_dim {args.head_dim} "
        f"({num_pairs} pairs), theta {args.theta:g}, sections (t,h,w) "
        f"{'-' if sections is None else ','.join(map(str, sections))}"
    )
    if plan.per_head:
        print("per KV head: " + " | ".join(f"head {g}: {''.join(n)}" for g, n in enumerate(names)))
    rows = [
        [str(n), f"{waves[n]:.6g}", "/".join(dict.fromkeys(h[n] for h in names))]
        + [f"{float(heads[0][1][n]):.6g}"] * (not plan.plain and not plan.per_head)
        for n in range(num_pairs)
    ]
    header = ["pair", "wavelength", "axis"] + ["freq scale"] * (not plan.plain and not plan.per_head)
    print(text_table(rows, header))
    if sections is not None and variant.allocation == "mrope-blocks" and sections[0] < num_pairs:
        print(
            f"\ntemporal period 2*pi*theta^(2*s_t/d) = "
            f"{temporal_period(args.head_dim, args.theta, sections[0]):.6g} positions "
            "(wavelength of the first pair not given to t)"
        )
    return 0
