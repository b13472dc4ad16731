"""How much device memory ``vniahd attention`` needs for one sample: an upper-bound model.

The analysis runs one forward pass of the prompt and answer (no prefill chunks: every layer's
rotated queries and keys must be seen whole) and pools each layer's attention as the layer runs.
What is alive at the peak, in bytes (``b`` = bytes per weight/activation element of the model's
dtype; S tokens, F frames, H query heads, G KV heads, d head dim, L layers):

- the weights (text and vision, as loaded);
- no KV cache: the pass runs with ``use_cache=False`` (a layer's keys and values live only while
  the layer runs, counted with its captured q and k);
- one layer's activations: the hidden states and the residual ``2 · S · hidden · b`` and the
  MLP's gate and up projections ``2 · S · intermediate · b``;
- the captured rotated q and k of that layer in float32 ``(H + G) · S · d · 4``, the band-weighted
  copy of q and the keys repeated to H heads ``2 · H · S · d · 4``;
- the pooling: the token → frame one-hot ``S · (F + 1) · 8`` and per query chunk of ``c`` rows
  the accumulators ``H · c · (F + 1) · 8`` and logits ``3 · H · c · c · 8`` (float64).
"""

from __future__ import annotations

from typing import Any

from vniahd.evaluation.planning.flops import ModelShape


def attention_memory(
    shape: ModelShape, parameters: int, tokens: int, frames: int, dtype_bytes: int = 2, chunk: int = 256
) -> dict[str, Any]:
    """Bytes per component (module docstring) and their ``total``."""
    s, f, h, g, d = tokens, frames, shape.heads, shape.kv_heads, shape.head_dim
    parts = {
        "weights": parameters * dtype_bytes,
        "layer_activations": (2 * shape.hidden + 2 * shape.intermediate) * s * dtype_bytes,
        "captured_qk": (h + g) * s * d * 4 + 2 * h * s * d * 4,
        "pooling": s * (f + 1) * 8 + h * chunk * (f + 1) * 8 + 3 * h * chunk * chunk * 8,
    }
    return {**parts, "total": sum(parts.values())}
