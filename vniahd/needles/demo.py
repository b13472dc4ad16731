"""The demo needle set (``needles/demo/``): coloured cards with real photos.

Each needle asks which object is on the card of a given colour (the colour is the last word of the
question, see :mod:`vniahd.needles.prompts`), with 4 options. Its distractor shows a *wrong* option's
object on a card of *another* colour, so it looks like the needle and its content is a plausible
answer. ``vniahd needles build-demo`` (or ``scripts/build_demo_needles.py``) regenerates the folder;
the output is byte-identical on a given Pillow/libjpeg.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vniahd.files import atomic_write, write_json_atomic
from vniahd.needles.cards import COLOURS, OBJECTS, render_card

DEMO_SIZE = (252, 448)  # (H, W) = the reference frame size, so images are inserted unscaled
JPEG_QUALITY = 88


@dataclass(frozen=True)
class DemoNeedle:
    colour: str
    options: tuple[str, str, str, str]
    answer: str  # letter
    distractor_option: str  # letter of the wrong option shown on the distractor card
    distractor_colour: str

    @property
    def object(self) -> str:
        return self.options["ABCD".index(self.answer)]

    @property
    def distractor_object(self) -> str:
        return self.options["ABCD".index(self.distractor_option)]

    @property
    def id(self) -> str:
        return f"{self.colour}-{self.object}"


# Hand-chosen so that answers cover every letter, every object and colour appears, and needle and
# distractor colours are never a confusable pair (red/pink/purple, blue/cyan).
DEMO_NEEDLES: tuple[DemoNeedle, ...] = (
    DemoNeedle("red", ("coffee", "cat", "rocket", "horse"), "B", "C", "blue"),
    DemoNeedle("green", ("astronaut", "coins", "coffee", "rocket"), "D", "A", "yellow"),
    DemoNeedle("blue", ("horse", "cat", "astronaut", "coffee"), "A", "B", "orange"),
    DemoNeedle("yellow", ("rocket", "horse", "coffee", "cat"), "C", "B", "purple"),
    DemoNeedle("purple", ("coins", "astronaut", "cat", "photographer"), "A", "D", "green"),
    DemoNeedle("orange", ("cat", "coffee", "photographer", "astronaut"), "D", "C", "red"),
)


def question_for(colour: str) -> str:
    return f"Which object is on the card coloured {colour}?"


def _save_jpeg(img, path: Path) -> None:
    with atomic_write(path) as fh:
        img.save(fh, format="JPEG", quality=JPEG_QUALITY, optimize=True)


def build_demo_needles(out_dir: str | Path) -> Path:
    """Write the demo images and ``needles.json`` into ``out_dir``; returns the JSON path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for d in DEMO_NEEDLES:
        assert d.colour != d.distractor_colour and d.colour in COLOURS and d.distractor_colour in COLOURS
        assert all(o in OBJECTS for o in d.options) and d.answer != d.distractor_option
        image = f"{d.id}.jpg"
        dist = f"{d.distractor_colour}-{d.distractor_object}.jpg"
        _save_jpeg(render_card(d.object, d.colour, DEMO_SIZE), out / image)
        _save_jpeg(render_card(d.distractor_object, d.distractor_colour, DEMO_SIZE), out / dist)
        entries.append(
            {
                "id": d.id,
                "image": image,
                "question": question_for(d.colour),
                "options": list(d.options),
                "answer": d.answer,
                "distractors": [dist],
                "meta": {
                    "object": d.object,
                    "colour": d.colour,
                    "distractor_objects": [d.distractor_object],
                    "distractor_colours": [d.distractor_colour],
                },
            }
        )
    path = out / "needles.json"
    write_json_atomic(
        path,
        {
            "name": "demo",
            "description": "Which object is on the card of a given colour? Photos from scikit-image "
            "on coloured cards; each distractor shows a wrong option on another colour. "
            "Regenerate with `vniahd needles build-demo`.",
            "licence": "images: CC0 / public domain photos from scikit-image (see needles/README.md)",
            "needles": entries,
        },
    )
    return path


def demo_needles_path() -> Path:
    """``needles/demo/needles.json`` in the source tree; built into the cache when absent (e.g. a
    non-editable install)."""
    repo = Path(__file__).resolve().parents[2] / "needles" / "demo" / "needles.json"
    if repo.is_file():
        return repo
    from vniahd.files import cache_dir

    cached = cache_dir("needles", "demo") / "needles.json"
    return cached if cached.is_file() else build_demo_needles(cached.parent)
