"""Video media: decoding (decord, PyAV fallback), frame sampling, haystack cache, mp4 export.

Public API::

    video_info(path) -> VideoInfo(num_frames, fps, height, width, duration_s, backend)
    read_frames(path, fps=None | num_frames=None, size=(H, W), backend="auto") -> uint8 [N, H, W, 3]
    fingerprint_video(path) -> sha256 hex of the file
    load_haystack(path, fps=1.0, size=(252, 448), cache=True) -> Haystack
    tile_frames(n_available, n_needed) -> Tiling(indices, tiled)
    write_mp4(frames, path, fps) -> Path          # H.264, yuv420p, atomic
    build_demo_haystack(out_path=None) -> Path    # haystacks/demo_haystack.mp4 + .json sidecar
"""

from vniahd.media.demo import DEMO_CLIPS, build_demo_haystack, default_demo_path
from vniahd.media.export import write_mp4
from vniahd.media.haystack import (
    REFERENCE_FPS,
    REFERENCE_SIZE,
    Haystack,
    Tiling,
    fingerprint_video,
    haystack_key,
    load_haystack,
    tile_frames,
)
from vniahd.media.readers import BACKENDS, VideoInfo, decode_count, read_frames, sample_indices, video_info
from vniahd.media.sampling import FPS_METHODS, even_indices, fps_indices, parse_size, resize_frame

__all__ = [
    "BACKENDS", "DEMO_CLIPS", "FPS_METHODS", "REFERENCE_FPS", "REFERENCE_SIZE", "Haystack", "Tiling",
    "VideoInfo", "build_demo_haystack", "decode_count", "default_demo_path", "even_indices",
    "fingerprint_video", "fps_indices", "haystack_key", "load_haystack", "parse_size", "read_frames",
    "resize_frame", "sample_indices", "tile_frames", "video_info", "write_mp4",
]
