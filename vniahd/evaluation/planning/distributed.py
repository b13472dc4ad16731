"""Multi-process evaluation under torch's own launchers (``torchrun``, ``accelerate launch``).

Both launchers export ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (and ``MASTER_ADDR``/``MASTER_PORT``)
to every process; :func:`from_env` reads them. With ``WORLD_SIZE`` > 1 the runner joins a process
group (``gloo`` on CPU, ``nccl`` on CUDA; only barriers are used), uses ``cuda:LOCAL_RANK`` as its
device, and evaluates its own share of the work:

- **Work units** are (variant, haystack length, window offset) groups — the unit prefix sharing
  works within, so splitting by unit loses no sharing.
- **Assignment** (:func:`assign`) is greedy longest-processing-time on an estimated cost (the
  FLOP model of :mod:`vniahd.evaluation.planning.flops` over the group's prefix-shared schedule),
  deterministic: units by descending cost then key, each to the least-loaded rank (lowest rank
  on ties). Every rank computes the same assignment from the full plan (never from what is already
  done, which could differ between ranks reading at different moments).
- **Outputs**: rank K appends to ``results.rank{K}.jsonl``; rank 0 writes ``run.json`` and every
  other rank checks it; readers glob ``results*.jsonl`` so the directory reads as one. Resume is
  per shard and global: done keys are read from every shard, so a rerun with another world size
  also skips what is done.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from vniahd.errors import VniahdError

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def results_file(self, default: str = "results.jsonl") -> str:
        return f"results.rank{self.rank}.jsonl" if self.enabled else default

    def device(self, requested: str) -> str:
        """One device per rank: ``cuda`` → ``cuda:LOCAL_RANK`` (an explicit ``cuda:N`` is kept)."""
        if self.enabled and requested == "cuda":
            return f"cuda:{self.local_rank}"
        return requested


def from_env(env: Mapping[str, str] | None = None) -> DistInfo:
    """Rank / world size / local rank from a launcher's environment (1 process when unset)."""
    env = os.environ if env is None else env
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise VniahdError(
            "RANK / WORLD_SIZE / LOCAL_RANK must be integers (set by torchrun or "
            "accelerate launch); unset them for a single-process run"
        ) from None
    if world < 1 or not 0 <= rank < world:
        raise VniahdError(
            f"RANK={rank} is not within WORLD_SIZE={world}; launch with torchrun "
            "--nproc-per-node K or unset them"
        )
    return DistInfo(rank=rank, world_size=world, local_rank=local)


def init(info: DistInfo, device: str) -> None:
    """Join the process group once (no-op for one process or when already joined)."""
    if not info.enabled:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return
    if "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
        raise VniahdError(
            "WORLD_SIZE > 1 but MASTER_ADDR/MASTER_PORT are unset; start the run with "
            "torchrun --nproc-per-node K -m vniahd eval ... (or accelerate launch)"
        )
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if backend == "nccl":
        import torch

        torch.cuda.set_device(info.local_rank)
    dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)


def barrier(info: DistInfo) -> None:
    if not info.enabled:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if not info.enabled:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def assign(costs: Sequence[tuple[K, float]], world_size: int) -> list[list[K]]:
    """Greedy LPT assignment of ``(key, cost)`` units to ``world_size`` ranks (deterministic:
    see the module docstring). Returns the keys of each rank, in the input order."""
    order = sorted(range(len(costs)), key=lambda i: (-float(costs[i][1]), str(costs[i][0])))
    load = [0.0] * world_size
    owner: dict[int, int] = {}
    for i in order:
        r = min(range(world_size), key=lambda k: (load[k], k))
        owner[i] = r
        load[r] += float(costs[i][1])
    return [[costs[i][0] for i in range(len(costs)) if owner[i] == r] for r in range(world_size)]
