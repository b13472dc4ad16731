"""``--device-map``: one checkpoint spread over the GPUs of one machine (transformers + accelerate).

A device map is what ``from_pretrained(device_map=…)`` takes: a placement strategy (``auto``,
``balanced``, ``balanced_low_0``, ``sequential``; accelerate fills the GPUs, then the CPU) or an
explicit map from module name (``model.language_model.layers.12``, ``lm_head``, ``""`` for the
whole model) to a device (a GPU index, ``"cuda:N"`` or ``"cpu"``), given as a JSON file or inline
JSON. The user's string is parsed here (:func:`parse_device_map`), the placement is done by
transformers, and the backend then sends its inputs (embeddings, position ids, masks) to the device
of ``embed_tokens``; accelerate's hooks move hidden states from layer to layer, and the evaluator's
results come back to the CPU as on one device.

Under ``torchrun`` a rank may own several GPUs: with ``LOCAL_WORLD_SIZE`` ranks on a machine of G
visible GPUs, local rank r owns GPUs ``r·n … r·n + n − 1`` (n = G / LOCAL_WORLD_SIZE). A strategy
then places the model on those GPUs only (accelerate's ``max_memory``), and the GPU indices of an
explicit map count within them (``0`` = the rank's first GPU).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vniahd.errors import VniahdError

#: What accelerate computes a placement for (``from_pretrained(device_map=NAME)``).
STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")

_HELP = (
    "use auto, balanced, balanced_low_0, sequential, a JSON file or inline JSON mapping module "
    'names to devices, e.g. {"model.visual": 0, "model.language_model": 1, "lm_head": 1}'
)


def parse_device_map(spec: str) -> str | dict[str, int | str]:
    """A strategy name, or the explicit map of a JSON file / inline JSON object with its devices
    normalised (``"cuda:N"`` and ``N`` → ``N``, ``"cuda"`` → ``0``, ``"cpu"``)."""
    text = str(spec).strip()
    if text in STRATEGIES:
        return text
    if text.startswith("{"):
        source = "inline JSON"
    else:
        path = Path(text).expanduser()
        if not path.is_file():
            raise VniahdError(f"--device-map {spec!r} is neither a strategy nor a JSON file; {_HELP}")
        source, text = str(path), path.read_text()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise VniahdError(f"--device-map {source} is not valid JSON ({exc}); {_HELP}") from None
    if not isinstance(raw, dict) or not raw:
        raise VniahdError(f"--device-map {source} must be a non-empty JSON object; {_HELP}")
    return {str(name): _device(name, value) for name, value in raw.items()}


def _device(name: str, value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        v = value.strip().lower()
        if v == "cpu":
            return "cpu"
        if v == "cuda":
            return 0
        if v.startswith("cuda:") and v[5:].isdigit():
            return int(v[5:])
        if v.isdigit():
            return int(v)
    raise VniahdError(
        f'--device-map entry {name!r}: {value!r} is not a device; use a GPU index, "cuda:N" or '
        '"cpu" (disk offload is not supported)'
    )


def rank_gpus(device_count: int, env: Mapping[str, str] | None = None) -> list[int]:
    """The GPUs this process owns: all visible ones, or under torchrun (``LOCAL_WORLD_SIZE`` > 1)
    local rank r's equal share ``[r·n, r·n + n)``."""
    env = os.environ if env is None else env
    try:
        local_world = int(env.get("LOCAL_WORLD_SIZE", "1"))
        local_rank = int(env.get("LOCAL_RANK", "0"))
    except ValueError:
        raise VniahdError("LOCAL_RANK / LOCAL_WORLD_SIZE must be integers (set by torchrun)") from None
    if local_world <= 1:
        return list(range(device_count))
    per_rank = device_count // local_world
    if per_rank < 1:
        raise VniahdError(
            f"--device-map under torchrun: {local_world} ranks on this machine but {device_count} "
            "visible GPU(s); launch at most one rank per GPU (--nproc-per-node)"
        )
    return list(range(local_rank * per_rank, (local_rank + 1) * per_rank))


def placement(
    device_map: str | dict[str, int | str], gpus: list[int]
) -> tuple[str | dict[str, int | str], dict[int | str, int] | None]:
    """``(device_map, max_memory)`` for ``from_pretrained`` on the process's ``gpus``: a
    strategy restricted to them (``max_memory`` lists only those GPUs; ``None`` when the
    process owns every visible GPU), or the explicit map with rank-relative GPU indices made
    absolute. An explicit GPU index beyond the process's GPUs is a user error."""
    if isinstance(device_map, str):
        import torch

        if not gpus or len(gpus) == torch.cuda.device_count():
            return device_map, None
        # the rank's GPUs only: no CPU entry, since ranks sharing the host's memory would overcommit it
        memory: dict[int | str, int] = {g: int(torch.cuda.mem_get_info(g)[0]) for g in gpus}
        return device_map, memory
    placed: dict[str, int | str] = {}
    for name, dev in device_map.items():
        if isinstance(dev, int):
            if dev >= len(gpus):
                have = f"GPUs {gpus}" if gpus else "no CUDA GPU"
                raise VniahdError(
                    f"--device-map entry {name!r} asks for GPU {dev}, but this process has {have}; "
                    'use "cpu" or a GPU index below ' + str(len(gpus))
                )
            dev = gpus[dev]
        placed[name] = dev
    return placed, None


def check_module_names(model: Any, device_map: str | dict[str, int | str]) -> None:
    """Every name of an explicit map is a module of ``model`` (transformers ignores extra names;
    a typo would silently place nothing)."""
    if isinstance(device_map, str):
        return
    names = {name for name, _ in model.named_modules()}
    unknown = [n for n in device_map if n not in names]
    if unknown:
        layers = sorted(n for n in names if n.endswith(".layers.0"))
        raise VniahdError(
            f"--device-map names {unknown[0]!r}, which is not a module of {type(model).__name__}; "
            f'module names look like {", ".join(layers) or "lm_head"} (or "" for the whole model)'
        )


def input_device(model: Any) -> str:
    """Where the inputs go: the device of the text model's ``embed_tokens`` (the first layer)."""
    weight = model.model.language_model.embed_tokens.weight
    return str(weight.device)


def placement_record(model: Any, requested: str | dict[str, int | str]) -> dict[str, Any]:
    """What run.json records: the requested map and where transformers put every module
    (``{"": device}`` when it put the whole model on one device and kept no map)."""
    inputs = input_device(model)
    placed = getattr(model, "hf_device_map", None) or {"": inputs}
    return {
        "requested": requested,
        "placement": {name: str(dev) for name, dev in placed.items()},
        "input_device": inputs,
    }
