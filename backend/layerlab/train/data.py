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
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from .archive import UploadLimits, UploadTooLargeError, check_expanded, open_zip_checked
from .augment import TrainTransform, build_pipeline, random_steps
from .augment import problem as augment_problem
from .config import DataConfig, UploadRef
from .datasets import REGISTRY
from .events import DatasetSummary
from .images import IMAGE_SUFFIXES, read_image_folder

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
    # Samples [0, split_at) train and the rest validate, in order, instead of a shuffled split:
    # windows of one text overlap, so a shuffled split would show validation text in training.
    split_at: int | None = None

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
        return load_upload(cfg.upload, val_split=cfg.val_split)
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


def load_upload(ref: UploadRef, *, limits: UploadLimits | None = None, val_split: float = 0.2) -> ArrayDataset:
    """An uploaded .npz, .csv, .zip of images or .txt, read within ``limits`` (UploadTooLargeError
    past them). ``val_split`` is needed up front for text, whose vocabulary comes from the training part."""
    limits = limits or UploadLimits.from_env()
    path = Path(ref.path)
    if not path.is_file():
        raise DatasetError(f"upload {path.name!r} not found")
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return _read_text(path, context=ref.context, val_split=val_split, limits=limits)
    class_names = None
    if suffix == ".npz":
        x, y = _read_npz(path, limits)
    elif suffix == ".csv":
        x, y, class_names = _read_csv(path, ref.target_column, limits)
    elif suffix == ".zip":
        x, y, class_names = _read_image_zip(path, ref, limits)
    else:
        raise DatasetError(f"upload {path.name!r}: only .npz (arrays x and y), .csv, .zip (images, one "
                           "folder per class) and .txt (text for next-character prediction) are supported")
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
    return _with_targets(path.stem, x, y, ref.task, limits=limits, class_names=class_names)


UNKNOWN_CHAR = "<unk>"  # class 0 of a text set: characters the training part never shows


def _read_text(path: Path, *, context: int, val_split: float, limits: UploadLimits) -> ArrayDataset:
    """Next-character prediction: x (N, context) int64 character ids, y (N,) the character after.
    The vocabulary is built from the training part of the text (its first 1 − val_split); the
    validation part's windows come from the rest, and unseen characters there become <unk>."""
    check_expanded(f"upload {path.name!r} as windows of {context} characters",
                   path.stat().st_size * (context + 1) * 8, limits)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DatasetError(f"upload {path.name!r} is not UTF-8 text (byte {e.start})") from e
    cut = round(len(text) * (1 - val_split))
    train_text = text[:cut]
    if len(train_text) <= context or (val_split > 0 and len(text) - cut <= context):
        raise DatasetError(f"upload {path.name!r}: {len(text):,} characters are too few for windows of "
                           f"{context} in both splits; use a longer text or a smaller context")
    vocab = [UNKNOWN_CHAR, *sorted(set(train_text))]
    if len(vocab) > limits.max_classes:
        raise _too_many_classes(path.stem, f"{len(vocab):,}", limits)
    index = {ch: i for i, ch in enumerate(vocab)}
    ids = np.array([index.get(ch, 0) for ch in text], dtype=np.int64)

    def windows(part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.lib.stride_tricks.sliding_window_view(part[:-1], context)  # (n, context)
        return x, part[context:]

    x_train, y_train = windows(ids[:cut])
    x_val, y_val = windows(ids[cut:]) if val_split > 0 else (x_train[:0], y_train[:0])
    return ArrayDataset(path.stem, np.concatenate([x_train, x_val]), np.concatenate([y_train, y_val]),
                        "classification", vocab, split_at=len(x_train))


def _read_image_zip(path: Path, ref: UploadRef, limits: UploadLimits) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Check the archive from its headers (file count, decompressed bytes, the decoded array's size),
    then decode it with the same function the training script embeds."""
    try:
        with open_zip_checked(path, limits) as zf:
            n_images = sum(1 for n in zf.namelist() if n.lower().endswith(IMAGE_SUFFIXES))
    except zipfile.BadZipFile as e:
        raise DatasetError(f"upload {path.name!r} is not a readable .zip file: {e}") from e
    channels = 1 if ref.image_color == "grayscale" else 3
    check_expanded(f"upload {path.name!r} ({n_images:,} images of {channels}×{ref.image_size}×{ref.image_size})",
                   n_images * channels * ref.image_size**2 * 4, limits)
    try:
        return read_image_folder(str(path), size=ref.image_size, fit=ref.image_fit, color=ref.image_color)
    except ValueError as e:
        raise DatasetError(f"upload {path.name!r}: {e}") from e


def _npz_declared_bytes(path: Path, limits: UploadLimits) -> None:
    """Check the archive's and each array's declared size (from the zip and .npy headers) before
    numpy allocates anything: a header may claim any shape, whatever the data behind it."""
    with open_zip_checked(path, limits) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(member)
            check_expanded(f"array {info.filename.removesuffix('.npy')!r} {list(shape)}",
                           math.prod(shape) * dtype.itemsize, limits)


def _read_npz(path: Path, limits: UploadLimits) -> tuple[np.ndarray, np.ndarray]:
    try:
        _npz_declared_bytes(path, limits)
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
    except (DatasetError, UploadTooLargeError):
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


CSV_CHUNK_ROWS = 512  # rows held as Python strings at once


def _read_csv(path: Path, target: str | int | None, limits: UploadLimits
              ) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Stream the rows into float32 blocks, so memory is the arrays' size and not Python's strings.
    Returns x, y and, for text labels, the class names y indexes."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = (row for row in csv.reader(f) if row and any(cell.strip() for cell in row))
        first = next(rows, None)
        if first is None:
            raise DatasetError(f"upload {path.name!r} is empty")
        header: list[str] | None = None
        if not all(_is_number(cell) for cell in first):
            # A first row with text is a header, unless the text is only in the target column;
            # the common case (names on top) is what we support.
            header = [cell.strip() for cell in first]
            first = None
        width = len(header) if header is not None else len(first or [])
        col = _target_column(path, target, header, width)
        features = [j for j in range(width) if j != col]
        if not features:
            raise DatasetError(f"upload {path.name!r}: needs at least one feature column besides the target")
        blocks: list[np.ndarray] = []
        values: list[np.ndarray] = []  # numeric labels (NaN where a label is text)
        ids: list[np.ndarray] = []  # every label's index among the distinct texts
        texts: dict[str, int] = {}
        n = 0
        chunk: list[list[str]] = []
        for row in rows if first is None else chain([first], rows):
            chunk.append(row)
            if len(chunk) == CSV_CHUNK_ROWS:
                n = _csv_block(path, chunk, n, width, col, features, header, texts, blocks, values, ids, limits)
                chunk = []
        if chunk:
            n = _csv_block(path, chunk, n, width, col, features, header, texts, blocks, values, ids, limits)
    if n == 0:
        raise DatasetError(f"upload {path.name!r} has a header but no rows")
    x = np.concatenate(blocks)
    numeric = np.concatenate(values)
    if not np.isnan(numeric).any():
        y = numeric.astype(np.int64) if np.all(numeric == np.round(numeric)) else numeric.astype(np.float32)
        return x, y, None
    if len(texts) > limits.max_classes:
        raise _too_many_classes(path.stem, f"more than {limits.max_classes:,}", limits)
    # text labels: class names in sorted order, as np.unique would give them
    names = sorted(texts)
    remap = np.empty(len(texts), dtype=np.int64)
    remap[[texts[t] for t in names]] = np.arange(len(names))
    return x, remap[np.concatenate(ids)], names


def _target_column(path: Path, target: str | int | None, header: list[str] | None, width: int) -> int:
    if target is None:
        return width - 1
    if isinstance(target, int):
        if not -width <= target < width:
            raise DatasetError(f"upload {path.name!r}: target column {target} is out of range (0..{width - 1})")
        return target % width
    if header is None or target not in header:
        shown = ", ".join(header) if header else "no header row"
        raise DatasetError(f"upload {path.name!r}: no column named {target!r} (columns: {shown})")
    return header.index(target)


def _csv_block(path: Path, chunk: list[list[str]], start: int, width: int, col: int, features: list[int],
               header: list[str] | None, texts: dict[str, int], blocks: list[np.ndarray],
               values: list[np.ndarray], ids: list[np.ndarray], limits: UploadLimits) -> int:
    """Parse one block of rows into ``blocks``/``values``/``ids``; returns the rows read so far."""
    end = start + len(chunk)
    check_expanded(f"upload {path.name!r} ({end:,} rows × {len(features)} features so far)",
                   end * (len(features) * 4 + 16), limits)  # float32 features, float64 + int64 label
    x = np.empty((len(chunk), len(features)), dtype=np.float32)
    v = np.empty(len(chunk), dtype=np.float64)
    k = np.full(len(chunk), -1, dtype=np.int64)
    for i, row in enumerate(chunk):
        if len(row) != width:
            raise DatasetError(f"upload {path.name!r}: row {start + i + 1} has {len(row)} columns, expected {width}")
        for c, j in enumerate(features):
            try:
                x[i, c] = float(row[j])
            except ValueError as e:
                name = header[j] if header else str(j)
                raise DatasetError(
                    f"upload {path.name!r}: column {name!r} row {start + i + 1} is not a number ({row[j]!r}); "
                    "feature columns must be numeric"
                ) from e
        label = row[col].strip()
        try:
            v[i] = float(label)
        except ValueError:
            v[i] = np.nan
        # distinct texts are counted up to one past the cap: enough to refuse, never unbounded
        if label not in texts and len(texts) <= limits.max_classes:
            texts[label] = len(texts)
        k[i] = texts.get(label, -1)
    blocks.append(x)
    values.append(v)
    ids.append(k)
    return end


def _too_many_classes(name: str, found: str, limits: UploadLimits) -> DatasetError:
    return DatasetError(f"upload {name!r}: classification with {found} distinct labels is above the limit of "
                        f"{limits.max_classes:,} classes (LAYERLAB_MAX_CLASSES); for a continuous target "
                        "set task to 'regression'")


def _with_targets(name: str, x: np.ndarray, y: np.ndarray, task: Task | None, *, limits: UploadLimits,
                  class_names: list[str] | None = None) -> ArrayDataset:
    """``class_names`` given: y already holds indices into them (text labels)."""
    if class_names is not None:
        if task == "regression":
            raise DatasetError(f"upload {name!r}: regression needs numeric targets, received text labels")
        x = x if x.dtype.kind in "iu" else x.astype(np.float32)
        return ArrayDataset(name, x, y, "classification", class_names)
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
    if len(values) > limits.max_classes:
        raise _too_many_classes(name, f"{len(values):,}", limits)
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
    if ds.split_at is not None:  # the dataset splits itself (text: in order, see ArrayDataset)
        train_idx, val_idx = np.arange(ds.split_at), np.arange(ds.split_at, n)
    else:
        order = np.random.default_rng(seed).permutation(n)
        n_val = int(round(n * cfg.val_split))
        if cfg.val_split > 0:
            n_val = min(max(n_val, 1), n - 1)
        val_idx, train_idx = order[:n_val], order[n_val:]
    x_train, x_val = ds.x[train_idx], ds.x[val_idx]
    y_train, y_val = ds.y[train_idx], ds.y[val_idx]

    x_mean = x_std = y_mean = y_std = None
    if cfg.augment:
        problem = augment_problem(cfg.augment, ds.x.shape[1:])
        if problem or input_dtype == "int64":
            raise DatasetError(f"dataset {ds.name!r}: {problem or 'augmentation needs float images, not int64 ids'}")
    if input_dtype == "int64":
        if ds.x.dtype.kind not in "iu" and not np.all(ds.x == np.round(ds.x)):
            raise DatasetError(
                f"the graph's Input takes int64 indices (for an Embedding) but {ds.name} has real-valued inputs"
            )
        x_train, x_val = x_train.astype(np.int64), x_val.astype(np.int64)
    else:
        x_train, x_val = x_train.astype(np.float32), x_val.astype(np.float32)
        fixed = next((s for s in cfg.augment if s.op == "Normalize"), None)
        if fixed is not None:
            shape = (-1,) + (1,) * (ds.x.ndim - 2)  # (C, 1, 1)
            x_mean = np.array(fixed.mean, dtype=np.float32).reshape(shape)
            x_std = np.array(fixed.std, dtype=np.float32).reshape(shape)
        elif cfg.normalize:
            x_mean, x_std = _standardize_stats(x_train)
        if x_mean is not None:
            x_val = (x_val - x_mean) / x_std
            # With random steps the training split stays as loaded: the device standardizes each
            # batch after augmenting it (make_batches), so padding and jitter see real pixels.
            if not random_steps(cfg):
                x_train = (x_train - x_mean) / x_std
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


class AugmentedBatches(Batches):
    """Training batches through ``data.augment`` on the device; their order comes from ``inner``."""

    def __init__(self, inner: Batches, transform: TrainTransform) -> None:
        self.inner = inner
        self.transform = transform
        self.generator = inner.generator

    def __len__(self) -> int:
        return len(self.inner)

    def epoch(self, skip: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for xb, yb in self.inner.epoch(skip):
            yield self.transform(xb), yb  # (B, C, H, W) in, same shape out


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
    steps = random_steps(cfg)
    if steps:  # validation batches never pass through the augmentation
        pipeline = build_pipeline(steps, data.info.sample_shape)
        train = AugmentedBatches(train, TrainTransform(pipeline, mean=data.x_mean, std=data.x_std, device=device))
    return train, val
