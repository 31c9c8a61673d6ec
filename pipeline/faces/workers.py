"""prepare_many(): the one preprocessing (pipeline.faces.preprocess) over many photos, across worker processes on
the CPU, in input order, with a progress bar and a periodic log line (rate, ETA) for long cache builds."""
from __future__ import annotations

import logging
import time
from collections import deque
from multiprocessing import get_context
from typing import Iterable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from pipeline.faces import landmarks as L
from pipeline.faces.photo import PhotoError
from pipeline.faces.preprocess import PreparedFace, Source, prepare_batch
from pipeline.faces.settings import FaceSettings
from pipeline.runtime import available_cores

log = logging.getLogger(__name__)
PROGRESS_LOG_S = 30.0  # a progress line (done, rate, ETA) this often: the bar is hidden outside a terminal


def _init_worker(threads: int) -> None:
    # a forked child must not reuse the parent's OpenMP pool; available_cores() // workers threads each keep the
    # processes from oversubscribing the cores
    torch.set_num_threads(threads)


def _prepare_chunk(job: tuple[list[Source], FaceSettings, list | None]) -> list[PreparedFace | PhotoError]:
    sources, settings, labels = job
    return prepare_batch(sources, settings, labels=labels)


class Progress:
    """A tqdm bar (hidden outside a terminal) plus a log line every PROGRESS_LOG_S: done, rate and ETA, so a
    long build run by `dvc repro` into a log file still says how far it is."""

    def __init__(self, total: int, desc: str) -> None:
        self.total, self.desc, self.done = total, desc, 0
        self.bar = tqdm(total=total, desc=desc, unit="photo", disable=None)
        self.start = self.last_log = time.monotonic()

    def update(self, n: int) -> None:
        self.bar.update(n)
        self.done += n
        now = time.monotonic()
        if now - self.last_log >= PROGRESS_LOG_S and self.done < self.total:
            self.last_log = now
            rate = self.done / (now - self.start)
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            log.info("%s: %d/%d photos (%.1f %%), %.1f photos/s, ETA %s", self.desc, self.done, self.total,
                     100 * self.done / self.total, rate, _duration(eta))

    def close(self) -> None:
        self.bar.close()


def _duration(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "unknown"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def prepare_many(sources: Sequence[Source], settings: FaceSettings, workers: int = 2, chunk_size: int = 16,
                 device: str | None = None, desc: str = "faces",
                 labels: Sequence[L.FaceLabel | None] | None = None) -> Iterable[PreparedFace | PhotoError]:
    """prepare() for many photos, in input order, with a progress bar and ETA; errors are yielded, not raised.

    On the CPU, `workers` processes (available_cores() // workers torch threads each) share the photos in chunks,
    at most 2 chunks per worker in flight, so memory stays bounded however many photos there are; with workers <= 1
    or a CUDA device, one process detects in batches of equal-size photos. labels: as for prepare_faces (landmarks).
    """
    chunks = [(i, min(i + chunk_size, len(sources))) for i in range(0, len(sources), chunk_size)]
    part = (lambda seq, a, b: None if seq is None else list(seq[a:b]))
    progress = Progress(len(sources), desc)
    use_cuda = settings.face == "mtcnn" and (device == "cuda" or (device is None and torch.cuda.is_available()))
    try:
        if workers <= 1 or use_cuda or len(chunks) <= 1:
            detector = settings.detector(device)
            for a, b in chunks:
                results = prepare_batch(list(sources[a:b]), settings, detector, part(labels, a, b))
                progress.update(b - a)
                yield from results
            return
        threads = max(1, available_cores() // workers)
        with get_context("fork").Pool(workers, initializer=_init_worker, initargs=(threads,)) as pool:
            pending: deque = deque()
            todo = iter(chunks)
            for a, b in todo:  # ordered results with a bounded queue (Pool.imap submits every chunk at once)
                pending.append(pool.apply_async(_prepare_chunk, ((list(sources[a:b]), settings, part(labels, a, b)),)))
                if len(pending) < 2 * workers:
                    continue
                results = pending.popleft().get()
                progress.update(len(results))
                yield from results
            while pending:
                results = pending.popleft().get()
                progress.update(len(results))
                yield from results
    finally:
        progress.close()
