"""``vniahd inspect`` and ``vniahd needles …``: look at datasets and needle sets."""

from __future__ import annotations

import argparse
import sys

ORDER = 31  # right after generate


def register(sub: argparse._SubParsersAction) -> None:
    i = sub.add_parser(
        "inspect",
        help="summarise a dataset directory, or draw one sample's contact sheet",
        description="Print a dataset's grid, schedule, counts and fingerprints. With --sample "
        "and --out, draw that sample as a PNG contact sheet (needle green, "
        "distractors red, slot numbers under each thumbnail).",
    )
    i.add_argument("dir", metavar="DIR", help="dataset directory written by vniahd generate")
    i.add_argument("--sample", metavar="ID", help="sample_id to draw (--list shows them); needs --out")
    i.add_argument("--out", metavar="PNG", help="where to write the contact sheet")
    i.add_argument(
        "--max-thumbs",
        type=int,
        default=40,
        help="thumbnails for long samples; inserted frames are always shown (default: %(default)s)",
    )
    i.add_argument("--list", action="store_true", help="also list every sample_id")
    i.set_defaults(func=_inspect)

    n = sub.add_parser(
        "needles",
        help="check a needle set or rebuild the demo needle set",
        description="Needle-set utilities.",
    )
    nsub = n.add_subparsers(dest="needles_command", metavar="SUBCOMMAND")
    b = nsub.add_parser(
        "build-demo",
        help="regenerate the demo needle set (images + needles.json)",
        description="Render the demo cards (scikit-image photos on coloured cards) and write needles.json.",
    )
    b.add_argument(
        "--out", default=None, metavar="DIR", help="output folder (default: needles/demo in the checkout)"
    )
    b.set_defaults(func=_needles_build_demo)
    c = nsub.add_parser(
        "check",
        help="load a needle set, decode every image, print needles and fingerprint",
        description="Validate a needle set (native or reference format): parse it, open and "
        "decode every needle and distractor image, and show the prompts.",
    )
    c.add_argument("path", metavar="NEEDLES.json", help="needle file, or 'demo'")
    c.add_argument(
        "--distractor-needles", metavar="DISTRACTORS.json", help="reference format: distractor file"
    )
    c.set_defaults(func=_needles_check)
    n.set_defaults(func=lambda args: (n.print_help(), 2)[1])


def _inspect(args: argparse.Namespace) -> int:
    from vniahd.dataset import Dataset, contact_sheet, summary
    from vniahd.errors import VniahdError

    ds = Dataset.open(args.dir)
    if bool(args.sample) != bool(args.out):
        raise VniahdError("--sample and --out go together: vniahd inspect DIR --sample ID --out sheet.png")
    if args.sample:
        ds.sample(args.sample)  # a wrong id fails before the summary is printed
    print(summary(ds))
    if args.list:
        print("\n".join(ds.samples["sample_id"]))
    if args.sample:
        path = contact_sheet(ds, args.sample, args.out, max_thumbs=args.max_thumbs)
        print(f"contact sheet: {path}")
    return 0


def _needles_build_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from vniahd.needles.demo import build_demo_needles

    out = Path(args.out) if args.out else Path(__file__).resolve().parents[2] / "needles" / "demo"
    path = build_demo_needles(out)
    print(f"wrote {path}")
    return 0


def _needles_check(args: argparse.Namespace) -> int:
    from vniahd.needles import check_image, load_needle_set, prompt_text

    ns = load_needle_set(args.path, args.distractor_needles)
    facts = {}
    for n in ns:  # decode every image: a damaged file fails here, not halfway through generate
        for p in (n.image, *n.distractors):
            facts[p] = check_image(p)

    def describe(p) -> str:
        f = facts[p]
        extra = ", transparent: composited on --needle-background by generate" if f.has_alpha else ""
        return f"{p} ({f.width}×{f.height} {f.mode}{extra})"

    print(
        f"{ns.source}: {ns.format} format, {len(ns)} needles, {len(facts)} images decoded, "
        f"fingerprint {ns.fingerprint}"
    )
    for n in ns:
        print(f"\n[{n.id}] image {describe(n.image)}")
        for d in n.distractors:
            print(f"  distractor {describe(d)}")
        print("  " + prompt_text(n).replace("\n", "\n  "))
        print(f"  answer: {n.answer}" + (f" ({n.answer_text})" if n.options else ""))
    sys.stdout.flush()
    return 0
