"""EfficientNet-Lite0: strict load of the shipped ImageNet weights, real predictions, features."""

from __future__ import annotations

import numpy as np
import torch

from vniahd.models.tiny import encoder as enc


def test_state_dict_loads_strictly_with_every_key():
    """Every key of the shipped state dict is consumed and none is missing (strict=True), and
    the network has the EfficientNet-B0 block count (16) and the Lite head (1280 channels)."""
    state = torch.load(enc.weights_path(), map_location="cpu", weights_only=True)
    model = enc.EfficientNetLite0()
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert len(model._blocks) == 16
    assert state["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280)
    # No squeeze-excite in Lite: the weights file has no _se_* tensors, and neither do we.
    assert not any("_se_" in k for k in state)


def test_coffee_photo_is_espresso():
    """scikit-image's coffee photo → ImageNet class 967 (espresso), top-1 with high confidence;
    a random (or wrongly padded/normalised) network would not get this."""
    import skimage.data

    logits = enc.classify(skimage.data.coffee())
    probs = logits.softmax(-1)[0]
    assert int(probs.argmax()) == 967
    assert float(probs[967]) > 0.5


def test_cat_photo_is_a_cat():
    """Chelsea the cat → one of ImageNet's domestic-cat classes (281 tabby … 285 Egyptian cat)."""
    import skimage.data

    top = int(enc.classify(skimage.data.chelsea()).argmax())
    assert 281 <= top <= 285


def test_same_padding_matches_tf_rule():
    """TF 'SAME': output = ceil(in/stride); odd total padding puts the extra pixel bottom/right.
    For in=224, k=3, s=2: out=112, pad total = (112-1)*2+3-224 = 1 → (0 top, 1 bottom)."""
    conv = enc.Conv2dSame(1, 1, 3, stride=2, bias=False)
    conv.weight.data.zero_()
    conv.weight.data[0, 0, 1, 1] = 1.0  # picks the centre input of each window
    x = torch.arange(224 * 224, dtype=torch.float32).reshape(1, 1, 224, 224) + 1
    y = conv(x)
    assert y.shape[-2:] == (112, 112)
    # No padding on top/left: window (0,0) covers inputs 0..2, centre (1,1). (Symmetric
    # PyTorch padding=1 would centre it on (0,0) instead.)
    assert float(y[0, 0, 0, 0]) == float(x[0, 0, 1, 1])
    assert float(y[0, 0, 5, 7]) == float(x[0, 0, 11, 15])
    # The extra padding row/column is at the bottom/right: the last window's centre is 223.
    assert float(y[0, 0, -1, -1]) == float(x[0, 0, 223, 223])


def test_features_are_pooled_2x2_row_major():
    """4 tokens per frame = [final 7×7×1280 map ‖ stage-3 28×28×40 map], each average-pooled to
    2×2, row-major; checked against pooling the maps by hand (adaptive pooling of 7 → 2 uses rows
    0..3 and 3..6; of 28 → 2 rows 0..13 and 14..27)."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(2, 64, 96, 3), dtype=np.uint8)
    feats = enc.encode_frames(frames)
    assert feats.shape == (2, 4, 1320)  # [N, tokens, 1280 + 40]
    with torch.no_grad():
        mid, fmap = enc.load_encoder().feature_maps(enc.resize_frames(frames))
    assert fmap.shape[-3:] == (1280, 7, 7) and mid.shape[-3:] == (40, 28, 28)
    top_left = fmap[:, :, 0:4, 0:4].mean(dim=(2, 3))
    bottom_right = fmap[:, :, 3:7, 3:7].mean(dim=(2, 3))
    torch.testing.assert_close(feats[:, 0, :1280], top_left, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(feats[:, 3, :1280], bottom_right, rtol=1e-5, atol=1e-6)
    top_right_mid = mid[:, :, 0:14, 14:28].mean(dim=(2, 3))
    torch.testing.assert_close(feats[:, 1, 1280:], top_right_mid, rtol=1e-5, atol=1e-5)


def test_feature_cache_round_trip(tmp_path, monkeypatch):
    """Cached features equal fresh ones; a second call encodes nothing."""
    monkeypatch.setenv("VNIAHD_CACHE", str(tmp_path))
    from vniahd.models.tiny import features

    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    frames[2] = frames[0]  # duplicate frame: encoded once
    calls = []
    real = enc.encode_frames
    monkeypatch.setattr(enc, "encode_frames", lambda f, **kw: calls.append(len(f)) or real(f, **kw))
    a = features.frame_features(frames, progress=False)
    b = features.frame_features(frames, progress=False)
    assert calls == [2]
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a[0], a[2])
    torch.testing.assert_close(a, real(frames), rtol=1e-5, atol=1e-6)
