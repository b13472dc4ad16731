"""File names inside a dataset directory (shared by the writer and the reader)."""

from __future__ import annotations

from pathlib import Path

FORMAT = "vniahd-dataset"
FORMAT_VERSION = 1

CONFIG = "dataset.json"  # written last: its presence marks a complete dataset
SAMPLES = "samples.parquet"
HAYSTACK = "haystack.npy"  # uint8 [K, H, W, 3], memmap-able
IMAGES = "images"  # needle and distractor images at frame size (PNG)
VIDEOS = "videos"  # --export-videos: one mp4 per sample
QUESTIONS = "questions.jsonl"  # --export-videos: video path, question, options, answer

OWNED = (CONFIG, SAMPLES, HAYSTACK, IMAGES, VIDEOS, QUESTIONS)


def is_dataset_dir(path: Path) -> bool:
    return (path / CONFIG).is_file()
