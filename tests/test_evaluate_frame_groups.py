"""Datasets with two sampled frames per temporal group (the released V-NIAH-D protocol) are
evaluated as such: each haystack slot is one temporal group of two consecutive frames."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vniahd.evaluation import EvalConfig, Runner, read_results
from vniahd.models import get_backend
from vniahd.rope import get_variant


@pytest.fixture(scope="module")
def grouped(tmp_path_factory):
    """A 24-frame synthetic haystack (each frame distinct), 2 frames per group = 12 groups."""
    from vniahd.dataset.generate import generate
    from vniahd.media import write_mp4
    from vniahd.needles import demo_needles_path

    root = tmp_path_factory.mktemp("groups")
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (56, 84, 3), dtype=np.uint8) for _ in range(24)]
    video = write_mp4(frames, root / "hay.mp4", 1.0)
    ds = generate(
        haystack=video,
        needles=demo_needles_path(),
        out=root / "ds",
        lengths="4,8",
        depths="0,1",
        schedule="none",
        size=(56, 84),
        frames_per_group=2,
        progress=False,
    )
    return root, ds


def test_grouped_dataset_is_encoded_in_pairs_and_recorded(grouped):
    root, ds = grouped
    assert ds.frames_per_group == 2
    be = get_backend("random:qwen2-vl")
    variants = [get_variant("mrope"), get_variant("mrope-timed")]
    runner = Runner(ds, be, EvalConfig(variants=variants, limit=6, progress=False), root / "out")
    runner.run()
    run = json.loads((root / "out" / "run.json").read_text())
    assert run["frames_per_group"] == 2
    # a group spans two 1 fps frames: Qwen2.5-VL-style absolute time advances 2 s per group
    assert run["variants"]["mrope-timed"]["layout_params"]["second_per_grid_t"] == 2.0
    assert len(read_results(root / "out")) == 2 * 6
    # the cached haystack embedding of group k is the vision tower on frames 2k and 2k+1 together
    hay, key = runner.haystack_input()
    assert hay.shape[1] == 2 and key.endswith("-fpg2")
    cached = runner.cache.haystack(hay, key)
    frames = ds.haystack_frames()
    for k in (0, 5):
        pair = be.encode_frames(np.stack([frames[2 * k], frames[2 * k + 1]])[None])[0]
        # encoded in a batch vs alone: another batch shape may round differently (seen on AMD
        # EPYC with 2 threads: 116 of 384 values off by up to 2.2e-8), so float tolerance, not bits
        torch.testing.assert_close(torch.from_numpy(np.array(cached[k])), pair, rtol=1e-5, atol=1e-6)
        assert not torch.allclose(pair, be.encode_frames(frames[2 * k][None])[0], atol=1e-3)


def test_tiny_model_refuses_a_grouped_dataset(grouped):
    from vniahd.errors import VniahdError
    from vniahd.models.tiny.backend import TinyBackend

    _, ds = grouped
    with pytest.raises(VniahdError, match="--frames-per-group 1"):
        TinyBackend.encode_frames(object.__new__(TinyBackend), ds.haystack_groups()[:1])
