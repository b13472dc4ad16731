"""Frequency bands of a variant and the VideoRoPE paper's rotary figures (Fig. 4, Fig. 5)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from vniahd.cli import main
from vniahd.errors import VniahdError
from vniahd.rope import PRESETS, Text, get_variant
from vniahd.rope.angles import frame_distance_angles
from vniahd.rope.bands import band_pairs


def _freqs_axes(capsys, name: str, head_dim: int) -> list[str]:
    assert main(["freqs", "--variant", name, "--head-dim", str(head_dim), "--json"]) == 0
    return json.loads(capsys.readouterr().out)["axes"]


@pytest.mark.parametrize("name", sorted(n for n, v in PRESETS.items() if not v.per_head))
def test_axis_bands_equal_what_freqs_prints(capsys, name):
    """temporal / height / width / nope are the pairs `vniahd freqs` names t / h / w / -."""
    v = get_variant(name)
    axes = _freqs_axes(capsys, name, 16)
    plan = v.pair_plan(8)
    for band, letter in (("temporal", "t"), ("height", "h"), ("width", "w"), ("nope", "-")):
        want = [a == letter for a in axes]
        assert band_pairs(plan, v.stream_names, band).tolist() == want, (name, band)
    assert band_pairs(plan, v.stream_names, "high").tolist() == [True] * 4 + [False] * 4
    assert band_pairs(plan, v.stream_names, "low").tolist() == [False] * 4 + [True] * 4


def test_pair_range_bands_and_their_errors():
    v = get_variant("mrope")
    plan = v.pair_plan(8)
    assert band_pairs(plan, v.stream_names, "0:2+6:8").tolist() == [True, True] + [False] * 4 + [True, True]
    for bad in ("5:3", "0:9", "spiral"):
        with pytest.raises(VniahdError, match="unknown band"):
            band_pairs(plan, v.stream_names, bad)
    # per head: one mask per KV head (MHRoPE heads 1/1/1 of 4: the last is NoPE)
    m = get_variant("mhrope:heads=1/1/1")
    mask = band_pairs(m.pair_plan(2, None, 4), m.stream_names, "temporal")
    assert mask.tolist() == [[True, True], [False, False], [False, False], [False, False]]


def test_frame_distance_angles_by_hand():
    # θ = 100, d = 8: pair j turns 10^(−j/2) rad per position. M-RoPE: t advances 1 per frame,
    # pair 0 reads t (sections 1,1,2 → t h w w). VideoRoPE: δ = 2 per frame, pair 3 reads t.
    mrope = frame_distance_angles(get_variant("mrope"), 8, 100.0, 5, sections=(1, 1, 2))
    assert mrope[:, 0].tolist() == pytest.approx([0, 1, 2, 3, 4])
    assert mrope[:, 1:].abs().max() == 0  # h and w of a frame's first token do not move with time
    video = frame_distance_angles(get_variant("videorope"), 8, 100.0, 5, sections=(1, 1, 2))
    assert video[:, 3].tolist() == pytest.approx([2 * f * 10 ** (-1.5) for f in range(5)])


def test_freqs_and_positions_plots_write_the_figure_and_its_numbers(tmp_path, capsys):
    png = tmp_path / "fig4.png"
    code = main([
        "freqs", "--variant", "mrope", "--variant", "videorope", "--head-dim", "8", "--theta", "100",
        "--sections", "1,1,2", "--frames", "6", "--plot", str(png),
    ])  # fmt: skip
    assert code == 0 and png.stat().st_size > 1000
    data = json.loads((tmp_path / "fig4.png.json").read_text())
    assert data["figure"] == "temporal-angles" and data["variants"]["mrope"]["pairs"] == [0]
    assert [r[0] for r in data["variants"]["mrope"]["cos"]] == pytest.approx([math.cos(f) for f in range(6)])
    # the distractor spacing of these sections: 2π·100^(2·1/8)
    assert data["period_frames"] == pytest.approx(2 * math.pi * 100**0.25)
    assert "versions" in data["provenance"]
    png5 = tmp_path / "fig5.png"
    code = main(
        ["positions", "--variant", "videorope", "--variant", "vrope", "--frames", "2", "--plot", str(png5)]
    )
    assert code == 0 and png5.stat().st_size > 1000
    data = json.loads((tmp_path / "fig5.png.json").read_text())
    want = get_variant("vrope").positions([Text(2)])
    assert data["variants"]["vrope"]["streams"] == ["a", "b", "c", "d"]
    assert data["variants"]["vrope"]["positions"][0][:2] == want[0].tolist()  # the two text tokens
    assert data["variants"]["videorope"]["kinds"][:3] == ["text", "text", "frame 0"]
    assert torch.tensor(data["variants"]["videorope"]["positions"]).shape == (3, 2 + 2 * 6 + 2)


def test_freqs_reads_the_rotary_config_from_a_model(capsys):
    """--model: the rotated pairs (GLM-4.1V rotates half of each head) with the model's own
    mrope_section, as the model's rotary module splits them (tests/test_rope_hf.py probes it)."""
    from vniahd.models import get_backend

    spec = "random:glm-4.1v?heads=2"
    rot = get_backend(spec).rotary
    assert main(["freqs", "--variant", "mrope", "--model", spec, "--json"]) == 0
    axes = json.loads(capsys.readouterr().out)["axes"]
    st, sh, sw = rot.sections
    assert axes == ["t"] * st + ["h"] * sh + ["w"] * sw and len(axes) == rot.num_pairs
    assert main(["freqs", "--variant", "mrope", "--model", spec, "--theta", "5"]) != 0
    assert "drop --theta" in capsys.readouterr().err
