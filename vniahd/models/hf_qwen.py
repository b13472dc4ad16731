"""``hf:PATH``: a checkpoint of a supported family in a local directory (transformers format).

Loads the full model (vision tower + text model + LM head) with transformers, the tokenizer from
the checkpoint's ``tokenizer.json``, and the pixel normalisation from ``preprocessor_config.json``
when present (patch, temporal patch and merge sizes always come from the vision config, which is
what the weights were trained with). Nothing is downloaded.

Qwen3-VL's DeepStack features (intermediate vision features added to early text layers) travel
with the embeddings (:mod:`vniahd.models.qwen3_vl`), for Qwen3-VL-MoE too. GLM-4.1V (``glm4v``) and
GLM-4.5V (``glm4v_moe``) share the Qwen2-VL structure; their partial rotary (adjacent pairs for
GLM-4.1V, NeoX halves for GLM-4.5V) is handled by :mod:`vniahd.rope.hf`. Qwen3.5 (``qwen3_5``) and
Qwen3.5-MoE (``qwen3_5_moe``) run without prefix sharing (:mod:`vniahd.models.qwen3_5`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from vniahd.errors import VniahdError
from vniahd.models.base import BackendOptions
from vniahd.models.patchify import PatchifyConfig
from vniahd.models.qwen_vl import QwenVLBackend
from vniahd.models.tokenizer import load_tokenizer_file

SUPPORTED = {
    "qwen2_vl": "Qwen2VLForConditionalGeneration",
    "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
    "qwen3_vl": "Qwen3VLForConditionalGeneration",
    "qwen3_vl_moe": "Qwen3VLMoeForConditionalGeneration",
    "glm4v": "Glm4vForConditionalGeneration",
    "glm4v_moe": "Glm4vMoeForConditionalGeneration",
    "qwen3_5": "Qwen3_5ForConditionalGeneration",
    "qwen3_5_moe": "Qwen3_5MoeForConditionalGeneration",
}
#: What each supported model type is, for the one-line refusal of any other.
FAMILY_NAMES = {
    "qwen2_vl": "Qwen2-VL",
    "qwen2_5_vl": "Qwen2.5-VL",
    "qwen3_vl": "Qwen3-VL",
    "qwen3_vl_moe": "Qwen3-VL-MoE",
    "glm4v": "GLM-4.1V",
    "glm4v_moe": "GLM-4.5V",
    "qwen3_5": "Qwen3.5",
    "qwen3_5_moe": "Qwen3.5-MoE",
}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")


def read_checkpoint_config(path: Path) -> dict:
    if not path.exists():
        raise VniahdError(f"checkpoint directory {path} does not exist; pass hf:/path/to/Qwen2-VL-checkpoint")
    if not path.is_dir() or not (path / "config.json").is_file():
        raise VniahdError(
            f"{path} is not a transformers checkpoint (no config.json); pass the directory "
            "written by save_pretrained for a Qwen2-VL or Qwen2.5-VL model"
        )
    try:
        cfg = json.loads((path / "config.json").read_text())
    except json.JSONDecodeError as exc:
        raise VniahdError(f"{path / 'config.json'} is not valid JSON ({exc})") from exc
    model_type = cfg.get("model_type")
    if model_type not in SUPPORTED:
        raise VniahdError(
            f"{path} holds a {model_type!r} model, which vniahd does not support; supported model types: "
            + ", ".join(f"{t} ({FAMILY_NAMES[t]})" for t in SUPPORTED)
        )
    return cfg


def checkpoint_fingerprint(path: Path) -> str:
    """Cheap content digest of a checkpoint: config.json bytes plus, for every weight file, its
    name, size and the SHA-256 of its first and last MiB (hashing 16 GB of weights would cost more
    than an evaluation sample; safetensors headers sit at the start of each file)."""
    h = hashlib.sha256((path / "config.json").read_bytes())
    for f in sorted(p for p in path.iterdir() if p.suffix in _WEIGHT_SUFFIXES):
        size = f.stat().st_size
        h.update(f"{f.name}|{size}".encode())
        with open(f, "rb") as fh:
            h.update(fh.read(1 << 20))
            fh.seek(max(0, size - (1 << 20)))
            h.update(fh.read(1 << 20))
    return h.hexdigest()


def create_backend(rest: str, params: dict, options: BackendOptions) -> QwenVLBackend:
    """Factory for ``hf:PATH``."""
    if not rest:
        raise VniahdError("hf: needs a path, e.g. --model hf:/models/Qwen2-VL-7B-Instruct")
    if params:
        raise VniahdError(f"hf:PATH takes no parameters, got {sorted(params)}")
    path = Path(rest).expanduser()
    cfg = read_checkpoint_config(path)
    if not any(p.suffix in _WEIGHT_SUFFIXES for p in path.iterdir()):
        raise VniahdError(
            f"{path} has a config.json but no weight files (*.safetensors); copy the full checkpoint"
        )
    tokenizer = load_tokenizer_file(path)
    device, dtype = options.torch_device(), options.torch_dtype()

    import transformers

    cls = getattr(transformers, SUPPORTED[cfg["model_type"]])
    try:
        model = cls.from_pretrained(str(path), dtype=dtype, attn_implementation="sdpa")
    except (OSError, ValueError) as exc:
        raise VniahdError(f"could not load {path} as {cls.__name__}: {exc}") from exc
    model = model.to(device).eval()

    vision = model.config.vision_config
    pre = {}
    if (path / "preprocessor_config.json").is_file():
        pre = json.loads((path / "preprocessor_config.json").read_text())
    pre.update(
        patch_size=vision.patch_size,
        temporal_patch_size=vision.temporal_patch_size,
        merge_size=vision.spatial_merge_size,
    )
    patch = PatchifyConfig.from_preprocessor_config(pre)
    if cfg["model_type"] in ("glm4v", "glm4v_moe"):
        # GLM's processor budgets min/max pixels over the temporal group (an image is 2 frames)
        import dataclasses

        tp = patch.temporal_patch_size
        patch = dataclasses.replace(
            patch, min_pixels=patch.min_pixels // tp, max_pixels=patch.max_pixels // tp
        )
    layout_params = {}
    if cfg["model_type"] == "qwen2_5_vl":
        layout_params["tokens_per_second"] = int(getattr(vision, "tokens_per_second", 2))
    backend_cls = QwenVLBackend
    if cfg["model_type"] in ("qwen3_5", "qwen3_5_moe"):
        from vniahd.models.qwen3_5 import Qwen35Backend

        backend_cls = Qwen35Backend
    elif cfg["model_type"] in ("qwen3_vl", "qwen3_vl_moe"):
        from vniahd.models.qwen3_vl import Qwen3VLBackend

        backend_cls = Qwen3VLBackend
    return backend_cls(
        spec=f"hf:{rest}",
        model=model,
        tokenizer=tokenizer,
        patch=patch,
        options=options,
        model_fingerprint=lambda: checkpoint_fingerprint(path),
        layout_params=layout_params,
        family=cfg["model_type"],
    )
