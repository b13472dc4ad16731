"""``vniahd attention``: why a variant loses the needle — attention per frame and per frequency band.

The computation is :mod:`vniahd.analysis.attention`; this module picks samples, writes the files
and prints the summary. ``--json`` output is a contract (see ``--help``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from vniahd.cli.model_args import add_dtype, add_frame_mode_and_template, add_prompt
from vniahd.variant_spec import SPEC_HELP

ORDER = 12

EPILOG = """\
Examples:
  vniahd attention --dataset data/demo --model tiny --variant mrope --variant videorope --limit 3
  vniahd attention --dataset data/ref --model hf:/models/Qwen2-VL-7B-Instruct --device cuda \\
      --variant mrope --variant videorope --sample L1000_D0.5_short_r0 --band temporal --json a.json

For each sample and variant the model runs its own forward pass on the prompt and the
teacher-forced answer; every attention layer's rotated queries and keys are pooled per frame as
the layer runs (never a token x token matrix). Per layer and band (--band: all = the model's own
attention; temporal/height/width/nope/high/low or pair ranges A:B = the softmax recomputed from
those pairs' logit terms alone):
  frame_map[i][j]  attention of frame i's visual tokens (mean over them and over heads) summed
                   over frame j's visual tokens
  mass             the answer positions' attention summed over the needle frame(s), the
                   distractor frame(s), the rest of the haystack and the text (sums to 1)
Written to --out: masses.csv (every sample, variant, layer, band), frame-maps-SAMPLE.png (the
variants side by side at --plot-layer, one row per band) and run.json (model, variants, samples,
bands, peak memory, versions). --json PATH writes {"model", "sample_id", "frames",
"needle_frames", "distractor_frames", "variants": {V: {"layers": [{"layer", "bands": {B:
{"frame_map", "mass"}}}]}}} (a list of them for several samples). Qwen3.5's linear-attention
layers have no rotary and are skipped.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "attention",
        help="attention to the needle per frame, layer and frequency band (why a variant fails)",
        description="Frame x frame attention maps and the answer's attention mass on the needle, "
        "distractor, haystack and text, per layer and per band of rotary pairs, for dataset samples "
        "under one or more RoPE variants.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", required=True, metavar="DIR", help="dataset directory")
    p.add_argument(
        "--model", required=True, metavar="SPEC", help="tiny, hf:PATH or random:… (see 'vniahd eval')"
    )
    p.add_argument(
        "--variant", required=True, action="append", metavar="NAME", help="repeatable; " + SPEC_HELP
    )
    p.add_argument("--sample", action="append", default=None, metavar="ID", help="sample id (repeatable)")
    p.add_argument(
        "--limit", type=int, default=1, metavar="N", help="without --sample: the first N (default 1)"
    )
    p.add_argument("--lengths", default=None, metavar="L,…", help="without --sample: only these lengths")
    p.add_argument("--depths", default=None, metavar="D,…", help="without --sample: only these depths")
    p.add_argument(
        "--band",
        action="append",
        default=None,
        metavar="BAND",
        help="repeatable (default: all and temporal); all, temporal, height, width, nope, high, low or A:B",
    )
    p.add_argument("--layers", default=None, metavar="I,…", help="only these layers (default all)")
    p.add_argument("--plot-layer", type=int, default=None, metavar="I", help="layer drawn (default the last)")
    p.add_argument("--out", default="results/attention", metavar="DIR", help="output directory")
    p.add_argument("--json", default=None, metavar="PATH", help="write the maps and masses as JSON")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default: %(default)s)")
    add_dtype(p)
    add_frame_mode_and_template(p)
    add_prompt(p)
    p.add_argument("--chunk", type=int, default=256, metavar="N", help="queries/keys per pooled block")
    p.add_argument("--no-progress", action="store_true", help="no per-layer progress lines")
    p.set_defaults(func=run_attention)


def _numbers(text: str | None, kind: type, flag: str) -> list[Any] | None:
    from vniahd.errors import VniahdError

    if text is None:
        return None
    try:
        return [kind(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise VniahdError(f"{flag} must be a comma-separated list, got {text!r}") from None


def choose_samples(ds: Any, args: argparse.Namespace) -> list[str]:
    from vniahd.errors import VniahdError

    table = ds.samples
    if args.sample:
        known = set(table["sample_id"].astype(str))
        missing = [s for s in args.sample if s not in known]
        if missing:
            raise VniahdError(
                f"sample(s) {missing} not in {ds.path}; list them with 'vniahd inspect {ds.path} --list'"
            )
        return list(dict.fromkeys(args.sample))  # a repeated id would count twice in the intervals
    lengths = _numbers(args.lengths, int, "--lengths")
    depths = _numbers(args.depths, float, "--depths")
    if lengths is not None:
        table = table[table["length"].isin(lengths)]
    if depths is not None:
        table = table[table["depth"].round(6).isin([round(d, 6) for d in depths])]
    if args.limit < 1:
        raise VniahdError(f"--limit must be at least 1, got {args.limit}")
    if table.empty:
        raise VniahdError("no sample matches --lengths/--depths; see 'vniahd inspect DIR --list'")
    return [str(s) for s in table["sample_id"].head(args.limit)]


def run_attention(args: argparse.Namespace) -> int:
    import csv
    import io

    from vniahd.analysis.attention import MASS_PARTS, sample_attention
    from vniahd.dataset import Dataset
    from vniahd.errors import VniahdError
    from vniahd.files import atomic_write, check_out_dir, write_json_atomic
    from vniahd.models import get_backend
    from vniahd.notices import status
    from vniahd.provenance import provenance
    from vniahd.reporting.attention_figures import frame_maps_figure
    from vniahd.rope import parse_variant
    from vniahd.rope.bands import check_band

    if args.chunk < 1:
        raise VniahdError(f"--chunk must be at least 1, got {args.chunk}")
    ds = Dataset.open(args.dataset)
    variants = [parse_variant(v) for v in args.variant]
    bands = list(dict.fromkeys(check_band(b) for b in args.band or ["all", "temporal"]))
    layers = _numbers(args.layers, int, "--layers")
    samples = choose_samples(ds, args)
    out = Path(args.out)
    check_out_dir(out, "attention results")
    out.mkdir(parents=True, exist_ok=True)
    status(
        f"attention: loading {args.model}; {len(samples)} sample(s) x {len(variants)} variant(s), "
        f"bands {', '.join(bands)}"
    )
    from vniahd.evaluation.config import EvalConfig

    # the prompt options checked (and the template file read) before the model loads
    checked = EvalConfig(variants=variants, prompt=args.prompt, prompt_template=args.prompt_template)
    backend = get_backend(args.model, device=args.device, dtype=args.dtype, frame_mode=args.frame_mode)
    with backend.use_variant(variants[0]):  # a per-variant backend (tiny) has a model only inside
        lm = backend.language_model
        total = len(getattr(lm, "layers", []))
        kinds = getattr(getattr(lm, "config", None), "layer_types", None) or ["full_attention"] * total
        memory = _memory_model(backend, ds, samples, args.chunk)
    with_rotary = [i for i, kind in enumerate(kinds) if kind == "full_attention"]
    missing = sorted(set(layers or []) - set(with_rotary))
    if missing:  # checked before any forward pass: nothing is computed for a typo
        raise VniahdError(
            f"--layers {args.layers}: layer(s) {missing} have no rotary attention in {args.model}; "
            f"its attention layers are {_span(with_rotary)}"
        )
    log = None if args.no_progress else status
    records = []
    for sample in samples:
        rec = sample_attention(
            ds,
            backend,
            variants,
            sample,
            bands,
            layers,
            args.chunk,
            log,
            prompt=args.prompt,
            prompt_template=checked.template,  # read once, not once per sample
        )
        records.append(rec)
        frame_maps_figure(rec, bands, args.plot_layer, out / f"frame-maps-{sample}.png")
    caught = {layer["layer"] for body in records[0]["variants"].values() for layer in body["layers"]}
    if layers is None and total and len(caught) < total:
        status(
            f"{total - len(caught)} of {total} layers have no rotary attention (linear attention); "
            f"the maps cover the {len(caught)} full-attention layers {sorted(caught)}"
        )
    rows = [
        [r["sample_id"], v, layer["layer"], band, *[layer["bands"][band]["mass"][p] for p in MASS_PARTS]]
        for r in records
        for v, body in r["variants"].items()
        for layer in body["layers"]
        for band in bands
    ]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["sample_id", "variant", "layer", "band", *MASS_PARTS])
    writer.writerows(rows)
    with atomic_write(out / "masses.csv", "w") as fh:
        fh.write(buf.getvalue())
    write_json_atomic(
        out / "run.json",
        {
            "model": backend.describe(),
            "dataset": str(ds.path),
            "variants": {v.name: v.to_dict() for v in variants},
            "samples": samples,
            "prompt": args.prompt,
            "prompt_template": args.prompt_template,
            "dtype": args.dtype,
            "frame_mode": args.frame_mode,
            "bands": bands,
            "layers": layers,
            "peak_memory": _peak_memory(args.device),
            # what the memory model predicts for the longest sample (vniahd.analysis.memory_model)
            "memory_model": memory,
            "provenance": provenance(),
        },
    )
    if args.json:
        with atomic_write(Path(args.json), "w") as fh:
            json.dump(records[0] if len(records) == 1 else records, fh)
    _print_summary(rows, bands)
    print(f"wrote {out}/masses.csv, {out}/run.json and {len(records)} frame-map figure(s)")
    return 0


def _span(layers: list[int]) -> str:
    """``0-27`` for a contiguous run, else the list."""
    if len(layers) > 2 and layers == list(range(layers[0], layers[-1] + 1)):
        return f"{layers[0]}-{layers[-1]}"
    return str(layers)


def _memory_model(backend: Any, ds: Any, samples: list[str], chunk: int) -> dict[str, Any]:
    from vniahd.analysis.memory_model import attention_memory
    from vniahd.evaluation.planning.flops import ModelShape

    table = ds.samples.set_index(ds.samples["sample_id"].astype(str))
    frames = int(max(table.loc[s, "num_frames"] for s in samples))
    # the stack's filler text (0 elsewhere; a column datasets written before it lack)
    filler = int(max(table.loc[s, "text_tokens"] for s in samples)) if "text_tokens" in table else 0
    per_frame = int(backend.tokens_per_frame(tuple(ds.frame_size)))
    model = getattr(backend, "model", None)
    params = sum(p.numel() for p in model.parameters()) if model is not None else 0
    tokens = frames * per_frame + filler + 256  # the frames plus the prompt's text, generously
    dtype_bytes = int(getattr(backend.dtype, "itemsize", 4))
    shape = ModelShape.from_backend(backend)
    return {
        "frames": frames,
        "tokens": tokens,
        **attention_memory(shape, params, tokens, frames, dtype_bytes, chunk),
    }


def _peak_memory(device: str) -> dict[str, Any]:
    import resource

    out: dict[str, Any] = {"cpu_max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    if device.startswith("cuda"):
        import torch

        out["cuda_max_allocated_bytes"] = int(torch.cuda.max_memory_allocated())
    return out


def _print_summary(rows: list[list[Any]], bands: list[str]) -> None:
    """The last layer's masses per variant and band: mean over samples [95% t-interval]."""
    from vniahd.cli.rope_args import text_table
    from vniahd.reporting.stats import t_interval

    last = max(r[2] for r in rows)
    table = []
    for variant in dict.fromkeys(r[1] for r in rows):
        for band in bands:
            picked = [r for r in rows if r[1] == variant and r[2] == last and r[3] == band]
            cells = []
            for i in range(4):
                values = [float(r[4 + i]) for r in picked]
                if len(values) > 1:
                    mean, lo, hi = t_interval(values)
                    cells.append(f"{mean:.3f} [{lo:.3f}, {hi:.3f}]")
                else:
                    cells.append(f"{values[0]:.3f}")
            table.append([variant, band, *cells])
    print(f"answer's attention mass at layer {last} (mean over samples [95% t-interval]):")
    print(text_table(table, ["variant", "band", "needle", "distractor", "haystack", "text"]))
