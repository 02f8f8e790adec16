"""Each dataset's loading code as the training script shows it.

``loading_code(cfg)`` returns code that defines ``x`` and ``y``, the very arrays
``data.load_dataset`` gives, so an exported script reproduces a run without importing LayerLab.
A built-in dataset's code is its registry entry's (``DatasetEntry.script``: the loader's own
source and its call); an upload's is written here from the same reading rules ``load_upload``
applies. The reproduction tests (tests/test_script.py) run both and compare.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path

from . import images
from .config import DataConfig, UploadRef
from .data import ArrayDataset, _is_number, load_upload
from .datasets import REGISTRY


@dataclass
class DataCode:
    """``source`` defines ``x`` and ``y``; ``imports`` are the lines it needs at the top."""

    source: str
    task: str  # "classification" or "regression"
    imports: list[str] = field(default_factory=list)
    constants: list[str] = field(default_factory=list)  # module-level lines such as DATA_FILE = ...
    nbytes: int = 0  # the prepared arrays' size (float32 inputs, int64 labels): picks the loader


def _upload(ref: UploadRef) -> DataCode:
    ds = load_upload(ref)  # the same checks a run makes, and the task the run infers
    path = Path(ref.path)
    constants = [f"DATA_FILE = Path({str(path.resolve())!r})  # your upload; change the path if you move it"]
    if path.suffix.lower() == ".zip":
        return _image_zip(ref, ds, constants)
    lines = ["def load_data() -> tuple[np.ndarray, np.ndarray]:"]
    imports: list[str] = []
    if path.suffix.lower() == ".npz":
        lines += [
            '    """Your upload: the arrays x and y saved with np.savez."""',
            "    with np.load(DATA_FILE, allow_pickle=False) as archive:  # plain arrays only, never pickles",
            '        x, y = archive["x"], archive["y"]',
        ]
    else:
        imports.append("import csv")
        lines += _csv_lines(path, ref.target_column)
    if ds.x.dtype.kind not in "iu":  # integer inputs stay integers: they may be an Embedding's ids
        lines.append("    x = x.astype(np.float32)")
    if ref.sample_shape is not None:
        lines.append(f"    x = x.reshape(len(x), {', '.join(str(d) for d in ref.sample_shape)})")
    if ds.task == "regression":
        lines.append("    y = y.astype(np.float32)")
        if ds.y.ndim == 2 and ds.y.shape[1] == 1:
            lines.append("    y = y.reshape(-1, 1)  # (N, 1): one target value per sample")
    else:
        lines.append("    names, y = np.unique(y, return_inverse=True)  # labels -> class indices 0..K-1, sorted")
    lines.append("    return x, y" if ds.task == "regression" else "    return x, y.astype(np.int64)")
    lines += ["", "", "x, y = load_data()"]
    y_bytes = 8 if ds.task == "classification" else 4 * max(ds.y[0].size, 1)
    return DataCode("\n".join(lines), ds.task, imports=imports, constants=constants,
                    nbytes=len(ds.x) * (4 * ds.x[0].size + y_bytes))


def _image_zip(ref: UploadRef, ds: ArrayDataset, constants: list[str]) -> DataCode:
    """A .zip of images: the very function the run decodes it with, then the call."""
    constants = [*constants, f"IMAGE_SUFFIXES = {images.IMAGE_SUFFIXES!r}",
                 f"MAX_IMAGE_PIXELS = {images.MAX_IMAGE_PIXELS}  # one image's width × height"]
    call = (f"read_image_folder(str(DATA_FILE), size={ref.image_size}, fit={ref.image_fit!r}, "
            f"color={ref.image_color!r})")
    source = "\n".join([
        inspect.getsource(images.read_image_folder).rstrip(), "", "",
        "def load_data() -> tuple[np.ndarray, np.ndarray]:",
        '    """Your images: one folder per class in the .zip."""',
        f"    x, y, _class_names = {call}",
        "    return x, y", "", "",
        "x, y = load_data()",
    ])
    return DataCode(source, "classification", constants=constants, nbytes=len(ds.x) * (4 * ds.x[0].size + 8))


def _csv_lines(path: Path, target: str | int | None) -> list[str]:
    with path.open(newline="", encoding="utf-8") as f:
        first = f.readline()
    header = [c.strip() for c in first.rstrip("\r\n").split(",")]
    has_header = not all(_is_number(c) for c in header)
    width = len(header)
    if target is None:
        col = width - 1
    elif isinstance(target, int):
        col = target % width
    else:
        col = header.index(target)
    features = [j for j in range(width) if j != col]
    lines = [
        '    """Your upload: a CSV file, one row per sample."""',
        "    with open(DATA_FILE, newline='', encoding='utf-8') as f:",
        "        rows = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]",
    ]
    if has_header:
        lines.append("    rows = rows[1:]  # the first row names the columns")
    what = f"column {header[col]!r}" if has_header else f"column {col}"
    lines += [
        f"    features = {features}",
        "    x = np.array([[float(row[j]) for j in features] for row in rows], dtype=np.float32)",
        f"    labels = [row[{col}].strip() for row in rows]  # the target: {what}",
        "    try:",
        "        values = np.array([float(v) for v in labels])",
        "        y = values.astype(np.int64) if np.all(values == np.round(values)) else values.astype(np.float32)",
        "    except ValueError:  # text labels",
        "        y = np.array(labels)",
    ]
    return lines


def loading_code(cfg: DataConfig, *, seed: int) -> DataCode:
    """The ``load_data()`` source for the configured dataset."""
    if cfg.dataset == "upload":
        assert cfg.upload is not None  # the config validator guarantees it
        return _upload(cfg.upload)
    entry = REGISTRY[cfg.dataset]
    code = DataCode(entry.script(cfg, seed=seed), entry.task)
    if cfg.dataset in ("two_moons", "spirals", "blobs"):
        code.nbytes = cfg.n_samples * (2 * 4 + 8)
    elif cfg.dataset == "signals":
        code.nbytes = cfg.n_samples * (cfg.signal_length * 4 + 8)
    return code  # the other built-in sets are 15 MB at most
