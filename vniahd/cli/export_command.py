"""``vniahd export-inputs``: the stock-forward inputs of one scored sample, to replay in transformers."""

from __future__ import annotations

import argparse
from typing import Any

from vniahd.cli.model_args import add_dtype, add_prompt

ORDER = 45

EPILOG = """\
writes FILE (safetensors: keyword arguments of the model's own *ForConditionalGeneration.forward),
FILE.json (scored rows, prediction, correct, the allocation) and FILE.expected.safetensors (the
logits vniahd computed at the scored rows). Replay with transformers alone:

  import json, torch
  from safetensors.torch import load_file
  from transformers import AutoModelForImageTextToText
  meta = json.load(open("sample.safetensors.json"))
  model = AutoModelForImageTextToText.from_pretrained("/models/Qwen2-VL-7B-Instruct", dtype=torch.float32)
  logits = model(**load_file("sample.safetensors")).logits[0, meta["scored_rows"]]
  print((logits - load_file("sample.safetensors.expected.safetensors")["expected_logits"]).abs().max())

a variant whose allocation is not the model's own (meta["replay_plan"] set) needs it installed
first: vniahd.rope.hf.install_allocation(model, vniahd.rope.PairPlan(torch.tensor(p["streams"]),
torch.tensor(p["scale"], dtype=torch.float64))) with p = meta["replay_plan"]; a random: model needs
model.config.image_token_id = meta["image_token_id"] (and video_token_id = meta["video_token_id"]).
Without position_ids, the model's own get_rope_index computes positions from the same files
(input_ids, mm_token_type_ids, *_grid_thw): with --variant native --prompt native they equal
vniahd's, except Qwen2-VL / Qwen2.5-VL after the video (docs/footguns.md).

example:
  vniahd export-inputs --dataset data/ref --model hf:/models/Qwen2-VL-7B-Instruct --variant mrope \\
      --sample L1100_D0.6_red-cat_r0 --out sample.safetensors
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export-inputs",
        help="write one sample's stock-forward inputs and vniahd's logits, to replay in transformers",
        description="Export the inputs of one (sample, variant) as keyword arguments of the model's "
        "own transformers forward, with the logits vniahd computed, so that any reported number "
        "can be checked with transformers alone.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", required=True, metavar="DIR", help="dataset directory")
    p.add_argument(
        "--model", required=True, metavar="SPEC", help="hf:PATH or random:… (see 'vniahd eval --help')"
    )
    p.add_argument("--variant", required=True, metavar="NAME", help="RoPE variant (preset or spec)")
    p.add_argument("--sample", required=True, metavar="ID", help="sample id ('vniahd inspect DIR --list')")
    p.add_argument("--out", required=True, metavar="FILE", help="safetensors file to write")
    p.add_argument("--scoring", default="reference", choices=["reference", "choice"])
    add_prompt(
        p,
        "prompt layout, as for 'vniahd eval' (native: the frames go as one video with the "
        "family's markers and timestamps)",
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default: %(default)s)")
    add_dtype(p, "float32", "model dtype (default: %(default)s, so the replay compares float32 logits)")
    p.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from vniahd.dataset import Dataset
    from vniahd.evaluation.export import export_inputs
    from vniahd.models import get_backend
    from vniahd.notices import status
    from vniahd.rope import parse_variant

    variant = parse_variant(args.variant)
    ds = Dataset.open(args.dataset)
    status(
        f"exporting {args.sample} under {variant.name}: loading {args.model}, encoding the "
        "sample's frames and scoring it (seconds on a small model, minutes on a 7B one)"
    )
    backend = get_backend(args.model, device=args.device, dtype=args.dtype)
    rec = export_inputs(ds, backend, variant, args.sample, args.out, scoring=args.scoring, prompt=args.prompt)
    rows = rec["scored_rows"]
    print(
        f"wrote {args.out} ({', '.join(rec['tensors'])}), {args.out}.json and "
        f"{rec['expected_logits']}: {len(rows)} scored row(s) {rows[0]}..{rows[-1]}, "
        f"{prediction_text(rec)} ({'correct' if rec['correct'] else 'wrong'})"
        + (
            ""
            if rec["allocation"]["native"]
            else f"; replay needs the allocation {rec['replay_needs_allocation']} installed "
            "(the JSON's replay_plan)"
        )
    )
    return 0


def prediction_text(rec: dict[str, Any]) -> str:
    """``prediction 'X'``; an empty prediction says what it means instead of printing ``''``."""
    if rec["prediction"] != "":
        return f"prediction {rec['prediction']!r}"
    ids = rec.get("predicted_ids")
    shown = f" {ids}" if ids else ""
    return (
        f"prediction '' (the model's argmax token(s){shown} at the answer position(s) decode to no "
        "text: a special or unprintable token, so neither the answer nor any option; typical of "
        "random weights, see docs/footguns.md)"
    )
