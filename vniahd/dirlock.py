"""An exclusive ``flock`` on a lock file for the whole of a write: the one lock of results
directories (:class:`vniahd.evaluation.results.lock.ResultsLock`) and dataset directories
(``generate``, :func:`vniahd.dataset.install.dataset_lock`).

The kernel drops a ``flock`` when its holder dies, so the lock of a killed run never blocks the
next one; the file keeps the last holder's pid and host only to name it in the error.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO

from vniahd.errors import VniahdError


class DirLock:
    """Context manager: hold ``path``'s lock or raise a :class:`VniahdError` whose message is
    ``refusal(holder)`` (holder: ``"pid N on HOST"``)."""

    def __init__(self, path: str | Path, refusal: Callable[[str], str], remove: bool = False):
        """``remove``: delete the lock file (and the parent directories taking it created) on
        release, so a finished write leaves nothing beside what it wrote."""
        self.path = Path(path)
        self.refusal = refusal
        self.remove = remove
        self._fh: IO[str] | None = None
        self._created: list[Path] = []

    def __enter__(self) -> DirLock:
        """Take the lock (a no-op while this object already holds it)."""
        import fcntl

        if self._fh is not None:
            return self
        p = self.path.parent
        while not p.exists() and p != p.parent:
            self._created.append(p)
            p = p.parent
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fh = open(self.path, "a+", encoding="utf-8")
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = _holder(fh.read())
                fh.close()
                raise VniahdError(self.refusal(holder)) from None
            if not self.remove or _same_file(fh, self.path):
                break
            fh.close()  # locked a file its holder removed on release: lock the current one
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
        fh.flush()
        self._fh = fh
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fh is not None:
            if self.remove:  # unlinked while held: a waiter that opened it sees another inode
                with contextlib.suppress(OSError):
                    self.path.unlink()
                for d in self._created:  # deepest first; stops at a directory something else uses
                    try:
                        d.rmdir()
                    except OSError:
                        break
                self._created = []
            self._fh.close()  # closing the descriptor releases the flock
            self._fh = None

    def acquire(self) -> DirLock:
        return self.__enter__()

    def release(self) -> None:
        self.__exit__(None, None, None)


def _same_file(fh: IO[str], path: Path) -> bool:
    try:
        a, b = os.fstat(fh.fileno()), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _holder(text: str) -> str:
    try:
        info = json.loads(text)
        return f"pid {info['pid']} on {info['host']}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown"
