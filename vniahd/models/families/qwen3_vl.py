"""Qwen3-VL (``qwen3_vl``, ``random:qwen3-vl``): interleaved t/h/w pairs, one-frame grids with a
``<t seconds>`` timestamp before each temporal group, DeepStack features in wide embedding rows
(:mod:`vniahd.models.qwen3_vl`)."""

from __future__ import annotations

from typing import Any

from vniahd.models.families._markup import FRAMES_SOURCE, Markup
from vniahd.models.families._random import QWEN3_PATCH, QWEN3_TOWER_DEFAULTS, text_config, vision_tower
from vniahd.models.families._record import FamilyRecord

#: Qwen3VLProcessor's video markup (Qwen3.5 uses the same processor).
MARKUP = Markup(
    video_start="",
    video_end="",
    frame_before="<{t:.1f} seconds><|vision_start|>",
    frame_after="<|vision_end|>",
    image_before="<|vision_start|>",
    image_after="<|vision_end|>",
    timestamp="mid",
    image_token="<|image_pad|>",
    video_token="<|video_pad|>",
    source="Qwen3VLProcessor as released (transformers 4.57): the chat template's "
    "<|vision_start|><|video_pad|><|vision_end|> becomes, per temporal group, "
    "'<{t:.1f} seconds>' + <|vision_start|> + pads + <|vision_end|>, t = mean time of the group's "
    "first and last frame (_calculate_timestamps); Qwen3.5 uses the same processor",
)


def configs(p: dict, bos: int | None, eos: int | None) -> tuple[dict, dict]:
    """Qwen3-VL's text and vision config fields (the MoE family adds its experts)."""
    pairs = p["hidden"] // p["heads"] // 2
    text = text_config(p, bos, eos)
    text3 = {
        **text,
        "head_dim": 2 * pairs,
        "rope_parameters": {**text["rope_parameters"], "mrope_interleaved": True},
    }
    depth = p["vision_depth"]
    vision3 = {
        **vision_tower(p),
        "num_position_embeddings": 2304 if p["size"] == "7b" else 256,
        # Qwen3-VL-8B taps blocks 8, 16, 24 of 27; a small tower taps up to three of its blocks
        "deepstack_visual_indexes": [8, 16, 24] if depth >= 25 else list(range(min(3, depth))),
    }
    return text3, vision3


def random_config(p: dict, bos: int | None, eos: int | None) -> Any:
    from transformers import Qwen3VLConfig

    text3, vision3 = configs(p, bos, eos)
    return Qwen3VLConfig(text_config=text3, vision_config=vision3)


RECORD = FamilyRecord(
    model_type="qwen3_vl",
    name="Qwen3-VL",
    layout="mrope-frames",
    source=FRAMES_SOURCE.format(name="Qwen3VLModel"),
    markup=MARKUP,
    transformers_class="Qwen3VLForConditionalGeneration",
    backend="vniahd.models.qwen3_vl:Qwen3VLBackend",
    native_allocation="interleaved",
    random_alias="qwen3-vl",
    random_config=random_config,
    # 4 KV heads (the real 2B-8B checkpoints have 8): one per MHRoPE stream, so
    # `random:qwen3-vl --variant mhrope` runs with its default head split
    random_defaults={**QWEN3_TOWER_DEFAULTS, "kv_heads": 4},
    random_patch=QWEN3_PATCH,
)
