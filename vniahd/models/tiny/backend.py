"""The ``tiny`` model backend: EfficientNet-Lite0 frames + the per-variant trained tiny text model.

Spec: ``tiny`` or ``tiny?seed=0&steps=2000&weights=auto&train=1&haystack=PATH&variant=NAME``.

The evaluator's text path is used unchanged (spliced embeddings, our positions, our allocation
swap, every scoring mode, the embedding cache, resume). Two things are particular to this model:

- **One set of weights per RoPE variant.** :meth:`TinyBackend.use_variant` (the evaluator's only
  way to apply a variant) loads the checkpoint trained for that variant, installs its allocation,
  and puts the previous weights back on exit. ``weights=auto`` (default) takes the checkpoint
  shipped with the package when one matches the recipe (:mod:`vniahd.models.tiny.shipped`), else a
  locally trained one; ``weights=local`` only locally trained ones (``train=1`` trains what is
  missing); without weights it raises an error naming the ``vniahd train-tiny`` command. run.json
  records per variant the checkpoint key, whether it was shipped or trained here, and its file.
  ``variant=NAME`` in the spec pins one variant's weights up front (for direct use of the model);
  asking such a backend for another variant is refused, never silently scored with those weights.
- **Variant-independent embeddings.** The projector (per-level LayerNorm + Linear) is trained per variant,
  so the frame encoder returns the frozen EfficientNet-Lite0 features and the projection happens
  inside :meth:`hidden_states`. Rows of the evaluator's embedding sequence (:data:`ROWS`, the
  codec of :mod:`vniahd.models.rows`) are therefore ``row_width = 1320 + 1`` wide: a visual row
  holds the 1320 pooled features and flag 1; a text row holds the token embedding in its first
  ``d`` columns and flag 0. The embedding cache is thus shared by all variants (its key does not
  depend on the trained weights).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vniahd.errors import VniahdError
from vniahd.files import sha256_json
from vniahd.models.base import Backend, BackendOptions
from vniahd.models.rows import RowCodec
from vniahd.models.tiny.encoder import FEATURE_DIM, POOL_GRID

if TYPE_CHECKING:
    from vniahd.models.tiny.model import TinyVideoLM
    from vniahd.models.tiny.recipe import Recipe, TrainingMaterial
    from vniahd.rope import Variant

#: [features (1320) or word embedding (d) | flag]. The flag only routes rows (projector or word
#: embedding): no trained weight reads it, and the projector and text model receive the same numbers
#: under either flag convention, so the shipped checkpoints score identically with the codec's
#: (visual rows 1; before it, this backend marked text rows with 1 — the encoder key changed).
ROWS = RowCodec(token_width=FEATURE_DIM)
_KNOWN = {"seed", "steps", "train", "haystack", "variant", "weights"}


def parse_params(params: dict) -> tuple[Recipe, bool, str | None, str]:
    """Spec parameters → (Recipe, train_if_missing, variant name or None, weight source)."""
    from vniahd.models.tiny.recipe import Recipe, check_weights
    from vniahd.training.train import TrainConfig

    unknown = set(params) - _KNOWN
    if unknown:
        raise VniahdError(
            f"unknown tiny-model parameter(s) {sorted(unknown)}; valid: "
            f"{', '.join(sorted(_KNOWN))} (e.g. tiny?seed=1&train=1)"
        )
    cfg = TrainConfig()
    changes: dict[str, Any] = {}
    for key in ("seed", "steps"):
        if key in params and params[key] not in (None, ""):
            try:
                changes[key] = int(params[key])
            except ValueError:
                raise VniahdError(f"tiny?{key}={params[key]!r}: give a whole number") from None
    if changes.get("steps", 1) < 1:
        raise VniahdError("tiny?steps= must be at least 1")
    train_flag = str(params.get("train", "0")).lower() in ("1", "true", "yes", "auto")
    haystack = Path(params["haystack"]) if params.get("haystack") else None
    from dataclasses import replace

    weights = check_weights(str(params.get("weights") or "auto"))
    recipe = Recipe(train=replace(cfg, **changes), haystack=haystack)
    return recipe, train_flag, params.get("variant"), weights


class TinyBackend(Backend):
    """See the module docstring."""

    def __init__(
        self,
        spec: str,
        recipe: Recipe,
        options: BackendOptions,
        *,
        train_if_missing: bool = False,
        weights: str = "auto",
        progress: bool = True,
    ):
        from vniahd.models.tiny.recipe import check_weights

        self.spec = spec
        self.weights = check_weights(weights)
        self.seed: int | None = recipe.train.seed
        self.recipe = recipe
        self.options = options
        self.train_if_missing = train_if_missing
        self.progress = progress
        self.rotary = recipe.train.model.rotary
        self.layout_params = {}
        self.tokenizer = recipe.tokenizer()
        self.model: TinyVideoLM | None = None
        self.variant: Variant | None = None
        self.checkpoint: Path | None = None
        self._material: TrainingMaterial | None = None
        self._fingerprint: str | None = None
        self.pinned: Variant | None = None  # the variant whose weights the spec fixed (variant=NAME), if any
        self.loaded: dict[str, str] = {}  # variant name → checkpoint dir
        # checkpoint key → (loaded model, checkpoint dir), kept for reuse
        self._models: dict[str, tuple[TinyVideoLM, Path]] = {}

    # ---- variants -------------------------------------------------------------------------
    def variant_record(self, variant: Variant) -> dict[str, Any]:
        """The allocation applied and which trained weights score ``variant`` (run.json)."""
        from vniahd.models.tiny.recipe import shipped_checkpoint
        from vniahd.rope.model import applied_allocation

        self._check_pin(variant)
        key = self.recipe.checkpoint_key(variant)
        shipped = shipped_checkpoint(self.recipe, variant, self.weights)
        where = (
            shipped.record()
            if shipped is not None
            else {"source": "local", "checkpoint": str(self.recipe.checkpoint_path(variant))}
        )
        return {
            **applied_allocation(variant, self.rotary),
            "weights": {
                "trained_for": variant.name,
                "seed": self.recipe.train.seed,
                "checkpoint_key": key,
                **where,
            },
        }

    def _load(self, variant: Variant) -> None:
        """Make the weights trained for ``variant`` current, allocation installed."""
        from vniahd.models.tiny.recipe import TrainingMaterial, ensure_model

        key = self.recipe.checkpoint_key(variant)
        if key not in self._models:
            if self._material is None:
                self._material = TrainingMaterial(self.recipe, progress=self.progress)
            model, path, _meta = ensure_model(
                self.recipe,
                variant,
                weights=self.weights,
                train_if_missing=self.train_if_missing,
                material=self._material,
                progress=self.progress,
            )
            self._models[key] = (model.to(device=self.device, dtype=self.dtype), path)
        model, path = self._models[key]
        model.set_variant(variant)  # the one axes rule, vniahd.rope.variant_axes
        self.model, self.variant, self.checkpoint = model, variant, path
        self.loaded[variant.name] = str(path)

    def pin_variant(self, variant: Variant) -> None:
        """Load ``variant``'s weights for direct use; :meth:`use_variant` then refuses others."""
        self._load(variant)
        self.pinned = variant

    def _check_pin(self, variant: Variant) -> None:
        if self.pinned is not None and self.pinned.name != variant.name:
            raise VniahdError(
                f"this tiny model is pinned to the weights trained for {self.pinned.name!r} "
                f"(tiny?variant={self.pinned.name}), so it cannot score variant {variant.name!r}: "
                "drop 'variant=' from the --model spec (each variant is then scored with its own "
                f"weights) or evaluate only --variant {self.pinned.name}"
            )

    @contextlib.contextmanager
    def use_variant(self, variant: Variant) -> Iterator[dict[str, Any]]:
        """Score ``variant`` with the weights trained for it (see the module docstring)."""
        self._check_pin(variant)
        previous = (self.model, self.variant, self.checkpoint)
        self._load(variant)
        try:
            yield self.variant_record(variant)
        finally:
            self.model, self.variant, self.checkpoint = previous
            if self.model is not None and self.variant is not None:
                self.model.set_variant(self.variant)

    def _require_model(self) -> TinyVideoLM:
        """The model of the variant applied now (a :class:`VniahdError` if none is)."""
        if self.model is None:
            raise VniahdError(
                "the tiny backend holds one trained model per RoPE variant and none is applied; "
                "score inside 'with backend.use_variant(variant):' (the evaluator does), or pin "
                "one in the spec: --model 'tiny?variant=NAME'"
            )
        return self.model

    # The text modules are those of the variant applied now: read-only here (setting them would
    # bypass use_variant), yet declared with a setter so they override the base's attributes.
    @property
    def language_model(self) -> torch.nn.Module:
        return self._require_model().text_model

    @language_model.setter
    def language_model(self, module: torch.nn.Module) -> None:
        raise AttributeError("the tiny backend's text model is the applied variant's: use use_variant()")

    @property
    def lm_head(self) -> torch.nn.Module:
        return self._require_model().lm_head

    @lm_head.setter
    def lm_head(self, module: torch.nn.Module) -> None:
        raise AttributeError("the tiny backend's LM head is the applied variant's: use use_variant()")

    @property
    def can_pack(self) -> bool:
        """Answerable before a variant's model is applied: every tiny text model is built with
        SDPA and only full-attention layers (model.py), so it depends on the device alone."""
        if self.model is not None:
            return super().can_pack
        from vniahd.models.attention import kernel_supports

        return kernel_supports(self.device)

    # ---- sizes ----------------------------------------------------------------------------
    @property
    def hidden_size(self) -> int:
        """The text model's d (known before a variant's weights are loaded)."""
        return int(self.recipe.train.model.hidden_size)

    @property
    def row_width(self) -> int:
        """Width of the evaluator's embedding rows (see the module docstring)."""
        return ROWS.width

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer.vocab_size)

    # ---- frame encoder --------------------------------------------------------------------
    def visual_grid(self, frame_size: tuple[int, int]) -> tuple[int, int]:
        return (POOL_GRID, POOL_GRID)

    def encode_frames(self, frames: np.ndarray) -> torch.Tensor:
        from vniahd.models.tiny.features import frame_features

        frames = np.asarray(frames)
        if frames.ndim == 5:
            if frames.shape[1] != 1:
                raise VniahdError(
                    "the tiny model encodes one frame per temporal group (it has no temporal patch); "
                    "score it on a dataset generated with --frames-per-group 1"
                )
            frames = frames[:, 0]
        feats = frame_features(frames, progress=False)  # [N, 4, 1320] float32
        return ROWS.visual_rows(feats).to(self.dtype)

    def encoder_fingerprint(self, frame_size: tuple[int, int]) -> str:
        from vniahd.models.tiny.features import encoder_key

        return sha256_json(
            {
                "backend": "tiny",
                "encoder": encoder_key(),
                "rows": "features | visual flag 1",
                "width": ROWS.width,
                "frame_size": list(frame_size),
                "dtype": str(self.dtype),
                "frame_mode": self.options.frame_mode,
            }
        )

    # ---- text path ------------------------------------------------------------------------
    def embed_text(self, ids: list[int]) -> torch.Tensor:
        model = self._require_model()
        t = torch.tensor(ids, dtype=torch.long, device=self.device)
        return ROWS.text_rows(model.embed_text(t))

    def to_model_inputs(self, rows: torch.Tensor) -> torch.Tensor:
        """[..., row_width] rows → [..., d]: text rows keep their embedding, visual rows go
        through the trained projector."""
        parts = ROWS.split(rows)
        projected = self._require_model().embed_frames(parts.token)
        return torch.where(parts.visual[..., None], projected, parts.token[..., : self.hidden_size])

    def hidden_states(
        self,
        embeds: torch.Tensor,
        position_ids: torch.Tensor,
        cache: Any = None,
        segments: Sequence[int] | None = None,
        shared: int = 0,
    ) -> torch.Tensor:
        self._require_model()
        rows = self.to_model_inputs(embeds.to(self.dtype))
        return super().hidden_states(rows, position_ids, cache, segments, shared)

    # ---- identity -------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """Variant-independent: the recipe (training config, data, vocabulary) and where weights
        come from (the shipped set's digest, or ``local``: training is deterministic per machine).
        Which file scored each variant is in :meth:`variant_record`."""
        if self._fingerprint is None:
            from vniahd.models.tiny.shipped import manifest_digest

            source = "local" if self.weights == "local" else f"{self.weights}:{manifest_digest()}"
            self._fingerprint = sha256_json(
                {"backend": "tiny", "recipe": self.recipe.fingerprint(), "weights": source}
            )
        return self._fingerprint

    def describe(self) -> dict:
        d = super().describe()
        d.update(
            {
                "tiny": {
                    "train_config": self.recipe.train.to_dict(),
                    "data_config": self.recipe.data_config.to_dict(),
                    "haystack": str(self.recipe.haystack_path),
                    "weights": self.weights,
                    "checkpoints": "shipped: vniahd/models/tiny/weights/manifest.json; local: "
                    "cache_dir('tiny','checkpoints', hash(train config, variant, data config, vocabulary))",
                },
            }
        )
        return d


def create_backend(rest: str, params: dict, options: BackendOptions) -> TinyBackend:
    """Factory for the registry (``BACKENDS['tiny']``)."""
    if rest:
        raise VniahdError(
            f"'tiny:{rest}' is not a tiny-model spec; use 'tiny' or 'tiny?seed=0&steps=2000&train=1'"
        )
    recipe, train_flag, variant_name, weights = parse_params(params)
    spec = "tiny" + (
        ("?" + "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "variant"))
        if any(k != "variant" for k in params)
        else ""
    )
    backend = TinyBackend(spec, recipe, options, train_if_missing=train_flag, weights=weights)
    if variant_name:
        from vniahd.rope import parse_variant

        backend.pin_variant(parse_variant(variant_name))
    return backend
