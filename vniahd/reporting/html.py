"""``report.html``: one self-contained page (no external files, no scripts, opens offline).

Sections: the across-seed (or across-model) verdict when the results carry several seeds — the
table of means with t-intervals, per-seed values and drops, the paired comparisons with a
baseline and one sentence per pair (:mod:`.seeds`) — then the Table-3 summary and the long form
(every mean with its Wilson 95% interval), the comparison, curves, delta figures and every
heatmap as base64 ``data:`` PNGs, and the provenance of each input (files with SHA-256, run.json,
notes) and of the report itself.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import pandas as pd

from vniahd.files import write_text_atomic
from vniahd.reporting import seeds, tables
from vniahd.reporting.sources import Source

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}
th,td{border:1px solid #d6d6d6;padding:.3em .6em;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f4f4f4}
figure{margin:1.2em 0}img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.9em}pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.82em}
.muted{color:#666;font-size:.9em}
"""


def data_uri(png: str | Path) -> str:
    """A PNG file as a ``data:image/png;base64,…`` URI."""
    return "data:image/png;base64," + base64.b64encode(Path(png).read_bytes()).decode("ascii")


def _table(header: list[str], rows: list[list[str]], num_from: int) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{esc(str(c))}</td>' if i >= num_from else f"<td>{esc(str(c))}</td>"
            for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(name: str, path: Path, caption: str) -> str:
    return (
        f'<figure id="{html.escape(name)}"><img alt="{html.escape(name)}" '
        f'src="{data_uri(path)}"><figcaption><b>{html.escape(name)}</b> — '
        f"{html.escape(caption)}</figcaption></figure>"
    )


def _source(src: Source) -> str:
    esc = html.escape
    files = "".join(
        f"<li><code>{esc(n)}</code> sha256 <code>{esc(h)}</code></li>" for n, h in src.files.items()
    )
    notes = "".join(f"<li>{esc(n)}</li>" for n in src.notes)
    run = ""
    if src.run is not None:
        run = (
            "<details><summary>run.json</summary><pre>"
            + esc(json.dumps(src.run, indent=2, sort_keys=True, default=str))
            + "</pre></details>"
        )
    identity = f" · dataset <code>{esc(src.dataset)}</code>" if src.dataset else ""
    if src.model_fp:
        identity += f" · model fingerprint <code>{esc(src.model_fp)}</code>"
    return (
        f"<h3><code>{esc(src.path)}</code></h3><p class='muted'>{esc(src.kind)} · "
        f"{src.num_records} records{identity}</p><ul>{files}{notes}</ul>{run}"
    )


def render(
    summary_df: pd.DataFrame,
    figures: list[tuple[str, Path, str]],
    sources: list[Source],
    provenance: dict,
    options: dict,
    across: seeds.Across | None = None,
) -> str:
    """The page's HTML. ``figures`` are (file name, path, caption) in display order; ``across``
    (when given) leads the page."""
    lead = _across(across) if across is not None else ""
    wide_h, wide_r = tables.wide_rows(summary_df)
    long_h, long_r = tables.long_rows(summary_df)
    figs = "\n".join(_figure(n, p, c) for n, p, c in figures)
    srcs = "\n".join(_source(s) for s in sources)
    prov = html.escape(
        json.dumps({"report": provenance, "options": options}, indent=2, sort_keys=True, default=str)
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>V-NIAH-D report</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>
<body>
<h1>V-NIAH / V-NIAH-D report</h1>
<p class="muted">Generated {html.escape(str(provenance.get("created_utc", "")))} by vniahd
{html.escape(str(provenance.get("versions", {}).get("vniahd", "")))} from {len(sources)} input(s).
Accuracies in percent with Wilson 95% confidence intervals.</p>
{lead}<h2 id="summary">Summary</h2>
{_table(wide_h, wide_r, num_from=tables.first_numeric_column(wide_h))}
<h2 id="summary-long">Per benchmark, with near and far halves of the lengths</h2>
<p class="muted">Near = the shorter half of the lengths (⌈L/2⌉ of L), far = the rest.</p>
{_table(long_h, long_r, num_from=tables.first_numeric_column(long_h))}
<h2 id="figures">Figures</h2>
{figs}
<h2 id="provenance">Provenance</h2>
{srcs}
<details><summary>report provenance and options</summary><pre>{prov}</pre></details>
</body></html>
"""


def _across(ac: seeds.Across) -> str:
    esc = html.escape
    title = esc(tables.across_title(ac))
    header, rows, num_from = tables.across_rows(ac)
    out = (
        f'<h2 id="across">{title}</h2>\n<p class="muted">{esc(tables.across_caption(ac))}</p>\n'
        f"{_table(header, rows, num_from)}\n"
    )
    if ac.baseline is None:
        out += (
            f'<p class="muted">No paired comparisons: no baseline variant '
            f"({esc(seeds.DEFAULT_BASELINE)} is not in these results; choose one with --baseline).</p>\n"
        )
    elif ac.pairs:
        header, rows, num_from = tables.paired_rows(ac)
        many_s, many_f = len(ac.scorings) > 1, len(ac.families) > 1
        items = "".join(f"<li>{esc(seeds.sentence(p, ac.unit, many_s, many_f))}</li>" for p in ac.pairs)
        out += (
            f'<h3 id="paired">Paired with {esc(str(ac.baseline))}</h3>\n'
            f'<p class="muted">{esc(tables.paired_caption(ac))}</p>\n'
            f"{_table(header, rows, num_from)}\n<ul>{items}</ul>\n"
        )
    return out


def write_html(path: str | Path, *args, **kwargs) -> Path:
    write_text_atomic(path, render(*args, **kwargs))
    return Path(path)
