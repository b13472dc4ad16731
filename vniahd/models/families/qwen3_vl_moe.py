"""Qwen3-VL-MoE (``qwen3_vl_moe``, ``random:qwen3-vl-moe``): Qwen3-VL with a few small experts in
every text layer (Qwen3-VL-30B-A3B's design)."""

from __future__ import annotations

import dataclasses
from typing import Any

from vniahd.models.families._markup import FRAMES_SOURCE
from vniahd.models.families.qwen3_vl import RECORD as QWEN3_VL
from vniahd.models.families.qwen3_vl import configs


def random_config(p: dict, bos: int | None, eos: int | None) -> Any:
    from transformers import Qwen3VLMoeConfig

    text3, vision3 = configs(p, bos, eos)
    text3.update(
        num_experts=p["experts"],
        num_experts_per_tok=p["experts_active"],
        moe_intermediate_size=p["intermediate"] // p["experts_active"],
        decoder_sparse_step=1,
    )
    return Qwen3VLMoeConfig(text_config=text3, vision_config=vision3)


RECORD = dataclasses.replace(
    QWEN3_VL,
    model_type="qwen3_vl_moe",
    name="Qwen3-VL-MoE",
    source=FRAMES_SOURCE.format(name="Qwen3VLMoeModel"),
    transformers_class="Qwen3VLMoeForConditionalGeneration",
    random_alias="qwen3-vl-moe",
    random_config=random_config,
)
