"""Our Qwen2-VL patchify vs transformers' PIL image processor and a loop-by-loop reference."""

from __future__ import annotations

import numpy as np
import pytest

from vniahd.errors import VniahdError
from vniahd.models.patchify import (
    CLIP_MEAN,
    CLIP_STD,
    PatchifyConfig,
    merged_grid,
    normalize_frames,
    patchify_frames,
    patchify_group,
    smart_resize,
)


@pytest.mark.parametrize(
    "hw,expected",
    [
        ((252, 448), (252, 448)),  # already multiples of 28: untouched (the reference frame size)
        ((100, 130), (112, 140)),  # round(100/28)=4 → 112, round(130/28)=5 → 140
        ((20, 20), (56, 56)),  # below min_pixels 56·56: scaled up to 2 × 2 blocks
        ((2000, 3000), (812, 1204)),  # above max_pixels: β=√(6e6/1003520)≈2.445; ⌊29.2⌋·28, ⌊43.8⌋·28
    ],
)
def test_smart_resize_literals(hw, expected):
    assert smart_resize(*hw) == expected


def test_merged_grid_reference_frame():
    assert merged_grid((252, 448), PatchifyConfig()) == (9, 16)  # 144 tokens per frame (reference protocol)


@pytest.mark.parametrize("shape", [(56, 84), (100, 130), (252, 448), (30, 200)])
def test_matches_transformers_pil_image_processor(shape):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    img = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3), dtype=np.uint8)
    ref = Qwen2VLImageProcessorPil()(images=[img], return_tensors="np")
    rows, grid = patchify_frames(img[None], PatchifyConfig())
    assert list(ref["image_grid_thw"][0]) == list(grid)
    assert rows.shape == ref["pixel_values"].shape
    np.testing.assert_allclose(rows, ref["pixel_values"], atol=1e-6, rtol=0)


def test_two_frame_group_matches_loop_reference():
    """Video layout: two different frames in one temporal group, row = (C, t, ph, pw) of the
    patch at merged block (bh, bw) and in-block offset (mh, mw) — written as explicit loops."""
    cfg = PatchifyConfig(patch_size=4, merge_size=2, temporal_patch_size=2, min_pixels=64)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 16, 24, 3), dtype=np.uint8)
    pix = normalize_frames(frames, cfg)  # [2, 3, 16, 24]
    rows = patchify_group(pix, cfg)
    p, m = 4, 2
    gh, gw = 16 // p, 24 // p
    expected = []
    for bh in range(gh // m):
        for bw in range(gw // m):
            for mh in range(m):
                for mw in range(m):
                    r, c = (bh * m + mh) * p, (bw * m + mw) * p
                    vec = [
                        pix[t, ch, r + i, c + j]
                        for ch in range(3)
                        for t in range(2)
                        for i in range(p)
                        for j in range(p)
                    ]
                    expected.append(vec)
    np.testing.assert_array_equal(rows, np.asarray(expected, dtype=np.float32))


def test_normalisation_literal():
    """A pure-white pixel normalises to (1 − mean) / std per channel."""
    img = np.full((1, 28, 28, 3), 255, dtype=np.uint8)
    pix = normalize_frames(img, PatchifyConfig())
    want = (1 - np.asarray(CLIP_MEAN)) / np.asarray(CLIP_STD)
    np.testing.assert_allclose(pix[0, :, 0, 0], want, rtol=1e-6)


def test_preprocessor_config_reading():
    cfg = PatchifyConfig.from_preprocessor_config(
        {
            "min_pixels": 3136,
            "max_pixels": 1000000,
            "image_mean": [0.5, 0.5, 0.5],
            "image_std": [0.5, 0.5, 0.5],
            "patch_size": 14,
            "merge_size": 2,
            "temporal_patch_size": 2,
        }
    )
    assert (cfg.min_pixels, cfg.max_pixels, cfg.image_mean) == (3136, 1000000, (0.5, 0.5, 0.5))


def test_bad_frames_rejected():
    with pytest.raises(VniahdError, match="uint8"):
        normalize_frames(np.zeros((1, 28, 28, 3), dtype=np.float32), PatchifyConfig())
