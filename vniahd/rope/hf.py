"""transformers integration: give a Qwen2-VL / Qwen2.5-VL / Qwen3-VL text model any allocation.

In transformers 5.x the text model computes ``position_embeddings = self.rotary_emb(x,
position_ids)`` once per forward and hands (cos, sin) to every layer; the t/h/w split lives in the
rotary module's ``recomposition_frequencies`` (blocks for Qwen2/2.5-VL, interleaved for Qwen3-VL).
:class:`AllocatedRotaryEmbedding` wraps that module, keeps its ``inv_freq`` and
``attention_scaling`` (and its dynamic-RoPE update, if any) and replaces only the recomposition by
"pair n reads stream axes[n]" (:func:`vniahd.rope.rotation.rope_cos_sin`).

Callers pass position ids ``[3, B, S]`` computed with :mod:`vniahd.rope.layouts`; this module never
calls transformers' ``get_rope_index`` (its 5.x text-after-video rule differs; docs/footguns.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, cast

import torch
from torch import nn

from vniahd.errors import VniahdError
from vniahd.rope.allocations import axis_names
from vniahd.rope.components import PairPlan, plan_from_axes
from vniahd.rope.model import RotaryConfig
from vniahd.rope.rotation import rope_cos_sin


class AllocatedRotaryEmbedding(nn.Module):
    """A text rotary module in which pair n reads position stream ``axes[n]`` and, for a
    :class:`~vniahd.rope.components.PairPlan` with scales, rotates at ``scale[n]`` times its own
    frequency (0 = NoPE).

    ``base`` is the model's original rotary module (kept as a child: its ``inv_freq`` buffer,
    ``attention_scaling`` and config are reused, so a model reloaded in another dtype/device
    behaves the same). ``forward(x, position_ids)`` returns ``(cos, sin)`` [B, S, head_dim] in
    ``x.dtype``, like the module it replaces; under a per-KV-head plan they are
    [B, kv_heads, S, head_dim], which only :func:`per_head_rotary` attention understands.
    """

    base: nn.Module
    axes: torch.Tensor
    scale: torch.Tensor | None
    pair_layout: str
    rows: int

    def __init__(self, base: nn.Module, plan: torch.Tensor | PairPlan):
        super().__init__()
        if isinstance(base, AllocatedRotaryEmbedding):
            base = base.base
        if not hasattr(base, "inv_freq"):
            raise VniahdError(
                f"{type(base).__name__} is not a transformers rotary module "
                "(no inv_freq); pass a Qwen2-VL/Qwen2.5-VL/Qwen3-VL text model"
            )
        if not isinstance(plan, PairPlan):
            plan = plan_from_axes(torch.as_tensor(plan, dtype=torch.long).flatten())
        num_pairs = _inv_freq(base).numel()
        if plan.num_pairs != num_pairs or bool((plan.streams < 0).any()):
            raise VniahdError(
                f"allocation must give a stream for each of the model's {num_pairs} rotary pairs, "
                f"got {plan.num_pairs} entries; build it with variant.pair_plan({num_pairs})"
            )
        self.base = base
        self.pair_layout = pair_layout(base)  # probed once: a property of the module's code
        # position rows the plan reads, known here so that forward needs no device sync
        self.rows = max(3, int(plan.streams.max()) + 1)
        device = _inv_freq(base).device
        self.register_buffer("axes", plan.streams.to(device), persistent=False)
        # a plain plan keeps the model's own float32 frequencies bit for bit
        scale = None if bool((plan.scale == 1).all()) else plan.scale.to(device)
        self.register_buffer("scale", scale, persistent=False)

    @property
    def per_head(self) -> bool:
        return self.axes.dim() == 2

    @property
    def inv_freq(self) -> torch.Tensor:
        return _inv_freq(self.base)

    @property
    def attention_scaling(self) -> float:
        return cast(float, self.base.attention_scaling)

    def extra_repr(self) -> str:
        scale = torch.ones(self.axes.shape, dtype=torch.float64) if self.scale is None else self.scale
        return "axes=" + PairPlan(self.axes, scale.cpu()).describe(
            [str(i) for i in range(int(self.axes.max()) + 1)]
        )

    def forward(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        base = self.base
        rope_type = getattr(base, "rope_type", "default")
        if isinstance(rope_type, str) and ("dynamic" in rope_type or rope_type == "longrope"):
            # Let transformers grow/reset the base module's inv_freq exactly as it would.
            from transformers.modeling_rope_utils import dynamic_rope_update

            cast(Any, dynamic_rope_update)(lambda module, x_, pos_: None)(base, x, position_ids)
        if position_ids.dim() == 2:
            position_ids = position_ids[None]
        if position_ids.shape[0] < self.rows and position_ids.shape[0] != 1:
            raise VniahdError(
                f"this allocation reads {self.rows} position streams but got {position_ids.shape[0]} rows"
            )
        position_ids = position_ids.expand(max(self.rows, position_ids.shape[0]), -1, -1)
        cos, sin = rope_cos_sin(
            position_ids,
            _inv_freq(base),
            self.axes.to(position_ids.device),
            attention_scaling=cast(float, base.attention_scaling),
            scale=self.scale,
            check=False,  # validated in __init__; rows checked above
        )
        if self.pair_layout == "adjacent":
            # GLM rotates channels (2k, 2k+1) together: each pair's angle twice in a row, not the
            # P angles repeated in two halves (NeoX) as rope_cos_sin lays them out.
            p = cos.shape[-1] // 2
            cos, sin = cos[..., :p].repeat_interleave(2, dim=-1), sin[..., :p].repeat_interleave(2, dim=-1)
        return cos.to(dtype=x.dtype), sin.to(dtype=x.dtype)


def model_position_ids(position_ids: torch.Tensor) -> torch.Tensor:
    """Position ids as a transformers multimodal text model must receive them: it reads a 4-row
    input as (text, t, h, w) and drops row 0, so a variant with four streams (VRoPE) gets a fifth,
    all-zero row that no pair reads."""
    if position_ids.dim() == 3 and position_ids.shape[0] == 4:
        return torch.cat([position_ids, torch.zeros_like(position_ids[:1])], dim=0)
    return position_ids


def pair_layout(rotary: nn.Module) -> str:
    """How a transformers text rotary module lays out its pairs in a head: ``"adjacent"`` (GLM-4.1V:
    channels 2k and 2k+1 rotate together, ``rotate_half_llm``) or ``"neox"`` (Qwen, GLM-4.5V:
    channel k with channel k + d/2).

    Read from what the module itself returns, not from its class name (GLM-4.1V and GLM-4.5V share
    a prefix and differ here): at position 1 every pair has its own angle (``inv_freq`` falls
    strictly), so channel 1 repeats channel 0 only when pairs sit in adjacent channels."""
    base = _original(rotary)
    inv = _inv_freq(base)
    if inv.numel() < 2:
        raise VniahdError(f"{type(base).__name__} has fewer than 2 rotary pairs; cannot tell its layout")
    x = torch.zeros(1, dtype=torch.float32, device=inv.device)
    with torch.no_grad():
        cos, _ = base(x, torch.ones(3, 1, 1, dtype=torch.long, device=inv.device))
    cos = cos.reshape(-1).float()
    return "adjacent" if bool(torch.isclose(cos[0], cos[1], rtol=0, atol=1e-7)) else "neox"


def _inv_freq(module: nn.Module) -> torch.Tensor:
    """A transformers rotary module's ``inv_freq`` buffer."""
    return cast(torch.Tensor, module.inv_freq)


def _rotary_emb(owner: nn.Module) -> nn.Module:
    """The ``rotary_emb`` child of a text model (see :func:`_text_model`)."""
    return cast(nn.Module, owner.rotary_emb)


def _text_model(model: nn.Module) -> nn.Module:
    """The module that owns ``rotary_emb``: a bare text model, ``.language_model`` (Qwen*VLModel)
    or ``.model.language_model`` (…ForConditionalGeneration)."""
    candidates = [model, getattr(model, "language_model", None), getattr(model, "model", None)]
    inner = getattr(model, "model", None)
    if inner is not None:
        candidates.append(getattr(inner, "language_model", None))
    for cand in candidates:
        if (
            isinstance(cand, nn.Module)
            and isinstance(getattr(cand, "rotary_emb", None), nn.Module)
            and hasattr(cand.rotary_emb, "inv_freq")
        ):
            return cand
    raise VniahdError(
        f"could not find a text rotary module in {type(model).__name__}; pass a "
        "Qwen2-VL, Qwen2.5-VL or Qwen3-VL model (full, .model.language_model, or the "
        "bare text model)"
    )


def rotary_module(model: nn.Module) -> nn.Module:
    """The text rotary module currently installed in ``model``."""
    return _rotary_emb(_text_model(model))


def _original(module: nn.Module) -> nn.Module:
    return module.base if isinstance(module, AllocatedRotaryEmbedding) else module


def rotary_config(model: nn.Module) -> RotaryConfig:
    """Head dim, θ, pair count and native sections/allocation of ``model``'s text rotary module.

    The allocation and pair layout are probed from what the module returns
    (:func:`native_allocation`, :func:`pair_layout`), never guessed from its class name; a family's
    record (:mod:`vniahd.models.families`) states them and checks they agree."""
    rot = _original(rotary_module(model))
    config: Any = rot.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    params = getattr(config, "rope_parameters", None) or {}
    theta_value = params.get("rope_theta", getattr(config, "rope_theta", None))
    if theta_value is None:
        raise VniahdError(
            f"{type(config).__name__} gives no rope_theta (in rope_parameters or as "
            "an attribute); set it in the model's config.json"
        )
    theta = float(theta_value)
    sections = tuple(int(s) for s in getattr(rot, "mrope_section", None) or ())
    num_pairs = int(_inv_freq(rot).numel())
    if len(sections) != 3:
        raise VniahdError(
            f"{type(rot).__name__} has no 3-part mrope_section; vniahd supports the "
            "Qwen2-VL, Qwen2.5-VL, Qwen3-VL and GLM-4.xV text rotary modules"
        )
    layout = pair_layout(rot)
    native = native_allocation(rot, sections, layout)
    rotary_dim = 2 * num_pairs if 2 * num_pairs != int(head_dim) else None
    return RotaryConfig(
        head_dim=int(head_dim),
        theta=theta,
        sections=sections,
        native_allocation=native,
        rope_type=str(getattr(rot, "rope_type", "default")),
        rotary_dim=rotary_dim,
        pair_layout=layout,
        kv_heads=_kv_heads(config),
    )


def _kv_heads(config: Any) -> int | None:
    """The text model's number of key/value heads (GQA), ``None`` when the config gives none."""
    value = getattr(config, "num_key_value_heads", None) or getattr(config, "num_attention_heads", None)
    return int(value) if value else None


#: The allocations a model's own rotary module can have, in the order they are tried.
NATIVE_ALLOCATIONS = ("mrope-blocks", "interleaved")


def pair_streams(rotary: nn.Module, layout: str | None = None) -> torch.Tensor:
    """Which position stream (0=t, 1=h, 2=w) each rotary pair of ``rotary`` reads, [P].

    Read from what the module returns, not from its class name: at a position that is 1 on one
    stream and 0 on the others, exactly the pairs reading that stream get a nonzero sine."""
    base = _original(rotary)
    inv = _inv_freq(base)
    num_pairs = inv.numel()
    layout = layout or pair_layout(base)
    x = torch.zeros(1, dtype=torch.float32, device=inv.device)
    reads = []
    with torch.no_grad():
        for axis in range(3):
            pos = torch.zeros(3, 1, 1, dtype=torch.long, device=inv.device)
            pos[axis] = 1
            _, sin = base(x, pos)
            sin = sin.reshape(-1).float()
            reads.append((sin[0::2] if layout == "adjacent" else sin)[:num_pairs] != 0)
    hits = torch.stack(reads)  # [3, P]
    if not bool((hits.sum(0) == 1).all()):
        raise VniahdError(f"{type(base).__name__} does not give each rotary pair exactly one position stream")
    return hits.int().argmax(0)


def native_allocation(rotary: nn.Module, sections: tuple[int, ...], layout: str | None = None) -> str:
    """The name of the allocation the model's rotary module applies with its ``sections``
    (one of :data:`NATIVE_ALLOCATIONS`), from :func:`pair_streams`."""
    from vniahd.rope.allocations import allocation_axes

    streams = pair_streams(rotary, layout).cpu()
    for name in NATIVE_ALLOCATIONS:
        if torch.equal(allocation_axes(name, streams.numel(), sections).cpu(), streams):
            return name
    raise VniahdError(
        f"{type(_original(rotary)).__name__} reads streams {''.join(axis_names(streams))} with sections "
        f"{sections}, which is none of {', '.join(NATIVE_ALLOCATIONS)}"
    )


def install_allocation(model: nn.Module, axes: torch.Tensor | PairPlan) -> AllocatedRotaryEmbedding:
    """Swap ``model``'s text rotary module for one that uses allocation ``axes`` [P] (or a whole
    :class:`~vniahd.rope.components.PairPlan`).

    Installing twice replaces the previous allocation (the original module is kept inside).
    Returns the installed module. :func:`uninstall_allocation` restores the original.
    """
    owner = _text_model(model)
    module = AllocatedRotaryEmbedding(_rotary_emb(owner), axes)
    if module.per_head:
        enable_per_head_rotary(owner)
    owner.rotary_emb = module
    return module


#: The name under which every supported transformers text attention looks up its rotary function.
APPLY_NAME = "apply_rotary_pos_emb"


def enable_per_head_rotary(text_model: nn.Module) -> None:
    """Let ``text_model``'s attention layers take per-KV-head cos/sin ``[B, G, S, d]``.

    Each supported family's attention calls its module's ``apply_rotary_pos_emb(q, k, cos, sin)``
    with q ``[B, H, S, d]``, k ``[B, G, S, d]`` and cos ``[B, S, d]`` (broadcast over heads).
    The function is wrapped, once per module: 3-D cos goes straight to the original (so every
    other variant is untouched), 4-D cos calls the original once per KV head g on that head's key
    and its query heads ``g·H/G … (g+1)·H/G − 1`` (transformers' ``repeat_kv`` grouping; MHRoPE's
    ``repeat_interleave``). Calling the family's own function keeps its partial rotary (Qwen3.5)
    and adjacent pairs (GLM-4.1V)."""
    import sys

    modules = {type(m).__module__ for m in text_model.modules() if "Attention" in type(m).__name__}
    found = False
    for name in modules:
        module = sys.modules.get(name)
        original = getattr(module, APPLY_NAME, None)
        if module is None or original is None:
            continue
        found = True
        if not getattr(original, "_vniahd_per_head", False):
            setattr(module, APPLY_NAME, _per_head_apply(original))
    if not found:
        raise VniahdError(
            f"{type(text_model).__name__}'s attention has no {APPLY_NAME} function to extend, so a "
            "per-head variant (mhrope) cannot run on it"
        )


def _per_head_apply(original: Any) -> Any:
    def apply(
        q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if cos.dim() != 4:
            plain: tuple[torch.Tensor, torch.Tensor] = original(q, k, cos, sin, *args, **kwargs)
            return plain
        if kwargs.get("unsqueeze_dim", args[0] if args else 1) != 1:
            raise VniahdError("per-head rotary expects heads on dim 1 ([B, heads, S, d], unsqueeze_dim=1)")
        groups = cos.shape[1]
        if k.shape[1] != groups or q.shape[1] % groups:
            raise VniahdError(
                f"per-head rotary: {groups} KV-head tables for {k.shape[1]} key and {q.shape[1]} query heads"
            )
        rep = q.shape[1] // groups
        qs, ks = [], []
        for g in range(groups):
            qg, kg = original(
                q[:, g * rep : (g + 1) * rep], k[:, g : g + 1], cos[:, g], sin[:, g], *args, **kwargs
            )
            qs.append(qg)
            ks.append(kg)
        return torch.cat(qs, dim=1), torch.cat(ks, dim=1)

    apply._vniahd_per_head = True  # type: ignore[attr-defined]
    apply.__wrapped__ = original  # type: ignore[attr-defined]
    return apply


def uninstall_allocation(model: nn.Module) -> nn.Module:
    """Put the model's original rotary module back; returns it (no-op if none was installed)."""
    owner = _text_model(model)
    owner.rotary_emb = _original(_rotary_emb(owner))
    return _rotary_emb(owner)


@contextlib.contextmanager
def allocation_installed(
    model: nn.Module, axes: torch.Tensor | PairPlan
) -> Iterator[AllocatedRotaryEmbedding]:
    """Context manager: ``axes`` installed inside the block, the previous module restored after."""
    owner = _text_model(model)
    previous = owner.rotary_emb
    try:
        yield install_allocation(model, axes)
    finally:
        owner.rotary_emb = previous
