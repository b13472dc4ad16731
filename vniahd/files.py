"""Atomic writes, content hashing and the cache directory.

Every file this package writes goes through :func:`atomic_write` so that a run killed at any moment
leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vniahd.errors import VniahdError

CACHE_ENV = "VNIAHD_CACHE"


def _umask_mode() -> int:
    """Mode a plain open() would give a new file (mkstemp would give 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def cache_dir(*parts: str) -> Path:
    """``$VNIAHD_CACHE`` (default ``~/.cache/vniahd``) joined with ``parts``; created on demand."""
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "vniahd")
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
    """Open a temp file beside ``path``; on clean exit fsync and rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, _umask_mode())
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``path`` for libraries that want a filename; renamed on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix or ".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, _umask_mode())
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def reserve(path: str | os.PathLike) -> None:
    """Give ``path`` (already at its final size, e.g. a fresh ``.npy`` memmap) real disk blocks.

    Writing into a memory map of a sparse file on a full disk ends the process with SIGBUS;
    reserving the blocks first turns that into ``OSError(ENOSPC)`` here, which callers report.
    """
    with open(path, "r+b") as fh:
        try:
            os.posix_fallocate(fh.fileno(), 0, os.fstat(fh.fileno()).st_size)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                return  # a filesystem that cannot reserve: write as before
            raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path, "w") as fh:
        fh.write(text)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (the content fingerprint recorded in provenance)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(*chunks: bytes | str) -> str:
    """Hex SHA-256 over several chunks (strings are UTF-8 encoded), length-prefixed so that
    ("ab", "c") and ("a", "bc") hash differently."""
    h = hashlib.sha256()
    for c in chunks:
        b = c.encode() if isinstance(c, str) else bytes(c)
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    """Stable hash of a JSON-able object (sorted keys)."""
    return sha256_bytes(json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str))


def check_out_dir(out: str | os.PathLike, purpose: str) -> None:
    """A VniahdError unless ``--out`` ``out`` is (or can become) a directory: not a file, not a
    broken symbolic link, not under a file. Creates nothing; ``purpose`` names what goes there
    (``"report"``, ``"dataset"``)."""
    out = Path(out)
    if out.is_symlink() and not out.exists():
        raise VniahdError(
            f"--out {out} is a broken symbolic link (to {os.readlink(out)}); create its target, "
            "remove it or choose another directory"
        )
    if out.exists():
        if not out.is_dir():
            raise VniahdError(
                f"--out {out} is a file, not a directory; choose a directory for the {purpose} "
                "(it is created if missing)"
            )
        return
    for parent in out.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise VniahdError(
                    f"--out {out} cannot be created: {parent} is a file; choose a directory for the {purpose}"
                )
            return
