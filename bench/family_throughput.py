"""Prefill + scoring throughput and peak memory of every supported family, on random models.

For each family's ``random:`` spec, one sample is run the way the evaluator runs one: visual rows
of ``--frames`` frames (``--tokens-per-frame`` tokens each) between the reference prompt's text,
VideoRoPE positions and allocation, chunked prefill into the family's cache (``--chunk`` tokens
per call), the LM head on the answer row only. Reported per family: tokens per second (median of
``--repeats`` timed runs after one warm-up) and peak memory over a run.

- CPU (default): tiny models of one shape for every family (``layers=4, hidden=128, heads=4``,
  ``kv_heads=2, intermediate=256``, one vision block; MoE families 4 experts, 2 active). CPU times
  depend on the machine and on what else runs on it, so the table's point is the **ratio** to
  ``qwen2-vl`` measured in the same run; peak memory is the growth of the process's peak RSS
  during the run above its RSS at the start (activations, cache and logits; page-granular).
- ``--gpu``: 7B-shaped models (``size=7b``: hidden 3584, 28 layers, 28 heads / 4 KV heads, MLP
  18944, vocab 152064; MoE families 8 experts, 2 active, each ``18944 / 2`` wide; one vision
  block, since the vision tower is not timed), bf16, ``torch.cuda.max_memory_allocated`` (weights
  included). Absolute figures are meaningful there (one GPU, nothing else on it).

Qwen3.5's Gated DeltaNet layers use transformers' PyTorch fallback unless ``flash-linear-attention``
and ``causal-conv1d`` are installed; the table says which ran.

Run: ``.venv/bin/python bench/family_throughput.py`` (CPU) or ``… --gpu`` on a GPU machine.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time

TINY = "layers=4&hidden=128&heads=4&kv_heads=2&intermediate=256&vision_depth=1"
SEVEN_B = "size=7b&vision_depth=1"


def family_spec(family: str, gpu: bool) -> str:
    return f"random:{family}?{SEVEN_B if gpu else TINY}"


def run_family(spec: str, device: str, frames: int, tpf: int, chunk: int, repeats: int) -> dict:
    """Build the model, run one warm-up and ``repeats`` timed samples; tokens/s and peak memory."""
    import torch

    from vniahd.evaluation.execution.chunked import Feed, forward_rows
    from vniahd.evaluation.execution.memory import PeakMemory
    from vniahd.models import get_backend
    from vniahd.prompt_templates import TEMPLATES
    from vniahd.rope import Text, Video, get_variant

    t0 = time.perf_counter()
    be = get_backend(spec, device=device, dtype="auto")
    load_s = time.perf_counter() - t0
    variant = get_variant("videorope")
    side = max(1, int(round(tpf**0.5)))
    grid = (side, max(1, tpf // side))
    nb = len(be.tokenizer.encode(TEMPLATES["reference"].before))
    na = 61  # ≈ a demo question in a BPE tokenizer + one answer token
    pos = variant.positions([Text(nb), Video(frames, *grid), Text(na)])
    n = int(pos.shape[1])
    width = be.row_width
    wide = width != be.language_model.config.hidden_size  # Qwen3-VL rows: DeepStack + visual flag
    dev, dtype = be.device, be.dtype
    gen = torch.Generator(device=dev)

    def rows(a: int, b: int) -> torch.Tensor:
        gen.manual_seed(a)  # deterministic rows, made on the device chunk by chunk
        r = torch.randn(b - a, width, generator=gen, device=dev) * 0.02
        if wide:
            r[:, -1] = 1.0  # every row visual: DeepStack features are added to all of them
        return r.to(dtype)

    cuda = be.device.type == "cuda"
    memory = PeakMemory(be.device)
    times: list[float] = []
    peak = None
    with be.use_variant(variant):
        for i in range(repeats + 1):
            if cuda:
                torch.cuda.empty_cache()
                torch.cuda.synchronize(be.device)
            memory.start()
            base = 0 if cuda else _rss()  # CPU: report the growth above what was resident
            start = time.perf_counter()
            with torch.inference_mode():
                hidden = forward_rows(be, [Feed(n, rows, pos, [n - 2])], chunk=chunk)[0]
                be.logits(hidden).argmax(-1).cpu()
            if cuda:
                torch.cuda.synchronize(be.device)
            if i:  # the first run warms up kernels and allocators
                times.append(time.perf_counter() - start)
                got = memory.read()
                got = None if got is None else got - base
                peak = got if peak is None else max(peak, got or 0)
    params = sum(p.numel() for p in be.model.parameters())
    result = {
        "tokens": n,
        "seconds": statistics.median(times),
        "tokens_per_s": n / statistics.median(times),
        "peak_bytes": peak,
        "peak_kind": memory.kind,
        "params": params,
        "load_s": load_s,
    }
    del be, hidden
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return result


def _rss() -> int:
    """The process's resident set size now (Linux ``VmRSS``; 0 where unknown)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    from vniahd.models.random_qwen import FAMILIES

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpu", action="store_true", help="7B-shaped models on cuda (bf16)")
    ap.add_argument("--families", default=",".join(FAMILIES), help="comma list (default: all)")
    ap.add_argument("--frames", type=int, default=None, help="frames per sample (CPU 64, GPU 500)")
    ap.add_argument("--tokens-per-frame", type=int, default=None, help="CPU 16, GPU 144")
    ap.add_argument("--chunk", type=int, default=None, help="prefill chunk (CPU 512, GPU 4096)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per family (median)")
    args = ap.parse_args(argv)

    import torch

    if args.gpu and not torch.cuda.is_available():
        print("family_throughput: --gpu skipped — no CUDA GPU visible to torch here")
        return 0
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        print(f"unknown famil{'y' if len(unknown) == 1 else 'ies'} {unknown}; use {', '.join(FAMILIES)}")
        return 2
    if "qwen2-vl" not in families and not args.gpu:
        families.insert(0, "qwen2-vl")  # the CPU reference for the ratios
    device = "cuda" if args.gpu else "cpu"
    frames = args.frames or (500 if args.gpu else 64)
    tpf = args.tokens_per_frame or (144 if args.gpu else 16)
    chunk = args.chunk or (4096 if args.gpu else 512)
    from transformers.utils.import_utils import (
        is_causal_conv1d_available,
        is_flash_linear_attention_available,
    )

    fla = is_flash_linear_attention_available() and is_causal_conv1d_available()
    print(
        f"{'GPU ' + torch.cuda.get_device_name() if args.gpu else 'CPU'}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; {frames} frames x {tpf} tokens + prompt; prefill chunk "
        f"{chunk}; median of {args.repeats}; Gated DeltaNet kernels: "
        f"{'flash-linear-attention' if fla else 'PyTorch fallback'}"
    )
    results: dict[str, dict] = {}
    for family in families:
        spec = family_spec(family, args.gpu)
        try:
            results[family] = run_family(spec, device, frames, tpf, chunk, args.repeats)
        except torch.cuda.OutOfMemoryError as exc:  # report, do not crash the benchmark
            print(f"{family}: OUT OF MEMORY ({str(exc).splitlines()[0]})")
            gc.collect()
            torch.cuda.empty_cache()
    ref = results.get("qwen2-vl")
    unit, scale = ("peak GiB", 2**30) if args.gpu else ("+peak MiB", 2**20)
    print(
        f"{'family':<13} {'params':>8} {'tokens':>7} {'s/sample':>9} {'tokens/s':>10} {'x qwen2-vl':>10} {unit:>9} {'x qwen2-vl':>10}"
    )
    for family, r in results.items():
        peak = r["peak_bytes"] / scale if r["peak_bytes"] is not None else float("nan")
        speed = r["tokens_per_s"] / ref["tokens_per_s"] if ref else float("nan")
        mem = (
            r["peak_bytes"] / ref["peak_bytes"]
            if ref and ref["peak_bytes"] and r["peak_bytes"] is not None
            else float("nan")
        )
        print(
            f"{family:<13} {r['params'] / 1e6:7.1f}M {r['tokens']:>7} {r['seconds']:9.3f} "
            f"{r['tokens_per_s']:10.0f} {speed:10.2f} {peak:9.2f} {mem:10.2f}"
        )
    kind = next(iter(results.values()))["peak_kind"] if results else "-"
    note = "" if args.gpu else ", growth above the RSS at the start of the run (activations, cache, logits)"
    print(f"peak memory: {kind}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
