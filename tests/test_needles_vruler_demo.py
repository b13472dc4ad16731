"""The V-RULER demo needle sets (needles/vruler-demo/): released formats, consistent answers, rebuild."""

from __future__ import annotations

import ast
import json

import pytest

from vniahd.errors import UnknownNameError
from vniahd.needles import TASK_FILES, load_task_items
from vniahd.needles.vruler_demo import (
    COUNTING_ITEMS,
    IMAGE_TASKS,
    MULTI_KEY_ITEMS,
    ORDERING_ITEMS,
    build_vruler_demo,
    card_specs,
    vruler_demo_path,
)

DEMO = vruler_demo_path("counting").parent
SPECS = card_specs()
LETTERS = "ABCD"


def _answer_text(task: str, i: int) -> str:
    item = load_task_items(vruler_demo_path(task)).items[i]
    assert item.options is not None and len(item.options) == 4
    return item.options[LETTERS.index(item.answer)]


@pytest.mark.parametrize("task", IMAGE_TASKS)
def test_every_file_loads_as_its_task(task):
    path = vruler_demo_path(task)
    assert path.name == TASK_FILES[task] and path.parent == DEMO
    s = load_task_items(path)
    assert s.task == task and len(s) == 5
    for it in s.items:
        assert it.answer in LETTERS and it.options is not None and len(it.options) == 4
        assert all(p.parent == (DEMO / "images").resolve() for p in it.images + it.distractors)


def test_released_path_shapes():
    raw = {t: json.loads(vruler_demo_path(t).read_text()) for t in IMAGE_TASKS}
    assert all(isinstance(e["path"], str) for e in raw["multi-key"])  # a string holding a list
    assert all(isinstance(ast.literal_eval(e["path"]), list) for e in raw["multi-key"])
    assert [len(e["path"]) for e in raw["counting"]] == [0, 1, 1, 2, 2]
    assert raw["counting"][3]["path"][0] == raw["counting"][3]["path"][1]  # the same image twice
    assert all(2 <= len(e["path"]) <= 4 for e in raw["ordering"])
    assert all(set(e) == {"path", "interrupt_path", "prompt", "answer"} for e in raw["niah"])
    assert all(3 <= len(ast.literal_eval(e["path"])) <= 4 for e in raw["multi-key"])


def test_counting_answers_equal_the_objects_shown():
    s = load_task_items(vruler_demo_path("counting"))
    for i, (it, meta) in enumerate(zip(s.items, COUNTING_ITEMS)):
        shown = sum(SPECS[p.name].objects.count(meta.object) for p in it.images)
        assert int(_answer_text("counting", i)) == shown
        assert [int(o) for o in it.options or ()].count(shown) == 1
    assert [sum(len(SPECS[p.name].objects) for p in it.images) for it in s.items] == [0, 1, 1, 2, 3]


def test_ordering_answers_are_the_list_order():
    s = load_task_items(vruler_demo_path("ordering"))
    assert len({p.name for it in s.items for p in it.images}) == 4
    for i, it in enumerate(s.items):
        shown = [SPECS[p.name].objects[0] for p in it.images]
        assert len(set(shown)) == len(shown) and tuple(shown) == ORDERING_ITEMS[i].order
        assert _answer_text("ordering", i).split(", ") == shown
        assert [o.split(", ") for o in it.options or ()].count(shown) == 1


def test_multi_key_answers_are_the_set_shown():
    s = load_task_items(vruler_demo_path("multi-key"))
    for i, (it, meta) in enumerate(zip(s.items, MULTI_KEY_ITEMS)):
        cards = [SPECS[p.name] for p in it.images]
        if meta.key == "colour":  # one colour, different objects
            assert {c.colour for c in cards} == {meta.shared}
            shown = [c.objects[0] for c in cards]
        else:  # one object, different colours
            assert {c.objects for c in cards} == {(meta.shared,)}
            shown = [c.colour for c in cards]
        assert len(set(shown)) == len(shown)
        assert set(_answer_text("multi-key", i).split(", ")) == set(shown)
        assert [set(o.split(", ")) for o in it.options or ()].count(set(shown)) == 1


def test_niah_interrupt_shows_a_wrong_option_on_another_colour():
    s = load_task_items(vruler_demo_path("niah"))
    for i, it in enumerate(s.items):
        needle, (dist,) = SPECS[it.images[0].name], it.distractors
        interrupt = SPECS[dist.name]
        assert it.question.endswith(f"coloured {needle.colour}?")
        assert needle.objects == (_answer_text("niah", i),)
        assert interrupt.objects[0] in (it.options or ()) and interrupt.objects != needle.objects
        assert interrupt.colour != needle.colour


def test_rebuild_is_byte_identical(tmp_path):
    paths = build_vruler_demo(tmp_path)
    assert {t: p.name for t, p in paths.items()} == {t: TASK_FILES[t] for t in IMAGE_TASKS}
    for p in paths.values():
        assert p.read_bytes() == (DEMO / p.name).read_bytes()
    built = sorted(p.name for p in (tmp_path / "images").iterdir())
    assert built == sorted(p.name for p in (DEMO / "images").iterdir()) == sorted(SPECS)
    for name in built:  # one Pillow/zlib: the same bytes
        assert (tmp_path / "images" / name).read_bytes() == (DEMO / "images" / name).read_bytes(), name
    assert sum(f.stat().st_size for f in DEMO.rglob("*") if f.is_file()) < 1_000_000


def test_unknown_task():
    with pytest.raises(UnknownNameError):
        vruler_demo_path("lengthy")
