"""What the trainer measures: the per-step loss stream and per-layer health statistics.

Both are written so the GPU is synchronized only when an event is actually sent: losses are
kept as device tensors and read in one ``tolist()``; layer statistics are computed on the device
and read back together.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn

from .events import LayerStat

_RELUS = (nn.ReLU, nn.ReLU6)


class StepBuffer:
    """Coalesces per-step losses into at most one event per ``interval_s`` without losing any.

    ``add`` keeps the detached loss tensor (no device sync); ``due`` says whether an event should
    go out now; ``drain`` reads every pending loss with a single sync.
    """

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._steps: list[int] = []
        self._losses: list[torch.Tensor] = []
        self._samples = 0
        self._last_emit = time.monotonic()
        self._emitted = False  # the first step goes out at once: a run shows life as soon as it can

    def __len__(self) -> int:
        return len(self._steps)

    def add(self, step: int, loss: torch.Tensor, batch_size: int) -> None:
        self._steps.append(step)
        self._losses.append(loss.detach())
        self._samples += batch_size

    def due(self) -> bool:
        return bool(self._steps) and (not self._emitted or time.monotonic() - self._last_emit >= self.interval_s)

    def drain(self) -> tuple[list[tuple[int, float]], float]:
        """Every pending (step, loss), and samples per second since the previous drain."""
        if not self._steps:
            return [], 0.0
        losses = torch.stack(self._losses).float().tolist()  # the one sync per event
        now = time.monotonic()
        elapsed = max(now - self._last_emit, 1e-9)
        points = list(zip(self._steps, losses, strict=True))
        rate = self._samples / elapsed
        self._steps, self._losses, self._samples = [], [], 0
        self._last_emit = now
        self._emitted = True
        return points, rate

    def reset_clock(self) -> None:
        """Restart the rate clock (after a pause, so the paused time is not counted)."""
        self._last_emit = time.monotonic()


class LayerProbe:
    """Per-layer gradient norm, weight norm, update/weight ratio and dead-ReLU fraction for one step.

    Use: ``attach()`` before the forward pass, ``after_backward()`` before ``optimizer.step()``,
    ``after_step()`` after it, then ``collect()``; ``detach()`` always runs (in a ``finally``).
    """

    def __init__(self, model: nn.Module, node_of: Callable[[str], str], *, with_hooks: bool = True) -> None:
        self.model = model
        self.node_of = node_of
        # Modules owning trainable parameters directly (not through children).
        self.owners: list[tuple[str, list[nn.Parameter]]] = []
        for path, module in model.named_modules():
            params = [p for p in module.parameters(recurse=False) if p.requires_grad]
            if params:
                self.owners.append((path, params))
        self.relus = [(path, m) for path, m in model.named_modules() if isinstance(m, _RELUS)] if with_hooks else []
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._dead: dict[str, torch.Tensor] = {}
        self._grad: dict[str, torch.Tensor] = {}
        self._before: dict[str, list[torch.Tensor]] = {}
        self._ratio: dict[str, torch.Tensor] = {}
        self._weight: dict[str, torch.Tensor] = {}

    def attach(self) -> None:
        for path, module in self.relus:
            self._handles.append(module.register_forward_hook(self._dead_hook(path)))

    def _dead_hook(self, path: str) -> Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], None]:
        def hook(_module: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            with torch.no_grad():
                out = output.detach()
                if out.dim() < 2:
                    return
                # A unit (every per-sample position) is dead when zero for every sample of the batch.
                alive = (out != 0).flatten(1).any(dim=0)  # (units,)
                self._dead[path] = 1.0 - alive.float().mean()

        return hook

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @torch.no_grad()
    def after_backward(self) -> None:
        for path, params in self.owners:
            grads = [p.grad.float().norm() for p in params if p.grad is not None]
            if grads:
                self._grad[path] = torch.stack(grads).norm()
            self._before[path] = [p.detach().clone() for p in params]

    @torch.no_grad()
    def after_step(self) -> None:
        for path, params in self.owners:
            before = self._before.pop(path, None)
            w_norm = torch.stack([p.float().norm() for p in params]).norm()
            self._weight[path] = w_norm
            if before is not None:
                delta = torch.stack([(p.float() - b.float()).norm() for p, b in zip(params, before, strict=True)])
                self._ratio[path] = delta.norm() / w_norm.clamp_min(1e-12)

    def collect(self) -> list[LayerStat]:
        tables = {"grad_norm": self._grad, "weight_norm": self._weight, "update_ratio": self._ratio,
                  "dead_fraction": self._dead}
        entries = [(field, path, t) for field, table in tables.items() for path, t in table.items()]
        values = torch.stack([t.float() for _, _, t in entries]).tolist() if entries else []  # one sync
        read: dict[str, dict[str, float]] = {}
        for (field, path, _), value in zip(entries, values, strict=True):
            read.setdefault(path, {})[field] = value
        for table in tables.values():
            table.clear()
        return [LayerStat(node=self.node_of(path), path=path or "model", **fields) for path, fields in read.items()]
