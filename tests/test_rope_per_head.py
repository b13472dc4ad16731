"""Per-KV-head rotary plans (MHRoPE) on transformers models: the wrapped attention function
against MHRoPE's own formula, and the per-head path against the plain one on every family."""

from __future__ import annotations

import pytest
import torch

from vniahd.models import get_backend
from vniahd.rope import Text, Video, get_variant
from vniahd.rope.hf import _per_head_apply


def _neox_apply(q, k, cos, sin, unsqueeze_dim=1):
    """transformers' Qwen apply_rotary_pos_emb (cos [B, S, d] broadcast over heads)."""

    def rotate_half(x):
        h = x.shape[-1] // 2
        return torch.cat((-x[..., h:], x[..., :h]), dim=-1)

    cos, sin = cos.unsqueeze(unsqueeze_dim), sin.unsqueeze(unsqueeze_dim)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


def test_wrapped_apply_equals_mhropes_repeat_interleave_formula():
    """Multimodal-RoPEs README L95-L119 (apply_multihead_rotary_pos_emb): cos/sin [B, G, S, d]
    are repeated ``H/G`` times along the head axis for the queries (``repeat_interleave``) and
    used as they are for the keys; re-derived here on random tensors."""
    g = torch.Generator().manual_seed(0)
    b, heads, groups, s, d = 2, 6, 3, 5, 8
    q, k = torch.randn(b, heads, s, d, generator=g), torch.randn(b, groups, s, d, generator=g)
    angles = torch.randn(b, groups, s, d // 2, generator=g)
    cos, sin = torch.cat([angles.cos()] * 2, -1), torch.cat([angles.sin()] * 2, -1)

    def rotate_half(x):
        return torch.cat((-x[..., d // 2 :], x[..., : d // 2]), dim=-1)

    rep = heads // groups
    cos_q, sin_q = cos.repeat_interleave(rep, dim=1), sin.repeat_interleave(rep, dim=1)
    want_q = q * cos_q + rotate_half(q) * sin_q
    want_k = k * cos + rotate_half(k) * sin
    got_q, got_k = _per_head_apply(_neox_apply)(q, k, cos, sin)
    torch.testing.assert_close(got_q, want_q, atol=1e-6, rtol=0)
    torch.testing.assert_close(got_k, want_k, atol=1e-6, rtol=0)
    # a 3-D cos (every other variant) goes to the original untouched
    plain = _per_head_apply(_neox_apply)(q, k[:, :1].expand(-1, heads, -1, -1), cos[:, 0], sin[:, 0])
    want = _neox_apply(q, k[:, :1].expand(-1, heads, -1, -1), cos[:, 0], sin[:, 0])
    assert all(torch.equal(a, w) for a, w in zip(plain, want))


FAMILIES = [
    "random:qwen2-vl",
    "random:qwen3-vl",
    "random:glm-4.1v?heads=2",  # adjacent pairs, partial rotary
    "random:qwen3.5",  # partial rotary, hybrid layers
]


def _hidden(be, variant, ids, seq):
    pos = variant.positions(seq)
    emb = be.embed_text(ids)[None]
    if be.row_width != emb.shape[-1]:  # Qwen3-VL rows carry DeepStack slots: zero them
        emb = torch.cat([emb, emb.new_zeros(1, emb.shape[1], be.row_width - emb.shape[-1])], -1)
    with be.use_variant(variant), torch.inference_mode():
        return be.hidden_states(emb, pos[:, None, :])


@pytest.mark.parametrize("spec", FAMILIES)
def test_one_stream_on_every_head_equals_the_plain_allocation(spec):
    """``heads=G/0/0`` (every KV head reads t over all pairs) through the per-head path gives the
    hidden states of the plain allocation reading t on every pair; moving the heads to h changes
    them, so the comparison can see which stream each head reads."""
    be = get_backend(spec)
    kv, pairs = be.rotary.kv_heads, be.rotary.num_pairs
    seq = [Text(3), Video(2, 2, 3), Text(2)]
    ids = list(range(40, 40 + 17))
    per_head = _hidden(be, get_variant(f"mhrope:heads={kv}/0/0"), ids, seq)
    plain = _hidden(be, get_variant(f"spatial-reset+mrope-blocks:sections={pairs}/0/0"), ids, seq)
    torch.testing.assert_close(per_head, plain, atol=1e-5, rtol=0)
    on_h = _hidden(be, get_variant(f"mhrope:heads=0/{kv}/0"), ids, seq)
    assert (on_h - per_head).abs().max() > 1e-4
