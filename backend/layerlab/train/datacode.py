"""Each dataset's loading code as the training script shows it.

``loading_code(cfg)`` returns the source of a ``load_data()`` function that gives the very arrays
``data.load_dataset`` gives (same generator calls under the same seed), so an exported script
reproduces a run without importing LayerLab. One entry per built-in dataset, keyed by name: the
place a dataset registry hangs each dataset's script code on. The reproduction tests
(tests/test_script.py) run both and compare.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .config import DataConfig, UploadRef
from .data import SIGNAL_NAMES, _is_number, _split_counts, load_upload


@dataclass
class DataCode:
    """``source`` defines ``load_data() -> (x, y)``; ``imports`` are the lines it needs at the top."""

    source: str
    task: str  # "classification" or "regression"
    imports: list[str] = field(default_factory=list)
    constants: list[str] = field(default_factory=list)  # module-level lines such as DATA_FILE = ...
    nbytes: int = 0  # the prepared arrays' size (float32 inputs, int64 labels): picks the loader
    integer_inputs: bool = False  # load_data() gives integer x (else float32)


def _sklearn(loader: str, doc: str, body: list[str], task: str = "classification") -> DataCode:
    lines = [
        "def load_data() -> tuple[np.ndarray, np.ndarray]:",
        f'    """{doc}"""',
        f"    bunch = {loader}()",
        *body,
    ]
    return DataCode("\n".join(lines), task, imports=[f"from sklearn.datasets import {loader}"])


def _digits(cfg: DataConfig) -> DataCode:
    return _sklearn("load_digits", "scikit-learn's 8×8 handwritten digits: x (N, 1, 8, 8) in [0, 1], y (N,) 0-9.", [
        "    x = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]  # (N, 1, 8, 8): one channel",
        "    return x, bunch.target.astype(np.int64)",
    ])


def _table(loader: str, what: str):  # noqa: ANN202 - a small factory of entries
    def entry(cfg: DataConfig) -> DataCode:
        return _sklearn(loader, f"scikit-learn's {what}: x (N, features), y (N,) class indices.", [
            "    return bunch.data.astype(np.float32), bunch.target.astype(np.int64)",
        ])
    return entry


def _diabetes(cfg: DataConfig) -> DataCode:
    return _sklearn("load_diabetes", "scikit-learn's diabetes progression: x (N, 10), y (N, 1) to predict.", [
        "    return bunch.data.astype(np.float32), bunch.target.astype(np.float32)[:, None]",
    ], task="regression")


def _generated(doc: str, body: list[str]) -> DataCode:
    lines = [
        "def load_data() -> tuple[np.ndarray, np.ndarray]:",
        f'    """{doc}"""',
        "    rng = np.random.default_rng(SEED)  # the same seed makes the same data",
        *body,
        "    order = rng.permutation(len(x))  # the classes come out mixed",
        "    return x[order].astype(np.float32), y[order].astype(np.int64)",
    ]
    return DataCode("\n".join(lines), "classification")


def _two_moons(cfg: DataConfig) -> DataCode:
    n_outer, n_inner = _split_counts(cfg.n_samples, 2)
    return _generated(f"Two interleaving half circles, noise std {cfg.noise!r}: x (N, 2), y (N,) in {{0, 1}}.", [
        f"    n_outer, n_inner = {n_outer}, {n_inner}",
        "    t_outer = rng.uniform(0.0, math.pi, n_outer)",
        "    t_inner = rng.uniform(0.0, math.pi, n_inner)",
        "    outer = np.stack([np.cos(t_outer), np.sin(t_outer)], axis=1)",
        "    inner = np.stack([1.0 - np.cos(t_inner), 0.5 - np.sin(t_inner)], axis=1)",
        f"    x = np.concatenate([outer, inner]) + rng.normal(0.0, {cfg.noise!r}, ({cfg.n_samples}, 2))",
        "    y = np.concatenate([np.zeros(n_outer), np.ones(n_inner)])",
    ])


def _per_class(k: int, n: int, doc: str, body: list[str]) -> DataCode:
    return _generated(doc, [
        "    xs, ys = [], []",
        f"    for c, m in enumerate({_split_counts(n, k)}):  # class c gets m samples",
        *body,
        "        ys.append(np.full(m, c))",
        "    x, y = np.concatenate(xs), np.concatenate(ys)",
    ])


def _spirals(cfg: DataConfig) -> DataCode:
    k = cfg.num_classes or 3
    return _per_class(k, cfg.n_samples, f"{k} interleaved spiral arms, 1.5 turns each: x (N, 2), y (N,) the arm.", [
        "        r = rng.uniform(0.05, 1.0, m)",
        f"        theta = 3.0 * math.pi * r + 2.0 * math.pi * c / {k}",
        "        arm = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)",
        f"        xs.append(arm + rng.normal(0.0, {cfg.noise!r} * 0.5, (m, 2)))",
    ])


def _blobs(cfg: DataConfig) -> DataCode:
    k = cfg.num_classes or 4
    return _per_class(k, cfg.n_samples, f"{k} gaussian clusters centred on a circle of radius 3: x (N, 2).", [
        f"        angle = 2.0 * math.pi * c / {k}",
        "        centre = np.array([3.0 * math.cos(angle), 3.0 * math.sin(angle)])",
        f"        xs.append(centre + rng.normal(0.0, 0.3 + 3.0 * {cfg.noise!r}, (m, 2)))",
    ])


# One clean waveform per class on t in [0, 1), as data.signals draws them.
SIGNAL_TEMPLATES = (
    "np.sin(2 * math.pi * 3 * t)",
    "np.sign(np.sin(2 * math.pi * 3 * t))",
    "2.0 * ((3 * t) % 1.0) - 1.0",
    "2.0 * np.abs(2.0 * ((3 * t) % 1.0) - 1.0) - 1.0",
    "2.0 * np.exp(-((t - 0.5) ** 2) / (2 * 0.05**2)) - 1.0",
    "np.where((t > 0.3) & (t < 0.7), 1.0, -1.0)",
    "np.sin(2 * math.pi * (1.0 * t + 3.5 * t**2))",
    "np.exp(-4.0 * t) * np.sin(2 * math.pi * 5 * t)",
    "2.0 * (np.exp(-((t - 0.3) ** 2) / 0.002) + np.exp(-((t - 0.7) ** 2) / 0.002)) - 1.0",
    "np.sin(2 * math.pi * 7 * t)",
)


def _signals(cfg: DataConfig) -> DataCode:
    k, length = cfg.num_classes or 10, cfg.signal_length
    templates = [f"        {expr},  # {name}" for expr, name in zip(SIGNAL_TEMPLATES[:k], SIGNAL_NAMES, strict=False)]
    doc = (f"{k} waveforms, each shifted, scaled and noisy: x (N, 1, {length}), y (N,) the waveform.")
    return _generated(doc, [
        f"    t = np.arange({length}) / {length}",
        "    clean = [  # one template per class, roughly in [-1, 1]",
        *templates,
        "    ]",
        "    xs, ys = [], []",
        f"    for c, m in enumerate({_split_counts(cfg.n_samples, k)}):  # class c gets m samples",
        f"        shifts = rng.integers(0, {length}, m)",
        "        rows = np.stack([np.roll(clean[c], int(s)) for s in shifts])  # (m, L): circular shifts",
        "        rows *= rng.uniform(0.5, 1.5, (m, 1))  # a random amplitude per row",
        f"        rows += rng.normal(0.0, {cfg.noise!r}, (m, {length}))",
        "        xs.append(rows[:, None, :])  # (m, 1, L): one channel for Conv1d",
        "        ys.append(np.full(m, c))",
        "    x, y = np.concatenate(xs), np.concatenate(ys)",
    ])


BUILTIN_CODE = {
    "digits": _digits,
    "iris": _table("load_iris", "iris flowers"),
    "wine": _table("load_wine", "wines"),
    "breast_cancer": _table("load_breast_cancer", "breast cancer biopsies"),
    "diabetes": _diabetes,
    "two_moons": _two_moons,
    "spirals": _spirals,
    "blobs": _blobs,
    "signals": _signals,
}


def _upload(ref: UploadRef) -> DataCode:
    ds = load_upload(ref)  # the same checks a run makes, and the task the run infers
    path = Path(ref.path)
    constants = [f"DATA_FILE = Path({str(path.resolve())!r})  # your upload; change the path if you move it"]
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
    y_bytes = 8 if ds.task == "classification" else 4 * max(ds.y[0].size, 1)
    return DataCode("\n".join(lines), ds.task, imports=imports, constants=constants,
                    integer_inputs=ds.x.dtype.kind in "iu",
                    nbytes=len(ds.x) * (4 * ds.x[0].size + y_bytes))


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


def loading_code(cfg: DataConfig) -> DataCode:
    """The ``load_data()`` source for the configured dataset."""
    if cfg.dataset == "upload":
        assert cfg.upload is not None  # the config validator guarantees it
        return _upload(cfg.upload)
    code = BUILTIN_CODE[cfg.dataset](cfg)
    if cfg.dataset in ("two_moons", "spirals", "blobs"):
        code.nbytes = cfg.n_samples * (2 * 4 + 8)
    elif cfg.dataset == "signals":
        code.nbytes = cfg.n_samples * (cfg.signal_length * 4 + 8)
    return code  # scikit-learn's sets are a few hundred kB at most
