"""Which EfficientNet-Lite0 level tells the tiny model a card's colour and its object?

Renders augmented demo cards (random object × colour, the training augmentations), runs the frozen
encoder, average-pools each probed level to 2×2 (as the tiny model's frame features do) and fits a
ridge-regression linear probe (standardised features, one-hot targets) on 2/3 of the cards; prints
held-out accuracy for colour (8 classes) and object. This is the measurement behind the tiny
model's two-level features (:mod:`vniahd.models.tiny.encoder`): the final map is ImageNet-trained to
ignore colour.

    .venv/bin/python bench/encoder_probe.py [--cards 480]
"""

from __future__ import annotations

import argparse
import random

import numpy as np
import torch
import torch.nn.functional as F

from vniahd.models.tiny import encoder as enc
from vniahd.needles.cards import COLOURS, OBJECTS, render_card


def level_features(images: np.ndarray, batch: int = 32) -> dict[str, np.ndarray]:
    """Pooled 2×2 features of the stem, every block and the head: name → [N, C·4]."""
    model = enc.load_encoder()
    out: dict[str, list[torch.Tensor]] = {}
    with torch.no_grad():
        for s in range(0, len(images), batch):
            x = F.relu6(model._bn0(model._conv_stem(enc.resize_frames(images[s : s + batch]))))
            maps = {"stem": x}
            for i, block in enumerate(model._blocks):
                x = block(x)
                maps[f"block{i}"] = x
            maps["head"] = F.relu6(model._bn1(model._conv_head(x)))
            for name, m in maps.items():
                out.setdefault(name, []).append(F.adaptive_avg_pool2d(m, enc.POOL_GRID).flatten(1))
    return {k: torch.cat(v).numpy() for k, v in out.items()}


def ridge_probe(x: np.ndarray, y: np.ndarray, classes: int, train: int, lam: float = 10.0) -> float:
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    a = np.c_[x, np.ones(len(x))]
    w = np.linalg.solve(
        a[:train].T @ a[:train] + lam * np.eye(a.shape[1]), a[:train].T @ np.eye(classes)[y[:train]]
    )
    return float((np.argmax(a[train:] @ w, 1) == y[train:]).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cards", type=int, default=480)
    args = ap.parse_args()
    objects, colours = list(OBJECTS), list(COLOURS)
    imgs, yc, yo = [], [], []
    for i in range(args.cards):
        o, c = random.Random(i).choice(objects), random.Random(10_000 + i).choice(colours)
        imgs.append(np.asarray(render_card(o, c, seed=i)))
        yc.append(colours.index(c))
        yo.append(objects.index(o))
    feats = level_features(np.stack(imgs))
    yc_, yo_ = np.array(yc), np.array(yo)
    train = 2 * args.cards // 3
    print(f"{args.cards} augmented cards, probe trained on {train}, tested on {args.cards - train}")
    print(f"{'level':<10} {'dims':>5} {'colour':>7} {'object':>7}")
    levels = ["stem", "block0", "block2", f"block{enc.COLOUR_BLOCK}", "block7", "block10", "block15", "head"]
    for name in levels:
        x = feats[name]
        print(
            f"{name:<10} {x.shape[1]:>5} {ridge_probe(x, yc_, len(colours), train):>7.3f} "
            f"{ridge_probe(x, yo_, len(objects), train):>7.3f}"
        )
    both = np.c_[feats["head"], feats[f"block{enc.COLOUR_BLOCK}"]]
    print(
        f"{'head+blk' + str(enc.COLOUR_BLOCK):<10} {both.shape[1]:>5} "
        f"{ridge_probe(both, yc_, len(colours), train):>7.3f} {ridge_probe(both, yo_, len(objects), train):>7.3f}"
        "   <- the tiny model's features"
    )


if __name__ == "__main__":
    main()
