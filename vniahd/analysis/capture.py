"""Catch each attention layer's rotated queries and keys during one forward pass.

Every supported family's text attention rotates q and k with its module-level
``apply_rotary_pos_emb`` (the function :mod:`vniahd.rope.hf` extends for per-head plans), so
wrapping it sees exactly the vectors whose dot products the layer's softmax takes — with the
variant's plan applied, partial rotary and adjacent pairs as the family does them. A forward
pre-hook on each attention module says which layer is calling; layers without rotary (Qwen3.5's
linear-attention layers) never call it and are absent from the capture.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from vniahd.errors import VniahdError
from vniahd.rope.hf import APPLY_NAME


@dataclass
class LayerCapture:
    """One layer's rotated queries ``q`` [H, S, D] and keys ``k`` [G, S, D] (batch row 0, float32,
    on the model's device) and its softmax scaling."""

    layer: int
    q: torch.Tensor
    k: torch.Tensor
    scaling: float


@dataclass
class Capture:
    layers: list[LayerCapture] = field(default_factory=list)


@contextlib.contextmanager
def rotated_qk(
    text_model: nn.Module, on_layer: Callable[[LayerCapture], None] | None = None
) -> Iterator[Capture]:
    """Inside the block every forward of ``text_model`` hands each layer's rotated q and k to
    ``on_layer`` as soon as the layer computes them (so a long sample never holds all layers at
    once), or, without ``on_layer``, appends them to the yielded :class:`Capture`."""
    capture = Capture()
    attention = _decoder_attention(text_model)
    if not attention:
        raise VniahdError(f"{type(text_model).__name__} has no attention layers vniahd can read")
    current: dict[str, Any] = {"layer": None, "scaling": None}
    hooks = []
    for index, attn in attention:

        def pre_hook(mod: nn.Module, args: Any, index: int = index) -> None:
            current["layer"] = index
            head_dim = getattr(mod, "head_dim", None)
            current["scaling"] = float(getattr(mod, "scaling", head_dim**-0.5 if head_dim else 1.0))

        hooks.append(attn.register_forward_pre_hook(pre_hook))
    patched = {}
    for name in {type(m).__module__ for _, m in attention}:
        py_module = sys.modules[name]
        original = getattr(py_module, APPLY_NAME, None)
        if original is None:
            continue

        def apply(
            q: torch.Tensor,
            k: torch.Tensor,
            cos: torch.Tensor,
            sin: torch.Tensor,
            *a: Any,
            _o: Any = original,
            **kw: Any,
        ) -> Any:
            q2, k2 = _o(q, k, cos, sin, *a, **kw)
            if current["layer"] is not None:
                # kept on the model's device: the pooling runs where the model does
                caught = LayerCapture(
                    current["layer"],
                    q2[0].detach().float(),
                    k2[0].detach().float(),
                    current["scaling"],
                )
                if on_layer is None:
                    capture.layers.append(caught)
                else:
                    on_layer(caught)
            return q2, k2

        patched[name] = original
        setattr(py_module, APPLY_NAME, apply)
    try:
        yield capture
    finally:
        for name, original in patched.items():
            setattr(sys.modules[name], APPLY_NAME, original)
        for h in hooks:
            h.remove()


def _decoder_attention(text_model: nn.Module) -> list[tuple[int, nn.Module]]:
    """(layer index, self-attention module) of every decoder layer that has one, in layer order."""
    layers = getattr(text_model, "layers", None)
    if layers is None:
        raise VniahdError(f"{type(text_model).__name__} has no .layers")
    return [
        (i, layer.self_attn)
        for i, layer in enumerate(layers)
        if isinstance(getattr(layer, "self_attn", None), nn.Module)
    ]
