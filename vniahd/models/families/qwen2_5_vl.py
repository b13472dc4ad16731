"""Qwen2.5-VL (``qwen2_5_vl``, ``random:qwen2.5-vl``): Qwen2-VL's markup and blocks, with a timed
temporal index (``mrope-timed``: ``tokens_per_second`` from the vision config) and a windowed
vision tower."""

from __future__ import annotations

from typing import Any

from vniahd.models.families._random import text_config
from vniahd.models.families._record import FamilyRecord
from vniahd.models.families.qwen2_vl import MARKUP


def random_config(p: dict, bos: int | None, eos: int | None) -> Any:
    from transformers import Qwen2_5_VLConfig

    depth = p["vision_depth"]
    vision = dict(
        depth=depth,
        hidden_size=p["vision_dim"],
        out_hidden_size=p["hidden"],
        intermediate_size=p["vision_dim"] * 8 // 3 if p["size"] == "tiny" else 3420,
        num_heads=p["vision_heads"],
        patch_size=p["patch"],
        spatial_merge_size=2,
        temporal_patch_size=2,
        window_size=p["patch"] * 8,
        tokens_per_second=2,
        fullatt_block_indexes=[i for i in range(depth) if i % 8 == 7] or [depth - 1],
    )
    return Qwen2_5_VLConfig(text_config=text_config(p, bos, eos), vision_config=vision)


RECORD = FamilyRecord(
    model_type="qwen2_5_vl",
    name="Qwen2.5-VL",
    layout="mrope-timed",
    source="Qwen2.5-VL (arXiv 2502.13923) §2.1; Qwen2_5_VLForConditionalGeneration.get_rope_index as "
    "released (transformers 4.49): temporal index int(f · second_per_grid_t · "
    "tokens_per_second), the text after a video at the largest position + 1 (transformers 5.x: "
    "S0 + max(H, W); docs/footguns.md)",
    markup=MARKUP,
    transformers_class="Qwen2_5_VLForConditionalGeneration",
    random_alias="qwen2.5-vl",
    random_config=random_config,
    random_7b_sections=True,
    vision_layout_params={"tokens_per_second": 2},
)
