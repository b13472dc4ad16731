"""Attention of new tokens over a KV cache without a dense mask, and packed segments
(vniahd/models/attention.py): equal to torch's SDPA under an explicit mask written out here, and
forward passes equal to transformers' own single causal pass over each whole sequence."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vniahd.models import attention, get_backend
from vniahd.models.attention import CachedCausal, cached_attention_mask, cached_causal_attention
from vniahd.rope import get_variant, variant_axes
from vniahd.rope.hf import install_allocation


def _dense_keep(past: int, shared: int, segments: list[int]) -> torch.Tensor:
    """Independent expectation of the mask, element by element: query ``i`` of the new tokens
    sees key ``j`` iff j is cached, or both lie in the head and j ≤ i, or i is in a segment and j
    is in the head, or both lie in the same segment (head counts as segment -1) and j ≤ i."""
    owner = [-1] * shared + [s for s, n in enumerate(segments) for _ in range(n)]
    q = len(owner)
    keep = torch.zeros(q, past + q, dtype=torch.bool)
    for i in range(q):
        for j in range(past + q):
            if j < past:
                keep[i, j] = True
                continue
            k = j - past
            same = owner[k] == owner[i] and k <= i
            keep[i, j] = same or (owner[k] == -1 and owner[i] >= 0)
    return keep


def _masked_reference(q, k, v, keep, scale=None):
    """SDPA with the boolean mask, kv heads repeated (torch's own kernel and masking)."""
    rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=scale)


@pytest.mark.parametrize("split", [True, False], ids=["split-blocks", "additive-mask"])
@pytest.mark.parametrize(
    "batch,heads,kv_heads,past,shared,segments",
    [
        (1, 4, 4, 20, 0, [7]),
        (2, 6, 2, 5, 0, [33]),
        (3, 7, 1, 64, 0, [2]),
        (1, 2, 1, 300, 0, [150]),
        (1, 7, 1, 40, 0, [9, 1, 30, 4]),  # packed suffixes over a cache
        (1, 4, 2, 0, 0, [5, 12, 3]),  # packed, nothing cached
        (1, 7, 1, 25, 6, [10, 3, 17]),  # a shared head the segments continue
        (1, 4, 4, 0, 8, [4, 9]),  # a head from scratch
    ],
)
def test_equals_sdpa_under_the_explicit_mask(
    monkeypatch, split, batch, heads, kv_heads, past, shared, segments
):
    monkeypatch.setattr(attention, "SPLIT_MIN_QUERIES", 2 if split else 10**9)
    new = shared + sum(segments)
    g = torch.Generator().manual_seed(new + past)
    q = torch.randn(batch, heads, new, 16, generator=g)
    k = torch.randn(batch, kv_heads, past + new, 16, generator=g)
    v = torch.randn(batch, kv_heads, past + new, 16, generator=g)
    mask = CachedCausal(past, segments, shared)
    keep = _dense_keep(past, shared, segments)
    want = _masked_reference(q, k, v, keep, scale=0.3)
    # through F.scaled_dot_product_attention, as transformers' SDPA integration calls it
    got = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.3)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cached_causal_attention(q, k, v, mask, scale=0.3), want, atol=1e-5, rtol=1e-5)
    assert torch.equal(mask.keep(), keep)


def test_marker_checks_its_shape_and_is_only_a_mask():
    q, k = torch.randn(1, 2, 5, 8), torch.randn(1, 2, 9, 8)
    with pytest.raises(ValueError, match="5 queries over 8 keys, got 5 over 9"):
        F.scaled_dot_product_attention(q, k, k, attn_mask=CachedCausal(3, 5))
    with pytest.raises(ValueError, match="is_causal"):
        cached_causal_attention(q, k, k, CachedCausal(4, 5), is_causal=True)
    with pytest.raises(TypeError):
        torch.add(torch.zeros(1), CachedCausal(4, 5))  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        CachedCausal(4, 5)[..., :3]  # no values behind it to slice or read
    with pytest.raises(TypeError):
        CachedCausal(4, 5).float()
    with pytest.raises(ValueError, match="needs a cache and several queries"):
        CachedCausal(0, 5)  # one sequence from scratch: transformers' own is_causal pass
    with pytest.raises(ValueError, match="needs a cache"):
        CachedCausal(3, [4, 0])
    # a head and one segment are one sequence: the plain lower-right mask
    one = CachedCausal(3, [4], shared=2)
    assert (one.shared, one.segments, one.shape) == (0, (6,), (1, 1, 6, 9))


@pytest.fixture(scope="module")
def backend():
    be = get_backend("random:qwen2-vl?layers=2&hidden=64&heads=4&kv_heads=2")
    install_allocation(be.language_model, variant_axes(get_variant("videorope"), be.rotary))
    return be


FAMILIES = [
    "random:qwen2-vl?layers=2&hidden=64&heads=4&kv_heads=2",
    "random:qwen2.5-vl",
    "random:glm-4.1v?heads=2",
    "random:qwen3-vl",
]


@pytest.mark.parametrize("spec", FAMILIES[:3])
@pytest.mark.parametrize("past,new,batch", [(40, 200, 1), (150, 9, 2), (1, 130, 3)])
def test_forward_over_a_cache_equals_one_causal_pass(monkeypatch, spec, past, new, batch):
    """Rows fed over a cache (the marker path, counted) equal transformers' own maskless causal
    pass over the whole sequence, for the split and the additive-mask paths, in each family whose
    text model builds its mask with transformers' create_causal_mask."""
    backend = get_backend(spec)
    calls = []
    real = attention.cached_causal_attention
    monkeypatch.setattr(
        attention, "cached_causal_attention", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    g = torch.Generator().manual_seed(past)
    emb = torch.randn(batch, past + new, backend.row_width, generator=g)
    pos = torch.arange(past + new, dtype=torch.float64)[None, None].expand(3, batch, -1)
    with torch.inference_mode():
        full = backend.hidden_states(emb, pos)
        cache = backend.new_cache()
        backend.hidden_states(emb[:, :past], pos[:, :, :past], cache=cache)
        part = backend.hidden_states(emb[:, past:], pos[:, :, past:], cache=cache)
    assert len(calls) == backend.language_model.config.num_hidden_layers
    torch.testing.assert_close(part, full[:, past:], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("spec", FAMILIES)
@pytest.mark.parametrize(
    "past,shared,segments",
    [(30, 0, [12, 40, 3]), (0, 0, [20, 7]), (25, 9, [14, 30]), (0, 11, [5, 6, 2]), (64, 0, [400, 200])],
)
def test_packed_segments_equal_transformers_own_pass_per_sequence(spec, past, shared, segments):
    """A packed pass (cache of ``past`` rows, a shared head, segments) gives every segment the
    hidden states of transformers' own maskless causal pass over [cache rows, head, that segment]
    alone, with the segment's own positions; the head's rows equal that pass's head rows."""
    backend = get_backend(spec)
    install_allocation(backend.language_model, variant_axes(get_variant("videorope"), backend.rotary))
    assert backend.can_pack
    g = torch.Generator().manual_seed(past + shared + len(segments))
    width = backend.row_width
    prefix = torch.randn(past + shared, width, generator=g)
    pieces = [torch.randn(n, width, generator=g) for n in segments]
    # every sequence continues the prefix at the same positions: 3-axis ids, not all equal
    base = torch.arange(past + shared + max(segments), dtype=torch.float64)
    pos = torch.stack([base, base * 2 % 7, base % 5])
    with torch.inference_mode():
        cache = backend.new_cache()
        if past:
            backend.hidden_states(prefix[None, :past], pos[:, None, :past], cache=cache)
        rows = torch.cat([prefix[past:], *pieces])[None]
        ids = torch.cat(
            [pos[:, past : past + shared]] + [pos[:, past + shared : past + shared + n] for n in segments], 1
        )
        packed = backend.hidden_states(rows, ids[:, None], cache=cache, segments=segments, shared=shared)[0]
        assert cache.get_seq_length() == past + shared + sum(segments)
        s0 = shared
        for piece, n in zip(pieces, segments):
            whole = torch.cat([prefix, piece])[None]
            own = backend.hidden_states(whole, pos[:, None, : past + shared + n])[0]  # transformers' causal
            torch.testing.assert_close(packed[s0 : s0 + n], own[past + shared :], atol=2e-5, rtol=2e-5)
            torch.testing.assert_close(packed[:shared], own[past : past + shared], atol=2e-5, rtol=2e-5)
            s0 += n


def test_left_to_transformers_where_it_does_not_apply(backend):
    lm = backend.language_model
    cache = backend.new_cache()
    assert cached_attention_mask(lm, 5, None) is None  # no cache: transformers' own is_causal pass
    assert cached_attention_mask(lm, 5, cache) is None  # an empty cache
    assert cached_attention_mask(lm, 5, cache, [5]) is None  # one segment from scratch, likewise
    with torch.inference_mode():
        backend.hidden_states(torch.zeros(1, 3, backend.row_width), torch.zeros(3, 1, 3), cache=cache)
    assert cached_attention_mask(lm, 1, cache) is None  # one token (decoding): no mask needed
    mask = cached_attention_mask(lm, 5, cache)
    assert isinstance(mask, CachedCausal) and (mask.cached, mask.queries) == (3, 5)
    assert mask.shape == (1, 1, 5, 8)  # a prepared 4-D mask, which transformers uses as it is
    with pytest.raises(ValueError, match="do not add up to the 5 tokens"):
        cached_attention_mask(lm, 5, cache, [2, 2])
    config = lm.config
    config._attn_implementation = "eager"  # an attention that would add the mask itself
    try:
        assert cached_attention_mask(lm, 5, cache) is None
        assert not backend.can_pack
        with pytest.raises(ValueError, match="packed segments need SDPA on the CPU"):
            cached_attention_mask(lm, 5, cache, [2, 3])
    finally:
        config._attn_implementation = "sdpa"
    layer_types = config.layer_types
    config.layer_types = ["sliding_attention"] + layer_types[1:]
    try:
        assert cached_attention_mask(lm, 5, cache) is None
        assert not backend.can_pack
    finally:
        config.layer_types = layer_types
    assert backend.can_pack
