"""Demo needle sets for the V-RULER tasks (``needles/vruler-demo/``), in the released file formats.

The released V-RULER needle files (``videorope_plus/v_ruler/data/*.json``) name images that are
mostly not shipped, so no V-RULER task can be run end to end from the release alone. This module
builds a small, redistributable stand-in: one file per task, named as released and shaped exactly
as released, so :func:`vniahd.needles.vruler.load_task_items` reads it unchanged:

- ``counting.json``: 5 items with k = 0, 1, 1, 2, 2 images as released (``[]``, ``[cat_1]``,
  ``[coffee_1]``, ``[cat_1, cat_1]``, ``[cat_2, cat_1]``); ``cat_2.png`` shows two cats on one card,
  and the question asks how many cats (coffees) the whole video shows;
- ``ordering.json``: 4 distinct cards, items of 2–4 of them; which order do they appear in;
- ``multi_key_multi_value.json``: 3–4 cards sharing a colour (or an object); which objects
  (colours) are on them; ``path`` is a string holding a Python list, as released;
- ``v_niah_d.json``: the first five demo needles (:data:`vniahd.needles.demo.DEMO_NEEDLES`) with
  their distractor as ``interrupt_path``.

Prompts follow the released layout (question, instruction, ``A. x`` lines, instruction again) and
use the objects and colours of :mod:`vniahd.needles.cards`, words the shipped tiny model knows.
Images are 252×448 PNG cards in ``images/`` (flat, looked up by file name, ``.png`` as the
release's embedding script expects), quantised to a 64-colour palette so that the folder stays
well under 1 MB. ``scripts/build_vruler_demo_needles.py`` regenerates the folder; the output is
byte-identical on one Pillow/zlib. The item tables below are the builder's metadata: tests check
answers against them, not against the prompt text.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from vniahd.errors import UnknownNameError
from vniahd.files import atomic_write, write_text_atomic
from vniahd.needles.cards import COLOURS, OBJECTS, render_objects_card
from vniahd.needles.demo import DEMO_NEEDLES, DEMO_SIZE, question_for
from vniahd.needles.prompts import MC_INSTRUCTION
from vniahd.needles.vruler import TASK_FILES

__all__ = [
    "COUNTING_ITEMS",
    "COUNT_CARDS",
    "IMAGE_TASKS",
    "CountingItem",
    "MULTI_KEY_ITEMS",
    "MultiKeyItem",
    "NIAH_NEEDLES",
    "ORDERING_CARDS",
    "ORDERING_ITEMS",
    "OrderingItem",
    "PALETTE_COLOURS",
    "Card",
    "build_vruler_demo",
    "card_specs",
    "vruler_demo_path",
]

#: The tasks this folder serves (the stack's clips are cut from a video: needles/stack_demo.py).
IMAGE_TASKS = tuple(t for t in TASK_FILES if t != "stack")
LETTERS = "ABCD"
PALETTE_COLOURS = 64  # flat cards and photos survive a 64-colour palette; PNGs shrink 3-4x


@dataclass(frozen=True)
class Card:
    """One image: ``objects`` side by side on a card of ``colour``."""

    objects: tuple[str, ...]
    colour: str


def _card(colour: str, obj: str) -> tuple[str, Card]:
    return f"{colour}_{obj}.png", Card((obj,), colour)


# -- counting ---------------------------------------------------------------------------------

# The counted object's cards, named like the release's balloons_1.png / balloons_2.png: a pink card
# (a colour no other task's card uses) showing that many copies of the object.
COUNT_CARDS: dict[str, Card] = {
    "cat_1.png": Card(("cat",), "pink"),
    "cat_2.png": Card(("cat", "cat"), "pink"),
    "coffee_1.png": Card(("coffee",), "pink"),
}


@dataclass(frozen=True)
class CountingItem:
    object: str  # what the question counts
    images: tuple[str, ...]
    options: tuple[int, int, int, int]
    answer: str


# The released items' image pattern and option lists (so the released answers C, A, D, B, D hold).
COUNTING_ITEMS: tuple[CountingItem, ...] = (
    CountingItem("cat", (), (2, 3, 0, 1), "C"),
    CountingItem("cat", ("cat_1.png",), (1, 6, 4, 2), "A"),
    CountingItem("coffee", ("coffee_1.png",), (2, 3, 4, 1), "D"),
    CountingItem("cat", ("cat_1.png", "cat_1.png"), (4, 2, 3, 6), "B"),  # the same image twice, as released
    CountingItem("cat", ("cat_2.png", "cat_1.png"), (2, 4, 1, 3), "D"),
)


def counting_question(obj: str) -> str:
    return (
        f"Find the cards with a {obj}. If one card shows k of them, count them k times. "
        f"How many times does the {obj} appear in the video?"
    )


# -- ordering ---------------------------------------------------------------------------------

# Four cards (object → card colour) that differ in both object and colour, so either cue tells
# them apart.
ORDERING_CARDS: dict[str, str] = {"cat": "red", "rocket": "blue", "horse": "yellow", "coffee": "green"}


@dataclass(frozen=True)
class OrderingItem:
    order: tuple[str, ...]  # objects, in the order their cards appear
    options: tuple[str, ...]  # "cat, rocket"; "only cat" as the release words a partial order
    answer: str


# As released: two 2-card items, one 3-card, two 4-card items sharing their options; answer letters
# vary (the release answers A, A, A, B, D). Options are the prompt's text: objects joined by ", ".
_FOUR = (
    "cat, rocket, horse, coffee",
    "rocket, cat, coffee, horse",
    "cat, coffee, horse, rocket",
    "coffee, horse, rocket, cat",
)
ORDERING_ITEMS: tuple[OrderingItem, ...] = (
    OrderingItem(("cat", "rocket"), ("rocket, cat", "cat, rocket", "only rocket", "only cat"), "B"),
    OrderingItem(("cat", "rocket", "horse"),
                 ("rocket, cat, horse", "cat, horse, rocket", "cat, rocket, horse", "horse, rocket, cat"),
                 "C"),
    OrderingItem(("coffee", "horse"), ("coffee, horse", "horse, coffee", "only coffee", "only horse"), "A"),
    OrderingItem(("rocket", "cat", "coffee", "horse"), _FOUR, "B"),
    OrderingItem(("coffee", "horse", "rocket", "cat"), _FOUR, "D"),
)  # fmt: skip


def ordering_question(objects: tuple[str, ...]) -> str:
    # Objects listed in a fixed order (not the answer's), so the question does not give it away.
    listed = [o for o in ORDERING_CARDS if o in objects]
    return f"Find the cards with {', '.join(listed)}. In which order do the cards appear?"


# -- multi-key --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MultiKeyItem:
    key: str  # "colour": the cards share a colour and the values are objects; "object": vice versa
    shared: str
    values: tuple[str, ...]  # in the order the cards are listed
    options: tuple[str, ...]  # "cat, coffee, rocket"
    answer: str

    @property
    def cards(self) -> tuple[tuple[str, str], ...]:
        """(object, colour) of each card, in the listed order."""
        return tuple((v, self.shared) if self.key == "colour" else (self.shared, v) for v in self.values)

    @property
    def images(self) -> tuple[str, ...]:
        return tuple(_card(c, o)[0] for o, c in self.cards)


# Like the release: three "one character, several actions" items (here: one colour, several
# objects), then items where the shared thing is the action (here: the object, on several colours).
MULTI_KEY_ITEMS: tuple[MultiKeyItem, ...] = (
    MultiKeyItem("colour", "orange", ("cat", "coffee", "rocket"),
                 ("cat, horse, coins", "coffee, rocket, astronaut", "cat, coffee, rocket",
                  "horse, cat, photographer"), "C"),
    MultiKeyItem("colour", "purple", ("horse", "coins", "astronaut"),
                 ("coins, cat, rocket", "horse, coins, astronaut", "astronaut, coffee, horse",
                  "photographer, coins, cat"), "B"),
    MultiKeyItem("colour", "cyan", ("photographer", "cat", "coffee"),
                 ("photographer, cat, coffee", "rocket, photographer, horse", "coffee, coins, cat",
                  "cat, astronaut, rocket"), "A"),
    MultiKeyItem("object", "rocket", ("orange", "pink", "green"),
                 ("red, pink, blue", "orange, yellow, green", "pink, purple, orange", "pink, green, orange"),
                 "D"),
    MultiKeyItem("colour", "yellow", ("astronaut", "coins", "cat", "photographer"),
                 ("astronaut, horse, cat, rocket", "coins, cat, coffee, photographer",
                  "coins, astronaut, photographer, cat", "photographer, rocket, astronaut, horse"), "C"),
)  # fmt: skip


def multi_key_question(item: MultiKeyItem) -> str:
    if item.key == "colour":
        return f"Find the cards coloured {item.shared}. Which objects are on them?"
    return f"Find the cards with a {item.shared}. Which colours are the cards?"


# -- niah -------------------------------------------------------------------------------------

NIAH_NEEDLES = DEMO_NEEDLES[:5]  # the demo set's cards, questions and distractors


def _niah_names(i: int) -> tuple[str, str]:
    d = NIAH_NEEDLES[i]
    name = _card(d.colour, d.object)[0]
    return name, name.replace(".png", "_interrupt.png")  # named after the needle, as released


# -- files ------------------------------------------------------------------------------------


def _prompt(question: str, options: list[str]) -> str:
    # The released layout: instruction before and after the "A. x" lines.
    lines = [question, MC_INSTRUCTION, *(f"{LETTERS[i]}. {o}" for i, o in enumerate(options)), MC_INSTRUCTION]
    return "\n".join(lines)


def card_specs() -> dict[str, Card]:
    """Every image file name of the demo sets → what it shows (a name shared by tasks is one image)."""
    specs: dict[str, Card] = dict(COUNT_CARDS)
    named = [_card(c, o) for o, c in ORDERING_CARDS.items()]
    named += [_card(c, o) for it in MULTI_KEY_ITEMS for o, c in it.cards]
    for i, d in enumerate(NIAH_NEEDLES):
        needle, interrupt = _niah_names(i)
        named += [
            (needle, Card((d.object,), d.colour)),
            (interrupt, Card((d.distractor_object,), d.distractor_colour)),
        ]
    for name, card in named:
        assert specs.setdefault(name, card) == card, f"{name} names two different cards"
    return specs


def _check(
    options: tuple[Any, ...], answer: str, right: object, same: Callable[[Any, Any], bool] = operator.eq
) -> None:
    """Exactly one option, the answer's, is right, and options are distinct."""
    assert len(options) == 4 and len(set(options)) == 4 and answer in LETTERS
    assert [LETTERS[i] for i, o in enumerate(options) if same(o, right)] == [answer], (options, right)


Entry = dict[str, "str | list[str]"]  # one JSON item


def _items() -> dict[str, list[Entry]]:
    """The JSON items of each task, keys in the released order."""
    counting: list[Entry] = []
    for c in COUNTING_ITEMS:
        n = sum(COUNT_CARDS[p].objects.count(c.object) for p in c.images)
        _check(c.options, c.answer, n)
        counting.append(
            {
                "path": list(c.images),
                "prompt": _prompt(counting_question(c.object), [str(k) for k in c.options]),
                "answer": c.answer,
            }
        )
    ordering: list[Entry] = []
    for o in ORDERING_ITEMS:
        _check(o.options, o.answer, list(o.order), lambda a, b: a.split(", ") == b)
        ordering.append(
            {
                "path": [_card(ORDERING_CARDS[x], x)[0] for x in o.order],
                # the released ordering prompts start with a newline
                "prompt": "\n" + _prompt(ordering_question(o.order), list(o.options)),
                "answer": o.answer,
            }
        )
    multi: list[Entry] = []
    for m in MULTI_KEY_ITEMS:
        _check(m.options, m.answer, set(m.values), lambda a, b: set(a.split(", ")) == b)
        multi.append(
            {
                "path": repr(list(m.images)),  # a string holding a Python list, as released
                "prompt": _prompt(multi_key_question(m), list(m.options)),
                "answer": m.answer,
            }
        )
    niah: list[Entry] = []
    for i, d in enumerate(NIAH_NEEDLES):
        needle, interrupt = _niah_names(i)
        niah.append(
            {
                "path": needle,
                "interrupt_path": interrupt,
                "prompt": _prompt(question_for(d.colour), list(d.options)),
                "answer": d.answer,
            }
        )
    return {"counting": counting, "ordering": ordering, "multi-key": multi, "niah": niah}


def _save_png(img: Image.Image, path: Path) -> None:
    # Median cut without dithering is deterministic; optimize only changes the zlib effort.
    pal = img.quantize(colors=PALETTE_COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    with atomic_write(path) as fh:
        pal.save(fh, format="PNG", optimize=True)


def build_vruler_demo(out_dir: str | Path) -> dict[str, Path]:
    """Write the four task files and ``images/`` into ``out_dir``; returns task → JSON path."""
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    for name, card in sorted(card_specs().items()):
        assert card.colour in COLOURS and all(o in OBJECTS for o in card.objects)
        _save_png(render_objects_card(card.objects, card.colour, DEMO_SIZE), out / "images" / name)
    paths = {}
    for task, items in _items().items():
        paths[task] = out / TASK_FILES[task]
        # indent 4 and key order as in the released files
        write_text_atomic(paths[task], json.dumps(items, indent=4, ensure_ascii=False) + "\n")
    return paths


def vruler_demo_path(task: str) -> Path:
    """``needles/vruler-demo/<released file>`` of ``task`` in the source tree; built into the cache
    when absent (e.g. a non-editable install), like :func:`vniahd.needles.demo.demo_needles_path`."""
    if task == "stack":
        from vniahd.errors import VniahdError

        raise VniahdError(
            "the stack task's demo clips are cut from a video: use "
            "vniahd.needles.stack_demo.stack_demo_path(VIDEO) (generate --task stack --needles demo does)"
        )
    if task not in TASK_FILES:
        raise UnknownNameError("task", task, list(TASK_FILES))
    repo = Path(__file__).resolve().parents[2] / "needles" / "vruler-demo" / TASK_FILES[task]
    if repo.is_file():
        return repo
    from vniahd.files import cache_dir

    cached = cache_dir("needles", "vruler-demo") / TASK_FILES[task]
    return cached if cached.is_file() else build_vruler_demo(cached.parent)[task]
