"""Process set-up shared by every stage and predict: the entry point that turns expected failures into one line,
logging, seeds, device choice, torchrun ranks, atomic file writes (JSON, CSV, torch).

The whole torchrun set-up lives here (joining the process group, rank and world size, rank-0 writes); the
training loop's DDP wrapper and cross-rank reductions are in pipeline.distributed."""
from __future__ import annotations

import errno
import io
import json
import logging
import os
import random
import sys
import tempfile
import traceback
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn

import numpy as np
import pandas as pd
import torch

log = logging.getLogger(__name__)
PROJECT = Path(__file__).resolve().parents[1]  # the checkout: pipeline/ and stages/ live here
# exit statuses of entry_point (predict adds 1: some photos could not be used); a bug keeps Python's 1
EXIT_INPUT, EXIT_DISK_FULL, EXIT_INTERRUPTED = 2, 3, 130  # 130 = 128 + SIGINT, as a shell reports Ctrl-C
DEBUG_ENV = "AGE_VCOP_DEBUG"  # set to 1: expected failures print their traceback too


def _raised_on_purpose(err: BaseException) -> bool:
    """A ValueError / FileNotFoundError / RuntimeError raised by project code itself (its innermost frame is in
    pipeline/ or stages/): a named problem (ConfigError, ManifestError, a missing upstream output, ...) whose
    message names the key or file and the fix. The same class raised inside a library is a bug: traceback."""
    if not isinstance(err, (ValueError, FileNotFoundError, RuntimeError)) or err.__traceback__ is None:
        return False
    innermost = traceback.extract_tb(err.__traceback__)[-1].filename
    try:
        return Path(innermost).resolve().relative_to(PROJECT).parts[0] in ("pipeline", "stages")
    except ValueError:  # outside the checkout
        return False


def explain(err: BaseException) -> tuple[str, int] | None:
    """(one line saying what happened and what to do, exit status) for an expected failure; None for a bug."""
    if isinstance(err, KeyboardInterrupt):
        return ("interrupted (Ctrl-C); no file was left half-written (writes are atomic): run the same command "
                "again (a training stage resumes from its last checkpoint)", EXIT_INTERRUPTED)
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" writing {err.filename}" if err.filename else ""
        return (f"disk full{where} ({err.strerror}); nothing was half-written (writes are atomic, the previous file "
                "is intact): free space on that disk and run the same command again", EXIT_DISK_FULL)
    if _raised_on_purpose(err):
        return f"{type(err).__name__}: {err}", EXIT_INPUT
    return None


def entry_point(main: Callable[[], int | None], name: str) -> NoReturn:
    """Run a stage's or predict's main() and exit with its status. An expected failure (explain()) prints one line
    on stderr, with its traceback in a log file (or on stderr when AGE_VCOP_DEBUG=1); a bug raises as usual."""
    try:
        status = main()
    except (Exception, KeyboardInterrupt) as err:
        explained = explain(err)
        if explained is None or os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        line, status = explained
        try:
            where = f"traceback in {_write_log(name, err)}; {DEBUG_ENV}=1 prints it"
        except OSError:  # the disk may be the very thing that is full
            where = f"{DEBUG_ENV}=1 prints the traceback"
        print(f"{name}: {line} ({where})", file=sys.stderr)
    sys.exit(status or 0)


def _write_log(name: str, err: BaseException) -> str:
    """The traceback in a new private file of the temp folder (its path): mkstemp creates it 0600 with O_EXCL, so
    concurrent runs never share one and a link planted under a fixed name is never followed."""
    fd, log_file = tempfile.mkstemp(prefix=f"age-vcop-{name}-", suffix=".log")
    with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as fh:
        fh.write("".join(traceback.format_exception(err)))
    return log_file


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
        # processes sharing the machine split the cores. AGE_VCOP_THREADS sets the count instead: another count
        # sums floats in another order, as another CPU does (benchmarks/perturbation.py)
        torch.set_num_threads(cpu_threads(world_size))
    else:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    log.info("stage %s  seed %d  device %s  torch %s  threads %d", stage or "-", seed, describe(device),
             torch.__version__, torch.get_num_threads())
    if config is not None:
        log.info("config %s", asdict(config) if is_dataclass(config) else config)
    return device


def available_cores() -> int:
    """Cores this process may run on (a container's or taskset's limit, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_threads(world_size: int = 1) -> int:
    """Intra-op threads per process: AGE_VCOP_THREADS when set, else the cores this process may use split over
    the processes."""
    forced = os.environ.get("AGE_VCOP_THREADS", "")
    if forced:
        if not forced.isdigit() or int(forced) < 1:
            raise ValueError(f"AGE_VCOP_THREADS={forced!r}: expected a whole number >= 1 (or unset it)")
        return int(forced)
    return max(1, available_cores() // world_size)


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
        try:
            device = torch.device(forced)
        except RuntimeError:
            device = None
        if device is None or device.type not in ("cpu", "cuda"):
            raise ValueError(f"AGE_VCOP_DEVICE={forced!r} is not a device this project runs on; set it to cpu or "
                             "cuda (or unset it: CUDA when present, else the CPU)")
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if device.type == "cuda" and (device.index or 0) >= gpus:
            raise ValueError(f"AGE_VCOP_DEVICE={forced}: no such CUDA device here ({gpus} found); set "
                             "AGE_VCOP_DEVICE=cpu, or unset it to use CUDA only when present")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def describe(device: torch.device) -> str:
    """The device as the stage log names it; for the CPU its model and the kernels torch picked for it, because
    training bytes differ between CPUs (another summation order) and a log must say which one ran."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({cpu_model()}, {torch.backends.cpu.get_cpu_capability()})"


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what the platform reports, else 'unknown'."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown"


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
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT) and not err.filename:  # write() does not say which file
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
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
