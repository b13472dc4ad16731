"""Attention pooled per frame, from all rotary pairs or from a band of them.

After rotation, the attention logit of query i and key k in one head is a sum of one term per
rotary pair plus one for the dimensions that are not rotated (partial-rotary models):

    logit(i, k) = scaling · ( Σ_j [q_i(a_j)·k_k(a_j) + q_i(b_j)·k_k(b_j)]  +  Σ_{unrotated d} q_i(d)·k_k(d) )

where (a_j, b_j) are pair j's two channels (``j`` and ``j + R/2`` in NeoX halves, ``2j`` and
``2j + 1`` in adjacent pairs; R = the rotated dims). A *band* keeps the terms of some pairs
(:mod:`vniahd.rope.bands`); band ``all`` keeps every term, unrotated dims included, and is the
model's own attention. The softmax is then taken over every key the query sees (causal), from
that band's logits alone.

:func:`pooled_attention` never holds a full token × token matrix: queries and keys are walked in
chunks, twice (row maxima and normalisers first, then the weights), and each chunk is summed per
key frame at once.
"""

from __future__ import annotations

import torch

from vniahd.errors import VniahdError


def pair_channels(num_pairs: int, pair_layout: str) -> torch.Tensor:
    """Channels (a_j, b_j) of each rotary pair: long [P, 2]."""
    j = torch.arange(num_pairs)
    if pair_layout == "adjacent":
        return torch.stack([2 * j, 2 * j + 1], dim=1)
    if pair_layout == "neox":
        return torch.stack([j, j + num_pairs], dim=1)
    raise VniahdError(f"unknown pair layout {pair_layout!r} (neox or adjacent)")


def channel_weights(
    pairs: torch.Tensor, head_dim: int, num_pairs: int, pair_layout: str, with_unrotated: bool
) -> torch.Tensor:
    """0/1 weight of every channel of a head for a band: float [..., head_dim] from a bool pair
    mask ``pairs`` [..., P] (a per-KV-head mask gives one row per KV head)."""
    channels = pair_channels(num_pairs, pair_layout)  # [P, 2]
    weights = torch.zeros(*pairs.shape[:-1], head_dim)
    chosen = pairs.to(torch.float32)
    weights[..., channels[:, 0]] = chosen
    weights[..., channels[:, 1]] = chosen
    if with_unrotated:
        weights[..., 2 * num_pairs :] = 1.0
    return weights


def pooled_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    scaling: float,
    groups: torch.Tensor,
    num_groups: int,
    query_rows: torch.Tensor,
    weights: torch.Tensor | None = None,
    chunk: int = 256,
) -> torch.Tensor:
    """Attention of the queries at ``query_rows`` summed over the keys of each group: float64
    ``[len(query_rows), num_groups]``, averaged over heads.

    ``q`` [H, S, D] and ``k`` [G, S, D] are one layer's rotated queries and keys (query head h
    uses KV head ``h // (H/G)``); ``groups`` [S] long is each key's group (a frame index, or a
    category; −1 = counted in no group, still in the softmax); ``weights`` [H or G or 1, D] keeps
    a band's channels (None: all). Causal: query i sees keys 0 … i.
    """
    heads, seq, dim = q.shape
    kv = k.shape[0]
    device = q.device
    groups, query_rows = groups.to(device), query_rows.to(device)
    if heads % kv:
        raise VniahdError(f"{heads} query heads do not split evenly over {kv} KV heads")
    k = k.repeat_interleave(heads // kv, dim=0)  # [H, S, D]
    if weights is not None:
        if weights.shape[0] == kv and kv != heads:
            weights = weights.repeat_interleave(heads // kv, dim=0)
        weights = weights.to(device=device, dtype=q.dtype)
        q = q * weights[:, None, :] if weights.dim() == 2 else q * weights
    one_hot = torch.zeros(seq, num_groups + 1, dtype=torch.float64, device=device)
    one_hot[torch.arange(seq, device=device), torch.where(groups >= 0, groups, num_groups)] = 1.0
    out = torch.zeros(len(query_rows), num_groups, dtype=torch.float64, device=device)
    for a in range(0, len(query_rows), chunk):
        rows = query_rows[a : a + chunk]
        qs = q[:, rows].to(torch.float64)  # [H, n, D]
        last = int(rows.max()) + 1
        # pass 1: row maxima and normalisers over every visible key, key chunk by key chunk
        m = torch.full((heads, len(rows)), -torch.inf, dtype=torch.float64, device=device)
        z = torch.zeros(heads, len(rows), dtype=torch.float64, device=device)
        for b in range(0, last, chunk):
            logits = _logits(qs, k, rows, b, min(last, b + chunk), scaling)
            new_m = torch.maximum(m, logits.amax(-1))
            z = z * torch.exp(m - new_m) + torch.exp(logits - new_m[..., None]).sum(-1)
            m = new_m
        # pass 2: the weights, summed per group
        acc = torch.zeros(heads, len(rows), num_groups + 1, dtype=torch.float64, device=device)
        for b in range(0, last, chunk):
            logits = _logits(qs, k, rows, b, min(last, b + chunk), scaling)
            p = torch.exp(logits - m[..., None]) / z[..., None]
            acc += p @ one_hot[b : min(last, b + chunk)]
        out[a : a + len(rows)] = acc[..., :num_groups].mean(0)
    return out.cpu()


def _logits(
    qs: torch.Tensor, k: torch.Tensor, rows: torch.Tensor, b: int, e: int, scaling: float
) -> torch.Tensor:
    """Scaled logits [H, n, e−b] of queries ``rows`` against keys b … e−1, −inf where causal masks."""
    logits = torch.einsum("hnd,hkd->hnk", qs, k[:, b:e].to(torch.float64)) * scaling
    keys = torch.arange(b, e, device=qs.device)
    return logits.masked_fill(keys[None, None, :] > rows[None, :, None], -torch.inf)
