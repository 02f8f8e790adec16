"""Datasets, all offline: the built-in sets of the registry (datasets.py) and user uploads
(.npz or .csv, never pickle).

A dataset comes out of here as numpy arrays plus what the trainer must know about it (sample
shape, task, classes). ``prepare`` splits it under the run's seed, standardizes inputs with
statistics of the training split only, and ``make_batches`` picks how batches are served: small
sets live on the device as tensors and are batched by index, large ones go through a DataLoader.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from .config import DataConfig, UploadRef
from .datasets import REGISTRY
from .events import DatasetSummary

log = logging.getLogger(__name__)

Task = Literal["classification", "regression"]

# Above this many bytes (inputs + targets) the 'auto' loader streams through a DataLoader
# instead of holding the whole set on the device.
TENSOR_LOADER_MAX_BYTES = 256 * 1024 * 1024


class DatasetError(ValueError):
    """A dataset cannot be loaded or does not fit the request; the message says what to change."""


@dataclass
class ArrayDataset:
    """A whole dataset before splitting: ``x`` is (N, *sample_shape), ``y`` is (N,) int64 class
    indices for classification or (N, *target_shape) float32 for regression."""

    name: str
    x: np.ndarray
    y: np.ndarray
    task: Task
    class_names: list[str] | None = None

    @property
    def num_classes(self) -> int | None:
        return len(self.class_names) if self.class_names is not None else None


@dataclass
class PreparedData:
    """Split, normalized tensors (on the CPU) and the summary the trainer reports."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    info: DatasetSummary
    x_mean: np.ndarray | None  # broadcastable against one sample, None when not normalized
    x_std: np.ndarray | None
    y_mean: np.ndarray | None
    y_std: np.ndarray | None


# --- built-in datasets (the registry in datasets.py) ---------------------------------------------


def load_dataset(cfg: DataConfig, *, seed: int) -> ArrayDataset:
    """Load (or generate, under ``seed``) the dataset the config names."""
    if cfg.dataset == "upload":
        assert cfg.upload is not None  # the config validator guarantees it
        return load_upload(cfg.upload)
    entry = REGISTRY[cfg.dataset]
    try:
        x, y, class_names = entry.load(cfg, seed=seed)
    except (ValueError, OSError, ImportError) as e:
        raise DatasetError(f"dataset {entry.name!r}: {e}") from e
    return ArrayDataset(entry.name, x, y, entry.task, class_names)


def describe(ds: ArrayDataset) -> dict[str, Any]:
    """What the editor lists about a dataset, built-in or uploaded alike."""
    return {"task": ds.task, "sample_shape": list(ds.x.shape[1:]), "input_dtype": str(ds.x.dtype),
            "num_classes": ds.num_classes, "class_names": ds.class_names, "samples": len(ds.x)}


# --- uploads -------------------------------------------------------------------------------------


def load_upload(ref: UploadRef) -> ArrayDataset:
    path = Path(ref.path)
    if not path.is_file():
        raise DatasetError(f"upload {path.name!r} not found")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        x, y = _read_npz(path)
    elif suffix == ".csv":
        x, y = _read_csv(path, ref.target_column)
    else:
        raise DatasetError(f"upload {path.name!r}: only .npz (arrays x and y) and .csv are supported")
    if len(x) != len(y):
        raise DatasetError(f"upload {path.name!r}: x has {len(x)} samples but y has {len(y)}")
    if len(x) < 2:
        raise DatasetError(f"upload {path.name!r}: needs at least 2 samples, received {len(x)}")
    if ref.sample_shape is not None:
        want = math.prod(ref.sample_shape)
        have = math.prod(x.shape[1:])
        if want != have:
            raise DatasetError(
                f"upload {path.name!r}: sample_shape {ref.sample_shape} holds {want} values but each "
                f"sample has {have} (shape {list(x.shape[1:])})"
            )
        x = x.reshape(len(x), *ref.sample_shape)
    return _with_targets(path.stem, x, y, ref.task)


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in ("x", "y") if k not in archive.files]
            if missing:
                raise DatasetError(
                    f"upload {path.name!r} has arrays {sorted(archive.files)}; it needs 'x' (inputs) and "
                    "'y' (targets): np.savez(path, x=x, y=y)"
                )
            arrays = {}
            for key in ("x", "y"):
                try:
                    arrays[key] = archive[key]
                except ValueError as e:  # numpy refuses object arrays without allow_pickle
                    raise DatasetError(
                        f"upload {path.name!r}: array {key!r} holds Python objects (pickled data), which "
                        "LayerLab never loads. Save plain numeric arrays, e.g. x.astype('float32')."
                    ) from e
    except DatasetError:
        raise
    except Exception as e:  # a corrupt zip, not an npz at all
        raise DatasetError(f"upload {path.name!r} is not a readable .npz file: {e}") from e
    x, y = arrays["x"], arrays["y"]
    if x.dtype.kind not in "biuf":
        raise DatasetError(f"upload {path.name!r}: x must be numeric, received dtype {x.dtype}")
    if y.dtype.kind not in "biufUS":
        raise DatasetError(f"upload {path.name!r}: y must be numbers or text labels, received dtype {y.dtype}")
    if x.ndim < 2:
        raise DatasetError(f"upload {path.name!r}: x must be (N, ...) with one row per sample, received {x.shape}")
    return x, y


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_csv(path: Path, target: str | int | None) -> tuple[np.ndarray, np.ndarray]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
    if not rows:
        raise DatasetError(f"upload {path.name!r} is empty")
    header: list[str] | None = None
    if not all(_is_number(cell) for cell in rows[0]):
        # A first row with text is a header, unless the text is only in the target column;
        # the common case (names on top) is what we support.
        header = [cell.strip() for cell in rows[0]]
        rows = rows[1:]
    width = len(header) if header is not None else len(rows[0])
    for i, row in enumerate(rows):
        if len(row) != width:
            raise DatasetError(f"upload {path.name!r}: row {i + 1} has {len(row)} columns, expected {width}")
    if target is None:
        col = width - 1
    elif isinstance(target, int):
        if not -width <= target < width:
            raise DatasetError(f"upload {path.name!r}: target column {target} is out of range (0..{width - 1})")
        col = target % width
    else:
        if header is None or target not in header:
            shown = ", ".join(header) if header else "no header row"
            raise DatasetError(f"upload {path.name!r}: no column named {target!r} (columns: {shown})")
        col = header.index(target)
    features = [j for j in range(width) if j != col]
    if not features:
        raise DatasetError(f"upload {path.name!r}: needs at least one feature column besides the target")
    x = np.empty((len(rows), len(features)), dtype=np.float32)
    for i, row in enumerate(rows):
        for k, j in enumerate(features):
            try:
                x[i, k] = float(row[j])
            except ValueError as e:
                name = header[j] if header else str(j)
                raise DatasetError(
                    f"upload {path.name!r}: column {name!r} row {i + 1} is not a number ({row[j]!r}); "
                    "feature columns must be numeric"
                ) from e
    labels = [row[col].strip() for row in rows]
    if all(_is_number(v) for v in labels):
        values = np.array([float(v) for v in labels])
        y = values.astype(np.int64) if np.all(values == np.round(values)) else values.astype(np.float32)
    else:
        y = np.array(labels)
    return x, y


def _with_targets(name: str, x: np.ndarray, y: np.ndarray, task: Task | None) -> ArrayDataset:
    if task is None:
        task = "regression" if y.dtype.kind == "f" else "classification"
    if task == "regression":
        if y.dtype.kind not in "biuf":
            raise DatasetError(f"upload {name!r}: regression needs numeric targets, received {y.dtype}")
        y = y.astype(np.float32)
        if y.ndim == 1:
            y = y[:, None]  # (N, 1): one value per sample
        x = x if x.dtype.kind in "iu" else x.astype(np.float32)
        return ArrayDataset(name, x, y, "regression")
    if y.ndim != 1:
        raise DatasetError(f"upload {name!r}: classification needs one label per sample, y has shape {y.shape}")
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        raise DatasetError(f"upload {name!r}: classification labels must be integers or text")
    values, index = np.unique(y, return_inverse=True)
    if len(values) < 2:
        raise DatasetError(f"upload {name!r}: classification needs at least 2 classes, found {len(values)}")
    names = [str(int(v)) if values.dtype.kind in "iuf" else str(v) for v in values]
    x = x if x.dtype.kind in "iu" else x.astype(np.float32)
    return ArrayDataset(name, x, index.astype(np.int64), "classification", names)


# --- split, normalize, batch -----------------------------------------------------------------------


def _stats_axes(sample_ndim: int) -> tuple[int, ...]:
    # Features (F,): one statistic per feature. Images/sequences (C, ...): one per channel.
    return (0,) if sample_ndim <= 1 else (0, *range(2, sample_ndim + 1))


def _standardize_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    axes = _stats_axes(x.ndim - 1)
    mean = x.mean(axis=axes, keepdims=True, dtype=np.float64)[0]
    std = x.std(axis=axes, keepdims=True, dtype=np.float64)[0]
    std = np.where(std < 1e-8, 1.0, std)  # a constant feature stays as it is, centred
    return mean.astype(np.float32), std.astype(np.float32)


def prepare(ds: ArrayDataset, cfg: DataConfig, *, seed: int, input_dtype: str = "float32") -> PreparedData:
    """Split under ``seed``, then standardize with statistics of the training split only."""
    n = len(ds.x)
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * cfg.val_split))
    if cfg.val_split > 0:
        n_val = min(max(n_val, 1), n - 1)
    val_idx, train_idx = order[:n_val], order[n_val:]
    x_train, x_val = ds.x[train_idx], ds.x[val_idx]
    y_train, y_val = ds.y[train_idx], ds.y[val_idx]

    x_mean = x_std = y_mean = y_std = None
    if input_dtype == "int64":
        if ds.x.dtype.kind not in "iu" and not np.all(ds.x == np.round(ds.x)):
            raise DatasetError(
                f"the graph's Input takes int64 indices (for an Embedding) but {ds.name} has real-valued inputs"
            )
        x_train, x_val = x_train.astype(np.int64), x_val.astype(np.int64)
    else:
        x_train, x_val = x_train.astype(np.float32), x_val.astype(np.float32)
        if cfg.normalize:
            x_mean, x_std = _standardize_stats(x_train)
            x_train = (x_train - x_mean) / x_std
            x_val = (x_val - x_mean) / x_std
    if ds.task == "regression" and cfg.normalize_targets:
        y_mean = y_train.mean(axis=0, dtype=np.float64).astype(np.float32)
        y_std = y_train.std(axis=0, dtype=np.float64).astype(np.float32)
        y_std = np.where(y_std < 1e-8, 1.0, y_std).astype(np.float32)
        y_train, y_val = (y_train - y_mean) / y_std, (y_val - y_mean) / y_std

    info = DatasetSummary(
        name=ds.name,
        task=ds.task,
        sample_shape=list(ds.x.shape[1:]),
        input_dtype="int64" if input_dtype == "int64" else "float32",
        target_shape=list(ds.y.shape[1:]),
        num_classes=ds.num_classes,
        class_names=ds.class_names,
        n_train=len(train_idx),
        n_val=len(val_idx),
        loader="tensor",
    )
    return PreparedData(
        x_train=torch.from_numpy(np.ascontiguousarray(x_train)),
        y_train=torch.from_numpy(np.ascontiguousarray(y_train)),
        x_val=torch.from_numpy(np.ascontiguousarray(x_val)),
        y_val=torch.from_numpy(np.ascontiguousarray(y_val)),
        info=info,
        x_mean=x_mean,
        x_std=x_std,
        y_mean=y_mean,
        y_std=y_std,
    )


class Batches:
    """Serves one epoch of (x, y) batches at a time, already on the device.

    ``generator`` (a CPU torch.Generator) is the only source of shuffling randomness, so saving
    its state at the start of an epoch and skipping the batches already done resumes exactly.
    """

    generator: torch.Generator

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def epoch(self, skip: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:  # pragma: no cover
        raise NotImplementedError


def _drops_last(n: int, batch_size: int, train: bool) -> bool:
    # A trailing training batch of one sample breaks BatchNorm ("Expected more than 1 value per
    # channel"); dropping that one sample per epoch costs nothing.
    return train and n > 1 and n % batch_size == 1


class TensorBatches(Batches):
    """The whole split lives on the device; a batch is an index_select of a random permutation."""

    def __init__(
        self, x: torch.Tensor, y: torch.Tensor, *, batch_size: int, shuffle: bool, device: torch.device,
        seed: int, train: bool = True,
    ) -> None:
        self.x = x.to(device)  # (N, *sample_shape)
        self.y = y.to(device)  # (N,) or (N, *target_shape)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = torch.Generator().manual_seed(seed)
        n = len(x)
        self._n_used = n - 1 if _drops_last(n, batch_size, train) else n

    def __len__(self) -> int:
        return math.ceil(self._n_used / self.batch_size)

    def epoch(self, skip: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.x)
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator).to(self.x.device)
        else:
            order = torch.arange(n, device=self.x.device)
        order = order[: self._n_used]
        for i in range(skip, len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield self.x[idx], self.y[idx]


class LoaderBatches(Batches):
    """A DataLoader over CPU tensors, with workers and pinned memory for large sets."""

    def __init__(
        self, x: torch.Tensor, y: torch.Tensor, *, batch_size: int, shuffle: bool, device: torch.device,
        seed: int, num_workers: int, train: bool = True,
    ) -> None:
        self.device = device
        self.generator = torch.Generator().manual_seed(seed)
        self.loader = DataLoader(
            TensorDataset(x, y),
            batch_size=batch_size,
            shuffle=shuffle,
            generator=self.generator,
            num_workers=num_workers,
            pin_memory=device.type == "cuda",
            drop_last=_drops_last(len(x), batch_size, train),
            persistent_workers=num_workers > 0,
        )

    def __len__(self) -> int:
        return len(self.loader)

    def epoch(self, skip: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        non_blocking = self.device.type == "cuda"
        # Skipped batches are still drawn (and discarded) so the order matches an unbroken epoch.
        for xb, yb in islice(iter(self.loader), skip, None):
            yield xb.to(self.device, non_blocking=non_blocking), yb.to(self.device, non_blocking=non_blocking)


def make_batches(
    data: PreparedData, cfg: DataConfig, *, device: torch.device, seed: int
) -> tuple[Batches, Batches | None]:
    """Training and validation batches; picks the loader and records the choice in ``data.info``."""
    nbytes = sum(t.element_size() * t.nelement() for t in (data.x_train, data.y_train, data.x_val, data.y_val))
    kind = cfg.loader if cfg.loader != "auto" else ("tensor" if nbytes <= TENSOR_LOADER_MAX_BYTES else "dataloader")
    data.info.loader = kind
    val: Batches | None
    if kind == "tensor":
        train = TensorBatches(data.x_train, data.y_train, batch_size=cfg.batch_size, shuffle=cfg.shuffle,
                              device=device, seed=seed)
        val = TensorBatches(data.x_val, data.y_val, batch_size=cfg.batch_size, shuffle=False, device=device,
                            seed=seed, train=False) if len(data.x_val) else None
    else:
        train = LoaderBatches(data.x_train, data.y_train, batch_size=cfg.batch_size, shuffle=cfg.shuffle,
                              device=device, seed=seed, num_workers=cfg.num_workers)
        val = LoaderBatches(data.x_val, data.y_val, batch_size=cfg.batch_size, shuffle=False, device=device,
                            seed=seed, num_workers=0, train=False) if len(data.x_val) else None
    return train, val
