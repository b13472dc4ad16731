"""Needle cards: a real photo (scikit-image sample data) centred on a large coloured card.

The card colour fills most of the frame so that a frame encoder that pools to a coarse grid (the
tiny model's ImageNet CNN pooled to 2×2) still sees it in every cell, and the photo is large and
centred so that the object is recognisable too. :func:`render_card` is reusable with augmentation
(scale, shift, colour jitter, flip) for training on unseen (object, colour) pairs.

Every photo ships with scikit-image (installed from the package index) and is CC0 or public domain;
sources and licences are in :data:`OBJECTS` and ``needles/README.md``.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

from vniahd.errors import UnknownNameError


@dataclass(frozen=True)
class ObjectPhoto:
    name: str
    loader: str  # skimage.data function name
    description: str
    licence: str


OBJECTS: dict[str, ObjectPhoto] = {
    o.name: o
    for o in (
        ObjectPhoto("cat", "chelsea", "Chelsea the cat (photo by Stefan van der Walt)", "CC0"),
        ObjectPhoto(
            "coffee",
            "coffee",
            "coffee cup, courtesy of Pikolo Espresso Bar (photo by Rachel Michetti)",
            "CC0",
        ),
        ObjectPhoto("rocket", "rocket", "Falcon 9 launch of DSCOVR (SpaceX photo)", "public domain"),
        ObjectPhoto(
            "astronaut", "astronaut", "astronaut Eileen Collins (NASA Great Images)", "public domain"
        ),
        ObjectPhoto("horse", "horse", "horse silhouette by Andreas Preuss (openclipart)", "CC0"),
        ObjectPhoto(
            "coins", "coins", "Greek coins from Pompeii (Brooklyn Museum)", "no known copyright restrictions"
        ),
        ObjectPhoto("photographer", "camera", "man with a camera (photo by Lav Varshney)", "CC0"),
    )
}

# Saturated, well-separated hues (RGB). Pairs that a CNN may confuse (red/pink/purple, blue/cyan)
# are never used together in the demo set.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (214, 39, 40),
    "orange": (250, 128, 14),
    "yellow": (240, 212, 36),
    "green": (44, 160, 44),
    "cyan": (23, 190, 207),
    "blue": (31, 84, 214),
    "purple": (140, 58, 186),
    "pink": (240, 110, 180),
}

TABLE_GREY = (58, 58, 58)  # neutral surround that makes the card read as a card


@functools.cache
def load_object_photo(name: str) -> np.ndarray:
    """The object's photo as uint8 RGB [H, W, 3] (grey and boolean images become RGB)."""
    if name not in OBJECTS:
        raise UnknownNameError("object", name, list(OBJECTS))
    import skimage.data

    img = np.asarray(getattr(skimage.data, OBJECTS[name].loader)())
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    img = img[..., :3].astype(np.uint8)
    img.setflags(write=False)
    return img


def _colour_rgb(colour: str | tuple[int, int, int]) -> tuple[int, int, int]:
    if isinstance(colour, str):
        if colour not in COLOURS:
            raise UnknownNameError("colour", colour, list(COLOURS))
        return COLOURS[colour]
    return tuple(int(c) for c in colour)  # type: ignore[return-value]


def render_card(
    object_name: str,
    colour: str | tuple[int, int, int],
    size: tuple[int, int] = (252, 448),
    *,
    seed: int | None = None,
    scale: float = 0.66,
    scale_range: tuple[float, float] = (0.5, 0.78),
    shift: float = 0.08,
    colour_jitter: float = 0.08,
    brightness: float = 0.15,
    flip: bool = True,
) -> Image.Image:
    """Draw ``object_name``'s photo centred on a card of ``colour``; returns an RGB image of
    ``size`` = (H, W).

    ``seed=None`` gives the canonical card (photo height ``scale``·H, centred, exact colour).
    With a seed, a ``random.Random(seed)`` draws, in this order: photo scale in ``scale_range``,
    horizontal and vertical shift (± ``shift`` of W and H), per-channel card colour offset
    (± ``colour_jitter``·255), photo brightness factor (1 ± ``brightness``) and, if ``flip``, a
    50% horizontal mirror. The same seed gives the same card on any machine.
    """
    h, w = size
    rgb: tuple[int, ...] = _colour_rgb(colour)
    photo = Image.fromarray(load_object_photo(object_name))
    dx = dy = 0.0
    mirror = False
    bright = 1.0
    if seed is not None:
        rng = random.Random(seed)
        scale = rng.uniform(*scale_range)
        dx, dy = rng.uniform(-shift, shift) * w, rng.uniform(-shift, shift) * h
        rgb = tuple(int(np.clip(c + rng.uniform(-colour_jitter, colour_jitter) * 255, 0, 255)) for c in rgb)
        bright = rng.uniform(1 - brightness, 1 + brightness)
        mirror = flip and rng.random() < 0.5

    img, draw, margin = _blank_card(rgb, h, w)

    ph = max(8, round(scale * h))
    pw = round(ph * photo.width / photo.height)
    if pw > 0.8 * w:  # very wide photos: cap the width instead, so the card stays visible
        pw = round(0.8 * w)
        ph = round(pw * photo.height / photo.width)
    photo = photo.resize((pw, ph), Image.Resampling.LANCZOS)
    if mirror:
        photo = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if bright != 1.0:
        photo = ImageEnhance.Brightness(photo).enhance(bright)
    border = max(1, round(0.012 * h))
    x0 = round((w - pw) / 2 + dx)
    y0 = round((h - ph) / 2 + dy)
    lo, hi_x, hi_y = margin + border, w - margin - border - pw, h - margin - border - ph
    x0 = min(max(x0, lo), max(lo, hi_x))
    y0 = min(max(y0, lo), max(lo, hi_y))
    _paste_framed(img, draw, photo, x0, y0, border)
    return img


def _blank_card(rgb: tuple[int, ...], h: int, w: int) -> tuple[Image.Image, ImageDraw.ImageDraw, int]:
    """The card without its photo: grey table, rounded card of ``rgb``; returns (image, draw, margin)."""
    img = Image.new("RGB", (w, h), TABLE_GREY)
    draw = ImageDraw.Draw(img)
    margin = max(1, round(0.04 * min(h, w)))
    draw.rounded_rectangle(
        (margin, margin, w - 1 - margin, h - 1 - margin), radius=max(1, round(0.08 * h)), fill=rgb
    )
    return img, draw, margin


def _paste_framed(
    img: Image.Image, draw: ImageDraw.ImageDraw, photo: Image.Image, x0: int, y0: int, border: int
) -> None:
    """Paste ``photo`` at (x0, y0) inside a white frame ``border`` pixels wide."""
    pw, ph = photo.size
    draw.rectangle(
        (x0 - border, y0 - border, x0 + pw - 1 + border, y0 + ph - 1 + border), fill=(250, 250, 250)
    )
    img.paste(photo, (x0, y0))


def render_objects_card(
    object_names: Sequence[str],
    colour: str | tuple[int, int, int],
    size: tuple[int, int] = (252, 448),
    *,
    scale: float = 0.66,
) -> Image.Image:
    """Several photos side by side on one card of ``colour`` (canonical, no augmentation); returns
    an RGB image of ``size`` = (H, W).

    Each photo gets an equal-width slot and is as tall as on :func:`render_card` (``scale``·H)
    unless its slot is narrower, so ``["cat", "cat"]`` is a card that visibly shows two cats: the
    V-RULER counting needles (:mod:`vniahd.needles.vruler_demo`).
    """
    if not object_names:
        raise ValueError("render_objects_card needs at least one object")
    h, w = size
    img, draw, margin = _blank_card(_colour_rgb(colour), h, w)
    border = max(1, round(0.012 * h))
    gap = 2 * border + max(2, round(0.03 * w))  # white frames never touch each other or the edge
    n = len(object_names)
    slot = (w - 2 * margin - (n + 1) * gap) / n
    for i, name in enumerate(object_names):
        photo = Image.fromarray(load_object_photo(name))
        ph = max(8, round(scale * h))
        pw = round(ph * photo.width / photo.height)
        if pw > slot:
            pw = max(8, int(slot))
            ph = round(pw * photo.height / photo.width)
        photo = photo.resize((pw, ph), Image.Resampling.LANCZOS)
        x0 = round(margin + gap * (i + 1) + slot * i + (slot - pw) / 2)
        _paste_framed(img, draw, photo, x0, round((h - ph) / 2), border)
    return img
