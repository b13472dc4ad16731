"""The Qwen2-VL family backend: the model's own vision tower on our patchify, its text model.

Shared by ``hf:PATH`` (weights from a checkpoint) and ``random:<family>`` (random weights from a
config built in code), for every family whose record (:mod:`vniahd.models.families`) names no other
backend; ``family`` is the name the loader gives it (``backend.family``).

What a benchmark frame is. One dataset frame = one temporal group of visual tokens, built from
that frame repeated ``temporal_patch_size`` (2) times — exactly what the Qwen2-VL image processor
does to a still image and what the reference V-NIAH code fed the model (every haystack frame and
every needle went through the image processor on its own, 144 tokens per 252×448 frame). A needle
image is therefore repeated to fill its group too. The two frame modes differ only in how the
evaluator lays out positions: ``video`` = one ``Video(T, H, W)`` segment (the reference
protocol), ``image`` = ``T`` consecutive ``Image(H, W)`` segments. The encoder output is the same in both
modes (the vision tower attends within one temporal group), so both share one embedding cache.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
import torch

from vniahd.files import sha256_json
from vniahd.models.base import Backend, BackendOptions, module_weights_hash
from vniahd.models.patchify import PatchifyConfig, merged_grid, patchify_frames
from vniahd.models.tokenizer import TextTokenizer

#: How a benchmark frame becomes a temporal group (recorded in run.json and the cache key).
GROUPING = "each dataset frame is one temporal group: the frame repeated temporal_patch_size times"


class QwenVLBackend(Backend):
    """A loaded ``Qwen2VLForConditionalGeneration`` / ``Qwen2_5_VLForConditionalGeneration``."""

    #: ``--device-map``: the requested map and where each module went (run.json), else None.
    placement: dict | None = None
    stock_forward = True  # self.model's own forward replays exported inputs

    def __init__(
        self,
        *,
        spec: str,
        model: torch.nn.Module,
        tokenizer: TextTokenizer,
        patch: PatchifyConfig,
        options: BackendOptions,
        model_fingerprint: Callable[[], str],
        layout_params: dict | None = None,
        family: str,
    ):
        self.spec = spec
        self.model = model.eval()
        self.family = family
        inner: Any = model.model  # Qwen2VLModel / Qwen2_5_VLModel
        self.visual: torch.nn.Module = inner.visual
        self.language_model = inner.language_model
        self.lm_head = cast(torch.nn.Module, model.lm_head)
        self.tokenizer = tokenizer
        self.patch = patch
        self.options = options
        # Read from the rotary module itself (sections, θ, pair count): no defaults to drift.
        from vniahd.rope.hf import rotary_config

        self.rotary = rotary_config(self.language_model)
        self.layout_params = dict(layout_params or {})
        self._model_fingerprint = model_fingerprint
        self._fingerprint: str | None = None
        self._visual_hash: str | None = None
        self._check_patch_matches_tower()

    def _check_patch_matches_tower(self) -> None:
        vc: Any = self.visual.config  # the vision tower's transformers config
        got = (self.patch.patch_size, self.patch.temporal_patch_size, self.patch.merge_size)
        want = (int(vc.patch_size), int(vc.temporal_patch_size), int(vc.spatial_merge_size))
        if got != want:  # the Conv3d patch embed would silently read garbage otherwise
            raise ValueError(f"patchify (patch, temporal, merge) {got} != vision tower {want}")

    # ---- frame encoder -------------------------------------------------------------------
    def visual_grid(self, frame_size: tuple[int, int]) -> tuple[int, int]:
        return merged_grid(frame_size, self.patch)

    def encode_frames(self, frames: np.ndarray) -> torch.Tensor:
        frames = np.asarray(frames)
        n = len(frames)
        rows, (_, gh, gw) = patchify_frames(frames, self.patch)
        grid = torch.tensor([[1, gh, gw]] * n, dtype=torch.long, device=self.device)
        pixels = torch.from_numpy(rows).to(device=self.device, dtype=self.dtype)
        with torch.inference_mode():
            out = self.visual(pixels, grid_thw=grid, return_dict=True)
        tokens = (gh // self.patch.merge_size) * (gw // self.patch.merge_size)
        return self.token_rows(out).reshape(n, tokens, -1).to("cpu")

    def token_rows(self, tower_output: Any) -> torch.Tensor:
        """The evaluator's rows from the vision tower's output: the merged tokens
        ``[n · tokens, hidden]`` in row-major merged-grid order per group."""
        rows: torch.Tensor = tower_output.pooler_output
        return rows

    def encoder_fingerprint(self, frame_size: tuple[int, int]) -> str:
        if self._visual_hash is None:
            self._visual_hash = module_weights_hash(self.visual)
        return sha256_json(
            {
                "encoder": f"{self.family} vision tower",
                "weights": self._visual_hash,
                "patchify": self.patch.to_dict(),
                "frame_size": list(frame_size),
                "grouping": GROUPING,
                "dtype": str(self.dtype),
            }
        )

    # ---- identity ------------------------------------------------------------------------
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = self._model_fingerprint()
        return self._fingerprint

    def describe(self) -> dict:
        d = super().describe()
        d.update({"family": self.family, "patchify": self.patch.to_dict(), "grouping": GROUPING})
        if self.placement is not None:
            d["device_map"] = self.placement
        return d
