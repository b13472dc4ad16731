"""The one codec for wide embedding rows (vniahd.models.rows) and the narrow backend Protocols
(vniahd.evaluation.contracts) that the shipped backends satisfy."""

from __future__ import annotations

import pytest
import torch

from vniahd.evaluation.contracts import (
    BackendLike,
    FrameEncoder,
    ModelIdentity,
    TextModel,
    TextModelBackendLike,
    VariantApplication,
)
from vniahd.models import get_backend
from vniahd.models.base import Backend
from vniahd.models.qwen3_vl import Qwen3VLBackend
from vniahd.models.rows import RowCodec
from vniahd.models.tiny.backend import ROWS, TinyBackend


def test_hand_built_row_splits_into_its_parts():
    codec = RowCodec(token_width=3, extra_widths=(2, 1))
    assert codec.width == 3 + 2 + 1 + 1
    rows = torch.tensor(
        [
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 1.0],  # visual: token 1 2 3 | extras (4 5), (6) | flag 1
            [7.0, 8.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # text: a 2-wide embedding, zeros, flag 0
            [0.0] * 7,  # a right-padded batch's pad is a text row
        ]
    )
    parts = codec.split(rows)
    assert parts.token.tolist() == [[1, 2, 3], [7, 8, 0], [0, 0, 0]]
    assert [e.tolist() for e in parts.extras] == [[[4, 5], [0, 0], [0, 0]], [[6], [0], [0]]]
    assert parts.visual.tolist() == [True, False, False]
    assert torch.equal(codec.visual_rows(rows[:1, :3], [rows[:1, 3:5], rows[:1, 5:6]]), rows[:1])
    assert torch.equal(codec.text_rows(torch.tensor([[7.0, 8.0]])), rows[1:2])


def test_round_trip_keeps_every_value_and_dtype():
    g = torch.Generator().manual_seed(0)
    codec = RowCodec(token_width=8, extra_widths=(8, 8))
    token, a, b = (torch.randn(2, 5, 8, generator=g).to(torch.bfloat16) for _ in range(3))
    visual = codec.visual_rows(token, [a, b])
    assert visual.shape == (2, 5, codec.width) and visual.dtype == torch.bfloat16
    parts = codec.split(visual)
    assert torch.equal(parts.token, token)
    assert torch.equal(parts.extras[0], a) and torch.equal(parts.extras[1], b)
    assert bool(parts.visual.all())
    emb = torch.randn(4, 6, generator=g)  # narrower than the token slice (the tiny model's d)
    text = codec.split(codec.text_rows(emb))
    assert torch.equal(text.token[:, :6], emb) and not bool(text.token[:, 6:].any())
    assert not bool(text.visual.any()) and all(not bool(e.any()) for e in text.extras)


def test_codec_refuses_parts_that_do_not_fit():
    codec = RowCodec(token_width=4, extra_widths=(4,))
    with pytest.raises(ValueError, match="does not fit"):
        codec.text_rows(torch.zeros(1, 5))
    with pytest.raises(ValueError, match="do not match"):
        codec.visual_rows(torch.zeros(1, 4), [])
    with pytest.raises(ValueError, match="wide"):
        codec.split(torch.zeros(1, 8))


def test_tiny_rows_use_the_codec():
    """The tiny backend's rows: 1320 encoder features (or the d-wide word embedding) | flag, with
    visual rows flagged 1; ``hidden_size`` is the model's d, ``row_width`` the row's."""
    be = get_backend("tiny")
    assert isinstance(be, TinyBackend)
    assert be.row_width == ROWS.width == 1321 and be.hidden_size == be.recipe.train.model.hidden_size


def _static_check(tiny: TinyBackend, q3: Qwen3VLBackend, base: Backend) -> list[BackendLike]:
    """Checked by mypy (``mypy tests/test_models_rows.py``): the backends are BackendLike."""
    flops_side: TextModelBackendLike = base
    assert flops_side is base
    return [tiny, q3, base]


@pytest.mark.parametrize("spec", ["tiny", "random:qwen3-vl", "random:qwen2-vl"])
def test_backends_satisfy_the_protocols(spec):
    be = get_backend(spec)
    for proto in (ModelIdentity, FrameEncoder, TextModel, VariantApplication, BackendLike):
        assert isinstance(be, proto), proto.__name__
    assert isinstance(be.progress, bool) and (be.family == "") is (spec == "tiny")
    assert be.stock_forward is (spec != "tiny")
    if spec == "random:qwen3-vl":
        assert isinstance(be, Qwen3VLBackend)
        assert be.row_width == be.hidden_size * (1 + be.deepstack_levels) + 1
        assert be.describe()["input_width"] == be.row_width
    elif spec == "random:qwen2-vl":
        assert be.row_width == be.hidden_size and "input_width" not in be.describe()
