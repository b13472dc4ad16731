"""The ``vniahd`` command line.

Each module in this package that defines ``register(subparsers)`` contributes subcommands; it must
set ``func`` on its parser via ``set_defaults``. Modules keep heavy imports (torch, transformers)
inside their command functions so that ``vniahd --help`` stays fast.

User mistakes raise :class:`vniahd.errors.VniahdError`; ``main`` prints them on one line and
exits with status 2, never with a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from vniahd.errors import VniahdError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vniahd",
        description=(
            "V-NIAH-D: generate visual needle-in-a-haystack datasets with distractors, score "
            "video-language models under every RoPE variant, and draw depth-vs-length heatmaps."
        ),
        epilog="Run 'vniahd COMMAND --help' for the options of one command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            modules.append(module)
    for module in sorted(modules, key=lambda m: (getattr(m, "ORDER", 50), m.__name__)):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except VniahdError as exc:
        print(f"vniahd: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vniahd: interrupted; finished results are saved, rerun the same command to resume",
              file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
