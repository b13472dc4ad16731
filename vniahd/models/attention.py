"""Attention of new tokens over a KV cache on the CPU, without a dense mask; and packed segments.

When a forward pass feeds ``q > 1`` tokens on top of a cache that already holds ``p > 0`` (a
suffix over a shared prefix, a prefill chunk, a right-padded batch over a forked prefix), the
causal mask is aligned to the lower right: query ``i`` sees keys ``0 … p + i``. transformers 5.x
builds that ``[B, 1, q, p + q]`` mask explicitly (``masking_utils._ignore_causal_mask_sdpa`` keeps
it whenever ``q != kv``), and torch's CPU flash kernel then scores every query against every key,
the masked pairs included, after turning the boolean mask into an additive one in every layer. At
the evaluator's shapes (a suffix of a few hundred tokens over a prefix of a few thousand) that is
up to 1.5× the attention the causal pattern needs, and attention dominates a long-context
forward pass on a CPU.

Here the keys are cut in blocks instead: the cached ones, which every new query sees (no mask
at all), and the new ones, causal among themselves (a square block: torch's upper-left
``is_causal`` is the right mask). Each block runs through the same CPU flash kernel that a
maskless causal prefill uses, which also returns each query's log-sum-exp ``l`` of its scores, and
the partial softmaxes merge exactly::

    out = (e^l₁ · o₁ + e^l₂ · o₂) / (e^l₁ + e^l₂) = o₂ + σ(l₁ − l₂) · (o₁ − o₂)

— the same merge flash attention does between its key blocks, so the result equals the masked
attention up to float rounding (``tests/test_models_attention.py``). Where SDPA is handed
grouped key/value heads, the query heads of a group are folded into one head's rows in the cached
block; transformers 5.x repeats the key/value heads itself whenever it passes a mask, so with
its models every head arrives on its own and the fold does nothing. Short passes, where several
kernel calls cost more than the masked pairs they save, use an additive mask built once per
forward pass instead.

**Packed segments.** The same marker can describe several independent token sequences packed
into one row of the batch: segment ``s`` (``n_s`` tokens) sees every cached key and its own
tokens causally, never another segment's. The evaluator packs the suffixes of samples that share
a cached prefix this way (one forward call instead of one per sample, and no padding); each
segment's causal block is its own kernel call, the cached block is one call for all of them.
Positions come from ``position_ids`` (every token's own), so RoPE needs nothing packed-specific.

How it is wired: :func:`cached_attention_mask` gives the text model's ``forward`` a prepared
``attention_mask``: a :class:`CachedCausal` marker, a tensor of shape ``[1, 1, q, p + q]`` with
no data behind it (transformers returns a 4-D mask as it is, for every family that builds its
masks with ``masking_utils.create_causal_mask``). transformers' SDPA integration hands it to
``torch.nn.functional.scaled_dot_product_attention`` as ``attn_mask``, and the marker takes that
call over through the ``__torch_function__`` protocol; any other use of it (reading its values,
arithmetic, an eager attention adding it to scores) raises instead of computing with a fake mask.
Only models whose every layer is a full-attention layer run with SDPA on the CPU get the marker
(:func:`packing_supported`); everything else is left to transformers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

#: Below this many new tokens the masked kernel (with a mask built once per forward pass) is
#: cheaper than a kernel call per block and a merge (measured on 2-core x86 at
#: bench/eval_prefix.py shapes: a single-segment pass of 344 queries over 332 keys still favours
#: the mask; above ~512 queries the blocks win).
SPLIT_MIN_QUERIES = 384


def _flash_cpu() -> Any:
    return getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)


def kernel_supports(device: torch.device) -> bool:
    """Whether the marker's block path can run on ``device``: the CPU, with torch's CPU flash
    kernel (the device half of :func:`packing_supported`)."""
    return device.type == "cpu" and _flash_cpu() is not None


#: What may be read off the marker: its shape, dtype and device (transformers checks a prepared
#: mask's rank), never values.
_METADATA = {getattr(torch.Tensor, name).__get__ for name in ("shape", "ndim", "dtype", "device")} | {
    torch.Tensor.dim,
    torch.Tensor.size,
}


class CachedCausal(torch.Tensor):
    """``attn_mask`` for new queries over ``past`` cached keys followed by their own keys, the new
    tokens being a shared head of ``shared`` tokens and then ``segments`` packed sequences: the
    head sees the cache and itself causally; a query of segment ``s`` sees the cache, the whole
    head and the keys of segment ``s`` up to itself, never another segment. One segment (with or
    without a head) is the lower-right causal mask (query ``i`` sees keys ``0 … past + i``). A
    ``[1, 1, q, past + q]`` bool tensor in shape only (a broadcast scalar), ``q = shared +
    sum(segments)``: it computes the attention itself when handed to
    ``scaled_dot_product_attention`` (see the module docstring) and refuses every other use."""

    cached: int
    shared: int
    segments: tuple[int, ...]
    queries: int
    _additive: dict[tuple[torch.dtype, torch.device], torch.Tensor]

    @staticmethod
    def __new__(cls, past: int, segments: int | Sequence[int], shared: int = 0) -> CachedCausal:
        segs = (int(segments),) if isinstance(segments, int) else tuple(int(n) for n in segments)
        if len(segs) == 1 and shared:  # a head and one segment are one sequence
            segs, shared = (shared + segs[0],), 0
        new = shared + sum(segs)
        if past < 0 or shared < 0 or not segs or min(segs) < 1 or new < 2 or (past == 0 and len(segs) < 2):
            raise ValueError(
                "a cached-causal mask needs a cache and several queries, or several packed "
                f"segments, got {past=}, {shared=}, segments={segs}"
            )
        shape = torch.zeros((), dtype=torch.bool).expand(1, 1, new, past + new)
        self = shape.as_subclass(cls)
        self.cached, self.shared, self.segments, self.queries, self._additive = past, shared, segs, new, {}
        return self

    def keep(self, device: torch.device | None = None) -> torch.Tensor:
        """The mask as ``[q, past + q]`` booleans (True = attend)."""
        p, g = self.cached, self.shared
        keep = torch.zeros(self.queries, p + self.queries, dtype=torch.bool, device=device)
        keep[:, :p] = True
        keep[:g, p : p + g] = torch.ones(g, g, dtype=torch.bool, device=device).tril()
        keep[g:, p : p + g] = True
        s0 = g
        for n in self.segments:
            keep[s0 : s0 + n, p + s0 : p + s0 + n] = torch.ones(n, n, dtype=torch.bool, device=device).tril()
            s0 += n
        return keep

    def additive(self, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """The mask as ``[1, 1, q, past + q]`` additive floats (0 / -inf), built once."""
        key = (dtype, device)
        if key not in self._additive:
            keep = self.keep(device)
            mask = torch.zeros(keep.shape, dtype=dtype, device=device).masked_fill_(~keep, float("-inf"))
            self._additive[key] = mask[None, None]
        return self._additive[key]

    def __repr__(self) -> str:  # type: ignore[override]
        return f"CachedCausal(cached={self.cached}, shared={self.shared}, segments={self.segments})"

    @classmethod
    def __torch_function__(
        cls, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            return cached_causal_attention(*args, **kwargs)
        if func in _METADATA:
            with torch._C.DisableTorchFunctionSubclass():
                return func(*args, **kwargs)
        if func is torch.Tensor.to:
            # accelerate's device hooks move every tensor argument; the marker holds no values (its
            # additive form is built on the query's device), so a move is the marker itself
            return args[0]
        raise TypeError(
            f"CachedCausal is an attention mask for scaled_dot_product_attention only, not for {func}"
        )


def _repeat_kv(t: torch.Tensor, rep: int) -> torch.Tensor:
    return t if rep == 1 else t.repeat_interleave(rep, dim=-3)


def cached_causal_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: CachedCausal,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> torch.Tensor:
    """``scaled_dot_product_attention`` of ``query [B, H, q, d]`` over ``key``/``value``
    ``[B, H_kv, past + q, d]`` under ``attn_mask`` (a :class:`CachedCausal`)."""
    mask = attn_mask
    if is_causal or dropout_p:
        raise ValueError("a CachedCausal mask is the whole mask: no is_causal, no dropout")
    q, k = query.shape[-2], key.shape[-2]
    if (q, k) != (mask.queries, mask.cached + mask.queries):
        raise ValueError(
            f"mask for {mask.queries} queries over {mask.cached + mask.queries} keys, got {q} over {k}"
        )
    rep = query.shape[-3] // key.shape[-3]  # grouped-query attention: one kv head per `rep` heads
    flash = _flash_cpu()
    if q < SPLIT_MIN_QUERIES or flash is None or query.device.type != "cpu":
        return F.scaled_dot_product_attention(
            query,
            _repeat_kv(key, rep),
            _repeat_kv(value, rep),
            attn_mask=mask.additive(query.dtype, query.device),
            scale=scale,
        )
    g = mask.shared
    if not g:
        return _blocks(flash, query, key, value, mask.cached, mask.segments, rep, scale)
    # the head: a causal sequence over the cache; the segments: over the cache and the whole head
    head = _blocks(
        flash,
        query[..., :g, :],
        key[..., : mask.cached + g, :],
        value[..., : mask.cached + g, :],
        mask.cached,
        (g,),
        rep,
        scale,
    )
    rest = _blocks(flash, query[..., g:, :], key, value, mask.cached + g, mask.segments, rep, scale)
    return torch.cat([head, rest], dim=-2)


def _blocks(
    flash: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    past: int,
    segments: Sequence[int],
    rep: int,
    scale: float | None,
) -> torch.Tensor:
    """Segments over ``past`` cached keys (no head) through the flash kernel: the cached block
    once for all queries, a causal block per segment, merged by log-sum-exp."""
    p = past
    batch, heads, q, dim = query.shape
    if p:
        # every new query sees every cached key: fold each kv group's query heads into its rows
        # (a no-op when the kv heads arrive repeated, as transformers passes them with a mask)
        folded = query.reshape(batch, key.shape[-3], rep * q, dim)
        o1, l1 = flash(folded, key[..., :p, :], value[..., :p, :], 0.0, False, scale=scale)[:2]
        o1, l1 = o1.reshape(batch, heads, q, dim), l1.reshape(batch, heads, q)
    outs, lses = [], []
    s0 = 0
    for n in segments:
        ks = _repeat_kv(key[..., p + s0 : p + s0 + n, :], rep)
        vs = _repeat_kv(value[..., p + s0 : p + s0 + n, :], rep)
        o2, l2 = flash(query[..., s0 : s0 + n, :], ks, vs, 0.0, True, scale=scale)[:2]
        outs.append(o2)
        lses.append(l2)
        s0 += n
    o2 = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-2)
    if not p:
        return o2
    l2 = lses[0] if len(lses) == 1 else torch.cat(lses, dim=-1)
    w1 = torch.sigmoid(l1 - l2).unsqueeze(-1)  # e^l1 / (e^l1 + e^l2), float32
    return torch.lerp(o2, o1, w1.to(o2.dtype))


def packing_supported(language_model: torch.nn.Module) -> bool:
    """Whether :class:`CachedCausal` applies to this text model: SDPA on the CPU (with torch's CPU
    flash kernel) and only full-attention layers. Then the evaluator may pack several samples'
    suffixes into one forward pass (``Backend.hidden_states(..., segments=…)``)."""
    config: Any = language_model.config
    if getattr(config, "_attn_implementation", None) != "sdpa":
        return False
    if set(getattr(config, "layer_types", None) or ["full_attention"]) != {"full_attention"}:
        return False
    weight = next(language_model.parameters(), None)
    return weight is not None and kernel_supports(weight.device)


def cached_attention_mask(
    language_model: torch.nn.Module,
    new: int,
    cache: Any,
    segments: Sequence[int] | None = None,
    shared: int = 0,
) -> torch.Tensor | None:
    """The prepared ``attention_mask`` for feeding ``new`` tokens on top of ``cache`` (None or
    empty: nothing cached), or None where transformers should build its own (nothing cached, one
    token, or a model :func:`packing_supported` rejects). ``segments`` (and a ``shared`` head
    before them): the new tokens are that many packed sequences (see :class:`CachedCausal`);
    more than one requires :func:`packing_supported`."""
    past = int(cache.get_seq_length()) if cache is not None else 0
    if segments is not None:
        if shared + sum(segments) != new:
            raise ValueError(
                f"a head of {shared} and segments {list(segments)} do not add up to the {new} tokens fed"
            )
        if len(segments) > 1:
            if not packing_supported(language_model):
                raise ValueError("packed segments need SDPA on the CPU and only full-attention layers")
            return CachedCausal(past, segments, shared)
    if past < 1 or new < 2 or not packing_supported(language_model):
        return None
    return CachedCausal(past, new)
