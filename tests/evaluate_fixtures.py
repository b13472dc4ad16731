"""Small datasets and models for the evaluator tests (imported by tests/test_evaluate_*.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

FRAME_SIZE = (56, 84)  # 2 × 3 merged Qwen2-VL tokens per frame (patch 14, merge 2)
TINY_SPEC = "random:qwen2-vl"


def write_png(arr: np.ndarray, path: Path) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def make_needle_set(root: Path, seed: int = 1):
    """Two needles: a 4-option multiple-choice one (answer B) and a short-answer one ("200")."""
    from vniahd.files import sha256_bytes
    from vniahd.needles import Needle, NeedleSet

    rng = np.random.default_rng(seed)
    imgs = [
        write_png(rng.integers(0, 256, (*FRAME_SIZE, 3), dtype=np.uint8), root / f"img{i}.png")
        for i in range(4)
    ]
    needles = (
        Needle(
            id="mc",
            image=imgs[0],
            question="Which object is shown?",
            answer="B",
            options=("cat", "coffee", "rocket", "horse"),
            distractors=(imgs[1],),
        ),
        Needle(id="short", image=imgs[2], question="How many dots?", answer="200", distractors=(imgs[3],)),
    )
    fp = sha256_bytes(*[p.read_bytes() for p in imgs])
    return NeedleSet(needles=needles, fingerprint=fp, source=str(root), format="native", name="test")


def make_dataset(
    out: Path,
    *,
    lengths=(6, 10),
    depths=("0", "0.5", "1"),
    haystack_frames=12,
    schedule="reference",
    period=3,
    seed=7,
    fps=1.0,
):
    """A real dataset directory written with the generator's writer (synthetic frames)."""
    from vniahd.dataset import write_dataset
    from vniahd.plan import plan_samples

    out = Path(out)
    nset = make_needle_set(out.parent / (out.name + "-needles"))
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (haystack_frames, *FRAME_SIZE, 3), dtype=np.uint8)
    samples = plan_samples(
        lengths=list(lengths),
        depths=list(depths),
        needles=[(n.id, len(n.distractors)) for n in nset],
        schedule=schedule,
        period=period,
        seed=seed,
        haystack_frames=haystack_frames,
    )
    config = {
        "lengths": list(lengths),
        "depths": list(depths),
        "schedule": schedule,
        "period": {"frames": period},
        "seed": seed,
        "fps": fps,
        "size": list(FRAME_SIZE),
    }
    return write_dataset(
        out,
        haystack_frames=frames,
        haystack_meta={"source": "synthetic noise", "fps": fps},
        needle_set=nset,
        samples=samples,
        config=config,
        progress=False,
    )


# ---- comparing the outcomes of two runs that computed their floats differently ---------------
# Two runs with other batch shapes, packing, prefill chunks, prefix sharing or thread counts
# round differently (another CPU too), so their numbers agree to a tolerance, never to the bit,
# and a prediction (an argmax) may flip only where its top two candidates are that close.


class NearTies:
    """Spies on ``backend.logits`` (inside ``with``): ``count`` is the number of scored rows whose
    top two logits lie within ``tol`` — the argmaxes another rounding may flip."""

    def __init__(self, backend, tol: float = 1e-4):
        self.backend, self.tol, self.count, self.rows = backend, tol, 0, 0

    def __enter__(self):
        real = self.backend.logits

        def spy(hidden):
            out = real(hidden)
            top = out.float().reshape(-1, out.shape[-1]).topk(2, dim=-1).values
            self.count += int((top[:, 0] - top[:, 1] <= self.tol).sum())
            self.rows += len(top)
            return out

        self.backend.logits = spy
        return self

    def __exit__(self, *exc):
        del self.backend.logits


def assert_same_outcomes(got: dict, want: dict, tol: float, ties: int = 0) -> None:
    """``got`` and ``want`` (result records by key) from runs that rounded differently: the same
    keys; option log-probabilities within ``tol``; the same prediction and verdict wherever the
    rounding could not have flipped them — a multiple-choice record may change its letter only
    between two options that ``want`` ranks closer than twice the record's own log-probability
    drift; argmaxes over the vocabulary (reference / generate records carry no margin) may
    differ in at most ``ties`` records (:class:`NearTies` of the runs)."""
    assert got.keys() == want.keys()
    outcome = lambda x: (x["correct"], x["prediction"], x.get("raw_text"))  # noqa: E731
    flipped = []
    for k, r in got.items():
        ref = want[k]
        mine, theirs = r.get("option_logprobs") or {}, ref.get("option_logprobs") or {}
        assert mine.keys() == theirs.keys(), k
        for letter, lp in mine.items():
            assert lp == pytest.approx(theirs[letter], abs=tol), (k, letter)
        if outcome(r) == outcome(ref):
            continue
        if theirs:  # the two letters swapped places: only possible within the drift
            drift = max(abs(mine[x] - theirs[x]) for x in mine)
            gap = theirs[ref["prediction"]] - theirs.get(r["prediction"], float("-inf"))
            assert gap <= 2 * drift, (k, outcome(r), outcome(ref), gap, drift)
        else:
            flipped.append(k)
    assert len(flipped) <= ties, (flipped, ties)
