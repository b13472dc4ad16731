"""``vniahd plot``: heatmaps, comparisons, curves, summary tables and report.html from results."""

from __future__ import annotations

import argparse

ORDER = 50

_EPILOG = """\
writes into --out:
  heatmap_<model>_<variant>_scoring-<scoring>_schedule-<schedule>.png
                            one per group; _dataset-<tag> is appended when two datasets share a
                            schedule (tag: "period-4", or the dataset fingerprint's first digits);
                            --style reference draws them as the released V-NIAH-D scripts did
                            (17.5x8 in, 1.1K ticks at 45 degrees, colour bar "Score", no title,
                            no values)
  compare.png               all variants side by side, one shared colour bar
  delta_<variant>.png       with --baseline: difference from the baseline
  accuracy_vs_length.png    one line per variant; solid V-NIAH, dashed V-NIAH-D
  summary.csv, summary.md   means with Wilson 95% intervals, near/far halves; when a model comes
                            in several seeds (tiny?seed=0, tiny?seed=1, ...) summary.md and
                            report.html lead with the across-seed table: per variant and benchmark
                            the mean over seeds with a Student-t 95% interval over the per-seed
                            means, the per-seed values, the V-NIAH -> V-NIAH-D drop, and paired
                            differences from the baseline (--baseline, default mrope);
                            --across models treats each model (checkpoint) as one replicate
  report.html               everything above in one self-contained page

results are grouped by the dataset and model fingerprints in each directory's run.json: results
of the same dataset and model pool (a sample scored in two directories counts once, with a
warning), different datasets never do, even when their schedules share a name.

examples:
  vniahd plot results/vniah results/vniahd --out report/
  vniahd plot results/run --out report/ --baseline vanilla --x tokens
  vniahd plot old_runs/videorope/all_accuracies.json results/run --out report/
  vniahd plot results/run --out report-paper/ --style reference
  vniahd plot results/seed0 results/seed1 results/seed2 --out report/ --baseline mrope
  vniahd plot results/ckpt-a results/ckpt-b results/ckpt-c --out report/ --across models
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "plot",
        help="draw heatmaps, comparisons and report.html from results (no model needed)",
        description=(
            "Read one or more results directories (written by 'vniahd eval') and/or reference "
            "all_accuracies.json files from the V-NIAH scripts, and write depth-vs-length "
            "heatmaps, a side-by-side comparison, accuracy-vs-length curves, summary tables with "
            "Wilson 95% confidence intervals and a self-contained report.html. Reads results only."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "results",
        nargs="+",
        metavar="RESULTS_DIR",
        help="a results directory (results*.jsonl + run.json), an all_accuracies.json "
        "file, or a directory holding one; several are combined",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="directory for the report files")
    p.add_argument(
        "--baseline",
        metavar="VARIANT",
        help="also draw delta_<variant>.png: each variant minus this one, per cell; and the "
        "across-seed paired comparisons subtract it (default there: mrope when present)",
    )
    p.add_argument(
        "--across",
        choices=("auto", "seeds", "models", "none"),
        default="auto",
        help="lead summary.md and report.html with a verdict across replicates: auto (default: "
        "across seeds when a model comes in several seeds), seeds (always, even with one), models "
        "(each model or checkpoint is one replicate, as if seeds of one recipe) or none",
    )
    p.add_argument(
        "--x",
        choices=("frames", "tokens"),
        default="frames",
        help="x axis: haystack length in frames (default) or in visual tokens "
        "(frames × tokens_per_frame, the paper's axis)",
    )
    p.add_argument(
        "--style",
        choices=("default", "reference"),
        default="default",
        help="look of the per-group heatmaps: default (mean and 95%% interval in the title, "
        "values in small grids, hatched cells without data) or reference (the released V-NIAH-D "
        "heatmap, to set beside the paper's figures)",
    )
    annot = p.add_mutually_exclusive_group()
    annot.add_argument(
        "--annotate",
        dest="annotate",
        action="store_true",
        default=None,
        help="print the value in every heatmap cell (default: only on grids of "
        "at most 16 lengths × 12 depths)",
    )
    annot.add_argument(
        "--no-annotate", dest="annotate", action="store_false", help="never print values in heatmap cells"
    )
    p.set_defaults(
        func=run,
        interrupted="interrupted; --out may hold only some of the report's "
        "files (each one whole); rerun the same command",
    )


def run(args: argparse.Namespace) -> int:
    from vniahd.reporting import write_report

    paths = write_report(
        args.results,
        args.out,
        baseline=args.baseline,
        x=args.x,
        annotate=args.annotate,
        style=args.style,
        across=args.across,
    )
    print(paths["summary.md"].read_text(encoding="utf-8").split("\nSources:")[0].rstrip())
    print()
    print(f"wrote {len(paths)} files to {paths['report.html'].parent}")
    print(f"report: {paths['report.html']}")
    return 0
