"""Rotation math: inverse frequencies, cos/sin against an independent float64 formula, the
temporal period, and the RoPE properties (norms, relative positions, 1D reduction)."""

from __future__ import annotations

import math

import pytest
import torch

from vniahd.errors import VniahdError
from vniahd.rope import (
    PRESETS,
    Text,
    Video,
    apply_rotary,
    get_variant,
    inv_freq,
    rope_cos_sin,
    rotate_half,
    temporal_period,
    wavelengths,
)


def test_inv_freq_values():
    assert inv_freq(8, 1e4).tolist() == pytest.approx([1.0, 0.1, 0.01, 0.001], rel=1e-6)
    f = inv_freq(128, 1e6)
    assert f.dtype == torch.float32 and f.shape == (64,)
    assert f[16].item() == pytest.approx(1e6 ** (-32 / 128), rel=1e-6)
    with pytest.raises(VniahdError):
        inv_freq(7, 1e4)


def test_temporal_period_known_values():
    # docs/rope-math.md: Qwen2-VL-7B (d=128, θ=1e6, s_t=16) → ≈198.7 frames; d=32, θ=1e4, s_t=4 → 20π
    assert temporal_period(128, 1e6, 16) == pytest.approx(198.6918, abs=1e-3)
    assert temporal_period(32, 1e4, 4) == pytest.approx(62.8319, abs=1e-3)
    assert wavelengths(8, 1e4).tolist() == pytest.approx(
        [2 * math.pi, 20 * math.pi, 200 * math.pi, 2000 * math.pi]
    )
    # the period is the wavelength of pair s_t
    assert wavelengths(128, 1e6)[16].item() == pytest.approx(temporal_period(128, 1e6, 16))


def test_cos_sin_against_direct_formula():
    # P = 4 pairs, axes written by hand: pair0→w, pair1→t, pair2→h, pair3→t
    axes = torch.tensor([2, 0, 1, 0])
    pos = torch.tensor([[[3.0, 10.0]], [[5.0, 20.0]], [[7.0, 30.0]]])  # [3, B=1, S=2]
    cos, sin = rope_cos_sin(pos, inv_freq(8, 100.0), axes)
    assert cos.shape == sin.shape == (1, 2, 8) and cos.dtype == torch.float32
    theta = [100.0 ** (-2 * n / 8) for n in range(4)]
    for s, (t, h, w) in enumerate([(3, 5, 7), (10, 20, 30)]):
        angles = [w * theta[0], t * theta[1], h * theta[2], t * theta[3]]
        expected_cos = [math.cos(a) for a in angles] * 2  # halves duplicated
        expected_sin = [math.sin(a) for a in angles] * 2
        assert cos[0, s].tolist() == pytest.approx(expected_cos, abs=1e-6)
        assert sin[0, s].tolist() == pytest.approx(expected_sin, abs=1e-6)


def test_rotate_half_and_apply_rotary_2d_case():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert rotate_half(x).tolist() == [-3.0, -4.0, 1.0, 2.0]
    # one pair (d=2), angle π/2: (1, 0) → (0, 1), i.e. a counter-clockwise quarter turn
    q = torch.tensor([[[[1.0, 0.0]]]])
    cos = torch.full((1, 1, 2), math.cos(math.pi / 2))
    sin = torch.full((1, 1, 2), math.sin(math.pi / 2))
    qr, _ = apply_rotary(q, q, cos, sin)
    assert qr.flatten().tolist() == pytest.approx([0.0, 1.0], abs=1e-7)


def _positions(variant, seq):
    return variant.positions(seq)[:, None, :]  # [3, 1, S]


#: per-head presets give one table per KV head (tests/test_rope_per_head.py)
PER_PAIR = sorted(name for name, v in PRESETS.items() if not v.per_head)


@pytest.mark.parametrize("preset", PER_PAIR)
def test_rotation_preserves_norms(preset):
    torch.manual_seed(0)
    v = get_variant(preset)
    pos = _positions(v, [Text(3), Video(4, 3, 5), Text(3)])
    plan = v.pair_plan(16)
    cos, sin = rope_cos_sin(pos, inv_freq(32, 1e4), plan.streams, scale=plan.scale)
    q = torch.randn(1, 2, pos.shape[-1], 32)
    k = torch.randn(1, 2, pos.shape[-1], 32)
    qr, kr = apply_rotary(q, k, cos, sin)
    assert torch.allclose(qr.norm(dim=-1), q.norm(dim=-1), rtol=1e-5)
    assert torch.allclose(kr.norm(dim=-1), k.norm(dim=-1), rtol=1e-5)
    assert not torch.allclose(qr, q)  # it did rotate


def _score(axes, p_q, p_k, q, k, head_dim=16):
    pos = torch.tensor([p_q, p_k], dtype=torch.float64).T[:, None, :]  # [3, 1, 2]
    cos, sin = rope_cos_sin(pos, inv_freq(head_dim, 1e4), axes)
    qr, kr = apply_rotary(
        q.view(1, 1, 1, -1).expand(1, 1, 2, -1).clone(),
        k.view(1, 1, 1, -1).expand(1, 1, 2, -1).clone(),
        cos,
        sin,
    )
    return (qr[0, 0, 0] * kr[0, 0, 1]).sum().item()


@pytest.mark.parametrize("allocation", ["mrope", "videorope", "mrope-interleaved", "videorope-seq-xy"])
def test_score_depends_only_on_per_stream_differences(allocation):
    torch.manual_seed(1)
    axes = get_variant(allocation).axes(8)
    q, k = torch.randn(16), torch.randn(16)
    base = _score(axes, (3, 5, 7), (1, 2, 4), q, k)
    # the same shift on both tokens, different per stream: unchanged
    shift = (11, -4, 25)
    moved = _score(
        axes,
        tuple(a + s for a, s in zip((3, 5, 7), shift)),
        tuple(a + s for a, s in zip((1, 2, 4), shift)),
        q,
        k,
    )
    assert moved == pytest.approx(base, abs=1e-4)
    # changing one stream's difference changes the score (so the check above can fail)
    for stream in range(3):
        p_k = [1, 2, 4]
        p_k[stream] += 3
        assert abs(_score(axes, (3, 5, 7), tuple(p_k), q, k) - base) > 1e-3


@pytest.mark.parametrize("preset", PER_PAIR)
def test_text_only_rotation_is_1d_rope(preset):
    # Under every preset, text-only positions have t = h = w, so every pair's angle is pos·θ_n,
    # whichever stream it reads: the result is plain 1D RoPE at that index (at the pair's
    # scaled frequency; NoPE pairs not at all).
    v = get_variant(preset)
    pos = _positions(v, [Text(12)])
    plan = v.pair_plan(8)
    cos, sin = rope_cos_sin(pos, inv_freq(16, 1e4), plan.streams, scale=plan.scale)
    idx = pos[0, 0].tolist()
    theta = [1e4 ** (-2 * n / 16) * float(c) for n, c in enumerate(plan.scale)]
    for s, p in enumerate(idx):
        assert cos[0, s].tolist() == pytest.approx([math.cos(p * t) for t in theta] * 2, abs=1e-5)
        assert sin[0, s].tolist() == pytest.approx([math.sin(p * t) for t in theta] * 2, abs=1e-5)


def test_cos_sin_shape_and_allocation_size_checks():
    pos = torch.zeros(3, 2, 5)
    cos, sin = rope_cos_sin(pos, inv_freq(8, 1e4), torch.zeros(4, dtype=torch.long))
    assert cos.shape == (2, 5, 8)
    cos2, _ = rope_cos_sin(torch.zeros(3, 5), inv_freq(8, 1e4), torch.zeros(4, dtype=torch.long))
    assert cos2.shape == (1, 5, 8)
    with pytest.raises(VniahdError, match="pairs"):
        rope_cos_sin(pos, inv_freq(8, 1e4), torch.zeros(5, dtype=torch.long))
    # K streams: the rows must cover every stream a pair reads (here stream 2 of 2 rows)
    with pytest.raises(VniahdError, match=r"\[K, B, S\]"):
        rope_cos_sin(torch.zeros(2, 1, 5), inv_freq(8, 1e4), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(VniahdError, match=r"\[K, B, S\]"):
        rope_cos_sin(torch.zeros(3, 1, 1, 5), inv_freq(8, 1e4), torch.zeros(4, dtype=torch.long))
