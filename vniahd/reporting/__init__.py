"""Reports: heatmaps, comparisons, accuracy-vs-length curves, summary tables and report.html.

Reads results only (never a model)::

    from vniahd.reporting import write_report
    paths = write_report(["results/vniah", "results/vniahd"], "report/", baseline="vanilla")
    paths["report.html"]

Modules: :mod:`.load` (inputs → records), :mod:`.aggregate` (grids, curves, summary rows),
:mod:`.stats` (Wilson and Student-t intervals), :mod:`.seeds` (the verdict across seeds or
models), :mod:`.heatmap`, :mod:`.compare`, :mod:`.curves` (figures),
:mod:`.tables` (summary.csv/md), :mod:`.html` (report.html), :mod:`.style` (shared look).
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from vniahd.errors import VniahdError
from vniahd.files import check_out_dir
from vniahd.notices import status, warn
from vniahd.provenance import provenance
from vniahd.reporting import aggregate, compare, curves, heatmap, html, seeds, tables, vruler
from vniahd.reporting.load import Loaded, load_inputs, load_reference_accuracies, load_results_dir
from vniahd.reporting.stats import wilson_interval

__all__ = [
    "write_report",
    "load_inputs",
    "load_results_dir",
    "load_reference_accuracies",
    "wilson_interval",
    "Loaded",
]


def write_report(
    results_dirs: Iterable[str | Path],
    out_dir: str | Path,
    baseline: str | None = None,
    x: str = "frames",
    annotate: bool | None = None,
    style: str = "default",
    across: str = "auto",
    paired_baseline: str | None = None,
) -> dict[str, Path]:
    """Write every report file into ``out_dir``; returns file name → path (``report.html`` last).

    ``results_dirs``: results directories, reference ``all_accuracies.json`` files, or directories
    holding one. ``baseline``: a variant name; adds ``delta_<variant>.png`` for every other
    variant. ``x``: ``frames`` or ``tokens`` (frames × tokens_per_frame). ``annotate``: print cell
    values in heatmaps (default: when the grid has at most 16 lengths and 12 depths). ``style``:
    the per-group heatmaps' look, ``default`` or ``reference`` (the released V-NIAH-D heatmap:
    17.5×8 in, no title, no values; :mod:`.heatmap`); the other figures keep theirs.
    ``across``: ``auto`` (summary.md and report.html lead with the across-seed table when some
    model comes in several seeds), ``seeds`` (always), ``models`` (every model is one replicate:
    checkpoints compared like seeds) or ``none`` (:mod:`.seeds`). ``paired_baseline``: the variant
    the across-seed paired comparisons subtract (default ``baseline``, else ``mrope`` when present).

    On stderr: a status line while reading and while drawing, and one warning per note on the
    inputs (a torn last line skipped, results counted once that two inputs both hold, a missing
    run.json, …; the same notes are in report.html). Nothing is written when an input or an option
    is wrong: ``out_dir`` is created only once every input has been read and checked.
    """
    if x not in aggregate.X_AXES:
        raise VniahdError(f"unknown x axis {x!r}; use one of {', '.join(aggregate.X_AXES)}")
    if style not in heatmap.STYLES:
        raise VniahdError(f"unknown heatmap style {style!r}; use one of {', '.join(heatmap.STYLES)}")
    out = Path(out_dir)
    check_out_dir(out, "report")
    inputs = list(results_dirs)
    status(f"reading {len(inputs)} results input(s)")
    loaded = load_inputs(inputs)
    records = loaded.records
    for src in loaded.sources:
        for note in src.notes:
            warn(f"{src.path}: {note}")
    if x == "tokens":  # fail before drawing anything if some group cannot be put on tokens
        for _, g in aggregate.groups(records):
            aggregate.tokens_per_frame(g)
    if across not in seeds.ACROSS:
        raise VniahdError(f"unknown --across {across!r}; use one of {', '.join(seeds.ACROSS)}")
    for b in (baseline, paired_baseline):
        if b is not None and b not in set(records["variant"]):
            raise VniahdError(
                f"baseline variant {b!r} is not in these results; variants found: "
                f"{', '.join(dict.fromkeys(records['variant']))}"
            )
    verdict = seeds.across(records, loaded.sources, across, paired_baseline or baseline)
    groups = aggregate.groups(records)
    status(
        f"drawing {len(groups)} heatmap(s), the comparison and curves of {len(records)} results into {out}"
    )
    try:
        out.mkdir(parents=True, exist_ok=True)
        return _write(
            loaded, groups, out, baseline=baseline, x=x, annotate=annotate, style=style, across=verdict
        )
    except OSError as exc:
        if exc.errno not in _WRITE_ERRORS:
            raise
        raise VniahdError(
            f"cannot write {exc.filename or out} ({exc.strerror or exc}); choose a "
            "writable --out with free space"
        ) from None


#: Errors writing into --out that are the user's to fix (permissions, space, a read-only disk).
_WRITE_ERRORS = {
    errno.EACCES,
    errno.EPERM,
    errno.ENOSPC,
    errno.EROFS,
    errno.EDQUOT,
    errno.EEXIST,
    errno.ENOTDIR,
    errno.EISDIR,
}


def _write(
    loaded: Loaded,
    groups: list,
    out: Path,
    *,
    baseline: str | None,
    x: str,
    annotate: bool | None,
    style: str = "default",
    across: seeds.Across | None = None,
) -> dict[str, Path]:
    records = loaded.records
    paths: dict[str, Path] = {}
    figures: list[tuple[str, Path, str]] = []
    names = heatmap.heatmap_filenames(groups)

    steps = tqdm(total=len(groups) + 4, desc="report", unit="fig", disable=None, leave=False)
    paths["compare.png"] = compare.plot_compare(records, out / "compare.png", x=x, annotate=annotate)
    figures.append(
        (
            "compare.png",
            paths["compare.png"],
            "every variant side by side on one 0..1 colour scale; rows are benchmarks, "
            "panel titles give the mean accuracy and its Wilson 95% interval",
        )
    )
    steps.update()
    paths["accuracy_vs_length.png"] = curves.plot_curves(records, out / "accuracy_vs_length.png", x=x)
    figures.append(
        (
            "accuracy_vs_length.png",
            paths["accuracy_vs_length.png"],
            "mean accuracy at each length (over depths and needles) with Wilson 95% bands; "
            "solid = V-NIAH, dashed = V-NIAH-D",
        )
    )
    steps.update()
    if baseline is not None:
        for name, p in compare.plot_deltas(records, baseline, out, x=x, annotate=annotate).items():
            paths[name] = p
            figures.append(
                (
                    name,
                    p,
                    f"per-cell accuracy minus {baseline}; blue better, red worse, "
                    "white no change; hatched = a side has no data",
                )
            )
    steps.update()
    for key, g in groups:
        name = names[key]
        paths[name] = heatmap.plot_heatmap(g, out / name, x=x, annotate=annotate, heatmap_style=style)
        figures.append(
            (
                name,
                paths[name],
                f"{key.variant} · {aggregate.label(g, 'benchmark')} · "
                f"{key.scoring} scoring · model "
                f"{aggregate.label(g, 'model')} ({key.model_spec})",
            )
        )
        steps.update()

    summary = aggregate.summary(records)
    source_paths = [s.path for s in loaded.sources]
    paths["summary.csv"] = tables.write_csv(summary, out / "summary.csv")
    vr = vruler.vruler_summary(records)
    paths.update(vruler.write_vruler(vr, out))
    extra = vruler.vruler_markdown(vr) if not vr.empty else ""
    paths["summary.md"] = tables.write_markdown(summary, out / "summary.md", source_paths, across, extra)
    options = {"inputs": [str(p) for p in source_paths], "baseline": baseline, "x": x, "annotate": annotate}
    if style != "default":
        options["style"] = style
    if across is not None:
        options["across"] = across.mode
        options["paired_baseline"] = across.baseline
    paths["report.html"] = html.write_html(
        out / "report.html", summary, figures, loaded.sources, provenance(), options, across=across
    )
    steps.update()
    steps.close()
    return paths
