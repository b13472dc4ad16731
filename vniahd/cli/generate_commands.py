"""``vniahd generate``: build a dataset directory (``vniahd inspect`` and ``vniahd needles`` are in
:mod:`vniahd.cli.dataset_commands`)."""

from __future__ import annotations

import argparse
import time

ORDER = 30

GENERATE_EPILOG = """\
grid syntax: a:b:step includes b when the steps land on it (exact decimals: 0:1:0.2 is
0, 0.2, 0.4, 0.6, 0.8, 1.0); comma lists and mixes also work (100,300:900:200).

schedules:
  none       no distractor (plain V-NIAH)
  reference  the reference code's rule: needle before haystack frame q=floor(depth*N);
             one distractor before haystack frame q-period or q+period (seeded 50/50 draw when
             both fit; none when neither does); needle and distractor end up period+1 slots apart
  periodic   distractors every period frames on both sides of the needle within the haystack
             (--max-distractors keeps the nearest K)

protocols (--protocol NAME sets these options; options given explicitly still win):
  videorope  the released VideoRoPE V-NIAH-D pipeline: --fps 1 --size 252x448 --resize
             torch-bicubic --frames-per-group 2 --lengths 100:2900:200 --depths 0:1:0.2
             --schedule reference --period 200 --seed 24242424 --draws reference; lengths,
             depths, slots and the period then count temporal groups of two 1 fps frames
  vruler     the released V-RULER pipeline (VideoRoPE++): the same options, the task from --task
             (multi-key: --depths 0:0.8:0.2, its released grid; stack: --lengths
             224000:296000:8000 context tokens, clips sampled at --fps 2 in groups of two)

tasks (--task; docs/vruler.md):
  niah       V-NIAH / V-NIAH-D (default): one needle, distractors by --schedule
  multi-key  3-4 needles per item at random frames inside [depth, depth+0.2) of the haystack
  counting   0-2 needles; how many times an object appears (released rule: spread over the whole
             video, depth ignored; --placement depth spreads them inside the depth's window)
  ordering   2-4 needles; their order (placement as counting)
  stack      the lengthy multimodal stack: each item's whole clip inside filler text, then a
             multiple-choice question about it; --lengths are context lengths in TOKENS
             (released: 224000:296000:8000), the filler budget is length - --visual-tokens,
             counted in the scored model's tokens; --placement depth (default): depth = share
             of the filler before the clip; reference (the default under --protocol vruler):
             the released rule, depth counted from the question; defaults --fps 2, --visual-tokens
             32768, --lengths 224000:296000:8000
  --needles takes the task's file in the released format (multi_key_multi_value.json,
  counting.json, ordering.json, lengthy_multimodal_stack.json; v_niah_d.json for niah) or
  'demo' (needles/vruler-demo/; for stack, five clips cut from --haystack with a card in each)

examples:
  vniahd generate --haystack demo --needles demo --out data/demo-ref
  vniahd generate --haystack movie.mp4 --needles needles.json --distractor-needles distractors.json \\
      --lengths 100:2900:200 --depths 0:1:0.2 --schedule reference --period auto:128,1e6,16 --out data/ref
  (on the demo material: --haystack demo --needles demo --distractor-needles demo)
  vniahd generate --protocol vruler --task counting --haystack movie.mp4 \
      --needles VideoRoPE/videorope_plus/v_ruler/data/counting.json --out data/counting
  vniahd generate --protocol vruler --task stack \
      --needles VideoRoPE/videorope_plus/v_ruler/data/lengthy_multimodal_stack.json \
      --clips longvideobench/videos --out data/stack

refused (one line, nothing written): lengths over 100000 frames, a schedule that places no
distractor in any sample, an unreadable needle image, --fps above the video's rate, a haystack of
a single repeated frame. Warned (one line each): samples left without a distractor, variable frame
rate or missing timestamps (then sampled by timestamp / rate stated), upscaled or stretched video,
repeated or tiled frames, transparent needles (composited on --needle-background).
"""


def _int_or_none(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


class _Given(argparse.Action):
    """Store the value and note that the option was given (``args.given``), so that --protocol
    fills in only the options left out."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.given = set(getattr(namespace, "given", ())) | {self.dest}


def _frames_per_group(text: str) -> int:
    if text not in ("1", "2"):
        raise argparse.ArgumentTypeError(f"{text!r}: use 1 or 2")
    return int(text)


def register(sub: argparse._SubParsersAction) -> None:
    from vniahd.dataset.protocols import DEFAULTS, PROTOCOLS
    from vniahd.media.sampling import RESIZE_METHODS
    from vniahd.plan.period import PERIOD_HELP
    from vniahd.plan.planner import DRAWS
    from vniahd.plan.tasks import TASKS

    g = sub.add_parser(
        "generate",
        help="generate a V-NIAH(-D) dataset directory from a video and a needle set",
        description="Plan needle/distractor placements over a length x depth grid and write a "
        "self-contained dataset directory (samples.parquet, dataset.json, haystack "
        "frames, needle images).",
        epilog=GENERATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g.add_argument(
        "--haystack",
        metavar="VIDEO",
        help="haystack video file, or 'demo' for the bundled demo haystack (built on first use); "
        "required except for --task stack, which has no haystack (with --needles demo its clips are "
        "cut from this video, by default the demo haystack)",
    )
    g.add_argument(
        "--needles",
        required=True,
        metavar="NEEDLES.json",
        help="needle set: native JSON or the reference list format; 'demo' for needles/demo",
    )
    g.add_argument(
        "--distractor-needles",
        metavar="DISTRACTORS.json",
        help="reference format only: the parallel distractor file ('demo' with --needles demo: "
        "the demo set's own distractors)",
    )
    g.add_argument(
        "--task",
        default="niah",
        choices=list(TASKS),
        help="niah (default): V-NIAH / V-NIAH-D, one needle (and distractors); multi-key, "
        "counting, ordering: the V-RULER tasks, several needle images per item, read from the "
        "task's file in the released format ('demo': needles/vruler-demo/); stack: a clip in "
        "filler text (see 'tasks' below); see docs/vruler.md",
    )
    g.add_argument(
        "--placement",
        choices=["reference", "depth"],
        help="V-RULER tasks: reference = the released rule (the default, except for stack); "
        "depth = counting/ordering needles spread evenly inside each depth's window (the released "
        "rule ignores depth), or the stack's clip after that share of the filler (its default: "
        "the released stack rule counts depth from the end)",
    )
    g.add_argument(
        "--clips",
        metavar="DIR",
        help="--task stack: the folder holding the items' video_path files (default: beside the "
        "JSON file, then videos/ beside it)",
    )
    g.add_argument(
        "--visual-tokens",
        type=int,
        default=None,
        metavar="N",
        help="--task stack: tokens of the context kept for the clip; the filler budget is "
        "length - N (default: 32768, the released max_training_length = context - 32768)",
    )
    g.add_argument(
        "--max-clip-frames",
        type=int,
        default=None,
        metavar="N",
        help="--task stack: sampled frames kept per clip, evenly spread (default: 768, "
        "qwen_vl_utils' cap in the release)",
    )
    g.add_argument(
        "--protocol",
        choices=sorted(PROTOCOLS),
        help="set every option below as a published pipeline did (see 'protocols' below); "
        "options given explicitly override it",
    )
    g.add_argument(
        "--lengths",
        action=_Given,
        default=DEFAULTS["lengths"],
        help="haystack lengths in frames (in temporal groups with --frames-per-group 2; "
        "default: %(default)s); --task stack: context lengths in tokens (default: 224000:296000:8000)",
    )
    g.add_argument(
        "--depths",
        action=_Given,
        default=DEFAULTS["depths"],
        help="needle depths in [0, 1] (default: %(default)s)",
    )
    g.add_argument(
        "--schedule",
        action=_Given,
        default=DEFAULTS["schedule"],
        help="none | reference | periodic (default: %(default)s)",
    )
    g.add_argument(
        "--period",
        action=_Given,
        default=str(DEFAULTS["period"]),
        help=PERIOD_HELP + " (default: %(default)s)",
    )
    g.add_argument(
        "--max-distractors",
        type=_int_or_none,
        default=None,
        metavar="K",
        help="periodic schedule: keep at most the K nearest distractors",
    )
    g.add_argument(
        "--fps",
        type=float,
        action=_Given,
        default=DEFAULTS["fps"],
        help="haystack sampling rate (default: %(default)s; --task stack: clip rate, default 2)",
    )
    g.add_argument(
        "--size",
        action=_Given,
        default="x".join(str(v) for v in DEFAULTS["size"]),
        help="frame size HxW (default: %(default)s)",
    )
    g.add_argument(
        "--resize",
        action=_Given,
        choices=RESIZE_METHODS,
        default=DEFAULTS["resize"],
        help="how haystack frames are resized: pil (antialiased bicubic) or torch-bicubic "
        "(torchvision's uint8 tensor resize, as the released V-NIAH-D code; needs no "
        "torchvision) (default: %(default)s)",
    )
    g.add_argument(
        "--frames-per-group",
        type=_frames_per_group,
        action=_Given,
        default=DEFAULTS["frames_per_group"],
        metavar="{1,2}",
        help="sampled frames per temporal group (one haystack slot): 1 = one frame, repeated to "
        "the model's temporal patch; 2 = two consecutive frames, as the released V-NIAH-D "
        "scripts (lengths, depths, slots and the period then count groups) (default: %(default)s)",
    )
    g.add_argument(
        "--seed",
        type=int,
        action=_Given,
        default=DEFAULTS["seed"],
        help="seed for every random draw (default: %(default)s)",
    )
    g.add_argument(
        "--draws",
        action=_Given,
        choices=DRAWS,
        default=DEFAULTS["draws"],
        help="where the reference schedule's before/after draws come from: hashed (one "
        "generator per sample: a sub-grid plans the same samples) or reference (the released "
        "loop: random.seed(SEED), one random() per length, depth and needle in loop order) "
        "(default: %(default)s)",
    )
    g.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="samples per (length, depth, needle) cell, each on another haystack window "
        "(repeat 0 starts at frame 0; default: %(default)s)",
    )
    g.add_argument(
        "--needle-background",
        default="black",
        metavar="COLOUR",
        help="colour transparent needle pixels are composited on, recorded in dataset.json "
        "(name, #RRGGBB or R,G,B; default: %(default)s)",
    )
    g.add_argument("--out", required=True, metavar="DIR", help="output dataset directory")
    g.add_argument("--overwrite", action="store_true", help="replace a different dataset already in DIR")
    g.add_argument(
        "--export-videos",
        action="store_true",
        help="also write every sample as an H.264 mp4 under DIR/videos and DIR/questions.jsonl",
    )
    g.set_defaults(func=_generate, given=set())


def _generate(args: argparse.Namespace) -> int:
    from vniahd.dataset.generate import generate

    t0 = time.perf_counter()
    given: set[str] = set(getattr(args, "given", ()))

    def opt(name: str):
        """An option the user gave, else None: generate() takes it from --protocol or the default."""
        return getattr(args, name) if name in given else None

    ds = generate(
        haystack=args.haystack,
        needles=args.needles,
        out=args.out,
        distractor_needles=args.distractor_needles,
        protocol=args.protocol,
        lengths=opt("lengths"),
        depths=opt("depths"),
        schedule=opt("schedule"),
        period=opt("period"),
        fps=opt("fps"),
        size=opt("size"),
        seed=opt("seed"),
        frames_per_group=opt("frames_per_group"),
        draws=opt("draws"),
        resize=opt("resize"),
        repeats=args.repeats,
        max_distractors=args.max_distractors,
        overwrite=args.overwrite,
        export_videos=args.export_videos,
        needle_background=args.needle_background,
        task=args.task,
        placement=args.placement,
        clips=args.clips,
        visual_tokens=args.visual_tokens,
        max_clip_frames=args.max_clip_frames,
    )
    hay = ds.meta["haystack"]
    fpg = ds.frames_per_group
    groups = f" = {hay['num_groups']} groups of {fpg}" if fpg != 1 else ""
    task = ds.config.get("task")
    placed = (
        f"task {task}, placement {ds.config.get('placement')}"
        + (f", {len(ds.meta['haystack']['clips'])} clips" if task == "stack" else "")
        if task
        else f"schedule {ds.config['schedule']}, period {ds.config['period']['frames']}"
    )
    print(
        f"wrote {ds.path}: {ds.meta['num_samples']} samples, {placed}, "
        f"haystack {hay['num_frames']} frames{groups}"
        f"{' (tiled)' if hay['tiled'] else ''}, in {time.perf_counter() - t0:.1f}s"
    )
    print(f"fingerprint {ds.fingerprint}")
    return 0
