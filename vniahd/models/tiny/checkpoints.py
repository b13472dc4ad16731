"""Tiny-model checkpoints: transformers format plus our metadata, in the cache.

Layout of ``cache_dir("tiny", "checkpoints", <key>)`` (``key`` = hash of the training config,
the variant, the data config and the vocabulary; see :func:`vniahd.training.train.config_key`)::

    text_model/            Qwen2VLTextModel.save_pretrained (config.json + model.safetensors)
    heads.safetensors      projector (per-level LayerNorms + Linear); the LM head too when untied
    vocab.json             the word list (+ chat special tokens)
    tiny.json              metadata: variant, seed, steps, training/data config and their hashes,
                           training time and loss curve, provenance

The directory is written under a temporary name and renamed into place, so a killed training run
never leaves a half checkpoint that a later run would load.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from vniahd.errors import VniahdError
from vniahd.files import cache_dir, write_json_atomic
from vniahd.models.tiny.model import TinyConfig, TinyVideoLM
from vniahd.models.tiny.vocab import load_words, option_parts, save_words

META_FILE = "tiny.json"
FORMAT = "vniahd-tiny-checkpoint/1"


def checkpoint_root() -> Path:
    return cache_dir("tiny", "checkpoints")


@contextlib.contextmanager
def _no_transformers_bars():
    """Silence transformers' own progress bars ("Loading weights", "Writing model shards"): a
    tiny model saves and loads instantly, and they would clutter the demo's progress output."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


def checkpoint_dir(key: str) -> Path:
    return checkpoint_root() / key


def is_complete(path: Path) -> bool:
    return (
        (path / META_FILE).is_file()
        and (path / "heads.safetensors").is_file()
        and (path / "text_model" / "config.json").is_file()
    )


def save_checkpoint(
    model: TinyVideoLM, words: list[str], special_tokens: list[str], meta: dict, path: str | Path
) -> Path:
    """Write ``model`` + vocabulary + ``meta`` to ``path`` atomically (directory rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        with _no_transformers_bars():
            model.text_model.save_pretrained(tmp / "text_model")
        heads = {f"projector.{k}": v.contiguous() for k, v in model.projector.state_dict().items()}
        if not model.config.tie_embeddings:  # tied: it *is* text_model's embed_tokens
            heads["lm_head.weight"] = model.lm_head.weight.detach().contiguous()
        save_file(heads, str(tmp / "heads.safetensors"))
        save_words(tmp / "vocab.json", words, special_tokens)
        write_json_atomic(tmp / META_FILE, {"format": FORMAT, **meta, "model_config": model.config.to_dict()})
        if path.exists():  # another process finished first; keep its (identical) result
            shutil.rmtree(tmp)
            return path
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def load_meta(path: str | Path) -> dict:
    p = Path(path) / META_FILE
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        raise VniahdError(
            f"{path} is not a tiny-model checkpoint (no {META_FILE}); train one with "
            "'vniahd train-tiny --variant NAME'"
        ) from None


def load_checkpoint(path: str | Path) -> tuple[TinyVideoLM, list[str], list[str], dict]:
    """(model in eval mode, words, special tokens, metadata). The variant's allocation is *not*
    installed; callers do that with ``model.set_variant``."""
    from safetensors.torch import load_file
    from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VLTextModel

    path = Path(path)
    if not is_complete(path):
        raise VniahdError(
            f"{path} is not a complete tiny-model checkpoint; delete it and train "
            "again with 'vniahd train-tiny --variant NAME'"
        )
    meta = load_meta(path)
    if meta.get("format") != FORMAT:
        raise VniahdError(
            f"{path}: checkpoint format {meta.get('format')!r}, expected {FORMAT}; "
            "train again with 'vniahd train-tiny'"
        )
    cfg = TinyConfig.from_dict(meta["model_config"])
    with _no_transformers_bars():
        text_model = Qwen2VLTextModel.from_pretrained(path / "text_model", attn_implementation="sdpa")
    words, specials = load_words(path / "vocab.json")
    vocab = {w: i for i, w in enumerate(list(words) + list(specials))}
    model = TinyVideoLM(cfg, len(vocab), text_model=text_model, token_parts=option_parts(vocab))
    heads = load_file(str(path / "heads.safetensors"))
    model.projector.load_state_dict(
        {k[len("projector.") :]: v for k, v in heads.items() if k.startswith("projector.")}, strict=True
    )
    if cfg.tie_embeddings:
        if "lm_head.weight" in heads:
            raise VniahdError(
                f"{path}: the config ties the LM head to the embeddings but the "
                "checkpoint stores its own head; delete the directory and train again"
            )
    else:
        model.lm_head.weight.data.copy_(heads["lm_head.weight"])
    model.eval().requires_grad_(False)
    return model, words, specials, meta
