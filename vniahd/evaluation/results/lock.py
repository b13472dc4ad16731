"""An exclusive lock on a results directory for the whole of a run.

Two evaluations appending to one directory would both skip the same "done" keys and then write
every remaining key twice. Each process therefore holds ``fcntl.flock`` on ``.lock`` (``.lock.rankK``
under several processes: ranks of one run write different shards) from before it reads the done
keys until it has written its last line. The kernel drops a ``flock`` when its holder dies, so the
lock of a killed run never blocks the next one; the file keeps the last holder's pid and host only
to name it in the error.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from types import TracebackType
from typing import IO

from vniahd.errors import VniahdError


class ResultsLock:
    """Context manager: hold the results directory's lock or raise a :class:`VniahdError`."""

    def __init__(self, results_dir: str | Path, rank: int | None = None):
        self.dir = Path(results_dir)
        self.path = self.dir / (".lock" if rank is None else f".lock.rank{rank}")
        self._fh: IO[str] | None = None

    def __enter__(self) -> ResultsLock:
        """Take the lock (a no-op while this object already holds it)."""
        import fcntl

        if self._fh is not None:
            return self
        self.dir.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = _holder(fh.read())
            fh.close()
            raise VniahdError(
                f"{self.dir} is in use by another evaluation ({holder}); two runs appending to one "
                "results directory would score every sample twice — wait for it to finish, stop it, "
                "or choose another --out"
            ) from None
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
            self._fh.close()  # closing the descriptor releases the flock
            self._fh = None

    acquire = __enter__

    def release(self) -> None:
        self.__exit__(None, None, None)


def _holder(text: str) -> str:
    try:
        info = json.loads(text)
        return f"pid {info['pid']} on {info['host']}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown"
