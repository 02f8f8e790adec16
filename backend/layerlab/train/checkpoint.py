"""Checkpoints: weights in safetensors, the rest of the trainer's state in a plain-tensor dict.

A checkpoint is a folder::

    step-000120/
      model.safetensors   the model's state_dict (parameters and buffers), nothing executable
      state.pt            optimizer, scheduler, grad scaler, step, epoch, RNG states (torch.save of
                          a plain dict; read back with torch.load(weights_only=True))
      meta.json           run id, step, epoch, reason, the graph and the run config

Nothing else is ever unpickled.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

log = logging.getLogger(__name__)

FORMAT = "layerlab.checkpoint/1"
WEIGHTS = "model.safetensors"
STATE = "state.pt"
META = "meta.json"


class CheckpointError(ValueError):
    """A checkpoint is missing, incomplete, or does not fit the model."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def _plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    # safetensors wants contiguous, unshared CPU tensors; channels_last weights are not contiguous.
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}


def save_checkpoint(
    directory: Path,
    *,
    model: nn.Module,
    state: dict[str, Any],
    meta: dict[str, Any],
) -> Path:
    """Write a checkpoint folder (atomically enough: files first, meta.json last)."""
    directory.mkdir(parents=True, exist_ok=True)
    save_file(_plain_state_dict(model), str(directory / WEIGHTS), metadata={"format": FORMAT})
    torch.save(state, directory / STATE)
    (directory / META).write_text(json.dumps({"format": FORMAT, **meta}, indent=1))
    return directory


def _weights_path(path: Path) -> Path:
    if path.is_dir():
        path = path / WEIGHTS
    if not path.is_file():
        raise CheckpointError(f"no weights at {path} (expected a checkpoint folder or a .safetensors file)")
    return path


def read_weights(path: str | Path, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    return load_file(str(_weights_path(Path(path))), device=str(device))


def read_state(path: str | Path) -> dict[str, Any]:
    """The trainer state of a checkpoint folder (tensors and plain values only)."""
    file = Path(path) / STATE
    if not file.is_file():
        raise CheckpointError(f"{path} has no {STATE}: it holds weights only and cannot be resumed",
                              hint="start a new run from these weights (fine-tune) instead")
    return torch.load(file, map_location="cpu", weights_only=True)


def read_meta(path: str | Path) -> dict[str, Any]:
    file = Path(path) / META
    if not file.is_file():
        return {}
    return json.loads(file.read_text())


Shapes = dict[str, tuple[int, ...]]


def mismatch(own: Shapes, theirs: Shapes) -> str | None:
    """What keeps ``theirs`` from loading exactly into a model with ``own`` tensors: the missing,
    unexpected and wrongly shaped tensors, named (None when they match)."""
    missing = sorted(set(own) - set(theirs))
    unexpected = sorted(set(theirs) - set(own))
    wrong = [f"{k} {_shape(theirs[k])} instead of {_shape(own[k])}"
             for k in sorted(set(own) & set(theirs)) if tuple(own[k]) != tuple(theirs[k])]
    parts = [
        f"{what}: {', '.join(names[:6])}{f' and {len(names) - 6} more' if len(names) > 6 else ''}"
        for what, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
        if names
    ]
    return "; ".join(parts) or None


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def shapes_of(tensors: dict[str, torch.Tensor]) -> Shapes:
    return {k: tuple(v.shape) for k, v in tensors.items()}


def load_weights_exact(model: nn.Module, path: str | Path) -> None:
    """Resume: every tensor must be present with the same shape."""
    weights = read_weights(path)
    problem = mismatch(shapes_of(model.state_dict()), shapes_of(weights))
    if problem:
        raise CheckpointError(
            f"the checkpoint does not match this graph ({problem})",
            hint="resume needs the graph the run was stopped with; to start from these weights with a "
            "changed graph, fine-tune (init_from) instead",
        )
    model.load_state_dict(weights)


def read_weight_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A user's weights: a ``.safetensors`` file, or a ``.pt``/``.pth`` state_dict read with
    ``torch.load(weights_only=True)`` (tensors and plain containers only: nothing executable is
    unpickled). A state_dict saved inside a dict (``{"state_dict": ...}``, ``{"model": ...}``) is
    found too. Raises CheckpointError saying what the file holds instead."""
    path = Path(path)
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except Exception as e:  # the safetensors error names the broken part
            raise CheckpointError(f"not a readable .safetensors file: {e}") from e
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a pickle with code in it, or not a torch file at all
        raise CheckpointError(f"the .pt file could not be read as weights only: {str(e).splitlines()[0]}",
                              hint="save it with torch.save(model.state_dict(), path)") from e
    if isinstance(data, dict) and not any(isinstance(v, torch.Tensor) for v in data.values()):
        nested = [v for v in data.values() if isinstance(v, dict) and v and
                  all(isinstance(t, torch.Tensor) for t in v.values())]
        data = nested[0] if len(nested) == 1 else data
    if not isinstance(data, dict) or not data or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data.items()):
        raise CheckpointError(f"the .pt file holds a {type(data).__name__}, not a state_dict (names → tensors)",
                              hint="save it with torch.save(model.state_dict(), path)")
    return {k: v.detach().contiguous() for k, v in data.items()}


def write_weight_file(tensors: dict[str, torch.Tensor], path: str | Path) -> None:
    save_file({k: v.to("cpu").contiguous().clone() for k, v in tensors.items()}, str(path),
              metadata={"format": FORMAT})


def load_weights_matching(model: nn.Module, path: str | Path) -> WeightTransfer:
    """Fine-tune: copy every tensor whose name and shape match; report the rest."""
    weights = read_weights(path)
    own = model.state_dict()
    loaded = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    skipped_shape = sorted(k for k, v in weights.items() if k in own and own[k].shape != v.shape)
    not_in_checkpoint = sorted(set(own) - set(weights))
    if not loaded:
        raise CheckpointError(
            "no tensor in the checkpoint matches this graph by name and shape",
            hint="fine-tuning copies weights between nodes with the same ids and shapes",
        )
    model.load_state_dict(loaded, strict=False)
    return WeightTransfer(loaded=sorted(loaded), shape_mismatch=skipped_shape, not_in_checkpoint=not_in_checkpoint)


@dataclass
class WeightTransfer:
    loaded: list[str]
    shape_mismatch: list[str]
    not_in_checkpoint: list[str]
