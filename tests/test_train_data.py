"""Datasets: shapes and classes, normalization from the training split only, uploads without pickle."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
import torch

from layerlab.train import DataConfig, DatasetError, UploadRef, load_dataset, prepare
from layerlab.train.config import BuiltinDataset
from layerlab.train.data import TensorBatches, make_batches
from layerlab.train.datasets import REGISTRY


@pytest.mark.parametrize(
    ("name", "sample_shape", "num_classes", "n"),
    [
        ("digits", [1, 8, 8], 10, 1797),
        ("mnist", [1, 28, 28], 10, 5000),
        ("iris", [4], 3, 150),
        ("wine", [13], 3, 178),
        ("breast_cancer", [30], 2, 569),
        ("two_moons", [2], 2, 1000),
        ("spirals", [2], 3, 1000),
        ("blobs", [2], 4, 1000),
        ("signals", [1, 64], 10, 1000),
    ],
)
def test_builtin_classification_sets(name: str, sample_shape: list[int], num_classes: int, n: int) -> None:
    ds = load_dataset(DataConfig(dataset=name), seed=0)
    assert list(ds.x.shape) == [n, *sample_shape]
    assert ds.x.dtype == np.float32
    assert ds.task == "classification"
    assert ds.num_classes == num_classes
    assert ds.class_names is not None and len(ds.class_names) == num_classes
    assert ds.y.dtype == np.int64
    assert sorted(np.unique(ds.y).tolist()) == list(range(num_classes))


def test_every_config_name_is_a_registry_entry() -> None:
    assert list(get_args(BuiltinDataset)) == list(REGISTRY)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_entry_describes_what_its_loader_gives(name: str) -> None:
    entry = REGISTRY[name]
    ds = load_dataset(DataConfig(dataset=name), seed=0)
    assert ds.task == entry.task and ds.name == name
    assert entry.description and entry.help
    assert set(entry.settings) <= set(DataConfig.model_fields)
    assert (ds.class_names is None) == (entry.task == "regression")


@pytest.mark.parametrize("name", list(REGISTRY))
def test_training_script_code_loads_exactly_what_the_run_loads(name: str) -> None:
    # Non-default settings, so a setting the script ignored would show.
    cfg = DataConfig(dataset=name, n_samples=123, noise=0.3, num_classes=5 if name != "two_moons" else None,
                     signal_length=40)
    ds = load_dataset(cfg, seed=7)
    code = REGISTRY[name].script(cfg, seed=7)
    namespace: dict[str, object] = {}
    # dont_inherit: compiled as a script is, without this module's postponed annotations
    exec(compile("import math\nimport numpy as np\n" + code, f"<{name}>", "exec", dont_inherit=True), namespace)
    np.testing.assert_array_equal(namespace["x"], ds.x)
    np.testing.assert_array_equal(namespace["y"], ds.y)
    assert namespace["x"].dtype == ds.x.dtype and namespace["y"].dtype == ds.y.dtype
    assert namespace["class_names"] == ds.class_names


def test_mnist_loads_offline_with_balanced_classes(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("mnist tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    ds = load_dataset(DataConfig(dataset="mnist"), seed=0)
    assert ds.x.shape == (5000, 1, 28, 28) and ds.x.dtype == np.float32
    assert np.bincount(ds.y).tolist() == [500] * 10
    assert float(ds.x.min()) == 0.0 and float(ds.x.max()) == 1.0
    # Real digits: a stroke in the middle, an empty border (MNIST centres digits in a 20×20 box).
    assert ds.x[:, 0, 10:18, 10:18].mean() > 5 * ds.x[:, 0, :2, :].mean()
    # Each class looks like itself: nearest class mean classifies most samples.
    flat = ds.x.reshape(5000, -1)
    means = np.stack([flat[ds.y == c].mean(axis=0) for c in range(10)])
    nearest = np.argmin(((flat[:, None, :] - means[None]) ** 2).sum(axis=2), axis=1)
    assert (nearest == ds.y).mean() > 0.75


def test_known_class_names() -> None:
    assert load_dataset(DataConfig(dataset="iris"), seed=0).class_names == ["setosa", "versicolor", "virginica"]
    assert load_dataset(DataConfig(dataset="digits"), seed=0).class_names == [str(d) for d in range(10)]


def test_regression_set() -> None:
    ds = load_dataset(DataConfig(dataset="diabetes"), seed=0)
    assert ds.task == "regression"
    assert ds.x.shape == (442, 10)
    assert ds.y.shape == (442, 1)
    assert ds.num_classes is None


def test_synthetic_sets_follow_the_seed_and_settings() -> None:
    a = load_dataset(DataConfig(dataset="spirals", n_samples=300, num_classes=5, noise=0.2), seed=3)
    b = load_dataset(DataConfig(dataset="spirals", n_samples=300, num_classes=5, noise=0.2), seed=3)
    c = load_dataset(DataConfig(dataset="spirals", n_samples=300, num_classes=5, noise=0.2), seed=4)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)
    assert a.num_classes == 5 and len(a.x) == 300
    quiet = load_dataset(DataConfig(dataset="two_moons", noise=0.0), seed=0)
    noisy = load_dataset(DataConfig(dataset="two_moons", noise=0.5), seed=0)
    # Without noise every point lies on its unit half circle (outer centred at 0, inner at (1, 0.5)).
    outer = quiet.x[quiet.y == 0]
    np.testing.assert_allclose(np.linalg.norm(outer, axis=1), 1.0, atol=1e-5)
    assert np.abs(np.linalg.norm(noisy.x[noisy.y == 0], axis=1) - 1.0).mean() > 0.1


def test_signals_classes_differ_and_length_is_configurable() -> None:
    ds = load_dataset(DataConfig(dataset="signals", signal_length=32, noise=0.0, n_samples=200), seed=0)
    assert ds.x.shape == (200, 1, 32)
    # Circular shifts keep the power spectrum: classes must be told apart by it, shift or not.
    spectra = np.abs(np.fft.rfft(ds.x[:, 0, :], axis=1))
    spectra /= np.linalg.norm(spectra, axis=1, keepdims=True)
    centroids = np.stack([spectra[ds.y == c].mean(axis=0) for c in range(10)])
    nearest = np.argmax(spectra @ centroids.T, axis=1)
    assert (nearest == ds.y).mean() > 0.8
    with pytest.raises(DatasetError, match="at most 10 classes"):
        load_dataset(DataConfig(dataset="signals", num_classes=12), seed=0)


def test_normalization_uses_training_split_only() -> None:
    cfg = DataConfig(dataset="wine", val_split=0.25)
    ds = load_dataset(cfg, seed=0)
    # Make the validation rows extreme: if they entered the statistics, the train mean would move.
    order = np.random.default_rng(0).permutation(len(ds.x))
    n_val = round(len(ds.x) * 0.25)
    ds.x[order[:n_val]] += 1000.0
    data = prepare(ds, cfg, seed=0)
    assert data.info.n_val == n_val and data.info.n_train == len(ds.x) - n_val
    train = data.x_train.numpy()
    np.testing.assert_allclose(train.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(train.std(axis=0), 1.0, atol=1e-3)
    assert data.x_val.numpy().mean() > 50  # the shifted rows, scaled by train statistics only
    np.testing.assert_allclose(data.x_mean, ds.x[order[n_val:]].mean(axis=0), rtol=1e-5)


def test_image_normalization_is_per_channel() -> None:
    cfg = DataConfig(dataset="digits")
    data = prepare(load_dataset(cfg, seed=0), cfg, seed=0)
    assert data.x_mean is not None and data.x_mean.shape == (1, 1, 1)  # (C, 1, 1)
    assert abs(float(data.x_train.mean())) < 1e-4
    assert abs(float(data.x_train.std()) - 1.0) < 1e-3


def test_regression_targets_standardized_on_train() -> None:
    cfg = DataConfig(dataset="diabetes")
    data = prepare(load_dataset(cfg, seed=0), cfg, seed=0)
    assert abs(float(data.y_train.mean())) < 1e-4
    assert data.info.target_shape == [1]


def test_split_is_disjoint_and_complete() -> None:
    cfg = DataConfig(dataset="iris", val_split=0.2, normalize=False)
    ds = load_dataset(cfg, seed=0)
    data = prepare(ds, cfg, seed=0)
    rows = {tuple(r) for r in np.concatenate([data.x_train.numpy(), data.x_val.numpy()])}
    assert len(data.x_train) + len(data.x_val) == 150 and data.info.n_val == 30
    assert rows == {tuple(r) for r in ds.x}


def test_tensor_batches_cover_every_sample_once_per_epoch() -> None:
    x = torch.arange(10, dtype=torch.float32).view(10, 1)
    y = torch.arange(10)
    batches = TensorBatches(x, y, batch_size=4, shuffle=True, device=torch.device("cpu"), seed=0)
    assert len(batches) == 3
    seen = torch.cat([yb for _, yb in batches.epoch()])
    assert sorted(seen.tolist()) == list(range(10))
    second = torch.cat([yb for _, yb in batches.epoch()])
    assert second.tolist() != seen.tolist()  # reshuffled
    # Skipping replays the rest of the same order when the generator is rewound.
    state = batches.generator.get_state()
    full = [yb.tolist() for _, yb in batches.epoch()]
    batches.generator.set_state(state)
    assert [yb.tolist() for _, yb in batches.epoch(skip=1)] == full[1:]


def test_single_sample_last_batch_is_dropped() -> None:
    x, y = torch.zeros(9, 2), torch.zeros(9, dtype=torch.long)
    batches = TensorBatches(x, y, batch_size=4, shuffle=False, device=torch.device("cpu"), seed=0)
    assert [len(yb) for _, yb in batches.epoch()] == [4, 4]


def test_auto_loader_and_dataloader_path() -> None:
    cfg = DataConfig(dataset="iris", loader="dataloader", batch_size=16)
    data = prepare(load_dataset(cfg, seed=0), cfg, seed=0)
    train, val = make_batches(data, cfg, device=torch.device("cpu"), seed=0)
    assert data.info.loader == "dataloader"
    assert sum(len(yb) for _, yb in train.epoch()) == data.info.n_train
    assert val is not None and sum(len(yb) for _, yb in val.epoch()) == data.info.n_val
    auto = DataConfig(dataset="iris")
    data2 = prepare(load_dataset(auto, seed=0), auto, seed=0)
    make_batches(data2, auto, device=torch.device("cpu"), seed=0)
    assert data2.info.loader == "tensor"


# --- uploads ----------------------------------------------------------------------------------


def _upload(path: Path, **kw: object) -> DataConfig:
    return DataConfig(dataset="upload", upload=UploadRef(path=str(path), **kw))


def test_npz_upload(tmp_path: Path) -> None:
    path = tmp_path / "data.npz"
    x = np.random.default_rng(0).normal(size=(40, 784)).astype(np.float32)
    y = np.repeat(np.array([3, 5, 7, 9]), 10)
    np.savez(path, x=x, y=y)
    ds = load_dataset(_upload(path, sample_shape=[1, 28, 28]), seed=0)
    assert ds.x.shape == (40, 1, 28, 28)
    assert ds.task == "classification"
    assert ds.class_names == ["3", "5", "7", "9"]
    assert sorted(set(ds.y.tolist())) == [0, 1, 2, 3]


def test_npz_with_pickled_objects_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.npz"
    x = np.empty(3, dtype=object)
    x[:] = [{"a": 1}, [1, 2], "three"]
    np.savez(path, x=x, y=np.arange(3))
    with pytest.raises(DatasetError, match="Python objects"):
        load_dataset(_upload(path), seed=0)


def test_npz_missing_arrays_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, inputs=np.zeros((4, 2)), labels=np.zeros(4))
    with pytest.raises(DatasetError, match="needs 'x'"):
        load_dataset(_upload(path), seed=0)


def test_csv_upload_with_header_and_text_labels(tmp_path: Path) -> None:
    path = tmp_path / "flowers.csv"
    rows = ["petal,sepal,kind"] + [f"{i * 0.1:.1f},{i % 3},{'ab'[i % 2]}" for i in range(20)]
    path.write_text("\n".join(rows) + "\n")
    ds = load_dataset(_upload(path, target_column="kind"), seed=0)
    assert ds.x.shape == (20, 2)
    assert ds.class_names == ["a", "b"]
    assert ds.task == "classification"


def test_csv_regression_by_index_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("\n".join(f"{i},{i * 0.5},{i * 1.5 + 0.25}" for i in range(10)))
    ds = load_dataset(_upload(path, target_column=0, task="regression"), seed=0)
    assert ds.task == "regression" and ds.x.shape == (10, 2) and ds.y.shape == (10, 1)
    auto = load_dataset(_upload(path), seed=0)  # last column, real values: regression
    assert auto.task == "regression"
    with pytest.raises(DatasetError, match="no column named 'price'"):
        load_dataset(_upload(path, target_column="price"), seed=0)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,x\n2,1\n")
    with pytest.raises(DatasetError, match="not a number"):
        load_dataset(_upload(bad, target_column="a"), seed=0)


# --- sequences ----------------------------------------------------------------------------------


def test_tokens_class_is_the_most_frequent_token() -> None:
    ds = load_dataset(DataConfig(dataset="tokens", seq_length=20, num_classes=5, n_samples=400), seed=1)
    assert ds.x.shape == (400, 20) and ds.x.dtype == np.int64 and ds.x.min() == 0 and ds.x.max() == 4
    counts = np.stack([(ds.x == k).sum(axis=1) for k in range(5)], axis=1)
    assert (counts[np.arange(400), ds.y] == counts.max(axis=1)).all()
    assert np.bincount(ds.y, minlength=5).min() > 40 and ds.class_names == [f"token {k}" for k in range(5)]


def test_seasonal_targets_continue_the_window() -> None:
    ds = load_dataset(DataConfig(dataset="seasonal", seq_length=48, horizon=6, noise=0.0, n_samples=300), seed=0)
    assert ds.task == "regression" and ds.x.shape == (300, 48, 1) and ds.y.shape == (300, 6)
    # Noise-free series are smooth: the first target follows the window's last step as closely as
    # consecutive steps inside the window follow each other.
    inside = np.abs(np.diff(ds.x[:, :, 0], axis=1)).max()
    assert np.abs(ds.y[:, 0] - ds.x[:, -1, 0]).max() <= inside + 1e-5
    assert inside < 2.0 and ds.y.std() > 0.5


def test_text_upload_windows_and_a_vocabulary_from_the_training_part(tmp_path: Path) -> None:
    path = tmp_path / "poem.txt"
    text = "abcab" * 40 + "xyz" * 10  # 'x', 'y', 'z' only in the last part: validation
    path.write_text(text, encoding="utf-8")
    cfg = DataConfig(dataset="upload", upload=UploadRef(path=str(path), context=4), val_split=0.2)
    ds = load_dataset(cfg, seed=0)
    assert ds.class_names == ["<unk>", "a", "b", "c"]  # built from the first 80 % only
    cut = round(len(text) * 0.8)
    assert ds.split_at == cut - 4 and len(ds.x) == (cut - 4) + (len(text) - cut - 4)
    assert ds.x.shape[1:] == (4,) and ds.x.dtype == np.int64
    decode = np.array(ds.class_names)
    assert "".join(decode[ds.x[0]]) == "abca" and decode[ds.y[0]] == "b"
    assert (ds.x[-20:] == 0).all() and (ds.y[-20:] == 0).all()  # the unseen x, y, z are <unk>
    data = prepare(ds, cfg, seed=0, input_dtype="int64")
    assert data.info.n_train == ds.split_at  # in order, no shuffled split
    np.testing.assert_array_equal(data.x_train.numpy(), ds.x[: ds.split_at])
    path.write_text("tiny", encoding="utf-8")
    with pytest.raises(DatasetError, match="too few for windows of 4"):
        load_dataset(cfg, seed=0)
