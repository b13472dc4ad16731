"""Rotary embedding math: inverse frequencies, cos/sin under an allocation, NeoX rotation.

Conventions (docs/rope-math.md): head dim ``d``, ``P = d/2`` pairs, ``θ_n = β^(-2n/d)``; channel ``k`` and
``k+P`` form pair ``k`` (NeoX ``rotate_half`` layout); pair n reads its angle from stream
``axes[n]``: angle = pos[axes[n]] · θ_n.

:func:`rope_cos_sin` computes in float32 with the same element-wise operations as transformers'
Qwen2-VL/Qwen3-VL text rotary modules (``position.float() * inv_freq``, then cos/sin, then
per-pair stream selection, then the two halves duplicated), so for the same allocation the result
is bit-for-bit identical to theirs.
"""

from __future__ import annotations

import math

import torch

from vniahd.errors import VniahdError


def _check_head_dim(head_dim: int) -> None:
    if isinstance(head_dim, bool) or not isinstance(head_dim, int) or head_dim < 2 or head_dim % 2:
        raise VniahdError(f"head_dim must be a positive even integer, got {head_dim!r}")


def inv_freq(head_dim: int, theta: float) -> torch.Tensor:
    """``θ_n = theta^(-2n/d)`` for n = 0..d/2−1, float32 [d/2].

    Same expression and dtype as transformers' ``compute_default_rope_parameters`` so the values
    match its ``inv_freq`` buffer exactly.
    """
    _check_head_dim(head_dim)
    if not theta > 0:
        raise VniahdError(f"rope theta must be positive, got {theta!r}")
    return 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim))


def wavelengths(head_dim: int, theta: float) -> torch.Tensor:
    """Wavelength in positions of every pair, ``2π·theta^(2n/d)``, float64 [d/2]."""
    _check_head_dim(head_dim)
    n = torch.arange(head_dim // 2, dtype=torch.float64)
    return 2 * math.pi * torch.as_tensor(float(theta), dtype=torch.float64) ** (2 * n / head_dim)


def temporal_period(head_dim: int, theta: float, t_section: int) -> float:
    """``2π·θ^(2·s_t/d)``: the wavelength of pair ``s_t``, the first pair M-RoPE does not give to
    time (≈198.7 for Qwen2-VL-7B, d=128, θ=1e6, s_t=16; docs/rope-math.md). Distractors go this far."""
    _check_head_dim(head_dim)
    period: float = 2 * math.pi * float(theta) ** (2 * t_section / head_dim)  # float ** float is Any
    return period


def rope_cos_sin(
    position_ids: torch.Tensor,
    inv_freq: torch.Tensor,
    axes: torch.Tensor,
    attention_scaling: float = 1.0,
    scale: torch.Tensor | None = None,
    check: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin (float32) for positions ``[K, B, S]`` (K position streams) under allocation
    ``axes``: ``[P]`` gives ``[B, S, 2P]``; a per-KV-head ``[G, P]`` gives ``[B, G, S, 2P]``.

    A ``[K, S]`` input is treated as batch 1. Each pair's positions are picked from its stream
    before the multiply; picking before or after the element-wise ``pos * θ_n`` gives identical
    floats, and picking first avoids computing unused streams. ``scale`` (the shape of ``axes``,
    float64) multiplies each pair's frequency (0 = NoPE); ``None`` keeps the model's own float32
    frequencies bit for bit. ``check=False`` skips the stream checks (each reads the axes' values,
    a device sync on a GPU) for callers that validated the allocation once.
    """
    if position_ids.dim() == 2:
        position_ids = position_ids[:, None, :]
    axes = torch.as_tensor(axes, dtype=torch.long, device=position_ids.device)
    if check and axes.numel() and int(axes.min()) < 0:
        raise VniahdError(
            "the allocation marks NoPE pairs (stream -1); pass its streams and a scale of 0 for them "
            "(variant.pair_plan(P): plan.streams, scale=plan.scale)"
        )
    if position_ids.dim() != 3 or axes.numel() == 0 or (check and int(axes.max()) >= position_ids.shape[0]):
        raise VniahdError(
            f"position_ids must have shape [K, B, S] with a row for every stream the allocation reads "
            f"(up to {int(axes.max()) + 1 if axes.numel() else '?'}), got {tuple(position_ids.shape)}"
        )
    if axes.dim() not in (1, 2) or axes.shape[-1] != inv_freq.numel():
        raise VniahdError(
            f"allocation has {axes.shape[-1] if axes.dim() else 0} pairs but inv_freq has "
            f"{inv_freq.numel()}; build the allocation for head_dim/2 pairs"
        )
    freq = inv_freq.to(device=position_ids.device, dtype=torch.float)
    if scale is not None:
        # float64 product, one rounding to float32: the scaled frequency as close as float32 allows
        freq = (
            inv_freq.to(device=position_ids.device, dtype=torch.float64) * scale.to(position_ids.device)
        ).float()
    pos = position_ids.float().permute(1, 2, 0)  # [B, S, K]
    if axes.dim() == 2:  # per KV head: [B, G, S, P]
        per_pair = pos[..., axes].permute(0, 2, 1, 3)  # pos[..., axes] is [B, S, G, P]
        freqs = per_pair * (freq[:, None, :] if freq.dim() == 2 else freq)
    else:
        per_pair = pos[..., axes]  # [B, S, P]: pair n's own stream
        freqs = per_pair * freq
    cos = freqs.cos() * attention_scaling
    sin = freqs.sin() * attention_scaling
    return torch.cat((cos, cos), dim=-1), torch.cat((sin, sin), dim=-1)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """NeoX rotation: ``(x1, x2) -> (−x2, x1)`` over the two halves of the last dimension."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rotary(
    q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, unsqueeze_dim: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate q and k ([B, heads, S, d] with the default ``unsqueeze_dim=1``) by cos/sin [B, S, d]."""
    cos = cos.unsqueeze(unsqueeze_dim)
    sin = sin.unsqueeze(unsqueeze_dim)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
