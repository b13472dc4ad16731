"""The inspection commands ``variants``, ``positions`` and ``freqs`` (``--json`` output is a contract)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from vniahd.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_positions_json_defaults_videorope(capsys):
    # N=2, T=3, 2x3 grid, M=2; δ=2: t = 2+2f; h = t + r; w = t + c − 1; text after 2+4+1 = 7
    code, out, _ = run(capsys, "positions", "--variant", "videorope", "--json")
    assert code == 0
    assert json.loads(out) == {
        "variant": "videorope",
        "t": [0, 1, 2, 2, 2, 2, 2, 2, 4, 4, 4, 4, 4, 4, 6, 6, 6, 6, 6, 6, 7, 8],
        "h": [0, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 7, 7, 7, 8],
        "w": [0, 1, 1, 2, 3, 1, 2, 3, 3, 4, 5, 3, 4, 5, 5, 6, 7, 5, 6, 7, 7, 8],
    }


def test_positions_json_options_and_float_delta(capsys):
    code, out, _ = run(
        capsys,
        "positions",
        "--variant",
        "videorope",
        "--delta",
        "0.5",
        "--text-before",
        "1",
        "--frames",
        "2",
        "--grid",
        "1x2",
        "--text-after",
        "1",
        "--json",
    )
    assert code == 0
    # t = 1 + 0.5f; W=2 offsets 0,1; after (code) 1 + 0.5 + 1 = 2.5
    assert json.loads(out) == {
        "variant": "videorope",
        "t": [0, 1, 1, 1.5, 1.5, 2.5],
        "h": [0, 1, 1, 1.5, 1.5, 2.5],
        "w": [0, 1, 2, 1.5, 2.5, 2.5],
    }


def test_positions_json_mrope_and_custom_spec(capsys):
    _, out, _ = run(capsys, "positions", "--variant", "mrope", "--json")
    assert json.loads(out)["t"] == [0, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 5, 6]
    spec = "diagonal+mrope-blocks:delta=1,text_after=paper"
    _, out, _ = run(capsys, "positions", "--variant", spec, "--json")
    data = json.loads(out)
    assert data["variant"] == spec and data["t"][-2:] == [5, 6]  # paper: 2 + 1·3 = 5


def test_positions_table(capsys):
    code, out, _ = run(capsys, "positions", "--variant", "mrope")
    assert code == 0
    lines = out.splitlines()
    assert "text before" in lines and "text after" in lines
    i = lines.index("frame 1 (tokens 8..13)")
    assert lines[i + 1].split() == ["(3,2,2)", "(3,2,3)", "(3,2,4)"]
    assert lines[i + 2].split() == ["(3,3,2)", "(3,3,3)", "(3,3,4)"]
    assert "token  20  (5,5,5)" in out


def test_freqs_json(capsys):
    code, out, _ = run(capsys, "freqs", "--variant", "mrope", "--head-dim", "16", "--json")
    assert code == 0
    assert json.loads(out) == {"variant": "mrope", "axes": ["t", "t", "h", "h", "h", "w", "w", "w"]}
    _, out, _ = run(
        capsys, "freqs", "--variant", "videorope", "--head-dim", "16", "--sections", "4,2,2", "--json"
    )
    assert json.loads(out)["axes"] == ["h", "w", "h", "w", "t", "t", "t", "t"]
    _, out, _ = run(capsys, "freqs", "--variant", "vanilla", "--head-dim", "8", "--json")
    assert json.loads(out)["axes"] == ["t", "t", "t", "t"]
    _, out, _ = run(capsys, "freqs", "--variant", "videorope", "--json")  # default head dim 128
    axes = json.loads(out)["axes"]
    assert len(axes) == 64 and axes[-16:] == ["t"] * 16


def test_freqs_table(capsys):
    code, out, _ = run(capsys, "freqs", "--variant", "mrope", "--head-dim", "8", "--theta", "1e4")
    assert code == 0
    rows = [line.split() for line in out.splitlines()]
    # pair, wavelength 2π·θ^(2n/d), axis — sections (1,1,2) for P = 4
    assert ["0", "6.28319", "t"] in rows and ["1", "62.8319", "h"] in rows
    assert ["2", "628.319", "w"] in rows and ["3", "6283.19", "w"] in rows
    assert "62.8319 positions" in out  # temporal period for s_t = 1


def test_variants_table_and_json(capsys):
    code, out, _ = run(capsys, "variants")
    assert code == 0
    names = [line.split()[0] for line in out.splitlines()[2:12]]
    assert names == [
        "vanilla",
        "tad",
        "mrope",
        "videorope",
        "dl",
        "dl-lta",
        "lta",
        "videorope-seq-xy",
        "mrope-timed",
        "mrope-interleaved",
    ]
    assert "delta=2, text_after=code" in out
    _, out, _ = run(capsys, "variants", "--json")
    data = {d["name"]: d for d in json.loads(out)}
    assert data["videorope"]["allocation"] == "lta" and data["videorope"]["source"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["positions", "--variant", "videoroep"], "valid variants:"),
        (["positions", "--variant", "mrope", "--delta", "2"], "diagonal layout only"),
        (["positions", "--variant", "mrope", "--grid", "3"], "HxW"),
        (["positions", "--variant", "mrope", "--frames", "0"], "--frames"),
        (["freqs", "--variant", "mrope", "--head-dim", "15"], "even"),
        (["freqs", "--variant", "mrope", "--head-dim", "16", "--sections", "1,2,3"], "sum to 6"),
        (["freqs", "--variant", "vanilla", "--sections", "16,24,24"], "uniform"),
        (["freqs", "--variant", "spiral+lta"], "valid layouts:"),
    ],
)
def test_user_errors_are_one_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("vniahd: error:") and message in err and len(err.splitlines()) == 1


def test_console_entry_point_help():
    proc = subprocess.run(
        [sys.executable, "-m", "vniahd", "positions", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    assert "LAYOUT+ALLOCATION" in proc.stdout and "--text-before" in proc.stdout


def test_help_names_every_layout_and_allocation(capsys):
    from vniahd.rope import ALLOCATIONS, LAYOUTS

    with pytest.raises(SystemExit):
        main(["freqs", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # undo argparse line wrapping
    for name in list(LAYOUTS) + list(ALLOCATIONS):
        assert name in out, name


def test_cli_help_does_not_import_torch():
    code = (
        "import sys, argparse; from vniahd.cli import rope_commands; "
        "rope_commands.register(argparse.ArgumentParser().add_subparsers()); "
        "print('torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "False", proc.stderr


def test_spec_help_names_every_layout_allocation_and_default():
    """SPEC_HELP is literal (torch-free for --help); it must not drift from the registries."""
    from vniahd.rope import ALLOCATIONS, LAYOUTS, SPEC_HELP

    assert f"layouts: {', '.join(LAYOUTS)};" in SPEC_HELP
    assert f"allocations: {', '.join(ALLOCATIONS)})" in SPEC_HELP
    for layout in [*LAYOUTS.values(), *ALLOCATIONS.values()]:
        for key, value in layout.defaults.items():
            assert f"{key}" in SPEC_HELP, key
            if key in ("delta", "second_per_grid_t", "tokens_per_second"):
                assert f"{key} (default {value:g}" in SPEC_HELP or f"{key} (default {value}" in SPEC_HELP
