"""The one training loop: run_epoch() (one pass over batches with any step function) and fit() (epochs,
checkpoints, val selection or the epoch average). Step functions are in pipeline.steps, the torchrun side
(DDP wrapper, cross-rank reductions) in pipeline.distributed."""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn
from tqdm import tqdm

from pipeline import batchnorm, checkpoint, runtime
from pipeline.averaging import EpochAverage, WeightAverage
from pipeline.checkpoint import FitState
from pipeline.config import TrainConfig
from pipeline.data.loaders import Loaders
from pipeline.distributed import all_finite, ddp_wrap, sum_over_ranks
from pipeline.steps import Batch, Step

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """The loss became NaN/inf; the last good checkpoint is kept."""


@dataclass
class FitResult:
    best: dict[str, float]
    history: list[dict]


def _to_device(batch: Batch, device: torch.device) -> Batch:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(b, device) for b in batch)
    return batch


def _amp_dtype(device: torch.device) -> torch.dtype:
    return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float16


def run_epoch(model: nn.Module, batches: Iterable, step: Step, device: torch.device, use_amp: bool,
              opt: torch.optim.Optimizer | None = None, scheduler: Any = None, scaler: Any = None,
              grad_clip: float = 0.0, desc: str = "", average: WeightAverage | None = None) -> dict[str, float]:
    """One pass; trains when `opt` is given, else evaluates under no_grad. Stats are weighted by batch size.
    `average`, when given, is updated with the trained weights after every optimizer step."""
    training = opt is not None
    model.train(training)
    totals: dict[str, torch.Tensor] = {}
    count, waited = 0, 0.0
    started = ready = time.perf_counter()
    with torch.set_grad_enabled(training):
        for batch in tqdm(batches, desc=desc, leave=False, disable=None):
            waited += time.perf_counter() - ready  # time the loop sat waiting for data
            batch = _to_device(batch, device)
            size = _batch_size(batch)
            with torch.autocast(device.type, dtype=_amp_dtype(device), enabled=use_amp):
                loss, stats = step(model, batch)
            if not all_finite(loss):  # one host sync per step: a NaN must never reach the weights
                raise NonFiniteLossError(f"non-finite loss {loss.item()} ({desc}); the last good checkpoint is "
                                         "kept. Lower the lr (or set amp: false) and run again.")
            if training:
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if grad_clip > 0:
                    scaler.unscale_(opt)
                    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                scaler.step(opt)
                scaler.update()
                scheduler.step()
                if average is not None:
                    average.update()
            for key, value in stats.items():
                totals[key] = totals.get(key, 0) + value.detach().float() * size
            count += size
            ready = time.perf_counter()
    count = sum_over_ranks(totals, count)
    if training:
        elapsed = time.perf_counter() - started
        log.info("%s: %.1f s, %.0f samples/s (photos or tuples), %.0f%% waiting for data", desc, elapsed,
                 count / max(elapsed, 1e-9), 100 * waited / max(elapsed, 1e-9))
    return {k: round(float(v) / max(count, 1), 6) for k, v in totals.items()}


def _batch_size(batch: Batch) -> int:
    while isinstance(batch, (list, tuple)):
        batch = batch[0]
    return int(batch.shape[0])


def _schedule(cfg: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    warmup = max(1, int(cfg.warmup_epochs * steps_per_epoch))
    total = max(warmup + 1, cfg.epochs * steps_per_epoch)

    def factor(step: int) -> float:  # linear warm-up, then cosine to 1% of lr
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / (total - warmup))
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def to_channels_last(model: nn.Module) -> nn.Module:
    """channels_last weights for 2D convs (tensor cores on GPU; on the 2-core CPU 1.6x at 64 px, no gain at
    40-48 px: benchmarks/README.md); 3D convs keep theirs."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            module.to(memory_format=torch.channels_last)
    return model


def _cpu_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def scores_epoch(cfg: TrainConfig, epoch: int) -> bool:
    """Whether epoch `epoch` (0-based) gets a val pass: always without the epoch average (selection and early
    stopping read every epoch), else every cfg.val_every-th epoch (0: none), as those passes are only recorded."""
    if not cfg.swa_epochs:
        return True
    return cfg.val_every > 0 and (epoch + 1) % cfg.val_every == 0


def _patience_spent(state: FitState, cfg: TrainConfig) -> bool:
    """Early stopping: `cfg.patience` epochs in a row without a better val metric (0 = never stop early)."""
    return bool(cfg.patience and state.bad_epochs >= cfg.patience)


def _optimisation(model: nn.Module, cfg: TrainConfig, steps_per_epoch: int, device: torch.device
                  ) -> tuple[torch.optim.Optimizer, Any, Any, bool]:
    """AdamW over the trainable parameters, its warm-up + cosine schedule, the AMP scaler and whether AMP is on."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(cfg, steps_per_epoch))
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp and _amp_dtype(device) == torch.float16)
    return opt, scheduler, scaler, use_amp


def _fit_result(result: dict, state: FitState) -> FitResult:
    """The phase's result row, with the starting weights' val scores (`start_val_*`) when the start was scored."""
    if state.start:
        result.update({f"start_{k}": v for k, v in state.start.items() if k.startswith("val_")})
    return FitResult(best=result, history=state.history)


def _best_result(model: nn.Module, state: FitState, best_weights: dict | None) -> FitResult:
    if best_weights is not None:  # selection on val only: the test split never reaches this loop
        model.load_state_dict(best_weights)
    if state.best_epoch >= 0:
        best_row = state.history[state.best_epoch]
    else:  # no epoch beat the starting weights (kept, epoch 0), or nothing was scored better than inf
        best_row = state.start or state.history[-1]
    result = {k: v for k, v in best_row.items() if k.startswith("val_")}
    result["best_epoch"] = best_row["epoch"]  # 0: the starting weights were kept
    return _fit_result(result, state)


def _recalibrate(model: nn.Module, loaders: Loaders, step: Step, cfg: TrainConfig, device: torch.device,
                 use_amp: bool, epoch: int, n_batches: int | None = None) -> None:
    """BatchNorm statistics of `model` recomputed over `n_batches` (default cfg.bn_recalibration; 0 = off)
    training batches (loaders.statistics_batches()) in this epoch's order, continued in the next epochs' orders
    when one epoch has fewer (pipeline.batchnorm); each process uses its own share of them."""
    n_batches = cfg.bn_recalibration if n_batches is None else n_batches
    if not n_batches:
        return

    def forward(module: nn.Module, batch: Batch) -> None:
        with torch.autocast(device.type, dtype=_amp_dtype(device), enabled=use_amp):
            step(module, _to_device(batch, device))

    batchnorm.recalibrate(model, batchnorm.batches_from(loaders.statistics_batches().epoch, epoch), forward,
                          n_batches)


def _averaged_result(model: nn.Module, epoch_average: EpochAverage, state: FitState, start_weights: dict | None,
                     loaders: Loaders, step: Step, cfg: TrainConfig, device: torch.device, use_amp: bool,
                     select: str, sign: float, tag: str) -> FitResult:
    """cfg.swa_epochs > 0: `model` takes the epoch average, its BatchNorm statistics recomputed over one whole
    pass of the last epoch's training batches, and at least cfg.bn_recalibration of them (the averaged weights
    never ran with any statistics of their own), scored on val. A fine-tuning phase whose starting weights
    (`state.start`) score at least as well keeps those instead (best_epoch 0, as without averaging)."""
    model.load_state_dict(epoch_average.weights)
    with runtime.forked_rng(device):  # as every val pass: what was measured must not change later draws
        _recalibrate(model, loaders, step, cfg, device, use_amp, cfg.epochs - 1,
                     n_batches=max(len(loaders.train), cfg.bn_recalibration))
        val_stats = run_epoch(model, loaders.val.epoch(0), step, device, use_amp, desc=f"{tag} average val")
    log.info("%s average of epochs %d-%d  val %s", tag, epoch_average.first_epoch + 1, cfg.epochs, val_stats)
    result = {f"val_{k}": v for k, v in val_stats.items()}
    result.update(best_epoch=cfg.epochs, averaged_epochs=epoch_average.count)
    if state.start and start_weights is not None and sign * state.start[f"val_{select}"] <= sign * val_stats[select]:
        model.load_state_dict(start_weights)
        log.info("%s: the starting weights score at least as well on val; kept", tag)
        result = {k: v for k, v in state.start.items() if k.startswith("val_")}
        result.update(best_epoch=0, averaged_epochs=0)
    return _fit_result(result, state)


def fit(model: nn.Module, loaders: Loaders, step: Step, cfg: TrainConfig, ckpt_dir: Path, device: torch.device,
        select: str = "mae", maximize: bool = False, tag: str = "", fingerprint_parts: tuple = (),
        select_start: bool = False) -> FitResult:
    """Train `model` in place; return the val stats of the weights it leaves in `model`: with cfg.swa_epochs > 0
    (the default) the epoch average's, else the best epoch's.

    With cfg.ema_decay > 0 the weights scored on val, selected and returned are an exponential moving average
    of the trained ones (pipeline.averaging). ckpt_dir/last.pt holds everything needed to resume (the best weights
    and the average too); it is written after the last
    epoch and, before that, at most every `cfg.checkpoint_every_s` seconds. A rerun with the same fingerprint
    resumes from it (a finished one returns at once); any other fingerprint (params, data, starting weights, process
    count or project code: checkpoint.code_digest) starts afresh.
    With cfg.bn_recalibration > 0 the BatchNorm statistics of the scored weights are recomputed before each val
    pass (pipeline.batchnorm), and the returned model keeps them.
    With `select_start` (a fine-tuning phase) the starting weights are scored on val first, as epoch 0, and are
    returned when no epoch beats them; the result then holds `start_val_*` too.
    With cfg.swa_epochs > 0 the phase returns the epoch average, the uniform average of the weights after each of
    its last swa_epochs epochs (pipeline.averaging.EpochAverage; the result's `averaged_epochs` counts them),
    instead of its best epoch: the val passes of single epochs are then only recorded (history; every
    cfg.val_every-th epoch, none at 0), and `select_start` compares the starting weights with the epoch average.
    """
    to_channels_last(model.to(device))
    opt, scheduler, scaler, use_amp = _optimisation(model, cfg, len(loaders.train), device)
    # a run with another process count takes other per-rank batches (and BatchNorm statistics), and edited code
    # another loss or model: never resume either
    key = checkpoint.fingerprint(cfg, select, tag, checkpoint.state_digest(model), runtime.world()[1],
                                 checkpoint.code_digest(), *fingerprint_parts,
                                 *(("select_start",) if select_start else ()))
    last = ckpt_dir / "last.pt"
    state, best_weights, saved_average = checkpoint.resume(last, key, model, opt, scheduler, scaler, device, tag)
    # with ema_decay > 0 validation scores, and selection keeps, the EMA instead of the last step's
    # weights: at a pretrained encoder's lr one step moves BatchNorm statistics enough to swing val MAE by years
    ema = WeightAverage(model, cfg.ema_decay) if cfg.ema_decay else None
    if ema is not None and saved_average is not None:
        ema.load(saved_average)
    # the checkpoint's one averaging slot holds this phase's weight average: an EMA or (the config allows one of
    # the two) the epoch average
    epoch_average = EpochAverage(min(cfg.swa_epochs, cfg.epochs), cfg.epochs) if cfg.swa_epochs else None
    if epoch_average is not None and saved_average is not None:
        epoch_average.load(saved_average)
    scored = ema.module if ema is not None else model
    net, train_step = ddp_wrap(model, step, device)  # after loading: DDP broadcasts rank 0's weights
    sign = -1.0 if maximize else 1.0
    saved_at = time.monotonic()
    if select_start and state.epoch == 0:
        with runtime.forked_rng(device):  # scoring the start must not change what training draws
            _recalibrate(model, loaders, step, cfg, device, use_amp, 0)
            val_stats = run_epoch(model, loaders.val.epoch(0), step, device, use_amp, desc=f"{tag} start")
        state.record_start(sign * val_stats[select],
                           {"phase": tag, "epoch": 0, **{f"val_{k}": v for k, v in val_stats.items()}})
        best_weights = _cpu_copy(model)
        log.info("%s start (epoch 0)  val %s", tag, val_stats)
    for epoch in range(state.epoch, cfg.epochs):
        if _patience_spent(state, cfg):
            log.info("%s: early stop after %d epochs without a better val %s", tag, state.bad_epochs, select)
            break
        train_stats = run_epoch(net, loaders.train.epoch(epoch), train_step, device, use_amp, opt, scheduler, scaler,
                                cfg.grad_clip, desc=f"{tag} {epoch + 1}/{cfg.epochs}", average=ema)
        val_stats: dict[str, float] = {}
        if scores_epoch(cfg, epoch):
            # forked, as every measuring pass: whether an epoch is scored (val_every) must not change training
            with runtime.forked_rng(device):
                _recalibrate(scored, loaders, step, cfg, device, use_amp, epoch)
                val_stats = run_epoch(scored, loaders.val.epoch(0), step, device, use_amp, desc=f"{tag} val")
        row = {"phase": tag, "epoch": epoch + 1, "lr": scheduler.get_last_lr()[0],
               **{f"train_{k}": v for k, v in train_stats.items()}, **{f"val_{k}": v for k, v in val_stats.items()}}
        improved = state.record(epoch, sign * val_stats[select] if val_stats else None, row)
        if improved and epoch_average is None:  # kept in memory (a copy is ~ms); written with the resumable state
            best_weights = _cpu_copy(scored)  # (with the epoch average, best_weights stay the starting weights)
        if epoch_average is not None:
            epoch_average.add(model, epoch)
        finished = state.epoch == cfg.epochs or _patience_spent(state, cfg)
        if runtime.is_main() and (finished or time.monotonic() - saved_at >= cfg.checkpoint_every_s):
            averaging = ema.state() if ema is not None else epoch_average.state() if epoch_average is not None else None
            checkpoint.save(last, key, model, opt, scheduler, scaler, state, best_weights, averaging)
            saved_at = time.monotonic()
        log.info("%s epoch %d/%d  train %s  val %s%s", tag, epoch + 1, cfg.epochs, train_stats,
                 val_stats or "not scored (val_every)", "  *best*" if improved and epoch_average is None else "")
    if epoch_average is not None:
        return _averaged_result(model, epoch_average, state, best_weights, loaders, step, cfg, device, use_amp,
                                select, sign, tag)
    return _best_result(model, state, best_weights)
