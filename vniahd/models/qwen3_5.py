"""The Qwen3.5 family adapter: hybrid text layers whose recurrent state cannot be cropped back.

Qwen3.5's text model mixes Gated DeltaNet (linear attention) layers — three of every four — with
full-attention layers. A linear-attention layer keeps a recurrent state, not per-token keys and
values, so its cache cannot be cropped back to a shorter prefix (transformers'
``LinearAttentionLayer`` refuses). vniahd therefore scores this family without prefix sharing:
each sample runs from an empty cache (run.json's ``evaluation`` says so and why), chunked prefill
and right-padded batches still apply (the recurrence is causal, padding comes last), and a
multi-token answer option is scored on a copy of the prompt's cache. Everything else — the vision
tower (no DeepStack), the interleaved t/h/w rotary with partial rotary width — is the Qwen2-VL
family's path (:class:`~vniahd.models.qwen_vl.QwenVLBackend`).
"""

from __future__ import annotations

from vniahd.models.qwen_vl import QwenVLBackend


class Qwen35Backend(QwenVLBackend):
    """A loaded ``Qwen3_5ForConditionalGeneration`` (see the module docstring)."""

    can_crop_cache = False
    cache_note = (
        "Qwen3.5's linear-attention layers keep a recurrent state that cannot be cropped back to a "
        "shared prefix, so every sample runs from an empty cache"
    )
