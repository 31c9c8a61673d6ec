"""The torchrun side of training: the DDP wrapper and the cross-rank reductions of run_epoch (runtime.setup() joins
the process group); each is a no-op in a single process."""
from __future__ import annotations

import torch
from torch import nn

from pipeline import runtime
from pipeline.steps import Batch, Step


class _StepModule(nn.Module):
    """Runs the step inside forward(), so DistributedDataParallel sees (and syncs) every parameter it uses,
    also those reached through submodules (multitrain's model.age, model.vcop)."""

    def __init__(self, model: nn.Module, step: Step):
        super().__init__()
        self.model, self.step = model, step

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.step(self.model, batch)


def _call_module(module: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    return module(batch)


def ddp_wrap(model: nn.Module, step: Step, device: torch.device) -> tuple[nn.Module, Step]:
    """(module, step) for the training pass: DDP-wrapped under torchrun, the model itself otherwise."""
    if runtime.world()[1] == 1:
        return model, step
    from torch.nn.parallel import DistributedDataParallel

    # a step need not reach every trainable parameter (a module a coupling or protocol bypasses); without this
    # DDP would wait forever for their gradients
    ddp = DistributedDataParallel(_StepModule(model, step), device_ids=[device] if device.type == "cuda" else None,
                                  find_unused_parameters=True)
    return ddp, _call_module


def all_finite(loss: torch.Tensor) -> bool:
    """Under torchrun every rank must agree, or a rank that stops leaves the others waiting in backward."""
    ok = torch.isfinite(loss.detach()).float()
    if runtime.world()[1] > 1:
        torch.distributed.all_reduce(ok, op=torch.distributed.ReduceOp.MIN)
    return bool(ok.item())


def sum_over_ranks(totals: dict[str, torch.Tensor], count: int) -> int:
    """Epoch stats over every rank's share (in place); returns the global sample count."""
    if runtime.world()[1] == 1:
        return count
    keys = sorted(totals)  # every rank ran the same step function, so the keys agree
    device = next(iter(totals.values())).device if totals else torch.device("cpu")
    packed = torch.stack([*(totals[k].float() for k in keys), torch.tensor(float(count), device=device)])
    torch.distributed.all_reduce(packed)
    totals.update(zip(keys, packed[:-1]))
    return int(packed[-1].item())
