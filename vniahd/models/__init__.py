"""Model backends behind one interface (:class:`Backend`), named by spec strings.

- ``hf:PATH`` — a local checkpoint of a supported family (one record per family in
  :mod:`.families`: Qwen2-VL, Qwen2.5-VL, Qwen3-VL(-MoE), Qwen3.5(-MoE), GLM-4.1V, GLM-4.5V;
  :mod:`.hf_qwen`, Qwen3-VL's DeepStack: :mod:`.qwen3_vl`), optionally spread over devices
  (:mod:`.device_map`);
- ``random:FAMILY`` — random weights of the same families from a config in code, sizes set by
  ``?key=value`` parameters, ``size=7b`` for 7B shapes (:mod:`.random_qwen`);
- ``tiny`` — the embedded default (``vniahd.models.tiny.backend``).

``get_backend(spec, device=, dtype=, frame_mode=, device_map=)`` loads one; ``register_backend``
adds a prefix.
"""

from vniahd.models.base import (
    FRAME_MODES,
    Backend,
    BackendOptions,
    RotaryConfig,
    module_weights_digest,
    module_weights_hash,
    resolve_device,
    resolve_dtype,
)
from vniahd.models.registry import BACKENDS, get_backend, parse_spec, register_backend

__all__ = [
    "BACKENDS",
    "FRAME_MODES",
    "Backend",
    "BackendOptions",
    "RotaryConfig",
    "get_backend",
    "module_weights_digest",
    "module_weights_hash",
    "parse_spec",
    "register_backend",
    "resolve_device",
    "resolve_dtype",
]
