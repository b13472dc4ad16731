"""``vniahd angles``: the angle by which every rotary pair of every token is rotated under a variant.

The table is the whole variant — positions and allocation in one — with nothing
implementation-specific left in it (docs/rope-math.md, "The angle table"). The computation is
:func:`vniahd.rope.angles.rotary_angles`; this module only parses flags and formats. ``--json``
output is a contract: ``{"variant", "tokens", "pairs", "angles"}``.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from vniahd.cli.rope_args import add_sequence_args, params_text, parse_grid, sequence_from_args, text_table
from vniahd.variant_spec import SPEC_HELP

ORDER = 11  # right after positions / freqs

_EPILOG = """\
Examples:
  vniahd angles --variant videorope --head-dim 8 --theta 100
  vniahd angles --variant mrope --head-dim 8 --theta 100 --sections 1,1,2 --frames 2 --grid 1x2 --json
  vniahd angles --variant 'diagonal+lta:delta=0.5' --pairs 60:64

Pair j (counted from the fastest, j = 0 ... D/2-1) of a token is rotated by
position[stream_j] * scale_j * theta^(-2j/D) radians (not reduced modulo 2*pi), with the
variant's positions (vniahd positions), per-pair streams (vniahd freqs) and frequency multipliers
(scale 0 = a NoPE pair, angle 0). --json prints {"variant": NAME, "tokens": L, "pairs": P,
"angles": [[a_0, ..., a_P-1] per token]} in float64; a per-head variant (mhrope, needs
--kv-heads K) adds "kv_heads": K and "angles" holds one such table per KV head. The table shows
the first and last three pairs unless --pairs A:B selects pairs A to B-1.
"""

SHOWN = 3  # pairs shown at each end of the table by default


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "angles",
        help="show the rotation angle of every rotary pair of every token under a variant",
        description="Print the angle (radians) by which each rotary pair of each token is rotated: "
        "the complete, implementation-independent description of a variant on a sequence.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--variant", required=True, metavar="NAME", help="the variant: " + SPEC_HELP)
    add_sequence_args(p)
    p.add_argument(
        "--head-dim",
        type=int,
        default=None,
        metavar="D",
        help="rotated dimensions per head (default 128, Qwen2-VL-7B); pairs = D/2",
    )
    p.add_argument("--theta", type=float, default=None, help="RoPE base θ (default 1e6, Qwen2-VL)")
    p.add_argument(
        "--sections",
        default=None,
        metavar="t,h,w",
        help="the model's mrope_section in pairs, summing to D/2 (default: D/2 split like "
        "Qwen2-VL's 16,24,24). As on a model, mrope-blocks, lta and lta-sequential use it unless "
        "the variant fixes sections; interleaved uses its own default; uniform has none",
    )
    p.add_argument(
        "--model",
        default=None,
        metavar="SPEC",
        help="read head dim (the rotated part, for partial rotary), θ, sections and KV heads from a "
        "model (hf:PATH, random:FAMILY, ...; it is loaded, on the CPU), resolve --variant native "
        "for it, and put its family's prompt markup (vision markers, timestamps) around the frames",
    )
    p.add_argument(
        "--fps",
        type=float,
        default=2.0,
        help="frames per second the timestamps of --model's markup count (default 2)",
    )
    p.add_argument(
        "--kv-heads",
        type=int,
        default=None,
        metavar="K",
        help="the model's number of key/value heads; needed by per-head variants (mhrope), which "
        "give each KV head its own table",
    )
    p.add_argument(
        "--pairs",
        default=None,
        metavar="A:B",
        help="table columns: pairs A to B-1 (either end may be left out; default the first and last 3)",
    )
    p.add_argument("--json", action="store_true", help="print JSON (every pair) instead of a table")
    p.set_defaults(func=cmd_angles)


def _parse_sections(text: str) -> tuple[int, int, int]:
    from vniahd.errors import VniahdError

    parts = [s.strip() for s in text.replace("/", ",").split(",")]
    if len(parts) != 3 or not all(s.isdigit() for s in parts):
        raise VniahdError(
            f"--sections must be three non-negative integers t,h,w (e.g. 16,24,24), got {text!r}"
        )
    return int(parts[0]), int(parts[1]), int(parts[2])


def _parse_pairs(text: str, num_pairs: int) -> list[int]:
    from vniahd.errors import VniahdError

    m = re.fullmatch(r"\s*(\d*)\s*:\s*(\d*)\s*", text)
    start = int(m.group(1)) if m and m.group(1) else 0
    stop = int(m.group(2)) if m and m.group(2) else num_pairs
    if not m or not 0 <= start < stop <= num_pairs:
        raise VniahdError(
            f"--pairs must be A:B with 0 <= A < B <= {num_pairs} (pairs A to B-1 of D/2 = {num_pairs}), "
            f"got {text!r}"
        )
    return list(range(start, stop))


def cmd_angles(args: argparse.Namespace) -> int:
    from vniahd.errors import VniahdError
    from vniahd.rope.angles import angle_plan, angle_sections, rotary_angles, token_labels
    from vniahd.rope.specs import get_variant

    segments = sequence_from_args(args)
    sections = None if args.sections is None else _parse_sections(args.sections)
    variant = get_variant(args.variant)
    if args.model is not None:
        flags = {"--head-dim": args.head_dim, "--theta": args.theta, "--sections": args.sections}
        given = [f for f, v in {**flags, "--kv-heads": args.kv_heads}.items() if v is not None]
        if given:
            raise VniahdError(f"--model gives the rotary config; drop {', '.join(given)} (or drop --model)")
        variant, segments, config = _from_model(args, variant)
        args.head_dim, args.theta, sections, args.kv_heads = config
    elif variant.is_native:
        raise VniahdError(
            "native is each model family's own variant: give --model SPEC (e.g. random:qwen3-vl or "
            "hf:PATH), or name the layout instead, e.g. --variant mrope-frames+interleaved"
        )
    args.head_dim = 128 if args.head_dim is None else args.head_dim
    args.theta = 1e6 if args.theta is None else args.theta
    angles = rotary_angles(variant, segments, args.head_dim, args.theta, sections, args.kv_heads)
    num_tokens, num_pairs = angles.shape[-2:]
    columns = None if args.pairs is None else _parse_pairs(args.pairs, num_pairs)
    if args.json:
        out: dict = {"variant": args.variant, "tokens": num_tokens, "pairs": num_pairs}
        if variant.per_head:
            out["kv_heads"] = int(angles.shape[0])
        out["angles"] = angles.tolist()
        print(json.dumps(out))
        return 0

    plan = angle_plan(variant, args.head_dim, sections, args.kv_heads)
    used = angle_sections(variant, args.head_dim, sections)
    used_text = "-" if used is None else ",".join(map(str, used))
    print(
        f"variant {variant.name}: layout {variant.layout} ({params_text(dict(variant.layout_params))}), "
        f"allocation {variant.allocation}"
        + (f" ({params_text(dict(variant.allocation_params))})" if variant.allocation_params else "")
        + f", sections (t,h,w) {used_text}; streams {','.join(variant.stream_names)}"
    )
    print(
        f"head_dim {args.head_dim} ({num_pairs} pairs), theta {args.theta:g}; axes "
        f"{plan.describe(variant.stream_names)}\n"
        "angle of pair j = position[stream_j] * scale_j * theta^(-2j/head_dim), in radians "
        "(- = NoPE, * = scaled frequency); columns are j+stream"
    )
    if columns is None:
        columns = list(range(num_pairs))
        if num_pairs > 2 * SHOWN:
            columns = columns[:SHOWN] + [-1] + columns[-SHOWN:]  # -1: the elided middle
    tables = angles if variant.per_head else angles[None]
    plans = list(zip(plan.streams, plan.scale)) if plan.per_head else [(plan.streams, plan.scale)]
    for head, (table, (streams, scale)) in enumerate(zip(tables, plans)):
        names = PairPlanNames(variant.stream_names, streams, scale)
        if variant.per_head:
            print(f"KV head {head}:")
        header = ["token", "kind"] + ["..." if j < 0 else f"{j}{names[j]}" for j in columns]
        rows = [
            [str(i), label] + ["..." if j < 0 else f"{row[j]:.6g}" for j in columns]
            for i, (label, row) in enumerate(zip(token_labels(segments), table.tolist()))
        ]
        print(text_table(rows, header))
    return 0


class PairPlanNames:
    """``names[j]``: the stream name of pair ``j`` (``-`` for NoPE, ``*`` after a scaled one)."""

    def __init__(self, stream_names: tuple[str, ...], streams: object, scale: object):
        import torch

        assert isinstance(streams, torch.Tensor) and isinstance(scale, torch.Tensor)
        self._names = [
            "-" if float(c) == 0 else stream_names[int(st)] + ("" if float(c) == 1 else "*")
            for st, c in zip(streams, scale)
        ]

    def __getitem__(self, j: int) -> str:
        return self._names[j]


def _from_model(args: argparse.Namespace, variant: Any) -> tuple[Any, list[Any], tuple[int, float, Any, Any]]:
    """(variant, segments, (rotated head dim, θ, sections, KV heads)) on ``--model``: ``native``
    resolved for it, and its family's markup (as ``--prompt native`` lays it out in eval) around
    the frames; a model without a family (the tiny one) keeps the bare frames."""
    from vniahd.evaluation.execution.prompt_layout import encode_chunks, prompt_layout
    from vniahd.models import get_backend
    from vniahd.models.families import by_backend_family, native_variant
    from vniahd.rope.segments import frame_segments

    backend = get_backend(args.model, device="cpu")
    rot = backend.rotary
    if variant.is_native:
        variant = native_variant(backend, args.fps)
    segments = sequence_from_args(args)
    family = getattr(backend, "family", None)
    if isinstance(family, str) and by_backend_family(family) is not None:
        layout = prompt_layout("native", backend, args.fps, 1)
        chunks = [len(c) for c in encode_chunks(layout, backend.tokenizer, "", "", args.frames)]
        chunks[0] += args.text_before
        chunks[-1] += args.text_after
        segments = frame_segments(chunks, parse_grid(args.grid), layout.frame_mode, 0)
    dim = rot.rotary_dim or rot.head_dim
    return variant, segments, (dim, rot.theta, tuple(rot.sections), rot.kv_heads)
