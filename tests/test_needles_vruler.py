"""The released V-RULER needle files read as they are: string-list, list and interrupt paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vniahd.errors import UnknownNameError, VniahdError
from vniahd.needles import TASK_FILES, load_task_items
from vniahd.needles.vruler import needle_id_of, parse_path_list
from vniahd.plan.tasks import TASKS, plan_task

MC = "Find the balloons. What are they doing?\nA. x\nB. y\nC. z\nD. w"


def _write(tmp: Path, name: str, items: list, images: list[str], where: str = "images") -> Path:
    folder = tmp / where if where else tmp
    folder.mkdir(exist_ok=True)
    for img in images:
        (folder / img).write_bytes(f"png {img}".encode())
    p = tmp / name
    p.write_text(json.dumps(items))
    return p


def test_task_names_and_files_match_the_registry():
    assert set(TASK_FILES) == set(TASKS)
    assert all(TASKS[t].released_file == f for t, f in TASK_FILES.items())


def test_multi_key_string_path(tmp_path):
    items = [
        {"path": "['b_jump.png', 'b_clean.png', 'b_work.png']", "prompt": MC, "answer": "C"},
        {"path": " ['b_clean.png'] ", "prompt": "How many?\n(A) 1\n(B) 2", "answer": "A"},
    ]
    p = _write(tmp_path, "multi_key_multi_value.json", items, ["b_jump.png", "b_clean.png", "b_work.png"])
    s = load_task_items(p)
    assert s.task == "multi-key" and len(s) == 2 and s.source == str(p)
    it = s.items[0]
    assert it.id == "item0" and it.needle_ids == ("b_jump", "b_clean", "b_work")
    assert it.images == tuple(
        (tmp_path / "images" / n).resolve() for n in ("b_jump.png", "b_clean.png", "b_work.png")
    )
    assert it.options == ("x", "y", "z", "w") and it.answer == "C" and it.answer_text == "z"
    assert it.prompt == MC and it.question == "Find the balloons. What are they doing?"
    assert s.specs() == [("item0", ("b_jump", "b_clean", "b_work")), ("item1", ("b_clean",))]
    trials = plan_task("multi-key", s.specs(), lengths=[100], depths=["0"])
    assert [t.needle_ids for t in trials] == [("b_jump", "b_clean", "b_work"), ("b_clean",)]
    # the fingerprint covers the images
    (tmp_path / "images" / "b_work.png").write_bytes(b"changed")
    assert load_task_items(p).fingerprint != s.fingerprint


def test_counting_list_path_with_directories_and_empty_list(tmp_path):
    items = [
        {"path": [], "prompt": "How many cakes?\nA. 1\nB. 2\nC. 0", "answer": "C"},
        {
            "path": ["/fs/needles/balloons_1.png", "balloons_1.png"],
            "prompt": "Count? A. 1 B. 2",
            "answer": "B",
        },
        {"path": ["a/b/cakes_1.x.png"], "prompt": "How many cakes are there?", "answer": 1},
    ]
    p = _write(tmp_path, "counting.json", items, ["balloons_1.png", "cakes_1.x.png"], where="")
    s = load_task_items(p)
    assert s.task == "counting"
    assert s.items[0].images == () and s.items[0].needle_ids == ()
    assert s.items[1].needle_ids == ("balloons_1", "balloons_1")
    assert s.items[1].images == ((tmp_path / "balloons_1.png").resolve(),) * 2
    assert s.items[1].options == ("1", "2")
    assert s.items[2].needle_ids == ("cakes_1",) and s.items[2].options is None and s.items[2].answer == "1"
    trials = plan_task("counting", s.specs(), lengths=[10], depths=["0"])
    assert [t.needle_slots for t in trials] == [(), (1, 11), (1,)]


def test_ordering_and_explicit_task(tmp_path):
    items = [
        {"path": ["flowers.png", "shoes.png"], "prompt": "\nWhich order?\nA. f,s\nB. s,f", "answer": "A"}
    ]
    p = _write(tmp_path, "my_order.json", items, ["flowers.png", "shoes.png"])
    with pytest.raises(VniahdError, match="cannot tell the task"):
        load_task_items(p)
    s = load_task_items(p, "ordering")
    assert s.task == "ordering" and s.items[0].needle_ids == ("flowers", "shoes")
    assert s.items[0].prompt.startswith("\n")  # kept verbatim
    with pytest.raises(UnknownNameError, match="valid tasks"):
        load_task_items(p, "lengthy")


def test_niah_interrupt_path(tmp_path):
    items = [
        {"path": "selenium_green.png", "interrupt_path": "selenium_green_interrupt.png",
         "prompt": "\nWhat is the number?", "answer": "200"},
        {"path": "bus_stop.png", "interrupt_path": "bus_stop_interrupt.png",
         "prompt": "Find the bus stop.\nA. a\nB. b\nC. c", "answer": "C"},
    ]  # fmt: skip
    imgs = ["selenium_green.png", "selenium_green_interrupt.png", "bus_stop.png", "bus_stop_interrupt.png"]
    s = load_task_items(_write(tmp_path, "v_niah_d.json", items, imgs))
    assert s.task == "niah"
    assert s.items[0].needle_ids == ("selenium_green",) and s.items[0].distractor_ids == (
        "selenium_green_interrupt",
    )
    assert s.items[0].distractors == ((tmp_path / "images" / "selenium_green_interrupt.png").resolve(),)
    assert s.items[0].options is None and s.items[0].answer == "200"
    assert s.items[1].options == ("a", "b", "c")
    trials = plan_task("niah", s.specs(), lengths=[100], depths=["0.5"])
    assert [t.needle_slots for t in trials] == [(50,), (50,)]


def test_parse_path_list_is_literal_only():
    assert parse_path_list("w", "['a.png', \"b.png\"]") == ["a.png", "b.png"]
    assert parse_path_list("w", "('a.png',)") == ["a.png"]
    for bad in ["['a.png'", "__import__('os').system('true')", "a.png, b.png", "[f(x)]"]:
        with pytest.raises(VniahdError, match="is not a Python list of image names"):
            parse_path_list("w", bad)
    for bad in ["[]", "'a.png'", "{'a.png': 1}"]:
        with pytest.raises(VniahdError, match="non-empty list"):
            parse_path_list("w", bad)
    with pytest.raises(VniahdError, match="non-empty strings"):
        parse_path_list("w", "['a.png', 3]")
    with pytest.raises(VniahdError, match="must be a string holding a list"):
        parse_path_list("w", ["a.png"])
    assert needle_id_of("dir/x.y.png") == "x" and needle_id_of("x.png") == "x"


@pytest.mark.parametrize(
    "name, item, fragment",
    [
        (
            "counting.json",
            {"path": ["missing.png"], "prompt": "Q?", "answer": "1"},
            "image 'missing.png' not found",
        ),
        (
            "counting.json",
            {"path": "['a.png']", "prompt": "Q?", "answer": "1"},
            "must be a list of image names",
        ),
        ("counting.json", {"path": ["a.png"], "prompt": "  ", "answer": "1"}, "empty or non-text 'prompt'"),
        ("counting.json", {"path": ["a.png"], "prompt": "Q?", "answer": ""}, "empty or non-text 'answer'"),
        ("counting.json", {"path": ["a.png"], "prompt": "Q? no options", "answer": "B"}, "no options"),
        ("counting.json", {"path": ["a.png"], "prompt": "Q?"}, "needs path, prompt, answer"),
        ("ordering.json", {"path": ["a.png", ""], "prompt": "Q?", "answer": "x"}, "non-empty strings"),
        (
            "multi_key_multi_value.json",
            {"path": "['a.png',", "prompt": "Q?", "answer": "x"},
            "not a Python list",
        ),
        (
            "multi_key_multi_value.json",
            {"path": ["a.png"], "prompt": "Q?", "answer": "x"},
            "string holding a list",
        ),
        ("v_niah_d.json", {"path": "a.png", "prompt": "Q?", "answer": "x"}, "interrupt_path"),
        ("counting.json", {"path": ["_a.png"], "prompt": "Q?", "answer": "1"}, "rename the file"),
    ],
)
def test_errors_name_file_item_and_fix(tmp_path, name, item, fragment):
    good = {"path": "['a.png']" if name.startswith("multi") else ["a.png"], "prompt": "Q?", "answer": "1"}
    p = _write(tmp_path, name, [good, item], ["a.png", "_a.png"])
    if name == "v_niah_d.json":
        p.write_text(json.dumps([item]))
    with pytest.raises(VniahdError, match=fragment) as err:
        load_task_items(p)
    assert str(p) in str(err.value) and "item" in str(err.value)
    assert ("item 0" if name == "v_niah_d.json" else "item 1") in str(err.value)


def test_file_level_errors(tmp_path):
    with pytest.raises(VniahdError, match="not found"):
        load_task_items(tmp_path / "counting.json")
    p = tmp_path / "counting.json"
    p.write_text(json.dumps({"path": []}))
    with pytest.raises(VniahdError, match="expected a JSON list"):
        load_task_items(p)
    p.write_text("[]")
    with pytest.raises(VniahdError, match="no items"):
        load_task_items(p)
    p = _write(
        tmp_path,
        "counting.json",
        [{"path": ["a.png", "a.jpg"], "prompt": "Q", "answer": "2"}],
        ["a.png", "a.jpg"],
    )
    with pytest.raises(VniahdError, match="share the id 'a'"):
        load_task_items(p)
