"""Generator throughput: haystack decoding (cold vs warm cache) and reference-grid build time.

Run: ``.venv/bin/python bench/generate.py`` (``make bench`` runs it). Prints figures; asserts
nothing. Uses the demo haystack (real clips; built on first use) and the demo needle set, with a
private cache directory so that "cold" really decodes.

What is measured, in one run, side by side:
- decode throughput in sampled frames per second through decord and through PyAV (cold cache);
- the same load from the warm cache (no decoding: a memmap of the cached .npy);
- wall time to write the 15 × 6 × N-needle reference-grid dataset, cold and warm.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="252x448", help="frame size HxW (reference 252x448)")
    ap.add_argument("--fps", type=float, default=1.0, help="sampling rate (reference 1 fps)")
    ap.add_argument("--lengths", default="100:2900:200")
    ap.add_argument("--depths", default="0:1:0.2")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="vniahd-bench-gen-") as tmp:
        os.environ["VNIAHD_CACHE"] = str(Path(tmp) / "cache")  # cold cache, private to this run
        from vniahd.dataset.generate import generate
        from vniahd.media import build_demo_haystack, decode_count, load_haystack, parse_size

        size = parse_size(args.size)
        video = build_demo_haystack()
        print(
            f"haystack: {video} ({video.stat().st_size / 1e6:.1f} MB), sampled at {args.fps} fps to {args.size}"
        )

        rows = []
        for backend in ("decord", "pyav"):
            before = decode_count()
            hay, cold = _timed(
                lambda backend=backend: load_haystack(
                    video, fps=args.fps, size=size, cache=False, backend=backend, progress=False
                )
            )
            rows.append((f"decode {backend} (no cache)", len(hay), cold, decode_count() - before))
        before = decode_count()
        hay, fill = _timed(lambda: load_haystack(video, fps=args.fps, size=size, progress=False))
        rows.append(("load + fill cache", len(hay), fill, decode_count() - before))
        before = decode_count()
        hay, warm = _timed(lambda: load_haystack(video, fps=args.fps, size=size, progress=False))
        rows.append(("load (warm cache)", len(hay), warm, decode_count() - before))

        print(f"\n{'step':28s} {'frames':>7s} {'seconds':>9s} {'frames/s':>10s} {'decodes':>8s}")
        for name, n, sec, decoded in rows:
            print(f"{name:28s} {n:7d} {sec:9.3f} {n / sec:10.0f} {decoded:8d}")
        print(f"warm/cold speedup (decord): {rows[0][2] / warm:.0f}x")

        def build(out: str):
            return generate(
                haystack=video,
                needles="demo",
                out=Path(tmp) / out,
                lengths=args.lengths,
                depths=args.depths,
                schedule="reference",
                fps=args.fps,
                size=size,
                progress=False,
            )

        os.environ["VNIAHD_CACHE"] = str(Path(tmp) / "cache2")  # cold again for the dataset build
        ds, t_cold = _timed(lambda: build("ds_cold"))
        _, t_warm = _timed(lambda: build("ds_warm"))
        n = len(ds.samples)
        print(f"\nreference grid dataset ({args.lengths} x {args.depths}, {n} samples):")
        print(f"  build, cold haystack cache: {t_cold:.2f} s")
        print(f"  build, warm haystack cache: {t_warm:.2f} s  ({n / t_warm:.0f} samples/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
