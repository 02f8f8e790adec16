"""Parameter groups, optimizers, learning-rate schedules and losses, built from the run config."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .config import LossConfig, OptimizerConfig, ScheduleConfig
from .events import ParamGroupInfo

# Modules whose parameters are scales and shifts, not weights: no weight decay on them.
NORM_TYPES: tuple[type[nn.Module], ...] = (
    _BatchNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.LocalResponseNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)


def param_groups(
    model: nn.Module, opt: OptimizerConfig
) -> tuple[list[dict[str, object]], list[ParamGroupInfo]]:
    """Optimizer groups over the trainable parameters only, and their description.

    By default only weights (2-D and up, outside norm layers) are decayed; biases, norm scales
    and shifts and other 1-D parameters are not. ``weight_decay_all`` puts everything in one group.
    Frozen parameters (requires_grad=False) are left out entirely, so no optimizer (not even one
    with weight decay or momentum) can move them.
    """
    decay: list[tuple[str, nn.Parameter]] = []
    no_decay: list[tuple[str, nn.Parameter]] = []
    for module_name, module in model.named_modules():
        for param_name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            name = f"{module_name}.{param_name}" if module_name else param_name
            if opt.weight_decay_all or (p.ndim >= 2 and not isinstance(module, NORM_TYPES)):
                decay.append((name, p))
            else:
                no_decay.append((name, p))
    groups: list[dict[str, object]] = []
    infos: list[ParamGroupInfo] = []
    named_groups = [("all" if opt.weight_decay_all else "decay", decay, opt.weight_decay), ("no_decay", no_decay, 0.0)]
    for group_name, members, wd in named_groups:
        if not members:
            continue
        groups.append({"params": [p for _, p in members], "weight_decay": wd, "name": group_name})
        infos.append(
            ParamGroupInfo(
                name=group_name,  # type: ignore[arg-type]
                weight_decay=wd,
                params=[n for n, _ in members],
                tensors=len(members),
                elements=sum(p.numel() for _, p in members),
            )
        )
    return groups, infos


def make_optimizer(groups: list[dict[str, object]], opt: OptimizerConfig) -> torch.optim.Optimizer:
    if opt.name == "sgd":
        return torch.optim.SGD(groups, lr=opt.lr, momentum=opt.momentum, nesterov=opt.nesterov)
    if opt.name == "adam":
        # torch's Adam adds weight decay to the gradient (L2); AdamW decouples it.
        return torch.optim.Adam(groups, lr=opt.lr, betas=opt.betas, eps=opt.eps)
    if opt.name == "adamw":
        return torch.optim.AdamW(groups, lr=opt.lr, betas=opt.betas, eps=opt.eps)
    return torch.optim.RMSprop(groups, lr=opt.lr, momentum=opt.momentum, eps=opt.eps)


class LrFactor:
    """lr multiplier at a step: linear warm-up, then step decay or cosine (a picklable callable,
    so LambdaLR's state_dict carries plain numbers)."""

    def __init__(self, sched: ScheduleConfig, *, base_lr: float, total_steps: int) -> None:
        self.name = sched.name
        self.warmup = sched.warmup_steps
        self.step_size = sched.step_size
        self.gamma = sched.gamma
        self.min_factor = sched.min_lr / base_lr
        self.total = max(total_steps, 1)

    def __call__(self, step: int) -> float:
        if self.warmup and step < self.warmup:
            return (step + 1) / self.warmup
        after = step - self.warmup
        if self.name == "step":
            return self.gamma ** (after // self.step_size)
        if self.name == "cosine":
            span = max(self.total - self.warmup, 1)
            progress = min(after / span, 1.0)
            return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0


def make_scheduler(
    optimizer: torch.optim.Optimizer, sched: ScheduleConfig, *, base_lr: float, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """A scheduler stepped once per optimizer step."""
    if sched.name == "one_cycle":
        pct = sched.warmup_steps / total_steps if sched.warmup_steps else sched.pct_start
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=base_lr, total_steps=max(total_steps, 2), pct_start=min(max(pct, 1e-3), 0.999)
        )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, LrFactor(sched, base_lr=base_lr, total_steps=total_steps))


def l1_penalty(params: list[nn.Parameter]) -> torch.Tensor:
    return torch.stack([p.abs().sum() for p in params]).sum()


class LossFn:
    """The configured loss, plus how to turn a dataset's targets into what it expects."""

    def __init__(self, cfg: LossConfig, *, output_shape: list[int]) -> None:
        self.cfg = cfg
        self.output_shape = output_shape
        if cfg.name == "cross_entropy":
            self.fn: nn.Module = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        elif cfg.name == "nll":
            self.fn = nn.NLLLoss()
        elif cfg.name == "mse":
            self.fn = nn.MSELoss()
        elif cfg.name == "l1":
            self.fn = nn.L1Loss()
        elif cfg.name == "smooth_l1":
            self.fn = nn.SmoothL1Loss(beta=cfg.beta)
        else:
            self.fn = nn.BCEWithLogitsLoss()

    def targets(self, y: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        if self.cfg.name != "bce_with_logits":
            return y
        if out.shape[1:] == (1,):  # binary: one logit per sample, y (B,) in {0, 1}
            return y.to(out.dtype).view(-1, 1)
        return nn.functional.one_hot(y, out.shape[1]).to(out.dtype)  # (B, classes)

    def __call__(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.fn(out.float(), self.targets(y, out).float() if self.cfg.name == "bce_with_logits" else y)

    @torch.no_grad()
    def correct(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Number of correct predictions in the batch (classification), as a device tensor."""
        if self.cfg.name == "bce_with_logits" and out.shape[1:] == (1,):
            return ((out.view(-1) > 0).long() == y).sum()
        return (out.argmax(dim=1) == y).sum()
