"""Reports: heatmaps, comparisons, accuracy-vs-length curves, summary tables and report.html.

Reads results only (never a model)::

    from vniahd.report import write_report
    paths = write_report(["results/vniah", "results/vniahd"], "report/", baseline="vanilla")
    paths["report.html"]

Modules: :mod:`.load` (inputs → records), :mod:`.aggregate` (grids, curves, summary rows),
:mod:`.stats` (Wilson intervals), :mod:`.heatmap`, :mod:`.compare`, :mod:`.curves` (figures),
:mod:`.tables` (summary.csv/md), :mod:`.html` (report.html), :mod:`.style` (shared look).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from vniahd.errors import VniahdError
from vniahd.provenance import provenance
from vniahd.report import aggregate, compare, curves, heatmap, html, tables
from vniahd.report.load import Loaded, load_inputs, load_reference_accuracies, load_results_dir
from vniahd.report.stats import wilson_interval

__all__ = ["write_report", "load_inputs", "load_results_dir", "load_reference_accuracies",
           "wilson_interval", "Loaded"]


def write_report(
    results_dirs: Iterable[str | Path],
    out_dir: str | Path,
    baseline: str | None = None,
    x: str = "frames",
    annotate: bool | None = None,
) -> dict[str, Path]:
    """Write every report file into ``out_dir``; returns file name → path (``report.html`` last).

    ``results_dirs``: results directories, reference ``all_accuracies.json`` files, or directories
    holding one. ``baseline``: a variant name; adds ``delta_<variant>.png`` for every other
    variant. ``x``: ``frames`` or ``tokens`` (frames × tokens_per_frame). ``annotate``: print cell
    values in heatmaps (default: when the grid has at most 16 lengths and 12 depths).
    """
    if x not in aggregate.X_AXES:
        raise VniahdError(f"unknown x axis {x!r}; use one of {', '.join(aggregate.X_AXES)}")
    loaded = load_inputs(results_dirs)
    records = loaded.records
    if x == "tokens":  # fail before drawing anything if some group cannot be put on tokens
        for _, g in aggregate.groups(records):
            aggregate.tokens_per_frame(g)
    if baseline is not None and baseline not in set(records["variant"]):
        raise VniahdError(f"baseline variant {baseline!r} is not in these results; variants found: "
                          f"{', '.join(dict.fromkeys(records['variant']))}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    figures: list[tuple[str, Path, str]] = []
    groups = aggregate.groups(records)
    short = dict(zip(records["model_spec"], records["model"]))
    names = heatmap.heatmap_filenames([k for k, _ in groups], short)

    steps = tqdm(total=len(groups) + 4, desc="report", unit="fig", disable=None, leave=False)
    paths["compare.png"] = compare.plot_compare(records, out / "compare.png", x=x, annotate=annotate)
    figures.append(("compare.png", paths["compare.png"],
                    "every variant side by side on one 0..1 colour scale; rows are benchmarks, "
                    "panel titles give the mean accuracy and its Wilson 95% interval"))
    steps.update()
    paths["accuracy_vs_length.png"] = curves.plot_curves(records, out / "accuracy_vs_length.png", x=x)
    figures.append(("accuracy_vs_length.png", paths["accuracy_vs_length.png"],
                    "mean accuracy at each length (over depths and needles) with Wilson 95% bands; "
                    "solid = V-NIAH, dashed = V-NIAH-D"))
    steps.update()
    if baseline is not None:
        for name, p in compare.plot_deltas(records, baseline, out, x=x, annotate=annotate).items():
            paths[name] = p
            figures.append((name, p, f"per-cell accuracy minus {baseline}; blue better, red worse, "
                                     "white no change; hatched = a side has no data"))
    steps.update()
    for key, g in groups:
        name = names[key]
        paths[name] = heatmap.plot_heatmap(g, out / name, x=x, annotate=annotate)
        figures.append((name, paths[name], f"{key[1]} · {aggregate.benchmark_label(key[3])} · "
                                           f"{key[2]} scoring · model {key[0]}"))
        steps.update()

    summary = aggregate.summary(records)
    source_paths = [s.path for s in loaded.sources]
    paths["summary.csv"] = tables.write_csv(summary, out / "summary.csv")
    paths["summary.md"] = tables.write_markdown(summary, out / "summary.md", source_paths)
    options = {"inputs": [str(p) for p in source_paths], "baseline": baseline, "x": x,
               "annotate": annotate}
    paths["report.html"] = html.write_html(out / "report.html", summary, figures, loaded.sources,
                                           provenance(), options)
    steps.update()
    steps.close()
    return paths
