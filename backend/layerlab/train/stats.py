"""What the trainer measures: the per-step loss stream, per-layer health statistics, and
snapshots of what each layer makes of one sample.

The first two are written so the GPU is synchronized only when an event is actually sent: losses
are kept as device tensors and read in one ``tolist()``; layer statistics are computed on the
device and read back together. A snapshot is one extra forward pass of one sample, once an epoch.
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .events import FeatureMaps, Histogram, LayerOutput, LayerStat

# What one snapshot may hold, whatever the model: it goes into the run's event log once an epoch.
SNAPSHOT_LAYERS = 64  # layers per snapshot (the first ones, in module order)
SNAPSHOT_CHANNELS = 16  # feature-map channels per layer
SNAPSHOT_SIDE = 32  # a feature map's longer side; larger maps are averaged down (area resampling)
SNAPSHOT_BINS = 32  # histogram bins

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


class OutputProbe:
    """One sample through the model, in eval mode, with a forward hook on each layer: its output
    (a histogram; feature maps when it is (C, H, W)) and a histogram of its weight.

    The layers are the modules of graph nodes that hold no other node (a block's layers, not the
    block), one per node (a repeated block's first copy), at most :data:`SNAPSHOT_LAYERS`. A model
    without node names (a hand-made spec) is looked at through its leaf modules.
    """

    def __init__(self, model: nn.Module, node_of: Callable[[str], str], node_names: dict[str, str]) -> None:
        self.node_of = node_of
        named = [(path, m) for path, m in model.named_modules() if path]
        if node_names:
            named = [(path, m) for path, m in named if path.rsplit(".", 1)[-1] in node_names]
            prefixes = {path.rsplit(".", 1)[0] for path, _ in named if "." in path}
            # A node whose module holds another node's module is a block: look at its layers instead.
            holders = {p for prefix in prefixes for p in _ancestors(prefix)}
            named = [(path, m) for path, m in named if path not in holders]
        else:
            named = [(path, m) for path, m in named if next(m.children(), None) is None]
        seen: set[str] = set()
        self.layers: list[tuple[str, str, nn.Module]] = []
        for path, module in named:
            node = node_of(path)
            if node not in seen and len(self.layers) < SNAPSHOT_LAYERS:
                seen.add(node)
                self.layers.append((node, path, module))

    @torch.no_grad()
    def take(self, model: nn.Module, x: torch.Tensor) -> list[LayerOutput]:
        """Every layer's view of ``x`` (a batch of one); the caller puts the model in eval mode."""
        outputs: dict[str, torch.Tensor] = {}

        def hook_for(path: str) -> Callable[[nn.Module, Any, Any], None]:
            def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
                if isinstance(output, (tuple, list)):  # e.g. an LSTM's (output, (h, c)): the output
                    output = next((o for o in output if isinstance(o, torch.Tensor)), None)
                if isinstance(output, torch.Tensor) and output.dim() >= 1 and path not in outputs:
                    outputs[path] = output.detach()[0]  # this sample, (C, H, W) / (features,) / ...

            return hook

        handles = [m.register_forward_hook(hook_for(path)) for _, path, m in self.layers]
        try:
            model(x)
        finally:
            for handle in handles:
                handle.remove()
        views = []
        for node, path, module in self.layers:
            out = outputs.get(path)
            if out is None:
                continue
            weight = module._parameters.get("weight")
            views.append(LayerOutput(
                node=node, path=path, shape=list(out.shape), output=histogram(out),
                maps=feature_maps(out) if out.dim() == 3 and out.numel() else None,
                weights=histogram(weight.detach()) if weight is not None else None,
            ))
        return views


def _ancestors(path: str) -> list[str]:
    parts = path.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def histogram(t: torch.Tensor, bins: int = SNAPSHOT_BINS) -> Histogram:
    """``torch.histc`` of the finite values over their own [min, max]."""
    values = t.detach().float().flatten()
    finite = values[torch.isfinite(values)]
    nonfinite = values.numel() - finite.numel()
    if finite.numel() == 0:
        return Histogram(lo=0.0, hi=0.0, counts=[0] * bins, nonfinite=nonfinite)
    lo, hi = torch.stack([finite.min(), finite.max()]).tolist()
    counts = torch.histc(finite, bins=bins, min=lo, max=hi)
    return Histogram(lo=lo, hi=hi, counts=[int(c) for c in counts.tolist()], nonfinite=nonfinite)


def feature_maps(t: torch.Tensor, *, channels: int = SNAPSHOT_CHANNELS, side: int = SNAPSHOT_SIDE) -> FeatureMaps:
    """The first ``channels`` maps of a (C, H, W) output, at most ``side`` pixels on their longer
    side, each scaled from its own min..max to 0..255 (non-finite values count as 0)."""
    c, h, w = t.shape
    maps = torch.nan_to_num(t[:channels].detach().float(), nan=0.0, posinf=0.0, neginf=0.0)  # (c, H, W)
    if max(h, w) > side:
        scale = side / max(h, w)
        size = (max(1, math.floor(h * scale)), max(1, math.floor(w * scale)))
        maps = F.interpolate(maps[None], size=size, mode="area")[0]  # (c, h', w')
    lo = maps.amin(dim=(1, 2), keepdim=True)
    hi = maps.amax(dim=(1, 2), keepdim=True)
    span = (hi - lo).clamp_min(torch.finfo(torch.float32).tiny)
    pixels = ((maps - lo) / span * 255).round().clamp(0, 255).to(torch.uint8)
    return FeatureMaps(
        channels=c, height=maps.shape[1], width=maps.shape[2], source_size=(h, w),
        lo=lo.flatten().tolist(), hi=hi.flatten().tolist(),
        pixels=base64.b64encode(pixels.cpu().numpy().tobytes()).decode("ascii"),
    )
