"""Attention of new tokens over a KV cache on the CPU, without a dense mask.

When a forward pass feeds ``q > 1`` tokens on top of a cache that already holds ``p > 0`` (a
suffix over a shared prefix, a prefill chunk, a right-padded batch over a forked prefix), the
causal mask is aligned to the lower right: query ``i`` sees keys ``0 … p + i``. transformers 5.x
builds that ``[B, 1, q, p + q]`` mask explicitly (``masking_utils._ignore_causal_mask_sdpa`` keeps
it whenever ``q != kv``), and torch's CPU flash kernel then scores every query against every key,
the masked pairs included, after turning the boolean mask into an additive one in every layer. At
the evaluator's shapes (a suffix of a few hundred tokens over a prefix of a few thousand) that is
up to 1.5× the attention the causal pattern needs, and attention dominates a long-context
forward pass on a CPU.

Here the keys are cut in two blocks instead: the cached ones, which every new query sees (no mask
at all), and the new ones, causal among themselves (a square block: torch's upper-left
``is_causal`` is the right mask). Each block runs through the same CPU flash kernel that a
maskless causal prefill uses, which also returns each query's log-sum-exp ``l`` of its scores, and
the two partial softmaxes merge exactly::

    out = (e^l₁ · o₁ + e^l₂ · o₂) / (e^l₁ + e^l₂) = o₂ + σ(l₁ − l₂) · (o₁ − o₂)

— the same merge flash attention does between its key blocks, so the result equals the masked
attention up to float rounding (``tests/test_models_attention.py``). Short suffixes, where two
kernel calls cost more than the masked pairs they save, use an additive mask built once per
forward pass instead of once per layer.

How it is wired: :func:`cached_attention_mask` gives the text model's ``forward`` a prepared
``attention_mask``: a :class:`LowerRightCausal` marker, a tensor of shape ``[1, 1, q, p + q]`` with
no data behind it (transformers returns a 4-D mask as it is, for every family that builds its
masks with ``masking_utils.create_causal_mask``). transformers' SDPA integration hands it to
``torch.nn.functional.scaled_dot_product_attention`` as ``attn_mask``, and the marker takes that
call over through the ``__torch_function__`` protocol; any other use of it (reading its values,
arithmetic, an eager attention adding it to scores) raises instead of computing with a fake mask.
Only models whose every layer is a full-attention layer run with SDPA on the CPU get the marker;
everything else is left to transformers.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

#: Below this many new tokens the masked kernel (with a mask built once per forward pass) is
#: cheaper than two kernel calls and a merge (measured on 2-core x86, bench/eval_prefix.py shapes).
SPLIT_MIN_QUERIES = 128


def _flash_cpu() -> Any:
    return getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)


#: What may be read off the marker: its shape, dtype and device (transformers checks a prepared
#: mask's rank), never values.
_METADATA = {getattr(torch.Tensor, name).__get__ for name in ("shape", "ndim", "dtype", "device")} | {
    torch.Tensor.dim,
    torch.Tensor.size,
}


class LowerRightCausal(torch.Tensor):
    """``attn_mask`` for ``new`` queries over ``past`` cached keys followed by their own ``new``
    keys: query ``i`` sees keys ``0 … past + i`` (no padding). A ``[1, 1, new, past + new]`` bool
    tensor in shape only (a broadcast scalar): it computes the attention itself when handed to
    ``scaled_dot_product_attention`` (see the module docstring) and refuses every other use."""

    cached: int
    queries: int
    _additive: dict[tuple[torch.dtype, torch.device], torch.Tensor]

    @staticmethod
    def __new__(cls, past: int, new: int) -> LowerRightCausal:
        if past < 1 or new < 2:
            raise ValueError(
                f"a lower-right causal mask needs a cache and several queries, got {past=}, {new=}"
            )
        shape = torch.zeros((), dtype=torch.bool).expand(1, 1, new, past + new)
        self = shape.as_subclass(cls)
        self.cached, self.queries, self._additive = past, new, {}
        return self

    def additive(self, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """The mask as ``[1, 1, new, past + new]`` additive floats (0 / -inf), built once."""
        key = (dtype, device)
        if key not in self._additive:
            keep = torch.ones(self.queries, self.cached + self.queries, dtype=torch.bool, device=device)
            keep = keep.tril(self.cached)
            mask = torch.zeros(keep.shape, dtype=dtype, device=device).masked_fill_(~keep, float("-inf"))
            self._additive[key] = mask[None, None]
        return self._additive[key]

    def __repr__(self) -> str:  # type: ignore[override]
        return f"LowerRightCausal(cached={self.cached}, queries={self.queries})"

    @classmethod
    def __torch_function__(
        cls, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            return lower_right_attention(*args, **kwargs)
        if func in _METADATA:
            with torch._C.DisableTorchFunctionSubclass():
                return func(*args, **kwargs)
        if func is torch.Tensor.to:
            # accelerate's device hooks move every tensor argument; the marker holds no values (its
            # additive form is built on the query's device), so a move is the marker itself
            return args[0]
        raise TypeError(
            f"LowerRightCausal is an attention mask for scaled_dot_product_attention only, not for {func}"
        )


def lower_right_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: LowerRightCausal,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> torch.Tensor:
    """``scaled_dot_product_attention`` of ``query [B, H, q, d]`` over ``key``/``value``
    ``[B, H_kv, past + q, d]`` under ``attn_mask`` (a :class:`LowerRightCausal`)."""
    mask = attn_mask
    if is_causal or dropout_p:
        raise ValueError("a LowerRightCausal mask is the whole mask: no is_causal, no dropout")
    q, k = query.shape[-2], key.shape[-2]
    if (q, k) != (mask.queries, mask.cached + mask.queries):
        raise ValueError(
            f"mask for {mask.queries} queries over {mask.cached + mask.queries} keys, got {q} over {k}"
        )
    if key.shape[-3] != query.shape[-3]:  # grouped-query attention: one kv head per group
        rep = query.shape[-3] // key.shape[-3]
        key, value = key.repeat_interleave(rep, dim=-3), value.repeat_interleave(rep, dim=-3)
    flash = _flash_cpu()
    if q < SPLIT_MIN_QUERIES or flash is None or query.device.type != "cpu":
        return F.scaled_dot_product_attention(
            query, key, value, attn_mask=mask.additive(query.dtype, query.device), scale=scale
        )
    p = mask.cached
    o1, l1 = flash(query, key[..., :p, :], value[..., :p, :], 0.0, False, scale=scale)[:2]
    o2, l2 = flash(query, key[..., p:, :], value[..., p:, :], 0.0, True, scale=scale)[:2]
    w1 = torch.sigmoid(l1 - l2).unsqueeze(-1)  # e^l1 / (e^l1 + e^l2), float32
    return torch.lerp(o2, o1, w1.to(o1.dtype))


def cached_attention_mask(language_model: torch.nn.Module, new: int, cache: Any) -> torch.Tensor | None:
    """The prepared ``attention_mask`` for feeding ``new`` tokens on top of ``cache``, or None
    where transformers should build its own (no cache, one token, not SDPA on the CPU, or a model
    with other than full-attention layers)."""
    if cache is None or new < 2 or _flash_cpu() is None:
        return None
    past = int(cache.get_seq_length())
    config: Any = language_model.config
    if past < 1 or getattr(config, "_attn_implementation", None) != "sdpa":
        return None
    if set(getattr(config, "layer_types", None) or ["full_attention"]) != {"full_attention"}:
        return None
    weight = next(language_model.parameters(), None)
    if weight is None or weight.device.type != "cpu":
        return None
    return LowerRightCausal(past, new)
