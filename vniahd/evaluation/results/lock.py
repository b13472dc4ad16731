"""An exclusive lock on a results directory for the whole of a run.

Two evaluations appending to one directory would both skip the same "done" keys and then write
every remaining key twice. Each process therefore holds ``fcntl.flock`` on ``.lock`` (``.lock.rankK``
under several processes: ranks of one run write different shards) from before it reads the done
keys until it has written its last line (:class:`vniahd.dirlock.DirLock`: a killed run's lock
never blocks the next one).
"""

from __future__ import annotations

from pathlib import Path

from vniahd.dirlock import DirLock


class ResultsLock(DirLock):
    """Context manager: hold the results directory's lock or raise a :class:`VniahdError`."""

    def __init__(self, results_dir: str | Path, rank: int | None = None):
        self.dir = Path(results_dir)
        super().__init__(
            self.dir / (".lock" if rank is None else f".lock.rank{rank}"),
            lambda holder: (
                f"{self.dir} is in use by another evaluation ({holder}); two runs appending to one "
                "results directory would score every sample twice — wait for it to finish, stop it, "
                "or choose another --out"
            ),
        )

    def __enter__(self) -> ResultsLock:
        super().__enter__()
        return self

    acquire = __enter__
