"""Qwen2-VL (``qwen2_vl``, ``random:qwen2-vl``): M-RoPE in t/h/w blocks, the video wrapped once in
vision markers. The reference family of the benchmark."""

from __future__ import annotations

from typing import Any

from vniahd.models.families._markup import Markup
from vniahd.models.families._random import text_config
from vniahd.models.families._record import FamilyRecord

#: Qwen2-VL's and Qwen2.5-VL's chat template.
MARKUP = Markup(
    video_start="<|vision_start|>",
    video_end="<|vision_end|>",
    frame_before="",
    frame_after="",
    image_before="<|vision_start|>",
    image_after="<|vision_end|>",
    timestamp="",
    image_token="<|image_pad|>",
    video_token="<|video_pad|>",
    source="Qwen2-VL / Qwen2.5-VL chat template: a video is <|vision_start|><|video_pad|><|vision_end|> "
    "(an image <|vision_start|><|image_pad|><|vision_end|>); the processor repeats the pad once per "
    "merged visual token",
)


def random_config(p: dict, bos: int | None, eos: int | None) -> Any:
    from transformers import Qwen2VLConfig

    vision = dict(
        depth=p["vision_depth"],
        embed_dim=p["vision_dim"],
        hidden_size=p["hidden"],
        num_heads=p["vision_heads"],
        patch_size=p["patch"],
        spatial_merge_size=2,
        temporal_patch_size=2,
        mlp_ratio=4,
    )
    return Qwen2VLConfig(text_config=text_config(p, bos, eos), vision_config=vision)


RECORD = FamilyRecord(
    model_type="qwen2_vl",
    name="Qwen2-VL",
    layout="mrope",
    source="Qwen2-VL (arXiv 2409.12191) §2.1; Qwen2VLForConditionalGeneration.get_rope_index as "
    "released (transformers 4.45): the text after a video starts at the largest position + 1 "
    "= S0 + max(T, H, W) (transformers 5.x starts it at S0 + max(H, W); docs/footguns.md)",
    markup=MARKUP,
    transformers_class="Qwen2VLForConditionalGeneration",
    random_alias="qwen2-vl",
    random_config=random_config,
    random_7b_sections=True,
)
