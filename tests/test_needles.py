"""Needle sets: native and reference parsers, their errors, prompts, the demo cards."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vniahd.errors import UnknownNameError, VniahdError
from vniahd.needles import (
    COLOURS,
    OBJECTS,
    build_demo_needles,
    load_needle_set,
    parse_options,
    prompt_text,
    render_card,
)

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "needles" / "demo" / "needles.json"


def _img(path: Path, rgb=(200, 10, 10)) -> str:
    Image.new("RGB", (16, 12), rgb).save(path)
    return path.name


def _native(tmp: Path, needles: list[dict]) -> Path:
    p = tmp / "set.json"
    p.write_text(json.dumps({"name": "t", "needles": needles}))
    return p


@pytest.fixture
def imgs(tmp_path):
    for name, rgb in [("n.png", (255, 0, 0)), ("d.png", (0, 0, 255)), ("m.png", (0, 255, 0))]:
        _img(tmp_path / name, rgb)
    return tmp_path


# --- native -------------------------------------------------------------------------------------


def test_demo_set_loads_with_exact_prompt():
    ns = load_needle_set("demo")
    assert ns.format == "native" and len(ns) >= 5
    n = ns.by_id()["red-cat"]
    assert prompt_text(n) == (
        "Options: A. coffee B. cat C. rocket D. horse\n"
        "Which object is on the card coloured red?\n"
        "Answer with the option's letter from the given choices directly."
    )
    assert prompt_text(n, instruction=False).endswith("coloured red?")
    assert n.answer == "B" and n.answer_text == "cat"


def test_demo_set_distractors_show_a_wrong_option_on_another_colour():
    for n in load_needle_set(DEMO):
        assert len(n.options) == 4 and len(n.distractors) == 1
        m = n.meta
        assert n.answer_text == m["object"]
        assert m["distractor_objects"][0] in n.options and m["distractor_objects"][0] != m["object"]
        assert m["distractor_colours"][0] != m["colour"]
        assert n.question.endswith(f"coloured {m['colour']}?")
        assert n.image.is_file() and n.distractors[0].is_file()


def test_native_short_answer_and_paths_relative_to_file(imgs, tmp_path, monkeypatch):
    p = _native(
        imgs,
        [{"id": "q1", "image": "n.png", "question": "How many?", "answer": 200, "distractors": ["d.png"]}],
    )
    monkeypatch.chdir("/")
    ns = load_needle_set(p)
    n = ns.needles[0]
    assert n.options is None and n.answer == "200" and n.image == (imgs / "n.png").resolve()
    assert prompt_text(n) == "How many?\nAnswer the question using a single word or phrase."


def test_fingerprint_covers_json_and_image_bytes(imgs):
    p = _native(imgs, [{"id": "a", "image": "n.png", "question": "Q?", "options": ["x", "y"], "answer": "A"}])
    f1 = load_needle_set(p).fingerprint
    assert load_needle_set(p).fingerprint == f1
    _img(imgs / "n.png", (254, 0, 0))
    f2 = load_needle_set(p).fingerprint
    assert f2 != f1
    p.write_text(p.read_text().replace("Q?", "Q2?"))
    assert load_needle_set(p).fingerprint not in (f1, f2)


@pytest.mark.parametrize(
    "entry, needle_index, fragment",
    [
        ({"id": "a", "image": "missing.png", "question": "Q", "answer": "x"}, 0, "'missing.png' not found"),
        (
            {"id": "a", "image": "n.png", "question": "Q", "options": ["x", "y", "z", "w"], "answer": "E"},
            0,
            "answer 'E' is not among the options A, B, C, D",
        ),
        (
            {"id": "a", "image": "n.png", "question": "Q", "options": ["x", "y"], "answer": "x"},
            0,
            "not among the options",
        ),
        (
            {"id": "a", "image": "n.png", "question": "Q", "answer": "x", "distractors": ["nope.png"]},
            0,
            "distractor 0 'nope.png' not found",
        ),
        ({"id": "a", "image": "n.png", "answer": "x"}, 0, "missing 'question'"),
        ({"id": "a", "image": "n.png", "question": "Q", "answer": "x", "colour": "red"}, 0, "unknown key"),
        ({"id": "a b", "image": "n.png", "question": "Q", "answer": "x"}, 0, "ids may hold only"),
    ],
)
def test_native_errors_point_at_the_entry(imgs, entry, needle_index, fragment):
    ok = {"id": "first", "image": "n.png", "question": "Q", "answer": "x"}
    p = _native(imgs, [ok, entry])
    with pytest.raises(VniahdError) as e:
        load_needle_set(p)
    msg = str(e.value)
    assert fragment in msg and "needle 1" in msg and str(p) in msg


def test_duplicate_id(imgs):
    e = {"id": "dup", "image": "n.png", "question": "Q", "answer": "x"}
    with pytest.raises(VniahdError, match=r"needle 2 \(id 'dup'\): duplicate id, already used by needle 0"):
        load_needle_set(_native(imgs, [e, {**e, "id": "other"}, e]))


def test_malformed_json_names_line(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{"needles": [\n  {"id": "a",}\n]}')
    with pytest.raises(VniahdError, match=r"bad.json is not valid JSON: .* line 2"):
        load_needle_set(p)


def test_not_a_needle_set_and_missing_file(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('{"hello": 1}')
    with pytest.raises(VniahdError, match="not a needle set"):
        load_needle_set(p)
    with pytest.raises(VniahdError, match="not found"):
        load_needle_set(tmp_path / "none.json")


def test_native_file_rejects_distractor_file(imgs):
    p = _native(imgs, [{"id": "a", "image": "n.png", "question": "Q", "answer": "x"}])
    with pytest.raises(VniahdError, match="drop --distractor-needles"):
        load_needle_set(p, p)


# --- reference format ---------------------------------------------------------------------------

REF_PROMPTS = [
    (
        "What colour is the bird?\nA. Red\nB. Yellow\nC. Blue\nD. Green\n"
        "Answer with the option's letter from the given choices directly.",
        "B",
    ),
    ("Which animal appears? (A) a dog (B) a cat (C) a horse (D) a fish", "C"),
    ("Options: A. cat B. coffee C. rocket D. astronaut\nWhich object is on the card coloured red?", "A"),
    ("How many apples are on the table? Answer the question using a single word or phrase.", "200"),
]


def _reference(tmp: Path, prompts=REF_PROMPTS, dist_prompts=None):
    entries, dents = [], []
    for i, (prompt, ans) in enumerate(prompts):
        entries.append({"path": _img(tmp / f"needle_{i}.png"), "prompt": prompt, "answer": ans})
        dents.append(
            {"path": _img(tmp / f"distractor_{i}.png", (0, 0, 200)), "prompt": prompt, "answer": ans}
        )
    if dist_prompts is not None:
        dents = dist_prompts(dents)
    (tmp / "needles.json").write_text(json.dumps(entries))
    (tmp / "distractors.json").write_text(json.dumps(dents))
    return tmp / "needles.json", tmp / "distractors.json"


def test_reference_format_read_as_is(tmp_path):
    p, d = _reference(tmp_path)
    ns = load_needle_set(p, d)
    assert ns.format == "reference" and ns.ids == ["needle_0", "needle_1", "needle_2", "needle_3"]
    n0, n1, n2, n3 = ns.needles
    assert n0.options == ("Red", "Yellow", "Blue", "Green") and n0.question == "What colour is the bird?"
    assert n0.answer_text == "Yellow"
    assert n1.options == ("a dog", "a cat", "a horse", "a fish") and n1.question == "Which animal appears?"
    assert n2.options == ("cat", "coffee", "rocket", "astronaut")
    assert n2.question == "Which object is on the card coloured red?"
    assert n3.options is None and n3.answer == "200"
    for n, (prompt, _) in zip(ns, REF_PROMPTS):
        assert prompt_text(n) == prompt  # verbatim
        assert n.distractors[0].name.startswith("distractor_")
    assert (
        prompt_text(n0, instruction=False) == "What colour is the bird?\nA. Red\nB. Yellow\nC. Blue\nD. Green"
    )
    # without the distractor file: same needles, no distractors
    assert all(n.distractors == () for n in load_needle_set(p))


def test_parse_options_edge_cases():
    assert parse_options("Just a question?") == ("Just a question?", None)
    assert parse_options("Pick:\nA) one\nB) two") == ("Pick:", ("one", "two"))
    assert parse_options("Is it A. or not") == ("Is it A. or not", None)


def test_reference_errors(tmp_path):
    p, d = _reference(tmp_path, prompts=[("Q?\nA. x\nB. y\nC. z\nD. w", "E")])
    with pytest.raises(VniahdError, match=r"entry 0 \(id 'needle_0'\): answer 'E' is not among the options"):
        load_needle_set(p, d)
    p, d = _reference(tmp_path, prompts=[("Q? no options", "B")])
    with pytest.raises(VniahdError, match="looks like an option letter but no options"):
        load_needle_set(p)
    p, d = _reference(tmp_path, prompts=REF_PROMPTS[:2], dist_prompts=lambda ds: ds[:1])
    with pytest.raises(VniahdError, match="1 entries but .* has 2"):
        load_needle_set(p, d)
    p, d = _reference(
        tmp_path, prompts=REF_PROMPTS[:2], dist_prompts=lambda ds: [ds[0], {**ds[1], "prompt": "different"}]
    )
    with pytest.raises(VniahdError, match=r"distractors.json: entry 1 .*same entries in the same order"):
        load_needle_set(p, d)
    (tmp_path / "needle_1.png").unlink()
    p, d = _reference(tmp_path, prompts=REF_PROMPTS[:2])
    (tmp_path / "needle_1.png").unlink()
    with pytest.raises(VniahdError, match=r"entry 1 \(id 'needle_1'\): image 'needle_1.png' not found"):
        load_needle_set(p, d)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"path": "needle_0.png", "prompt": "Q"}]))
    with pytest.raises(VniahdError, match="entry 0: needs 'path', 'prompt' and 'answer'"):
        from vniahd.needles.loaders import _reference_entries

        _reference_entries(bad, json.loads(bad.read_text()))


# --- cards and the demo builder -----------------------------------------------------------------


def test_render_card_canonical_and_seeded():
    a = np.asarray(render_card("cat", "red", (126, 224)))
    assert a.shape == (126, 224, 3)
    assert tuple(a[20, 15]) == COLOURS["red"]  # the card colour fills the frame around the photo
    assert tuple(a[0, 0]) == (58, 58, 58)  # neutral surround, so it reads as a card
    red = np.abs(a.astype(int) - COLOURS["red"]).sum(-1) < 10
    assert 0.35 < red.mean() < 0.75
    for quadrant in (red[:63, :112], red[:63, 112:], red[63:, :112], red[63:, 112:]):
        assert quadrant.mean() > 0.25  # every cell of a 2x2 pooled grid sees the colour
    s1 = np.asarray(render_card("cat", "red", (126, 224), seed=7))
    assert np.array_equal(s1, np.asarray(render_card("cat", "red", (126, 224), seed=7)))
    assert not np.array_equal(s1, np.asarray(render_card("cat", "red", (126, 224), seed=8)))
    assert not np.array_equal(s1, a)
    b = np.asarray(render_card("coins", (10, 20, 30), (60, 100)))
    assert tuple(b[8, 6]) == (10, 20, 30)
    with pytest.raises(UnknownNameError, match="valid objects"):
        render_card("unicorn", "red")
    with pytest.raises(UnknownNameError, match="valid colours"):
        render_card("cat", "mauve")


def test_every_object_renders_distinctly():
    cards = {o: np.asarray(render_card(o, "blue", (63, 112))).astype(int) for o in OBJECTS}
    names = list(cards)
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            assert np.abs(cards[names[i]] - cards[names[j]]).mean() > 3


def test_demo_builder_reproduces_committed_set(tmp_path):
    path = build_demo_needles(tmp_path)
    assert json.loads(path.read_text()) == json.loads(DEMO.read_text())
    for f in DEMO.parent.glob("*.jpg"):
        new = np.asarray(Image.open(tmp_path / f.name)).astype(int)
        old = np.asarray(Image.open(f)).astype(int)
        assert new.shape == old.shape == (252, 448, 3)
        assert np.abs(new - old).mean() < 1.0  # same pixels up to the JPEG codec build
    total = sum(f.stat().st_size for f in DEMO.parent.iterdir())
    assert total < 2_000_000


def test_demo_set_copy_is_relocatable(tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(DEMO.parent, dst)
    ns = load_needle_set(dst / "needles.json")
    assert ns.fingerprint == load_needle_set(DEMO).fingerprint
    assert all(str(n.image).startswith(str(dst.resolve())) for n in ns)
