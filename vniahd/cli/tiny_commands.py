"""``vniahd train-tiny`` and ``vniahd demo``: the embedded tiny model (see vniahd.models.tiny)."""

from __future__ import annotations

import argparse
import sys

ORDER = 60

TRAIN_EPILOG = """\
The tiny model: frozen EfficientNet-Lite0 features (4 tokens per frame) → LayerNorm+Linear →
a 3-layer Qwen2VLTextModel (d=128, head dim 32, rotary sections 4/6/6, theta 1e4) → LM head tied
to the word embeddings,
trained on 16-frame haystacks from the training split of the demo haystack with augmented
object×colour needle cards. Every variant trains on identical data from identical initial weights;
only the RoPE variant differs. Checkpoints (transformers format + metadata) are cached under
$VNIAHD_CACHE/tiny/checkpoints, keyed by the training configuration; an existing checkpoint is
reused unless --force.

The package ships trained checkpoints (vanilla, tad, mrope, videorope, hope, vrope, mhrope × seeds
0-2; --list-shipped), and '--model tiny' evaluates those unless you ask for local weights
('tiny?weights=local'):
training is deterministic on one machine but not across CPUs. --verify retrains a shipped
checkpoint here and compares: bit for bit where torch, transformers, the CPU vector ISA and the
thread count match the ones it was trained with; elsewhere it reports how far the weights and the
training-length accuracy are and passes if the retrained model reaches 0.90 there (exit 1 if not).

examples:
  vniahd train-tiny --variant videorope --seed 1
  vniahd train-tiny --variant mrope --seed 0 --verify
  vniahd train-tiny --list-shipped
  vniahd eval --dataset DIR --model 'tiny?weights=local' --variant videorope --out results/x
"""

DEMO_EPILOG = """\
Steps: build the demo haystack; generate V-NIAH and V-NIAH-D datasets on its held-out portion;
load the tiny models shipped with the package (one per variant and seed; --retrain trains them
here instead); evaluate all; write the across-seed verdict (means with t-intervals over seeds,
paired differences against mrope), heatmaps, curves, summary.md and report.html into --out; print
the summary. Everything is cached: a second run encodes and trains nothing.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-tiny",
        help="train the tiny video LM for one RoPE variant (CPU, minutes)",
        description="Train (or reuse) the embedded tiny video-language model for one "
        "RoPE variant and cache the checkpoint.",
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--variant",
        default=None,
        metavar="NAME",
        help="RoPE variant: a preset (vanilla, tad, mrope, videorope, …) or any spec "
        "'vniahd eval --variant' accepts",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for initial weights and episodes (default: 0)")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        metavar="N",
        help="optimizer steps (default: the recipe's, see 'vniahd.training.train.TrainConfig')",
    )
    p.add_argument(
        "--haystack",
        default=None,
        metavar="VIDEO",
        help="haystack video to train on (default: the demo haystack)",
    )
    p.add_argument("--force", action="store_true", help="train again even if a checkpoint exists")
    p.add_argument(
        "--verify",
        action="store_true",
        help="retrain the shipped checkpoint of --variant/--seed here and compare it (bits, weights, "
        "training-length accuracy); exit 1 if it fails",
    )
    p.add_argument("--list-shipped", action="store_true", help="list the checkpoints shipped with vniahd")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run_train)

    d = sub.add_parser(
        "demo",
        help="the whole small-scale experiment on CPU: data, training, evaluation, report",
        description="Run the embedded V-NIAH / V-NIAH-D experiment with tiny models "
        "trained per RoPE variant, and write a report.",
        epilog=DEMO_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument(
        "--out", default="results/demo", metavar="DIR", help="report directory (default: %(default)s)"
    )
    d.add_argument(
        "--variants",
        default="vanilla,tad,mrope,videorope",
        metavar="A,B,…",
        help="comma-separated variants, or 'all': the paper's four and every published design "
        "after VideoRoPE ('vniahd variants'); a variant without shipped weights is trained here "
        "first, about 10 minutes per seed (default: %(default)s)",
    )
    d.add_argument(
        "--tasks",
        default="",
        metavar="T,…|vruler",
        help="also score V-RULER tasks on their demo items (needles/vruler-demo/; the stack's clips "
        "are cut from the held-out haystack): multi-key, counting, ordering, stack, or 'vruler' for "
        "all four; the tiny model was never trained on them, so expect chance-level scores "
        "(default: none)",
    )
    d.add_argument(
        "--seeds",
        default="0,1,2",
        metavar="S,…",
        help="comma-separated training seeds (default: %(default)s, the shipped ones)",
    )
    d.add_argument(
        "--retrain",
        action="store_true",
        help="train the models on this machine instead of evaluating the shipped ones (minutes per "
        "model; another CPU trains other models, so the numbers differ from the README's)",
    )
    d.add_argument(
        "--steps",
        type=int,
        default=None,
        metavar="N",
        help="training steps per model (default: the recipe's; other values train locally)",
    )
    d.add_argument(
        "--lengths",
        default=None,
        metavar="SPEC",
        help="haystack lengths in frames (default: 16,32,64,96,128 = 1x..8x the training length)",
    )
    d.add_argument("--depths", default=None, metavar="SPEC", help="needle depths (default: 0:1:0.25)")
    d.add_argument(
        "--repeats",
        type=int,
        default=None,
        metavar="R",
        help="haystack windows per (length, depth, needle) (default: 3 → 18 samples per cell and "
        "seed, 54 per cell over the 3 default seeds)",
    )
    d.add_argument("--no-progress", action="store_true", help="no progress bars")
    d.set_defaults(func=run_demo_cmd)


def _ints(text: str, what: str) -> tuple[int, ...]:
    from vniahd.errors import VniahdError

    try:
        vals = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise VniahdError(f"{what} {text!r}: give comma-separated whole numbers, e.g. 0,1") from None
    if not vals:
        raise VniahdError(f"{what}: give at least one value")
    return vals


def run_train(args: argparse.Namespace) -> int:
    import shutil
    from pathlib import Path

    from vniahd.errors import VniahdError
    from vniahd.models.tiny.checkpoints import is_complete
    from vniahd.models.tiny.recipe import Recipe, train_and_save
    from vniahd.rope import parse_variant

    if args.list_shipped:
        return _list_shipped()
    if not args.variant:
        raise VniahdError("give --variant NAME (or --list-shipped)")
    if args.steps is not None and args.steps < 1:
        raise VniahdError(f"--steps must be at least 1, got {args.steps}")
    if args.verify:
        from vniahd.training.verify import verify

        if args.steps is not None or args.haystack:
            raise VniahdError("--verify checks a shipped checkpoint: drop --steps and --haystack")
        result = verify(
            args.variant, args.seed, progress=not args.no_progress, log=lambda m: print(m, file=sys.stderr)
        )
        print("\n".join(result.lines()))
        return 0 if result.passed else 1
    variant = parse_variant(args.variant)
    recipe = Recipe(haystack=Path(args.haystack) if args.haystack else None).with_train(seed=args.seed)
    if args.steps is not None:
        recipe = recipe.with_train(steps=args.steps)
    path = recipe.checkpoint_path(variant)
    if is_complete(path) and not args.force:
        print(f"checkpoint exists (use --force to retrain): {path}")
        return 0
    if path.exists():
        shutil.rmtree(path)
    out = train_and_save(
        recipe, variant, progress=not args.no_progress, log=lambda m: print(m, file=sys.stderr)
    )
    print(f"checkpoint: {out}")
    return 0


def _list_shipped() -> int:
    from vniahd.models.tiny.shipped import WEIGHTS_DIR, read_manifest

    entries = read_manifest()["checkpoints"]
    if not entries:
        print("no tiny checkpoints are shipped with this installation")
        return 0
    print(f"{len(entries)} checkpoints in {WEIGHTS_DIR}:")
    for e in entries:
        m, t = e.get("machine", {}), e.get("training", {})
        print(
            f"  {e['variant_name']:<10} seed {e['seed']}  {e['file']:<28} {e['bytes'] / 1e6:.2f} MB  "
            f"key {e['checkpoint_key']}  trained {t.get('seconds', 0):.0f}s on {m.get('cpu', '?')} "
            f"({m.get('cpu_capability', '?')}, {m.get('threads', '?')} threads, torch {m.get('torch', '?')})"
        )
    return 0


def _tasks(text: str) -> tuple[str, ...]:
    from vniahd.demo_datasets import DEMO_TASKS

    names = [t.strip() for t in text.split(",") if t.strip()]
    return tuple(dict.fromkeys(x for t in names for x in (DEMO_TASKS if t == "vruler" else (t,))))


def run_demo_cmd(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    from vniahd.demo import DemoConfig, run_demo

    cfg = DemoConfig(
        out=Path(args.out),
        variants=tuple(v.strip() for v in args.variants.split(",") if v.strip()),
        seeds=_ints(args.seeds, "--seeds"),
        steps=args.steps,
        retrain=args.retrain,
        progress=not args.no_progress,
        tasks=_tasks(args.tasks),
    )
    if args.lengths:
        cfg = replace(cfg, lengths=args.lengths)
    if args.depths:
        cfg = replace(cfg, depths=args.depths)
    if args.repeats is not None:
        cfg = replace(cfg, repeats=args.repeats)
    result = run_demo(cfg)
    print(result["summary_md"])
    print(f"report: {Path(result['report']).resolve()}")
    return 0
