"""``hf:PATH``: a checkpoint of a supported family in a local directory (transformers format).

Loads the full model (vision tower + text model + LM head) with transformers, the tokenizer from
the checkpoint's ``tokenizer.json``, and the pixel normalisation from ``preprocessor_config.json``
when present (patch, temporal patch and merge sizes always come from the vision config, which is
what the weights were trained with). Nothing is downloaded.

The checkpoint's ``model_type`` picks its family's record (:mod:`vniahd.models.families`): the
transformers class, the backend adapter and whatever else differs between families. This loader
names no family.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from vniahd.errors import VniahdError
from vniahd.models import families
from vniahd.models.base import BackendOptions
from vniahd.models.patchify import PatchifyConfig
from vniahd.models.qwen_vl import QwenVLBackend
from vniahd.models.tokenizer import load_tokenizer_file

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")


def read_checkpoint_config(path: Path) -> dict:
    if not path.exists():
        raise VniahdError(f"checkpoint directory {path} does not exist; pass hf:/path/to/checkpoint")
    if not path.is_dir() or not (path / "config.json").is_file():
        raise VniahdError(
            f"{path} is not a transformers checkpoint (no config.json); pass the directory "
            "written by save_pretrained for a model of a supported family"
        )
    try:
        cfg = json.loads((path / "config.json").read_text())
    except json.JSONDecodeError as exc:
        raise VniahdError(f"{path / 'config.json'} is not valid JSON ({exc})") from exc
    model_type = cfg.get("model_type")
    if families.by_model_type(model_type) is None:
        raise VniahdError(
            f"{path} holds a {model_type!r} model, which vniahd does not support; supported model types: "
            + ", ".join(f"{r.model_type} ({r.name})" for r in families.FAMILIES.values())
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
    record = families.by_model_type(cfg["model_type"])
    assert record is not None  # read_checkpoint_config refused any other
    cls: Any = record.model_class()
    model: Any
    placed: dict | None = None
    if options.device_map is None:
        device, dtype = options.torch_device(), options.torch_dtype()
        model = _from_pretrained(cls, path, dtype=dtype)
        model = model.to(device).eval()
    else:
        model, options, placed = _load_with_device_map(cls, path, options)

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
    if record.pixel_budget_per_frame:
        # its processor budgets min/max pixels over the temporal group (an image is 2 frames)
        import dataclasses

        tp = patch.temporal_patch_size
        patch = dataclasses.replace(
            patch, min_pixels=patch.min_pixels // tp, max_pixels=patch.max_pixels // tp
        )
    layout_params = {k: int(getattr(vision, k, d)) for k, d in record.vision_layout_params.items()}
    backend: QwenVLBackend = record.build_backend(
        spec=f"hf:{rest}",
        model=model,
        tokenizer=tokenizer,
        patch=patch,
        options=options,
        model_fingerprint=lambda: checkpoint_fingerprint(path),
        layout_params=layout_params,
        family=cfg["model_type"],
    )
    backend.placement = placed
    return backend


def _from_pretrained(cls: Any, path: Path, **kwargs: object) -> Any:
    try:
        model = cls.from_pretrained(str(path), attn_implementation="sdpa", **kwargs)
    except (OSError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise VniahdError(f"could not load {path} as {cls.__name__}: {first}") from exc
    return model


def _load_with_device_map(cls: Any, path: Path, options: BackendOptions) -> tuple[Any, BackendOptions, dict]:
    """``from_pretrained(device_map=…)`` (:mod:`vniahd.models.device_map`); the options come back
    with ``device`` = where inputs go (``embed_tokens``) and the dtype resolved for the GPUs used.
    Hidden states and logits are moved back to that device, so the evaluator sees one device."""
    import dataclasses

    from vniahd.models import device_map as dm
    from vniahd.models.base import resolve_dtype

    assert options.device_map is not None
    requested = dm.parse_device_map(options.device_map)
    gpus = dm.rank_gpus(torch.cuda.device_count()) if torch.cuda.is_available() else []
    device_map, max_memory = dm.placement(requested, gpus)
    explicit = device_map.values() if isinstance(device_map, dict) else [0]
    on_gpu = bool(gpus) and any(isinstance(d, int) for d in explicit)
    dtype = resolve_dtype(options.dtype, torch.device(f"cuda:{gpus[0]}" if on_gpu else "cpu"))
    kwargs: dict[str, object] = {"dtype": dtype, "device_map": device_map}
    if max_memory is not None:
        kwargs["max_memory"] = max_memory
    if isinstance(requested, dict):  # names checked on a weightless skeleton, before loading GBs
        with torch.device("meta"):
            skeleton = cls._from_config(cls.config_class.from_pretrained(str(path)))
        dm.check_module_names(skeleton, requested)
    model = _from_pretrained(cls, path, **kwargs).eval()
    inputs = dm.input_device(model)
    if inputs == "meta":
        raise VniahdError(
            "--device-map left the embeddings offloaded (not enough GPU and CPU memory for the model); "
            "free memory or give an explicit map"
        )
    target = torch.device(inputs)
    inner: Any = model
    for module in (inner.model.language_model, inner.lm_head):
        module.register_forward_hook(_output_to(target))
    names = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}
    options = dataclasses.replace(options, device=inputs, dtype=names[dtype])
    return model, options, dm.placement_record(model, requested)


def _output_to(device: torch.device) -> Callable[..., Any]:
    """A forward hook moving a module's output (a tensor, or ``last_hidden_state``) to ``device``:
    the last layer or the LM head may sit on another GPU than the inputs."""

    def hook(module: torch.nn.Module, args: Any, output: Any) -> Any:
        if isinstance(output, torch.Tensor):
            return output.to(device)
        if getattr(output, "last_hidden_state", None) is not None:
            output.last_hidden_state = output.last_hidden_state.to(device)
        return output

    return hook
