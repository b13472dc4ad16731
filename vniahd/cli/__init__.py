"""The ``vniahd`` command line.

Each module in this package that defines ``register(subparsers)`` contributes subcommands; it must
set ``func`` on its parser via ``set_defaults``. Modules keep heavy imports (torch, transformers)
inside their command functions so that ``vniahd --help`` stays fast.

User mistakes raise :class:`vniahd.errors.VniahdError`; ``main`` prints them on one line and
exits with status 2, never with a traceback. Output piped into a reader that stops early
(``vniahd variants | head -1``) ends the command quietly with status 141 (128 + SIGPIPE, what a
shell reports for a command that the closed pipe stopped).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
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


#: What an interrupted command says unless its parser sets ``interrupted`` (set_defaults).
INTERRUPTED = "interrupted; finished results are saved, rerun the same command to resume"
#: A full, read-only or forbidden filesystem: not a bug but the user's to fix, in one line. Every
#: write is atomic (vniahd.files) and results are appended line by line, so what was finished is
#: kept and the same command resumes.
FILESYSTEM_FIXES = {
    errno.ENOSPC: "free some space (or choose another --out, or set VNIAHD_CACHE to a disk with room) "
    "and run the same command again; finished work is kept",
    errno.EDQUOT: "free some of your quota (or write elsewhere) and run the same command again; "
    "finished work is kept",
    errno.EROFS: "that filesystem is read-only; choose a writable --out (or VNIAHD_CACHE for the "
    "cache) and run the same command again",
    errno.EACCES: "choose a writable location (--out, or VNIAHD_CACHE for the cache) or fix the "
    "permissions, and run the same command again",
    errno.EPERM: "choose a writable location (--out, or VNIAHD_CACHE for the cache) or fix the "
    "permissions, and run the same command again",
    errno.ENOTDIR: "a file stands where a directory is needed; choose another path",
}

#: Exit status when stdout's reader went away (128 + SIGPIPE), as for a command the pipe stopped.
EXIT_BROKEN_PIPE = 141


def _stdout_gone() -> int:
    """stdout's reader has closed the pipe: point stdout at devnull so that the interpreter's
    final flush cannot fail again (the Python docs' recipe, library/signal.html#note-on-sigpipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (a test's capture)
        pass
    return EXIT_BROKEN_PIPE


def main(argv: list[str] | None = None) -> int:
    try:
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
        except OSError as exc:
            fix = FILESYSTEM_FIXES.get(exc.errno or 0)
            if fix is None:
                raise
            where = f" ({exc.filename})" if exc.filename else ""
            print(f"vniahd: error: {exc.strerror or exc}{where}; {fix}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:  # a command may say what an interruption leaves (``interrupted``)
            print(f"vniahd: {getattr(args, 'interrupted', INTERRUPTED)}", file=sys.stderr)
            return 130
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return int(result or 0)
    except BrokenPipeError:
        return _stdout_gone()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
