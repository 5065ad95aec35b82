"""Devices and process groups: CUDA when present, DistributedDataParallel under torchrun.

    torchrun --nproc_per_node=2 -m neo_ml.train_ncf --data ml-100k --output model.pt

torchrun starts one process per rank and sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and the rendezvous address; ``Ranks.from_environment`` reads
them and joins the group (gloo on CPU, NCCL on CUDA). Without torchrun it is
a single rank and nothing is initialised.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from neo_ml.errors import InvalidRequestError, NeoMLError, brief

DEVICE_TYPES = ("cpu", "cuda")  # what the models are tested on


def check_device_name(name) -> torch.device | None:
    """The device ``name`` spells (``None`` for "auto"), whether or not this machine has it."""
    if name == "auto":
        return None
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        raise InvalidRequestError(f"device {brief(name)}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
    return device


def choose_device(name: str | None = None, local_rank: int = 0) -> torch.device:
    """``None``/"auto": the rank's CUDA device when one exists, else the CPU; or the device named."""
    if name in (None, "auto"):
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    device = check_device_name(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NeoMLError(f"device {name!r} asked for, but torch sees no CUDA device")
    return device


@dataclass
class Ranks:
    """Where this process stands: its rank, how many there are, and its device."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @classmethod
    def from_environment(cls, device: str | None = None) -> Ranks:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        chosen = choose_device(device, local_rank)
        if world_size > 1 and not dist.is_initialized():
            if chosen.type == "cuda":
                torch.cuda.set_device(chosen)
            dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
        rank = dist.get_rank() if world_size > 1 else 0
        return cls(rank, world_size, chosen)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model DDP-wrapped when there are several ranks (DDP copies rank 0's weights to all)."""
        if not self.distributed:
            return model
        return DistributedDataParallel(model, device_ids=[self.device] if self.device.type == "cuda" else None)

    def from_main(self, value):
        """Rank 0's ``value`` on every rank (any picklable object)."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def sum(self, *values: float) -> list[float]:
        """Each value summed over the ranks."""
        if not self.distributed:
            return list(values)
        total = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        return total.tolist()

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()
