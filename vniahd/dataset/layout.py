"""File names inside a dataset directory (shared by the writer and the reader)."""

from __future__ import annotations

from pathlib import Path

FORMAT = "vniahd-dataset"
#: The newest format this vniahd reads and writes. Version 2 adds temporal groups of several frames
#: (``frames_per_group`` > 1 in dataset.json): an older vniahd would read group indices as frame
#: indices, so it refuses such a dataset instead. Datasets without groups stay version 1.
FORMAT_VERSION = 2

CONFIG = "dataset.json"  # written last: its presence marks a complete dataset
SAMPLES = "samples.parquet"
HAYSTACK = "haystack.npy"  # uint8 [K, H, W, 3], memmap-able
IMAGES = "images"  # needle and distractor images at frame size (PNG)
VIDEOS = "videos"  # --export-videos: one mp4 per sample
QUESTIONS = "questions.jsonl"  # --export-videos: video path, question, options, answer

OWNED = (CONFIG, SAMPLES, HAYSTACK, IMAGES, VIDEOS, QUESTIONS)


def format_version(frames_per_group: int) -> int:
    """The format version a dataset is written with (see :data:`FORMAT_VERSION`)."""
    return 1 if frames_per_group == 1 else 2


def is_dataset_dir(path: Path) -> bool:
    return (path / CONFIG).is_file()
