"""Qwen3.5 (``qwen3_5``, ``random:qwen3.5``): hybrid text layers — three Gated DeltaNet (linear
attention) layers in every four — with a quarter of each head rotating in interleaved t/h/w pairs;
Qwen3-VL's processor and markup, no DeepStack.

A linear-attention layer keeps a recurrent state, not per-token keys and values, so its cache cannot
be cropped back to a shorter prefix (transformers' ``LinearAttentionLayer`` refuses): vniahd scores
this family without prefix sharing (``can_crop_cache = False``; run.json's ``evaluation`` says so
and why). Chunked prefill and right-padded batches still apply (the recurrence is causal, padding
comes last), and a multi-token answer option is scored on a copy of the prompt's cache.
"""

from __future__ import annotations

from typing import Any

from vniahd.models.families._markup import FRAMES_SOURCE
from vniahd.models.families._random import QWEN3_PATCH, QWEN3_TOWER_DEFAULTS, text_config, vision_tower
from vniahd.models.families._record import FamilyRecord
from vniahd.models.families.qwen3_vl import MARKUP


def configs(p: dict, bos: int | None, eos: int | None) -> tuple[dict, dict]:
    """Qwen3.5's text and vision config fields (the MoE family adds its experts)."""
    head = p["hidden"] // p["heads"]
    text = text_config(p, bos, eos)
    text35 = {
        **text,
        "head_dim": head,
        "rope_parameters": {
            **text["rope_parameters"],
            "mrope_interleaved": True,
            "partial_rotary_factor": 0.25,
        },
        # three Gated DeltaNet layers, then one full-attention layer (Qwen3.5's pattern)
        "layer_types": ["full_attention" if i % 4 == 3 else "linear_attention" for i in range(p["layers"])],
        "linear_key_head_dim": head,
        "linear_value_head_dim": head,
        "linear_num_key_heads": p["kv_heads"],
        "linear_num_value_heads": p["heads"],
    }
    vision35 = {**vision_tower(p), "num_position_embeddings": 2304 if p["size"] == "7b" else 256}
    return text35, vision35


def random_config(p: dict, bos: int | None, eos: int | None) -> Any:
    from transformers import Qwen3_5Config

    text35, vision35 = configs(p, bos, eos)
    return Qwen3_5Config(text_config=text35, vision_config=vision35)


RECORD = FamilyRecord(
    model_type="qwen3_5",
    name="Qwen3.5",
    layout="mrope-frames",
    source=FRAMES_SOURCE.format(name="Qwen3_5Model"),
    markup=MARKUP,
    transformers_class="Qwen3_5ForConditionalGeneration",
    native_allocation="interleaved",
    rotary_fraction=0.25,
    random_alias="qwen3.5",
    random_config=random_config,
    # 4 layers: one full-attention layer after three recurrent ones
    random_defaults={**QWEN3_TOWER_DEFAULTS, "layers": 4, "hidden": 128},
    random_patch=QWEN3_PATCH,
    can_crop_cache=False,
    cache_note="Qwen3.5's linear-attention layers keep a recurrent state that cannot be cropped back to a "
    "shared prefix, so every sample runs from an empty cache",
)
