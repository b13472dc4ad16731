"""GLM-4.1V (``glm4v``, ``random:glm-4.1v``): Qwen2-VL's structure; half of each head rotates
(partial rotary 0.5) in adjacent channel pairs, M-RoPE blocks (8, 12, 12) of its 32 rotary pairs;
one-frame grids, each followed by the integer seconds of its first frame."""

from __future__ import annotations

from typing import Any

from vniahd.models.families._markup import FRAMES_SOURCE, Markup
from vniahd.models.families._random import text_config, vision_tower
from vniahd.models.families._record import FamilyRecord

#: GLM-4.1V's chat template and Glm4vProcessor (GLM-4.5V uses the same).
MARKUP = Markup(
    video_start="<|begin_of_video|>",
    video_end="<|end_of_video|>",
    frame_before="<|begin_of_image|>",
    frame_after="<|end_of_image|>{t_int}",
    image_before="<|begin_of_image|>",
    image_after="<|end_of_image|>",
    timestamp="first",
    image_token="<|image|>",
    video_token="<|image|>",
    source="GLM-4.1V chat template (<|begin_of_video|><|video|><|end_of_video|>) and Glm4vProcessor: "
    "per temporal group <|begin_of_image|> + <|image|> pads + <|end_of_image|> + int(seconds of "
    "the group's first frame) (replace_frame_token_id, metadata.timestamps[::2])",
)
#: GLM's processor budgets pixels over the 2 repeated frames of an image: half per frame.
PATCH = {"min_pixels": 112 * 112 // 2, "max_pixels": 28 * 28 * 15000 // 2}


def configs(p: dict, bos: int | None, eos: int | None) -> tuple[dict, dict]:
    """GLM's text (partial rotary 0.5) and vision config fields (GLM-4.5V adds its experts)."""
    text = text_config(p, bos, eos)
    text_glm = {**text, "rope_parameters": {**text["rope_parameters"], "partial_rotary_factor": 0.5}}
    vision_glm = {**vision_tower(p), "image_size": 336 if p["size"] == "7b" else 112}
    return text_glm, vision_glm


def random_config(p: dict, bos: int | None, eos: int | None) -> Any:
    from transformers import Glm4vConfig

    text_glm, vision_glm = configs(p, bos, eos)
    return Glm4vConfig(text_config=text_glm, vision_config=vision_glm)


RECORD = FamilyRecord(
    model_type="glm4v",
    name="GLM-4.1V",
    layout="mrope-frames",
    source=FRAMES_SOURCE.format(name="Glm4vModel (as released, transformers 4.53)"),
    markup=MARKUP,
    transformers_class="Glm4vForConditionalGeneration",
    pair_layout="adjacent",
    rotary_fraction=0.5,
    random_alias="glm-4.1v",
    random_config=random_config,
    random_patch=PATCH,
    pixel_budget_per_frame=True,
)
