"""Process set-up shared by every stage: logging, seeds, device choice, torchrun ranks, atomic file writes.

The whole torchrun set-up lives here (joining the process group, rank and world size, rank-0 writes); the
training loop's DDP wrapper and cross-rank reductions are in pipeline.train."""
from __future__ import annotations

import io
import json
import logging
import os
import random
import sys
import tempfile
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import torch

log = logging.getLogger(__name__)


def setup(seed: int, config: Any = None, stage: str | None = None) -> torch.device:
    """Configure logging, seed every RNG, pick the device (CUDA when present) and log what was chosen.

    Under `torchrun` (WORLD_SIZE > 1) it also joins the process group: gloo on CPU, nccl on CUDA with one GPU
    per local rank; only rank 0 logs at INFO and writes files.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(
        level=os.environ.get("AGE_VCOP_LOG", "INFO") if rank == 0 else "WARNING",
        format=f"%(asctime)s %(levelname)s %(name)s{f' [rank {rank}]' if world_size > 1 else ''}: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    seed_everything(seed)
    device = pick_device()
    if world_size > 1:
        device = _join_process_group(device)
    if device.type == "cpu":
        # torch defaults to all cores, but interop threads fight the intra-op pool on small machines;
        # processes sharing the machine split the cores
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    else:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    log.info("stage %s  seed %d  device %s  torch %s  threads %d", stage or "-", seed, describe(device),
             torch.__version__, torch.get_num_threads())
    if config is not None:
        log.info("config %s", asdict(config) if is_dataclass(config) else config)
    return device


def _join_process_group(device: torch.device) -> torch.device:
    import atexit

    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(dist.destroy_process_group)
    log.info("distributed: %d processes, backend %s", dist.get_world_size(), dist.get_backend())
    return device


def world() -> tuple[int, int]:
    """(rank, number of processes); (0, 1) outside torchrun."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return world()[0] == 0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def forked_rng(device: torch.device) -> AbstractContextManager:
    """The global RNG state (CPU, and `device` on CUDA) restored on exit. A measuring pass wraps itself in it:
    iterating a DataLoader draws its base seed from the global generator, and training after the pass must draw
    exactly what it would without it (same augmentations, same resumed stream)."""
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])


def pick_device() -> torch.device:
    forced = os.environ.get("AGE_VCOP_DEVICE")  # e.g. "cpu" to keep a GPU machine off the GPU
    if forced:
        return torch.device(forced)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return "cpu"


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temp path beside `path`; it replaces `path` only if the block finishes without error."""
    path = Path(path)
    if not is_main():  # outputs are rank 0's: a second writer would race it for the same file
        raise RuntimeError(f"rank {world()[0]} tried to write {path}; only rank 0 writes (guard the call with "
                           "runtime.is_main())")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; an output gets the mode open() would give it
        os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the new one, never half
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it: put it straight back
    os.umask(mask)
    return mask


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, torch.Tensor):
        return _jsonable(value.tolist())
    return value


def write_json(path: Path | str, payload: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_jsonable(payload), indent=2, sort_keys=True) + "\n")


def write_csv(path: Path | str, frame: pd.DataFrame) -> None:
    """A table without its index, atomically: a failed stage never leaves half a CSV."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def save_torch(path: Path | str, payload: Any) -> None:
    """torch.save, atomically and byte-stable: saved through a buffer, the zip archive gets a fixed inner name
    (saved to a file it is named after the temp file, so equal weights gave different bytes)."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load_torch(path: Path | str, map_location: Any = "cpu") -> Any:
    """Our own model and checkpoint files: plain tensors and containers only, so no pickled code runs."""
    return torch.load(path, map_location=map_location, weights_only=True)


def read_json(path: Path | str) -> Any:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; run the stage that writes it (dvc repro)")
    return json.loads(path.read_text())


def write_text(path: Path | str, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
