"""Tiny checkpoints on disk: a random model saved with ``save_pretrained`` and reloaded through
``hf:PATH`` (imported by the model, export and device-map tests)."""

from __future__ import annotations

import json
from pathlib import Path

#: One random spec per supported family (the spec's sizes keep each model tiny and fast).
FAMILY_SPECS = {
    "qwen2_vl": "random:qwen2-vl",
    "qwen2_5_vl": "random:qwen2.5-vl?hidden=64&heads=2",
    "qwen3_vl": "random:qwen3-vl",
    "qwen3_vl_moe": "random:qwen3-vl-moe",
    "glm4v": "random:glm-4.1v?heads=2",
    "glm4v_moe": "random:glm-4.5v?heads=2",
    "qwen3_5": "random:qwen3.5",
    "qwen3_5_moe": "random:qwen3.5-moe",
}


def save_checkpoint(random_be, path: Path, preprocessor: dict | None = None) -> Path:
    """``save_pretrained`` a random model (vision tower included) with its tokenizer and a
    ``preprocessor_config.json`` (by default its pixel normalisation and budget)."""
    path.mkdir(parents=True, exist_ok=True)
    random_be.model.save_pretrained(path)
    random_be.tokenizer.tokenizer.save(str(path / "tokenizer.json"))
    pc = random_be.patch
    pre = preprocessor or {
        "image_mean": list(pc.image_mean),
        "image_std": list(pc.image_std),
        "min_pixels": pc.min_pixels,
        "max_pixels": pc.max_pixels,
    }
    (path / "preprocessor_config.json").write_text(json.dumps(pre))
    return path


def save_and_reload(random_be, path: Path, preprocessor: dict | None = None, **options):
    """:func:`save_checkpoint`, then load the directory through ``hf:PATH`` in float32."""
    from vniahd.models import get_backend

    save_checkpoint(random_be, path, preprocessor)
    return get_backend(f"hf:{path}", dtype="float32", **options)
