"""Pieces of the transformers configs that every ``random:`` family builds on (torch-free).

A family's ``random_config(p, bos, eos)`` (its record) starts from :func:`text_config` and
:func:`vision_tower` and adds what is its own; ``p`` are the parameters resolved by
:func:`vniahd.models.random_qwen.resolve_params`.
"""

from __future__ import annotations

from typing import Any


def rope_parameters(p: dict) -> dict[str, Any]:
    return {"rope_type": "default", "rope_theta": p["theta"], "mrope_section": list(p["sections"])}


def text_config(p: dict, bos: int | None, eos: int | None) -> dict[str, Any]:
    """The text model's config fields shared by every family."""
    return dict(
        vocab_size=p["vocab"],
        hidden_size=p["hidden"],
        intermediate_size=p["intermediate"],
        num_hidden_layers=p["layers"],
        num_attention_heads=p["heads"],
        num_key_value_heads=p["kv_heads"],
        max_position_embeddings=1 << 20,
        rope_parameters=rope_parameters(p),
        bos_token_id=bos,
        eos_token_id=eos,
    )


def vision_tower(p: dict) -> dict[str, Any]:
    """The vision tower of the Qwen3-VL / GLM-4.1V shape: merged tokens projected to the text width."""
    return dict(
        depth=p["vision_depth"],
        hidden_size=p["vision_dim"],
        intermediate_size=p["vision_dim"] * 2,
        num_heads=p["vision_heads"],
        patch_size=p["patch"],
        spatial_merge_size=2,
        temporal_patch_size=2,
        out_hidden_size=p["hidden"],
    )


def block_sections(pairs: int) -> tuple[int, int, int]:
    """Qwen2-VL's proportions 16:24:24 of 64 pairs (GLM-4.1V's 8:12:12 of 32), at least one t pair."""
    t = max(1, pairs // 4)
    h = (pairs - t) // 2
    return (t, h, pairs - t - h)


#: ``random:`` parameters of the Qwen3-VL-shaped towers: 16-pixel patches, two blocks.
QWEN3_TOWER_DEFAULTS = {"patch": 16, "vision_depth": 2}
#: Their processor: mean = std = 0.5 and a 64×64 minimum.
QWEN3_PATCH = {"min_pixels": 64 * 64, "image_mean": (0.5, 0.5, 0.5), "image_std": (0.5, 0.5, 0.5)}
