"""A variant on a concrete model: the model's rotary facts and the one rule turning a variant
into per-pair axes for it.

:class:`RotaryConfig` is what every caller (model backends, the tiny model's training, the
evaluator, run.json) knows about a text model's rotary embedding. :func:`variant_axes` is the
only place that decides which stream each of that model's pairs reads under a variant; training,
evaluation and the recorded ``axes`` string all go through it, so they cannot drift apart.

The section rule: an allocation that splits pairs into t/h/w blocks like M-RoPE does
(``mrope-blocks``, ``lta``, ``lta-sequential``) keeps the *model's own* ``mrope_section`` counts
unless the variant fixes sections itself — VideoRoPE keeps M-RoPE's section sizes and only moves
where the temporal block sits (VideoRoPE paper, Sec. 3.2; see docs/rope-math.md). Every other
allocation uses its own default for the pair count (:func:`vniahd.rope.default_sections`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from vniahd.rope.allocations import Sections, check_sections, resolve_sections
from vniahd.rope.components import PairPlan, jsonable
from vniahd.rope.rotation import temporal_period

if TYPE_CHECKING:
    from vniahd.rope.presets import Variant


@dataclass(frozen=True)
class RotaryConfig:
    """A text model's rotary embedding: head dim ``d``, base ``θ``, native (t, h, w) sections in
    pairs, the native allocation (``mrope-blocks`` for Qwen2/2.5-VL, ``interleaved`` for
    Qwen3-VL), transformers' ``rope_type`` and, for partial rotary, the rotated dims per head
    (``rotary_dim``; ``None`` = all of ``head_dim``)."""

    head_dim: int
    theta: float
    sections: Sections
    native_allocation: str = "mrope-blocks"
    rope_type: str = "default"
    rotary_dim: int | None = None
    #: ``"neox"`` (channel k rotates with k + d/2: Qwen) or ``"adjacent"`` (2k with 2k+1: GLM)
    pair_layout: str = "neox"
    #: number of key/value heads (per-head allocations give each its own streams); ``None`` = unknown
    kv_heads: int | None = None

    def __post_init__(self) -> None:
        check_sections(self.num_pairs, self.sections)

    @property
    def num_pairs(self) -> int:
        return (self.rotary_dim or self.head_dim) // 2

    def temporal_period(self) -> float:
        """Wavelength of the first pair M-RoPE does not give to time (distractor spacing)."""
        return temporal_period(self.rotary_dim or self.head_dim, self.theta, self.sections[0])

    def to_dict(self) -> dict[str, Any]:
        return {
            "head_dim": self.head_dim,
            "theta": self.theta,
            "sections": list(self.sections),
            "num_pairs": self.num_pairs,
            "native_allocation": self.native_allocation,
            "rope_type": self.rope_type,
            "rotary_dim": self.rotary_dim,
            "pair_layout": self.pair_layout,
            "kv_heads": self.kv_heads,
            "temporal_period": self.temporal_period(),
        }


def effective_sections(
    variant: Variant, num_pairs: int, model_sections: Sections | None = None
) -> Sections | None:
    """The (t, h, w) sections ``variant`` uses with ``num_pairs`` pairs (``None`` for uniform):
    the variant's own, else the model's for block allocations (module docstring), else the
    allocation's default."""
    return resolve_sections(variant.allocation, variant.sections, num_pairs, model_sections)


def variant_plan(variant: Variant, rotary: RotaryConfig) -> PairPlan:
    """Stream and frequency multiplier of each of the model's rotary pairs under ``variant``
    (per KV head for a per-head allocation): the one rule training, evaluation and run.json use."""
    sections = effective_sections(variant, rotary.num_pairs, rotary.sections)
    return variant.pair_plan(rotary.num_pairs, sections, rotary.kv_heads)


def variant_axes(variant: Variant, rotary: RotaryConfig) -> torch.Tensor:
    """Stream (0=t, 1=h, 2=w; -1 = NoPE) of each of the model's rotary pairs under ``variant``: long [P]."""
    sections = effective_sections(variant, rotary.num_pairs, rotary.sections)
    return variant.axes(rotary.num_pairs, sections)


def applied_allocation(variant: Variant, rotary: RotaryConfig) -> dict[str, Any]:
    """What applying ``variant`` to a model with ``rotary`` installs (recorded in run.json):
    ``axes`` names each pair's stream (``-`` = NoPE, ``*`` = scaled frequency, ``|`` between KV
    heads); ``frequency_scale`` lists the multipliers when any differs from 1."""
    sections = effective_sections(variant, rotary.num_pairs, rotary.sections)
    plan = variant_plan(variant, rotary)
    out: dict[str, Any] = {
        "allocation": variant.allocation,
        "effective_sections": list(sections) if sections is not None else None,
        "axes": plan.describe(variant.stream_names),
    }
    if variant.allocation_params:
        out["allocation_params"] = {k: jsonable(v) for k, v in variant.allocation_params.items()}
    if not bool((plan.scale == 1).all()):
        out["frequency_scale"] = plan.scale.tolist()
    return out
