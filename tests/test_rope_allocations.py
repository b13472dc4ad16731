"""Frequency allocations: the axis of every pair for P = 64 and small P, written out by hand from
docs/rope-math.md, default sections, and validation."""

from __future__ import annotations

import pytest
import torch

from vniahd.errors import UnknownNameError, VniahdError
from vniahd.rope import PRESETS, allocation_axes, axis_names, default_sections, get_variant


def axes_str(name, num_pairs, sections=None) -> str:
    axes = allocation_axes(name, num_pairs, sections)
    assert axes.dtype == torch.long and axes.shape == (num_pairs,)
    return "".join(axis_names(axes))


# P = 64 with the default sections (16, 24, 24); interleaved with (24, 20, 20).
P64 = {
    "uniform": "tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt",
    "mrope-blocks": "tttttttttttttttthhhhhhhhhhhhhhhhhhhhhhhhwwwwwwwwwwwwwwwwwwwwwwww",
    "lta": "hwhwhwhwhwhwhwhwhwhwhwhwhwhwhwhwhwhwhwhwhwhwhwhwtttttttttttttttt",
    "lta-sequential": "hhhhhhhhhhhhhhhhhhhhhhhhwwwwwwwwwwwwwwwwwwwwwwwwtttttttttttttttt",
    # n%3==1 and n<60 → h; n%3==2 and n<60 → w; rest (n%3==0, and 60..63) → t
    "interleaved": "thwthwthwthwthwthwthwthwthwthwthwthwthwthwthwthwthwthwthwthwtttt",
}


@pytest.mark.parametrize("name", sorted(P64))
def test_p64_maps(name):
    assert axes_str(name, 64) == P64[name]
    assert len(P64[name]) == 64


# P = 8: default sections (2, 3, 3); interleaved default (4, 2, 2).
P8 = {
    "uniform": "tttttttt",
    "mrope-blocks": "tthhhwww",
    "lta": "hwhwhwtt",
    "lta-sequential": "hhhwwwtt",
    "interleaved": "thwthwtt",
}


@pytest.mark.parametrize("name", sorted(P8))
def test_small_p_maps(name):
    assert axes_str(name, 8) == P8[name]


def test_explicit_sections():
    assert axes_str("mrope-blocks", 6, (1, 2, 3)) == "thhwww"
    assert axes_str("lta-sequential", 6, (1, 2, 3)) == "hhwwwt"
    # unequal h/w: alternate while both remain, the rest to the larger one; counts are kept
    assert axes_str("lta", 9, (2, 3, 4)) == "hwhwhwwtt"
    assert axes_str("lta", 5, (1, 2, 2)) == "hwhwt"
    assert axes_str("interleaved", 10, (4, 3, 3)) == "thwthwthwt"
    assert axes_str("mrope-blocks", 4, (4, 0, 0)) == "tttt"


#: The VideoRoPE paper's allocations and the models' own (the registry also holds the published
#: designs', whose NoPE and per-head plans have other counts).
CLASSIC = ("uniform", "mrope-blocks", "lta", "lta-sequential", "interleaved")


def test_default_sections():
    assert default_sections(64) == (16, 24, 24)
    assert default_sections(64, "lta") == (16, 24, 24)
    assert default_sections(64, "interleaved") == (24, 20, 20)
    assert default_sections(8) == (2, 3, 3)
    assert default_sections(16) == (4, 6, 6)
    assert default_sections(16, "interleaved") == (6, 5, 5)
    assert default_sections(4) == (1, 1, 2)
    assert default_sections(64, "uniform") is None
    for p in (3, 4, 8, 16, 32, 40, 64, 80, 128):
        for name in CLASSIC:  # the published designs' own allocations: tests/test_rope_published.py
            axes = allocation_axes(name, p)  # every default is realisable
            secs = default_sections(p, name)
            if secs is not None:
                counts = tuple(int((axes == i).sum()) for i in range(3))
                assert counts == secs, (name, p)


def test_counts_equal_mrope_for_every_preset():
    # LTA keeps M-RoPE's counts (docs/rope-math.md): 16 t, 24 h, 24 w for P = 64
    for name in ("mrope", "videorope", "lta", "dl", "dl-lta", "videorope-seq-xy"):
        axes = get_variant(name).axes(64)
        assert [int((axes == i).sum()) for i in range(3)] == [16, 24, 24], name


def test_temporal_pairs_are_lowest_frequencies_under_lta():
    for name in ("videorope", "dl-lta", "lta", "videorope-seq-xy"):
        assert axis_names(PRESETS[name].axes(64))[-16:] == ["t"] * 16
        assert "t" not in axis_names(PRESETS[name].axes(64))[:-16]


def test_section_validation():
    with pytest.raises(VniahdError, match="sum to 63 but there are 64"):
        allocation_axes("mrope-blocks", 64, (15, 24, 24))
    with pytest.raises(VniahdError, match="three non-negative"):
        allocation_axes("lta", 8, (2, 3))
    with pytest.raises(VniahdError, match="three non-negative"):
        allocation_axes("lta", 8, (4, 5, -1))
    with pytest.raises(VniahdError, match="cannot be realised"):
        allocation_axes("interleaved", 8, (2, 3, 3))
    with pytest.raises(VniahdError, match="positive integer"):
        allocation_axes("lta", 0)
    with pytest.raises(VniahdError, match="sum to"):
        get_variant("mrope", sections=(16, 24, 24)).axes(32)
    with pytest.raises(UnknownNameError) as err:
        allocation_axes("zigzag", 8)
    assert all(name in str(err.value) for name in CLASSIC)
