"""Video media: decoding (decord, PyAV fallback), frame sampling, haystack cache, mp4 export.

Public API::

    video_info(path) -> VideoInfo(num_frames, fps, height, width, duration_s, backend)
    read_frames(path, fps=None | num_frames=None, size=(H, W), backend="auto") -> uint8 [N, H, W, 3]
    fingerprint_video(path) -> sha256 hex of the file
    load_haystack(path, fps=1.0, size=(252, 448), cache=True, resize="pil") -> Haystack
    tile_frames(n_available, n_needed) -> Tiling(indices, tiled)
    write_mp4(frames, path, fps) -> Path          # H.264, yuv420p, atomic
    build_demo_haystack(out_path=None) -> Path    # haystacks/demo_haystack.mp4 + .json sidecar

The other names below stay importable from here for existing callers; their home is the module.
"""

from vniahd.media.demo import DEMO_CLIPS as DEMO_CLIPS
from vniahd.media.demo import build_demo_haystack
from vniahd.media.demo import default_demo_path as default_demo_path
from vniahd.media.export import write_mp4
from vniahd.media.haystack import REFERENCE_FPS as REFERENCE_FPS
from vniahd.media.haystack import REFERENCE_SIZE as REFERENCE_SIZE
from vniahd.media.haystack import Haystack, Tiling, fingerprint_video, load_haystack, tile_frames
from vniahd.media.haystack import haystack_key as haystack_key
from vniahd.media.readers import BACKENDS as BACKENDS
from vniahd.media.readers import VideoInfo, read_frames, video_info
from vniahd.media.readers import decode_count as decode_count
from vniahd.media.readers import sample_indices as sample_indices
from vniahd.media.sampling import FPS_METHODS as FPS_METHODS
from vniahd.media.sampling import RESIZE_METHODS as RESIZE_METHODS
from vniahd.media.sampling import even_indices as even_indices
from vniahd.media.sampling import fps_indices as fps_indices
from vniahd.media.sampling import parse_size as parse_size
from vniahd.media.sampling import resize_frame as resize_frame
from vniahd.media.sampling import torch_bicubic_resize as torch_bicubic_resize

__all__ = [
    "Haystack",
    "Tiling",
    "VideoInfo",
    "build_demo_haystack",
    "fingerprint_video",
    "load_haystack",
    "read_frames",
    "tile_frames",
    "video_info",
    "write_mp4",
]
