"""Frequency bands of a variant: which rotary pairs a name like ``temporal`` or ``high`` means.

A band selects pairs of a :class:`~vniahd.rope.components.PairPlan` (per KV head for a per-head
plan). The variant's own axis groups: ``temporal``, ``height``, ``width`` (the pairs that read the
t, h or w stream; NoPE pairs belong to none of them), ``nope`` (the pairs never rotated); by
frequency: ``high`` (the faster half, pairs 0 … P/2−1) and ``low`` (the slower half); ``all``;
or explicit pair ranges ``A:B`` (pairs A … B−1, several joined by ``+``: ``0:4+60:64``).
Used by ``vniahd freqs --plot`` (VideoRoPE Fig. 4: the pairs each variant gives to time).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch

from vniahd.errors import VniahdError
from vniahd.rope.components import PairPlan

#: Named bands; any ``A:B`` range (or ranges joined by ``+``) is a band too.
BANDS = ("all", "temporal", "height", "width", "high", "low", "nope")
_AXIS_BANDS = {"temporal": "t", "height": "h", "width": "w"}


def check_band(band: str) -> str:
    """``band`` if it is a band name or pair ranges ``A:B[+C:D…]`` (whether the ranges fit a model's
    pairs is checked by :func:`band_pairs`), else a :class:`VniahdError`."""
    if band in BANDS or re.fullmatch(r"\s*\d+\s*:\s*\d+\s*(\+\s*\d+\s*:\s*\d+\s*)*", band):
        return band
    raise VniahdError(
        f"unknown band {band!r}; use one of {', '.join(BANDS)} or pair ranges A:B (e.g. 0:16+48:64)"
    )


def band_pairs(plan: PairPlan, stream_names: Sequence[str], band: str) -> torch.Tensor:
    """Bool mask of the pairs in ``band``, the shape of ``plan.streams`` ([P] or [KV heads, P])."""
    pairs = plan.num_pairs
    index = torch.arange(pairs).expand(plan.streams.shape)
    rotated = plan.scale != 0
    if band == "all":
        return torch.ones(plan.streams.shape, dtype=torch.bool)
    if band == "nope":
        return ~rotated
    if band in ("high", "low"):
        return index < pairs // 2 if band == "high" else index >= pairs // 2
    if band in _AXIS_BANDS:
        name = _AXIS_BANDS[band]
        if name not in stream_names:
            return torch.zeros(plan.streams.shape, dtype=torch.bool)
        return (plan.streams == list(stream_names).index(name)) & rotated
    mask = torch.zeros(plan.streams.shape, dtype=torch.bool)
    for part in band.split("+"):
        m = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", part)
        if not m or not 0 <= int(m.group(1)) < int(m.group(2)) <= pairs:
            raise VniahdError(
                f"unknown band {band!r}; use one of {', '.join(BANDS)} or pair ranges A:B with "
                f"0 <= A < B <= {pairs} (several joined by '+', e.g. 0:4+{pairs - 4}:{pairs})"
            )
        mask |= (index >= int(m.group(1))) & (index < int(m.group(2)))
    return mask
