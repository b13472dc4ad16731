"""GLM-4.5V (``glm4v_moe``, ``random:glm-4.5v``): GLM-4.1V's layout and markup, its half-head
rotary in NeoX halves, a dense first layer, then routed and one shared expert."""

from __future__ import annotations

import dataclasses
from typing import Any

from vniahd.models.families._markup import FRAMES_SOURCE
from vniahd.models.families.glm4v import RECORD as GLM4V
from vniahd.models.families.glm4v import configs


def random_config(p: dict, bos: int | None, eos: int | None) -> Any:
    from transformers import Glm4vMoeConfig

    text_glm, vision_glm = configs(p, bos, eos)
    text_glm.update(
        head_dim=p["hidden"] // p["heads"],
        n_routed_experts=p["experts"],
        num_experts_per_tok=p["experts_active"],
        n_shared_experts=1,
        moe_intermediate_size=p["intermediate"] // p["experts_active"],
        first_k_dense_replace=1,
        n_group=1,
        topk_group=1,
    )
    return Glm4vMoeConfig(text_config=text_glm, vision_config=vision_glm)


RECORD = dataclasses.replace(
    GLM4V,
    model_type="glm4v_moe",
    name="GLM-4.5V",
    source=FRAMES_SOURCE.format(name="Glm4vMoeModel"),
    transformers_class="Glm4vMoeForConditionalGeneration",
    pair_layout="neox",
    random_alias="glm-4.5v",
    random_config=random_config,
)
