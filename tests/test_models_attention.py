"""Attention of new tokens over a KV cache without a dense mask (vniahd/models/attention.py):
equal to torch's SDPA under the explicit lower-right causal mask, and a forward pass over a cache
equal to transformers' own single causal pass over the whole sequence."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vniahd.models import attention, get_backend
from vniahd.models.attention import CachedCausal as LowerRightCausal
from vniahd.models.attention import cached_attention_mask
from vniahd.models.attention import cached_causal_attention as lower_right_attention
from vniahd.rope import get_variant, variant_axes
from vniahd.rope.hf import install_allocation


def _masked_reference(q, k, v, past, scale=None):
    """Independent expectation: SDPA with the boolean lower-right causal mask, kv heads repeated."""
    rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    n = q.shape[2]
    keep = torch.ones(n, past + n, dtype=torch.bool).tril(past)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=scale)


@pytest.mark.parametrize("split", [True, False], ids=["split-blocks", "additive-mask"])
@pytest.mark.parametrize(
    "batch,heads,kv_heads,new,past",
    [(1, 4, 4, 7, 20), (2, 6, 2, 33, 5), (3, 7, 1, 2, 64), (1, 2, 1, 150, 300)],
)
def test_equals_sdpa_under_the_lower_right_mask(monkeypatch, split, batch, heads, kv_heads, new, past):
    monkeypatch.setattr(attention, "SPLIT_MIN_QUERIES", 2 if split else 10**9)
    g = torch.Generator().manual_seed(new + past)
    q = torch.randn(batch, heads, new, 16, generator=g)
    k = torch.randn(batch, kv_heads, past + new, 16, generator=g)
    v = torch.randn(batch, kv_heads, past + new, 16, generator=g)
    want = _masked_reference(q, k, v, past, scale=0.3)
    # through F.scaled_dot_product_attention, as transformers' SDPA integration calls it
    got = F.scaled_dot_product_attention(q, k, v, attn_mask=LowerRightCausal(past, new), scale=0.3)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        lower_right_attention(q, k, v, LowerRightCausal(past, new), scale=0.3), want, atol=1e-5, rtol=1e-5
    )


def test_marker_checks_its_shape_and_is_only_a_mask():
    q, k = torch.randn(1, 2, 5, 8), torch.randn(1, 2, 9, 8)
    with pytest.raises(ValueError, match="5 queries over 8 keys, got 5 over 9"):
        F.scaled_dot_product_attention(q, k, k, attn_mask=LowerRightCausal(3, 5))
    with pytest.raises(ValueError, match="is_causal"):
        lower_right_attention(q, k, k, LowerRightCausal(4, 5), is_causal=True)
    with pytest.raises(TypeError):
        torch.add(torch.zeros(1), LowerRightCausal(4, 5))  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        LowerRightCausal(4, 5)[..., :3]  # no values behind it to slice or read
    with pytest.raises(TypeError):
        LowerRightCausal(4, 5).float()
    with pytest.raises(ValueError, match="needs a cache and several queries"):
        LowerRightCausal(0, 5)


@pytest.fixture(scope="module")
def backend():
    be = get_backend("random:qwen2-vl?layers=2&hidden=64&heads=4&kv_heads=2")
    install_allocation(be.language_model, variant_axes(get_variant("videorope"), be.rotary))
    return be


@pytest.mark.parametrize(
    "spec",
    ["random:qwen2-vl?layers=2&hidden=64&heads=4&kv_heads=2", "random:qwen2.5-vl", "random:glm-4.1v?heads=2"],
)
@pytest.mark.parametrize("past,new,batch", [(40, 200, 1), (150, 9, 2), (1, 130, 3)])
def test_forward_over_a_cache_equals_one_causal_pass(monkeypatch, spec, past, new, batch):
    """Rows fed over a cache (the marker path, counted) equal transformers' own maskless causal
    pass over the whole sequence, for the split and the additive-mask paths, in each family whose
    text model builds its mask with transformers' create_causal_mask."""
    backend = get_backend(spec)
    calls = []
    real = attention.cached_causal_attention
    monkeypatch.setattr(attention, "cached_causal_attention", lambda *a, **k: calls.append(1) or real(*a, **k))
    g = torch.Generator().manual_seed(past)
    emb = torch.randn(batch, past + new, backend.hidden_size, generator=g)
    pos = torch.arange(past + new, dtype=torch.float64)[None, None].expand(3, batch, -1)
    with torch.inference_mode():
        full = backend.hidden_states(emb, pos)
        cache = backend.new_cache()
        backend.hidden_states(emb[:, :past], pos[:, :, :past], cache=cache)
        part = backend.hidden_states(emb[:, past:], pos[:, :, past:], cache=cache)
    assert len(calls) == backend.language_model.config.num_hidden_layers
    torch.testing.assert_close(part, full[:, past:], atol=1e-5, rtol=1e-5)


def test_left_to_transformers_where_it_does_not_apply(backend):
    lm = backend.language_model
    cache = backend.new_cache()
    assert cached_attention_mask(lm, 5, None) is None  # no cache: transformers' own is_causal pass
    assert cached_attention_mask(lm, 5, cache) is None  # an empty cache
    with torch.inference_mode():
        backend.hidden_states(torch.zeros(1, 3, backend.hidden_size), torch.zeros(3, 1, 3), cache=cache)
    assert cached_attention_mask(lm, 1, cache) is None  # one token (decoding): no mask needed
    mask = cached_attention_mask(lm, 5, cache)
    assert isinstance(mask, LowerRightCausal) and (mask.cached, mask.queries) == (3, 5)
    assert mask.shape == (1, 1, 5, 8)  # a prepared 4-D mask, which transformers uses as it is
    config = lm.config
    config._attn_implementation = "eager"  # an attention that would add the mask itself
    try:
        assert cached_attention_mask(lm, 5, cache) is None
    finally:
        config._attn_implementation = "sdpa"
    layer_types = config.layer_types
    config.layer_types = ["sliding_attention"] + layer_types[1:]
    try:
        assert cached_attention_mask(lm, 5, cache) is None
    finally:
        config.layer_types = layer_types
