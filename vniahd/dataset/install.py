"""Where a dataset directory goes: the checks on ``--out`` (:func:`prepare_dir`), and building
it in a hidden sibling that is moved into place only when complete (:func:`staging`,
:func:`install`; :mod:`vniahd.dataset.writer`'s docstring says why). Staging directories left by
a killed run are swept by the next one."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from vniahd.dataset import layout
from vniahd.dirlock import DirLock
from vniahd.errors import VniahdError
from vniahd.files import check_out_dir
from vniahd.notices import warn


def prepare_dir(out: Path, fingerprint: str, overwrite: bool, quiet: bool = False) -> Path:
    """Refuse to mix datasets: a non-empty ``out`` must be this same dataset, or --overwrite.

    Nothing is changed here; returns the directory the dataset will be moved into (``out``
    resolved when it exists, so a symlinked ``out`` is written where it points).
    """
    check_out_dir(out, "dataset")
    if not out.exists():
        return out.absolute()
    try:
        entries = [p.name for p in out.iterdir()]
    except OSError as exc:
        raise VniahdError(
            f"cannot read --out {out} ({exc.strerror or exc}); choose a directory you can write to"
        ) from None
    if not entries:
        return out.resolve()
    if not layout.is_dataset_dir(out):
        if set(entries) <= set(layout.OWNED):
            if not quiet:
                warn(
                    f"--out {out} holds an incomplete dataset (no {layout.CONFIG}: a generate that was "
                    "interrupted); replacing it"
                )
            return out.resolve()
        raise VniahdError(
            f"--out {out} is not empty and holds no vniahd dataset; choose another --out "
            "(an empty or new directory)"
        )
    try:
        old = json.loads((out / layout.CONFIG).read_text()).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        old = None
    if old != fingerprint and not overwrite:
        raise VniahdError(
            f"--out {out} already holds a different dataset; pass --overwrite to replace it "
            "or choose another --out"
        )
    return out.resolve()


def dataset_lock(out: str | Path) -> DirLock:
    """The lock a ``generate`` into ``out`` holds from its checks on ``out`` until the dataset is
    in place: ``.<name>.lock`` beside ``out`` (removed on release), so two runs into one ``--out``
    never both write it."""
    target = Path(out).resolve()
    return DirLock(
        target.parent / f".{target.name}.lock",
        lambda holder: (
            f"--out {out} is being written by another generate ({holder}); two runs into one "
            "directory would replace each other's dataset — wait for it to finish, stop it, or "
            "choose another --out"
        ),
        remove=True,
    )


def check_dataset_out(out: str | Path) -> None:
    """The checks on ``--out`` that need no fingerprint (a file, a broken link, a directory of
    other things), so that ``generate`` can refuse before decoding anything."""
    prepare_dir(Path(out), fingerprint="", overwrite=True, quiet=True)


_STAGE, _OLD = "partial", "old"


def _stage_prefix(name: str, kind: str) -> str:
    return f".{name}.{kind}-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _sweep_stale(parent: Path, name: str) -> None:
    """Remove staging directories of ``name`` left by runs that were killed (their pid is gone)."""
    try:
        siblings = list(parent.iterdir())
    except OSError:
        return
    for p in siblings:
        for kind in (_STAGE, _OLD):
            prefix = _stage_prefix(name, kind)
            if p.name.startswith(prefix) and p.is_dir() and not p.is_symlink():
                pid = p.name[len(prefix) :].split("-", 1)[0]
                if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
                    shutil.rmtree(p, ignore_errors=True)


def _dir_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


@contextlib.contextmanager
def staging(target: Path) -> Iterator[Path]:
    """A fresh hidden sibling of ``target`` to build the dataset in; removed (with any parent
    directories this call created) if the block fails."""
    parent = target.parent
    created: list[Path] = []
    p = parent
    while not p.exists() and p != p.parent:
        created.append(p)
        p = p.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        _sweep_stale(parent, target.name)
        tmp = Path(tempfile.mkdtemp(prefix=f"{_stage_prefix(target.name, _STAGE)}{os.getpid()}-", dir=parent))
        os.chmod(tmp, _dir_mode())
    except OSError as exc:
        _remove_created(created)
        raise VniahdError(
            f"cannot write in {parent} ({exc.strerror or exc}); choose an --out in a writable directory"
        ) from None
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_created(created)
        raise


def _remove_created(created: list[Path]) -> None:
    for d in created:  # deepest first
        try:
            d.rmdir()
        except OSError:
            break


def install(tmp: Path, target: Path) -> None:
    """Move the finished dataset ``tmp`` to ``target`` (absent, empty, or an older dataset)."""
    if not target.exists() or not any(target.iterdir()):
        try:
            os.rename(tmp, target)  # rename(2) also replaces an empty directory
        except OSError as exc:
            raise VniahdError(
                f"could not move the finished dataset to {target} ({exc.strerror or exc}): "
                "did another run write there meanwhile? Run the same command again"
            ) from None
        return
    prefix = f"{_stage_prefix(target.name, _OLD)}{os.getpid()}-"
    old = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    moved_out: list[str] = []
    moved_in: list[str] = []
    try:
        # the completeness marker goes first and comes back last
        for name in (layout.CONFIG, *(n for n in layout.OWNED if n != layout.CONFIG)):
            if os.path.lexists(target / name):
                os.rename(target / name, old / name)
                moved_out.append(name)
        for name in sorted(os.listdir(tmp), key=lambda n: n == layout.CONFIG):
            os.rename(tmp / name, target / name)
            moved_in.append(name)
    except OSError as exc:
        for name in reversed(moved_in):
            with contextlib.suppress(OSError):
                os.rename(target / name, tmp / name)
        for name in reversed(moved_out):
            with contextlib.suppress(OSError):
                os.rename(old / name, target / name)
        with contextlib.suppress(OSError):
            old.rmdir()
        raise VniahdError(
            f"could not replace the dataset in {target} ({exc.strerror or exc}); the old "
            "dataset is kept; check that the directory is writable and retry"
        ) from None
    shutil.rmtree(old, ignore_errors=True)  # symlinks inside are unlinked, never followed
    with contextlib.suppress(OSError):
        tmp.rmdir()
