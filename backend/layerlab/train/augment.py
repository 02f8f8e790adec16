"""Image augmentation: the random steps of ``data.augment`` as ``kornia.augmentation`` modules,
applied to whole training batches on the training device (validation batches never pass here).

Each step becomes one kornia module; :func:`pipeline_code` writes the same modules as the code a
training script uses, from the same constructor arguments, so the two cannot drift. The random
steps work on images as loaded (pixels in [0, 1]); standardization comes after them, as it does
in a torchvision ``Compose([..., ToTensor(), Normalize(...)])``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .config import AugmentStep, DataConfig

# kornia is imported when a pipeline is built: it costs ~0.5 s and most runs never need it.


def random_steps(cfg: DataConfig) -> list[AugmentStep]:
    """The steps that run on training batches only (everything but Normalize)."""
    return [s for s in cfg.augment if s.op != "Normalize"]


def problem(steps: Sequence[AugmentStep], sample_shape: Sequence[int]) -> str | None:
    """Why these steps cannot apply to samples of this shape, or None."""
    random = [s for s in steps if s.op != "Normalize"]
    channels = sample_shape[0] if len(sample_shape) == 3 else None
    if random and channels is None:
        shown = "(" + ", ".join(str(d) for d in sample_shape) + ")"
        return f"augmentation ({random[0].op}) needs image samples (C, H, W); received samples of shape {shown}"
    for i, step in enumerate(steps):
        if step.op == "ColorJitter" and (step.saturation or step.hue) and channels != 3:
            return f"augment[{i}]: ColorJitter saturation and hue need RGB images (3 channels); received {channels}"
        if step.op == "RandomCrop" and step.padding_mode == "reflect" and step.padding >= min(sample_shape[1:]):
            return f"augment[{i}]: reflect padding must be smaller than the image; received padding={step.padding}"
        if step.op == "Normalize" and len(sample_shape) >= 1 and len(step.mean) != sample_shape[0]:
            return (f"augment[{i}]: Normalize has {len(step.mean)} mean values but samples have "
                    f"{sample_shape[0]} channels")
    return None


def kornia_args(step: AugmentStep, size: tuple[int, int]) -> tuple[str, dict[str, Any]]:
    """The kornia class name and constructor arguments for one random step on (H, W) = ``size``."""
    if step.op == "RandomCrop":
        return "RandomCrop", {"size": size, "padding": step.padding, "padding_mode": step.padding_mode}
    if step.op == "RandomHorizontalFlip":
        return "RandomHorizontalFlip", {"p": step.p}
    if step.op == "RandomRotation":
        return "RandomRotation", {"degrees": step.degrees, "p": step.p}
    if step.op == "RandomResizedCrop":
        return "RandomResizedCrop", {"size": size, "scale": tuple(step.scale), "ratio": tuple(step.ratio)}
    if step.op == "ColorJitter":
        return "ColorJitter", {"brightness": step.brightness, "contrast": step.contrast,
                               "saturation": step.saturation, "hue": step.hue, "p": step.p}
    raise ValueError(f"{step.op} is not a random step")  # pragma: no cover - Normalize is filtered out


def build_pipeline(steps: Sequence[AugmentStep], sample_shape: Sequence[int]) -> nn.Sequential:
    """The random steps as an ``nn.Sequential`` of kornia modules, for (B, C, H, W) batches."""
    import kornia.augmentation as K  # noqa: N812 - kornia's own convention

    size = (int(sample_shape[1]), int(sample_shape[2]))
    modules = []
    for step in steps:
        name, kwargs = kornia_args(step, size)
        modules.append(getattr(K, name)(**kwargs))
    return nn.Sequential(*modules)


def pipeline_code(steps: Sequence[AugmentStep], sample_shape: Sequence[int]) -> str:
    """The training script's code for the same pipeline (``import kornia.augmentation as K``)."""
    size = (int(sample_shape[1]), int(sample_shape[2]))
    lines = []
    for step in steps:
        name, kwargs = kornia_args(step, size)
        lines.append(f"    K.{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}),")
    return "augment = nn.Sequential(\n" + "\n".join(lines) + "\n)\n"


class TrainTransform:
    """What a training batch goes through on the device: the random steps, then standardization."""

    def __init__(self, pipeline: nn.Module, *, mean: np.ndarray | None, std: np.ndarray | None,
                 device: torch.device) -> None:
        self.pipeline = pipeline.to(device)
        # (C, 1, 1): broadcast over (B, C, H, W)
        self.mean = torch.as_tensor(mean, device=device) if mean is not None else None
        self.std = torch.as_tensor(std, device=device) if std is not None else None

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pipeline(x)  # (B, C, H, W), same shape
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x


PREVIEW_MAX_PIXELS = 128 * 128


def preview(images: np.ndarray, steps: Sequence[AugmentStep], *, draws: int, seed: int) -> list[np.ndarray]:
    """``draws`` passes of (N, C, H, W) images in [0, 1] through the random steps, under ``seed``;
    each clamped to [0, 1] for display."""
    pipeline = build_pipeline(steps, images.shape[1:])
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        with torch.no_grad():
            return [pipeline(x).clamp(0.0, 1.0).numpy() for _ in range(draws)]
    finally:
        torch.random.set_rng_state(state)  # the caller's random stream is left as it was
