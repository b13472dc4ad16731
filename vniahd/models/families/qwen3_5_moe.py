"""Qwen3.5-MoE (``qwen3_5_moe``, ``random:qwen3.5-moe``): Qwen3.5 with routed experts plus one
shared expert in every layer."""

from __future__ import annotations

import dataclasses
from typing import Any

from vniahd.models.families._markup import FRAMES_SOURCE
from vniahd.models.families.qwen3_5 import RECORD as QWEN3_5
from vniahd.models.families.qwen3_5 import configs


def random_config(p: dict, bos: int | None, eos: int | None) -> Any:
    from transformers import Qwen3_5MoeConfig

    text35, vision35 = configs(p, bos, eos)
    text35.update(
        num_experts=p["experts"],
        num_experts_per_tok=p["experts_active"],
        moe_intermediate_size=p["intermediate"] // p["experts_active"],
        shared_expert_intermediate_size=p["intermediate"] // p["experts_active"],
    )
    return Qwen3_5MoeConfig(text_config=text35, vision_config=vision35)


RECORD = dataclasses.replace(
    QWEN3_5,
    model_type="qwen3_5_moe",
    name="Qwen3.5-MoE",
    source=FRAMES_SOURCE.format(name="Qwen3_5MoeModel"),
    transformers_class="Qwen3_5MoeForConditionalGeneration",
    random_alias="qwen3.5-moe",
    random_config=random_config,
)
