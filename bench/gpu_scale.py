"""One GPU, 7B shapes: time and peak memory per sample at 100..2900 frames, and the projected
time of the full 450-sample reference grid with and without prefix sharing. Prints figures.

Run: ``.venv/bin/python bench/gpu_scale.py`` (``make bench`` runs it). Without a CUDA GPU it says
so and exits 0. ``--shape tiny --device cpu`` runs the same logic on a tiny model (a smoke test;
``tests/test_flops.py`` does that).

Model: ``random:qwen2-vl?size=7b`` (Qwen2-VL-7B text shapes: hidden 3584, 28 layers, 28 heads / 4
kv heads, MLP 18944, vocab 152064) in bf16 with SDPA attention, the vision tower cut to one
block (not used: the visual token embeddings are random rows, generated on the device chunk by
chunk as the evaluator streams them from the host cache). 144 tokens per frame (a 12×12 merged
grid, as 252×448 frames give 9×16), VideoRoPE positions, the reference prompt's text lengths.
Each sample runs like the evaluator runs one: chunked prefill into a DynamicCache
(``--chunk`` tokens per call), the LM head on the answer row only.

Projection: every chunk call is timed; a least-squares fit ``t = a·tokens + b·attended keys``
(the two terms of the FLOP model) predicts any call, hence the whole grid — every sample from
scratch (no sharing) and the prefix-shared schedule (per length group: the shared prefix once,
then each sample's remainder on top) on the real plan (reference schedule, period 200).
"""

from __future__ import annotations

import argparse
import sys
import time


def _parse_frames(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def grid_schedule(tpf: int, nb: int, na: int):
    """(frames, first inserted slot) of every sample of the reference grid, per length."""
    from vniahd.plan import plan_samples

    samples = plan_samples(
        lengths=list(range(100, 2901, 200)),
        depths=["0", "0.2", "0.4", "0.6", "0.8", "1"],
        needles=[(f"n{i}", 1) for i in range(5)],
        schedule="reference",
        period=200,
        seed=24242424,
        haystack_frames=3000,
    )
    groups: dict[int, list[tuple[int, int]]] = {}
    for s in samples:
        groups.setdefault(s.length, []).append(
            (nb + s.num_frames * tpf + na, nb + min([s.needle_slot, *s.distractor_slots]) * tpf)
        )
    return groups, len(samples)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="7b", choices=["7b", "tiny"])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--frames", default="100,500,1500,2900", help="frame counts to time")
    ap.add_argument("--tokens-per-frame", type=int, default=144)
    ap.add_argument("--chunk", type=int, default=4096, help="prefill chunk (tokens per call)")
    args = ap.parse_args(argv)

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            "gpu_scale: skipped — no CUDA GPU visible to torch here (run on a GPU machine; "
            "--shape tiny --device cpu runs the logic on a tiny model)"
        )
        return 0

    from vniahd.evaluation.execution.chunked import Feed, forward_rows
    from vniahd.models import get_backend
    from vniahd.prompt_templates import TEMPLATES
    from vniahd.rope import Text, Video, get_variant, variant_axes
    from vniahd.rope.hf import install_allocation

    spec = "random:qwen2-vl?size=7b&vision_depth=1" if args.shape == "7b" else "random:qwen2-vl"
    t0 = time.perf_counter()
    be = get_backend(spec, device=args.device, dtype="auto")
    variant = get_variant("videorope")
    install_allocation(be.language_model, variant_axes(variant, be.rotary))
    side = int(round(args.tokens_per_frame**0.5))
    grid = (side, args.tokens_per_frame // side)
    tpf = grid[0] * grid[1]
    nb = len(be.tokenizer.encode(TEMPLATES["reference"].before))
    na = 60 + 1  # ≈ a demo question in a BPE tokenizer + one answer token
    cuda = be.device.type == "cuda"
    print(
        f"model {spec} on {be.device} ({str(be.dtype).replace('torch.', '')}), loaded in "
        f"{time.perf_counter() - t0:.1f}s; {tpf} tokens/frame, prefill chunk {args.chunk}"
    )

    calls: list[tuple[int, int, float]] = []  # (tokens, attended keys, seconds)
    orig = be.hidden_states

    def timed(embeds, pos, cache=None):
        past = int(cache.get_seq_length()) if cache is not None else 0
        n = int(embeds.shape[1])
        if cuda:
            torch.cuda.synchronize(be.device)
        start = time.perf_counter()
        out = orig(embeds, pos, cache=cache)
        if cuda:
            torch.cuda.synchronize(be.device)
        calls.append((n, n * past + n * (n + 1) // 2, time.perf_counter() - start))
        return out

    be.hidden_states = timed
    for frames in _parse_frames(args.frames):
        segs = [Text(nb), Video(frames, *grid), Text(na)]
        pos = variant.positions(segs)
        n = pos.shape[1]
        gen = torch.Generator(device=be.device)

        def rows(a: int, b: int, gen: torch.Generator = gen):
            gen.manual_seed(a)  # deterministic rows, made on the device chunk by chunk
            return torch.randn(b - a, be.row_width, generator=gen, device=be.device).to(be.dtype) * 0.02

        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(be.device)
        start = time.perf_counter()
        try:
            with torch.inference_mode():
                hidden = forward_rows(be, [Feed(n, rows, pos, [n - 2])], chunk=args.chunk)[0]
                be.logits(hidden).argmax(-1)
        except torch.cuda.OutOfMemoryError as exc:  # report, do not crash the benchmark
            print(f"frames={frames}: {n} tokens — OUT OF MEMORY ({str(exc).splitlines()[0]})")
            continue
        secs = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated(be.device) / 2**30 if cuda else float("nan")
        print(
            f"frames={frames}: {n} tokens, {secs:.2f} s, {n / secs:.0f} tokens/s, peak memory "
            f"{peak:.2f} GiB" + ("" if cuda else " (CPU: not measured)")
        )
    be.hidden_states = orig

    if len(calls) < 2:
        print("projected 450-sample grid: not enough timings to fit")
        return 0
    x = torch.tensor([[c[0], c[1]] for c in calls], dtype=torch.float64)
    y = torch.tensor([c[2] for c in calls], dtype=torch.float64)
    coef = torch.linalg.lstsq(x, y[:, None]).solution[:, 0]
    if (coef < 0).any():  # non-negative fit: drop the negative term, refit the other alone
        keep = int(coef.argmax())
        only = float((x[:, keep] @ y) / (x[:, keep] @ x[:, keep]))
        coef = torch.zeros(2, dtype=torch.float64)
        coef[keep] = only
    a, b = float(coef[0]), float(coef[1])

    def predict(n_new: int, past: int) -> float:
        return a * n_new + b * (n_new * past + n_new * (n_new + 1) / 2)

    groups, total = grid_schedule(tpf, nb, na)
    independent = sum(predict(n, 0) for g in groups.values() for n, _ in g)
    shared = 0.0
    for members in groups.values():
        prefix = 0
        for n, p in sorted(members, key=lambda m: m[1]):
            if p > prefix:
                shared += predict(p - prefix, prefix)
                prefix = p
            shared += predict(n - p, p)
    print(f"fit: t = {a:.3e} s/token + {b:.3e} s/attended key")
    print(
        f"projected 450-sample grid ({total} samples, one variant): without prefix sharing "
        f"{independent / 3600:.2f} h, with prefix sharing {shared / 3600:.2f} h "
        f"({independent / shared:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
