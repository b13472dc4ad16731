"""Training material for the tiny model, and the train / held-out split.

**Haystack split.** Each clip of the haystack video is cut in two: its first ``train_fraction``
(default 60 %) of sampled frames is training material, the rest is held out. Clip boundaries come
from the haystack's sidecar JSON (``<video>.json``, written by ``build_demo_haystack``: the demo's
three clips); a video without a sidecar is one clip. The held-out frames, in order, are written as
their own mp4 (:func:`write_heldout_haystack`) and that video is the haystack of every evaluation
dataset, so no evaluated haystack frame was ever seen in training.

**Needle split: held-out images.** Needles are object × colour cards
(:func:`vniahd.needles.render_card`). Training cards are *augmented* renders (random photo scale in
[0.5, 0.78] of the card height, shift, card-colour jitter, brightness, mirror; seeded, then
JPEG-compressed like the shipped needle images) of the (object, colour) pairs; the evaluation needle
and distractor images are the *canonical* renders (scale 0.66, centred, exact colour, no jitter) —
images the model never saw. By default every pair is a training pair: holding out whole pairs
(``heldout_pairs``) was tried and is a trap — each held-out needle is then an (object, colour)
combination the model has learnt never occurs, and a 2-layer model uses that prior ("a cat card is
never red, so the red card must be the other one") instead of reading the colour, which scores
*below* chance on exactly those pairs. Pair hold-out tests compositional generalisation, not the
long-context retrieval the benchmark is about, so it stays an option, not the default.

All frames are encoded once by the frozen EfficientNet-Lite0 (:mod:`vniahd.models.tiny.features`), so
training only runs the projector and the text model.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from vniahd.errors import VniahdError
from vniahd.files import sha256_file, sha256_json, write_json_atomic
from vniahd.media import write_mp4
from vniahd.models.tiny.features import frame_features
from vniahd.plan import derive_seed
from vniahd.provenance import provenance

TRAIN_FRACTION = 0.6
FRAME_SIZE = (252, 448)  # (H, W): the reference frame size, as the generator writes datasets
CARD_JPEG_QUALITY = 88  # the demo needle images are JPEGs at this quality


@dataclass(frozen=True)
class DataConfig:
    """Everything that decides the training material (hashed into the checkpoint key)."""

    haystack_fingerprint: str
    clips: tuple[tuple[int, int], ...]  # [first, end) sampled-frame ranges
    objects: tuple[str, ...]
    colours: tuple[str, ...]
    heldout_pairs: tuple[tuple[str, str], ...]  # (object, colour)
    fps: float = 1.0
    frame_size: tuple[int, int] = FRAME_SIZE
    train_fraction: float = TRAIN_FRACTION
    card_augmentations: int = 12
    card_seed: int = 0

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    def key(self) -> str:
        return sha256_json(self.to_dict())[:16]

    @property
    def train_pairs(self) -> list[tuple[str, str]]:
        held = set(self.heldout_pairs)
        return [(o, c) for o in self.objects for c in self.colours if (o, c) not in held]


def split_clips(clips: tuple[tuple[int, int], ...], fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Per clip ``[a, b)``: training frames ``[a, a + round(fraction·(b−a)))``, held out the rest.

    >>> split_clips(((0, 10), (10, 15)), 0.6)
    (array([ 0,  1,  2,  3,  4,  5, 10, 11, 12]), array([ 6,  7,  8,  9, 13, 14]))
    """
    if not 0 < fraction < 1:
        raise VniahdError(f"train fraction must be between 0 and 1, got {fraction}")
    train, held = [], []
    for a, b in clips:
        cut = a + int(round(fraction * (b - a)))
        train.append(np.arange(a, cut))
        held.append(np.arange(cut, b))
    return np.concatenate(train).astype(np.int64), np.concatenate(held).astype(np.int64)


def haystack_clips(
    video: str | Path, source_indices: list[int], num_frames: int
) -> tuple[tuple[int, int], ...]:
    """Clip ranges in *sampled* frame indices, from the sidecar's ``clips[].haystack_frames``
    (source-frame ranges) mapped through the sampled frames' source indices; one clip if no
    sidecar."""
    sidecar = Path(video).with_suffix(".json")
    ranges: list[tuple[int, int]] = []
    if sidecar.is_file():
        try:
            meta = json.loads(sidecar.read_text())
            ranges = [tuple(c["haystack_frames"]) for c in meta.get("clips", [])]
        except (ValueError, KeyError, TypeError):
            ranges = []
    if not ranges or not source_indices:
        return ((0, num_frames),)
    src = np.asarray(source_indices)
    out = []
    for a, b in ranges:
        idx = np.nonzero((src >= a) & (src < b))[0]
        if len(idx):
            out.append((int(idx[0]), int(idx[-1]) + 1))
    return tuple(out) if out else ((0, num_frames),)


def card_seed(base: int, obj: str, colour: str, k: int) -> int:

    return derive_seed(base, "tiny-card", f"{obj}|{colour}|{k}")


def render_training_card(obj: str, colour: str, size: tuple[int, int], seed: int) -> np.ndarray:
    """An augmented card, JPEG round-tripped like the shipped needle images, uint8 [H,W,3]."""
    from PIL import Image

    from vniahd.needles import render_card

    img = render_card(obj, colour, size, seed=seed)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=CARD_JPEG_QUALITY)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


@dataclass
class TrainingData:
    """Encoded training material: haystack features (training split) and the card bank."""

    config: DataConfig
    haystack: torch.Tensor  # [M, 4, 1320]
    haystack_indices: np.ndarray  # sampled-frame index of each row
    cards: torch.Tensor  # [C, 4, 1320]
    card_pairs: list[tuple[str, str]] = field(default_factory=list)  # (object, colour) per row

    def cards_by_pair(self) -> dict[tuple[str, str], list[int]]:
        out: dict[tuple[str, str], list[int]] = {}
        for i, p in enumerate(self.card_pairs):
            out.setdefault(p, []).append(i)
        return out


def prepare_training_data(
    cfg: DataConfig, haystack_frames: np.ndarray, *, progress: bool = True
) -> TrainingData:
    """Encode the training split of the haystack and render + encode the card bank."""
    from tqdm.auto import tqdm

    train_idx, _ = split_clips(cfg.clips, cfg.train_fraction)
    hay_feats = frame_features(
        np.asarray(haystack_frames[train_idx]), progress=progress, desc="encoding haystack (train split)"
    )
    pairs = cfg.train_pairs
    if not pairs:
        raise VniahdError(
            "no (object, colour) pair is left for training after holding out the "
            "evaluation pairs; use a needle set with fewer pairs"
        )
    card_pairs = [p for p in pairs for _ in range(cfg.card_augmentations)]
    images = np.stack(
        [
            render_training_card(o, c, cfg.frame_size, card_seed(cfg.card_seed, o, c, k))
            for (o, c), k in tqdm(
                [(p, k) for p in pairs for k in range(cfg.card_augmentations)],
                desc="rendering training cards",
                unit="card",
                leave=False,
                disable=not progress,
            )
        ]
    )
    card_feats = frame_features(images, progress=progress, desc="encoding training cards")
    return TrainingData(cfg, hay_feats, train_idx, card_feats, card_pairs)


def write_heldout_haystack(
    video: str | Path, out_path: str | Path, cfg: DataConfig, haystack_frames: np.ndarray
) -> Path:
    """Write the held-out frames (in order) as an mp4 at ``cfg.fps`` with a sidecar describing
    the split; reused when the sidecar matches."""

    out = Path(out_path)
    sidecar = out.with_suffix(".json")
    _, held = split_clips(cfg.clips, cfg.train_fraction)
    recipe = {
        "source_fingerprint": cfg.haystack_fingerprint,
        "clips": [list(c) for c in cfg.clips],
        "train_fraction": cfg.train_fraction,
        "fps": cfg.fps,
        "frame_size": list(cfg.frame_size),
    }
    if out.is_file() and sidecar.is_file():
        try:
            old = json.loads(sidecar.read_text())
            if old.get("recipe") == recipe and old.get("sha256") == sha256_file(out):
                return out
        except ValueError:
            pass
    write_mp4(np.asarray(haystack_frames[held]), out, cfg.fps)
    # Clip ranges inside the held-out video, so a later split of *it* stays per clip.
    clips, start = [], 0
    for a, b in cfg.clips:
        n = (b - a) - int(round(cfg.train_fraction * (b - a)))
        clips.append({"haystack_frames": [start, start + n]})
        start += n
    write_json_atomic(
        sidecar,
        {
            "what": "held-out portion of a haystack (the tiny model never trained on these frames)",
            "source": str(video),
            "recipe": recipe,
            "heldout_source_frames": held.tolist(),
            "num_frames": int(len(held)),
            "fps": cfg.fps,
            "clips": clips,
            "sha256": sha256_file(out),
            "provenance": provenance(),
        },
    )
    return out
