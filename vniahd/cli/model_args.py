"""What the commands that load a model and lay out a sample's prompt share (torch-free): the
``--dtype``, ``--frame-mode``, ``--prompt`` and ``--prompt-template`` flags of ``vniahd eval``,
``vniahd attention`` and ``vniahd export-inputs``, defined once so their choices never drift."""

from __future__ import annotations

import argparse

DTYPES = ("auto", "float32", "bfloat16", "float16")

PROMPT_HELP = (
    "how the frames sit in the prompt: reference (default: spliced bare, the published "
    "protocol) or native (the model family's vision start/end markers and, for Qwen3-VL, "
    "Qwen3.5 and GLM-4.1V, a timestamp per frame, as its chat template and processor write a "
    "video)"
)


def add_dtype(
    p: argparse.ArgumentParser,
    default: str = "auto",
    help: str = "model dtype; auto = bfloat16 on a CUDA GPU that supports it, else float32",
) -> None:
    p.add_argument("--dtype", default=default, choices=list(DTYPES), help=help)


def add_prompt(p: argparse.ArgumentParser, help: str = PROMPT_HELP) -> None:
    p.add_argument("--prompt", default="reference", choices=["reference", "native"], help=help)


def add_frame_mode_and_template(p: argparse.ArgumentParser) -> None:
    """``--frame-mode`` and ``--prompt-template``, as ``vniahd eval`` takes them."""
    p.add_argument(
        "--frame-mode",
        default="video",
        choices=["video", "image"],
        help="lay frames out as one video (default) or as separate images",
    )
    p.add_argument(
        "--prompt-template",
        default="reference",
        metavar="NAME|FILE",
        help="prompt around the frames: reference (default), qwen-vision-tokens, "
        'plain, or a JSON file {"before": ..., "after": "...{question}..."}',
    )
