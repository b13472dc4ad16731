"""End to end: write_report / `vniahd plot` write every file; PNGs decode; HTML embeds everything."""

import base64
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_report_fixtures import write_results

from vniahd.cli import main
from vniahd.errors import VniahdError
from vniahd.reporting import write_report
from vniahd.reporting.heatmap import MAX_NAME, draw_grid, heatmap_filename, heatmap_filenames
from vniahd.reporting.load import load_inputs
from vniahd.reporting.style import format_k, new_figure

VARIANTS = ("vanilla", "videorope")


def _two_benchmarks(tmp_path, lengths=(100, 300, 500), model="random:qwen2-vl"):
    def correct(v, s, L, d, n, r):
        return (v == "videorope" or L == lengths[0]) and not (s == "reference" and n == "n1")

    a = write_results(
        tmp_path / "vniah",
        correct=correct,
        variants=VARIANTS,
        schedules=("none",),
        lengths=lengths,
        depths=(0.0, 0.5, 1.0),
        model=model,
    )
    b = write_results(
        tmp_path / "vniahd",
        correct=correct,
        variants=VARIANTS,
        schedules=("reference",),
        lengths=lengths,
        depths=(0.0, 0.5, 1.0),
        model=model,
        skip=lambda v, s, L, d: L == lengths[-1] and d == 1.0,
    )
    return a, b


def _png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        im.load()  # decodes the whole image, not just the header
        assert im.format == "PNG"
        return im.size


def test_every_file_written_and_decodes(tmp_path):
    a, b = _two_benchmarks(tmp_path)
    out = tmp_path / "out"
    paths = write_report([a, b], out, baseline="vanilla")
    expected = {
        "compare.png",
        "accuracy_vs_length.png",
        "delta_videorope.png",
        "summary.csv",
        "summary.md",
        "report.html",
        "heatmap_random-qwen2-vl_vanilla_scoring-reference_schedule-none.png",
        "heatmap_random-qwen2-vl_vanilla_scoring-reference_schedule-reference.png",
        "heatmap_random-qwen2-vl_videorope_scoring-reference_schedule-none.png",
        "heatmap_random-qwen2-vl_videorope_scoring-reference_schedule-reference.png",
    }
    assert set(paths) == expected
    assert {p.name for p in out.iterdir()} == expected  # no temp files left behind
    for name, p in paths.items():
        assert p.stat().st_size > 0
        if name.endswith(".png"):
            w, h = _png_size(p)
            assert 500 <= w <= 4000 and 350 <= h <= 4000, (name, w, h)
    csv = (out / "summary.csv").read_text().splitlines()
    assert len(csv) == 1 + 4 and csv[0].startswith("model,model_spec,variant,scoring,schedule")
    md = (out / "summary.md").read_text()
    # videorope is always right on V-NIAH: 18 of 18 (3 lengths × 3 depths × 2 needles); Wilson(18,
    # 18) by hand: lower = 18 / (18 + z²) = 18 / 21.841458820694124 = 0.82412 → "82.4".
    assert "| videorope | reference | 100.0 (82.4–100.0) |" in md
    assert "V-NIAH-D acc. % (95% CI)" in md


def test_html_embeds_every_figure_and_table(tmp_path):
    a, b = _two_benchmarks(tmp_path)
    paths = write_report([a, b], tmp_path / "out", baseline="vanilla")
    page = paths["report.html"].read_text()
    for name, p in paths.items():
        if name.endswith(".png"):
            uri = "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode()
            assert uri in page, name
            assert f"<b>{name}</b>" in page
    assert page.count("<table>") == 2
    md = paths["summary.md"].read_text()
    for cell in ("100.0 (82.4–100.0)", "V-NIAH-D (reference)", "Near lengths"):
        assert cell in md and cell in page
    assert "abc123" in page  # run.json provenance
    assert "<script" not in page and 'src="http' not in page and "<link" not in page


@pytest.mark.parametrize("n_len", [3, 15, 30])
def test_sizes_scale_with_grid(tmp_path, n_len):
    lengths = tuple(100 + 100 * i for i in range(n_len))
    d = write_results(
        tmp_path / "r",
        correct=lambda v, s, L, dp, n, r: L < 1000,
        variants=VARIANTS,
        lengths=lengths,
        depths=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
        needles=("n0",),
    )
    paths = write_report([d], tmp_path / "out", x="tokens")
    w, h = _png_size(paths["heatmap_random-qwen2-vl_vanilla_scoring-reference_schedule-none.png"])
    lo, hi = {3: (700, 900), 15: (1300, 1550), 30: (1700, 2000)}[n_len]
    assert lo <= w <= hi and 600 <= h <= 900, (w, h)
    cw, _ = _png_size(paths["compare.png"])
    assert 900 <= cw <= 3000
    _png_size(paths["accuracy_vs_length.png"])


def test_missing_cells_are_masked_not_zero():
    import pandas as pd

    table = pd.DataFrame([[1.0, np.nan], [0.0, 0.5]], index=[0.0, 100.0], columns=[10.0, 20.0])
    fig = new_figure(4, 3)
    mesh = draw_grid(fig.add_subplot(), table)
    arr = mesh.get_array()
    assert np.ma.is_masked(arr) and arr.mask.reshape(2, 2).tolist() == [[False, True], [False, False]]


def test_filenames_name_their_parts_and_stay_distinct():
    # Scoring and schedule are named, so "reference" as one can never be read as the other.
    assert (
        heatmap_filename("random-qwen2-vl", "tad", "reference", "reference")
        == "heatmap_random-qwen2-vl_tad_scoring-reference_schedule-reference.png"
    )
    assert (
        heatmap_filename("m", "v", "choice", "reference", "period 4")
        == "heatmap_m_v_scoring-choice_schedule-reference_dataset-period-4.png"
    )
    # File-system safe: no separators or odd characters, and never longer than MAX_NAME.
    odd = heatmap_filename("Qwen2-VL-7B (1a2b3c4d)", "diagonal+lta:delta=0.5/../x", "gen erate", "none")
    assert (
        odd == "heatmap_Qwen2-VL-7B-1a2b3c4d_diagonal-lta-delta-0.5-..-x_scoring-gen-erate_schedule-none.png"
    )
    long = heatmap_filename("m", "v" * 400, "choice", "none")
    assert len(long) <= MAX_NAME and long.endswith(".png") and "/" not in long
    assert long != heatmap_filename("m", "v" * 399, "choice", "none")
    # Labels that differ only in characters a file name cannot hold still give distinct names.
    import pandas as pd

    from vniahd.reporting.aggregate import GroupKey

    groups = []
    for variant in ("a b", "a/b", "a-b"):
        key = GroupKey("random:qwen2-vl", "f00d", variant, "choice", "none", "abc123")
        groups.append((key, pd.DataFrame({"model": ["random-qwen2-vl"], "dataset_tag": [""]})))
    names = heatmap_filenames(groups)
    assert len(set(names.values())) == 3
    assert all(
        n.startswith("heatmap_random-qwen2-vl_a-b_scoring-choice_schedule-none_") for n in names.values()
    )


def test_same_short_model_name_gets_a_tag(tmp_path):
    a = write_results(
        tmp_path / "a", correct=lambda *_: True, model="hf:/ckpt/a/Qwen2-VL-7B", lengths=(100,), depths=(0.0,)
    )
    b = write_results(
        tmp_path / "b",
        correct=lambda *_: False,
        model="hf:/ckpt/b/Qwen2-VL-7B",
        lengths=(100,),
        depths=(0.0,),
    )
    paths = write_report([a, b], tmp_path / "out")
    heatmaps = sorted(n for n in paths if n.startswith("heatmap_"))
    assert len(heatmaps) == 2 and all(n.startswith("heatmap_Qwen2-VL-7B-") for n in heatmaps)
    md = paths["summary.md"].read_text()
    assert md.count("| Qwen2-VL-7B (") == 2 * 2  # wide and long tables, one row per checkpoint


def test_format_k():
    assert [format_k(v) for v in (950, 1200, 14400, 417600, 1_500_000)] == [
        "950",
        "1.2K",
        "14.4K",
        "417.6K",
        "1.5M",
    ]


def test_reference_file_plots_with_ours(tmp_path):
    a, _ = _two_benchmarks(tmp_path)
    ref = tmp_path / "videorope-7b" / "all_accuracies.json"
    ref.parent.mkdir()
    ref.write_text(
        '[{"Num. Frame": 100, "Frame Depth": 0.0, "Score": 0.8},'
        ' {"Num. Frame": 100, "Frame Depth": 100.0, "Score": 0.4}]'
    )
    paths = write_report([a, ref], tmp_path / "out", x="tokens")
    assert "heatmap_reference_videorope-7b_scoring-reference_schedule-unknown.png" in paths
    md = paths["summary.md"].read_text()
    assert "| reference | videorope-7b | reference |" in md
    assert "60.0 (" in md  # mean of the two cell scores


def test_bad_baseline_and_cli(tmp_path, capsys):
    a, b = _two_benchmarks(tmp_path)
    with pytest.raises(VniahdError, match=r"baseline variant 'rope' is not in these results"):
        write_report([a], tmp_path / "x", baseline="rope")
    assert (
        main(
            ["plot", str(a), str(b), "--out", str(tmp_path / "cli"), "--baseline", "vanilla", "--no-annotate"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| vanilla | reference |" in out and "report: " in out
    assert (tmp_path / "cli" / "delta_videorope.png").is_file()
    assert main(["plot", str(tmp_path / "missing"), "--out", str(tmp_path / "cli2")]) == 2
    err = capsys.readouterr().err
    assert "missing does not exist" in err and "Traceback" not in err


def test_loaded_records_feed_report_unchanged(tmp_path):
    a, b = _two_benchmarks(tmp_path)
    records = load_inputs([a, b]).records
    assert len(records) == 2 * 3 * 3 * 2 + 2 * (3 * 3 - 1) * 2


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_chromium_renders_report(tmp_path):
    a, b = _two_benchmarks(tmp_path)
    paths = write_report([a, b], tmp_path / "out")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--screenshot={shot}",
            "--window-size=1200,2000",
            paths["report.html"].resolve().as_uri(),
        ],
        check=True,
        timeout=90,
        capture_output=True,
    )
    with Image.open(shot) as im:
        px = np.asarray(im.convert("RGB"), dtype=int)
    # Rendered: not a blank page; the heatmap colours (#9ad5b3 green) appear somewhere.
    assert px.std() > 10
    assert (np.abs(px - [0x9A, 0xD5, 0xB3]).sum(axis=-1) < 30).any()
