"""Reading needle and distractor images: decode checks, transparency, very large images.

- :func:`check_image` decodes a whole image (not only its header), so a truncated or corrupt file
  is found by ``vniahd needles check`` and before ``vniahd generate`` decodes a haystack.
- :func:`read_rgb` returns uint8 RGB at a frame size. An image with transparency (RGBA, LA, or a
  palette/greyscale image with a transparent colour) is composited on a background colour instead
  of having its alpha dropped, which would show whatever RGB the transparent pixels hold.
- Images above Pillow's decompression-bomb limit (89 Mpixel) are read anyway, with one line
  saying the size, instead of Pillow's two-line ``DecompressionBombWarning``; above twice the limit
  (Pillow's hard error) they are refused with the size and the fix.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vniahd.errors import VniahdError

DEFAULT_BACKGROUND = (0, 0, 0)  # black, like the letterbox bars of the demo haystack
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def parse_colour(spec: str | tuple[int, ...] | list[int]) -> tuple[int, int, int]:
    """``"black"``, ``"#808080"``, ``"128,128,128"`` or ``(128, 128, 128)`` → an RGB tuple."""
    from PIL import ImageColor

    if isinstance(spec, (tuple, list)):
        try:
            values = [int(v) for v in spec]
        except (TypeError, ValueError):
            values = []
        if len(values) == 3 and all(0 <= v <= 255 for v in values):
            return values[0], values[1], values[2]
        raise VniahdError(f"colour {spec!r} is not three values 0-255; write R,G,B like 0,0,0")
    text = str(spec).strip()
    if "," in text:
        return parse_colour([int(v) if v.strip().isdigit() else -1 for v in text.split(",")])
    try:
        rgb = ImageColor.getrgb(text)
    except ValueError:
        raise VniahdError(
            f"colour {spec!r} is not a colour; write a name (black, white), #RRGGBB or R,G,B"
        ) from None
    return rgb[0], rgb[1], rgb[2]


def colour_hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


@dataclass(frozen=True)
class ImageFacts:
    """What an image file holds, once decoded."""

    path: Path
    width: int
    height: int
    mode: str
    has_alpha: bool

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def oversized(self) -> bool:
        """Above Pillow's decompression-bomb warning limit."""
        from PIL import Image

        limit = Image.MAX_IMAGE_PIXELS
        return limit is not None and self.pixels > limit


def has_alpha(im) -> bool:
    """True when the image carries transparency (an alpha channel or a transparent colour)."""
    return im.mode in ALPHA_MODES or "transparency" in im.info


@contextlib.contextmanager
def open_image(path: Path) -> Iterator:
    """``PIL.Image.open`` without Pillow's decompression-bomb warning; VniahdError on a bad file."""
    from PIL import Image, UnidentifiedImageError

    limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError:
        # Pillow does not say the dimensions; read the header again without its limit to name them.
        size = "too large"
        Image.MAX_IMAGE_PIXELS = None
        try:
            with Image.open(path) as big:
                size = f"{big.width}×{big.height}"
        except Exception:
            pass
        finally:
            Image.MAX_IMAGE_PIXELS = limit
        over = f"over {2 * limit // 1_000_000} Mpixel, " if limit else ""
        raise VniahdError(
            f"image {path} is {size}, {over}too large to "
            f"decode safely; shrink it (it is resized to the frame size anyway, e.g. "
            f"448×252)"
        ) from None
    except FileNotFoundError:
        raise VniahdError(f"image {path} not found; check the path in the needle file") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise VniahdError(f"cannot read image {path}: {exc}; use a PNG or JPEG file") from None
    try:
        yield im
    finally:
        im.close()


def _decoded(path: Path, im) -> None:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im.load()
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt pixel data
        raise VniahdError(
            f"cannot read image {path}: {exc}; the file is damaged, re-export it as PNG or JPEG"
        ) from None


def check_image(path: str | Path) -> ImageFacts:
    """Open and fully decode ``path``; return its size, mode and whether it has transparency."""
    p = Path(path)
    with open_image(p) as im:
        _decoded(p, im)
        return ImageFacts(p, im.width, im.height, im.mode, has_alpha(im))


def check_images(needle_set) -> list[ImageFacts]:
    """Decode every needle and distractor image of a needle set, in order (needle, its distractors)."""
    facts: list[ImageFacts] = []
    for n in needle_set:
        # a V-RULER task item holds several images (or none: counting's bare haystack)
        facts.extend(check_image(p) for p in (n.images if hasattr(n, "images") else (n.image,)))
        facts.extend(check_image(d) for d in n.distractors)
    return facts


def read_rgb(
    path: str | Path, size: tuple[int, int] | None, background: tuple[int, int, int] = DEFAULT_BACKGROUND
) -> tuple[np.ndarray, ImageFacts]:
    """An image as uint8 RGB at ``size`` (H, W; ``None`` keeps its size), antialiased bicubic like
    the haystack frames; transparency composited on ``background``. Returns (pixels, facts)."""
    from PIL import Image

    p = Path(path)
    with open_image(p) as im:
        _decoded(p, im)
        facts = ImageFacts(p, im.width, im.height, im.mode, has_alpha(im))
        if facts.has_alpha:
            rgba = im.convert("RGBA")
            base = Image.new("RGBA", rgba.size, (*background, 255))
            out = Image.alpha_composite(base, rgba).convert("RGB")
        else:
            out = im.convert("RGB")
        if size is not None and out.size != (size[1], size[0]):
            out = out.resize((size[1], size[0]), Image.Resampling.BICUBIC)
        return np.asarray(out), facts
