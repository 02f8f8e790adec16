"""Augmentation: kornia steps on training batches only, standardized after, the same as the script's code."""

from __future__ import annotations

from typing import Any

import kornia.augmentation as K  # noqa: N812
import pytest
import torch
from pydantic import ValidationError
from torch import nn

from helpers import chain
from layerlab.train import DataConfig, DatasetError, RunConfig, load_dataset, prepare, train
from layerlab.train.augment import build_pipeline, pipeline_code
from layerlab.train.data import AugmentedBatches, make_batches

CPU = torch.device("cpu")
FLIP_CROP = [{"op": "RandomCrop", "padding": 4}, {"op": "RandomHorizontalFlip"}]
EVERY_STEP = [
    {"op": "RandomResizedCrop", "scale": [0.7, 1.0]},
    {"op": "RandomRotation", "degrees": 20},
    {"op": "ColorJitter", "brightness": 0.3, "contrast": 0.3},
    *FLIP_CROP,
]


def batches(dataset: str, augment: list[dict[str, Any]], **kw: Any) -> tuple[Any, Any, Any]:
    cfg = DataConfig(dataset=dataset, augment=augment, batch_size=128, **kw)
    data = prepare(load_dataset(cfg, seed=0), cfg, seed=0)
    train_b, val_b = make_batches(data, cfg, device=CPU, seed=0)
    return data, train_b, val_b


@pytest.mark.parametrize("augment", [FLIP_CROP, EVERY_STEP], ids=["flip+crop", "every step"])
def test_validation_batches_are_bit_identical_with_and_without(augment: list[dict[str, Any]]) -> None:
    torch.manual_seed(0)
    plain, plain_train, plain_val = batches("mnist", [])
    torch.manual_seed(1)  # a different augmentation draw must not matter either
    aug, aug_train, aug_val = batches("mnist", augment)
    assert isinstance(aug_train, AugmentedBatches) and not isinstance(aug_val, AugmentedBatches)
    assert torch.equal(plain.x_val, aug.x_val)
    pairs = list(zip(plain_val.epoch(), aug_val.epoch(), strict=True))
    assert pairs and all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in pairs)
    # ... while the training batches (same order, same labels) are changed.
    (xa, ya), (xb, yb) = next(plain_train.epoch()), next(aug_train.epoch())
    assert torch.equal(ya, yb) and xa.shape == xb.shape == (128, 1, 28, 28)
    assert (xa - xb).abs().mean() > 0.1


def test_identity_steps_give_the_plain_standardized_batches() -> None:
    # A crop without padding and a flip that never fires change nothing, so what comes out must be
    # the batches standardized on the host: the device standardizes after augmenting, with the same stats.
    identity = [{"op": "RandomCrop", "padding": 0}, {"op": "RandomHorizontalFlip", "p": 0.0}]
    _, plain_train, _ = batches("digits", [])
    _, aug_train, _ = batches("digits", identity)
    for (xa, ya), (xb, yb) in zip(plain_train.epoch(), aug_train.epoch(), strict=True):
        assert torch.equal(ya, yb)
        torch.testing.assert_close(xb, xa, rtol=0, atol=1e-6)


def test_flip_and_crop_do_what_they_say() -> None:
    raw = {"normalize": False}
    _, plain_train, _ = batches("mnist", [], **raw)
    _, flipped, _ = batches("mnist", [{"op": "RandomHorizontalFlip", "p": 1.0}], **raw)
    (xa, _), (xb, _) = next(plain_train.epoch()), next(flipped.epoch())
    assert torch.equal(xb, xa.flip(-1))
    _, cropped, _ = batches("mnist", [{"op": "RandomCrop", "padding": 4}], **raw)
    xc, _ = next(cropped.epoch())
    padded = nn.functional.pad(xa, (4, 4, 4, 4))  # (B, 1, 36, 36)
    shifts = set()
    for i in range(16):  # each crop is some 28×28 window of the zero-padded image
        hits = [(dy, dx) for dy in range(9) for dx in range(9)
                if torch.allclose(padded[i, :, dy:dy + 28, dx:dx + 28], xc[i], atol=1e-6)]
        assert hits, f"sample {i} is not a window of its padded image"
        shifts.update(hits)
    assert len(shifts) > 1  # and the windows move


def test_normalize_step_applies_to_both_splits() -> None:
    steps = [*FLIP_CROP, {"op": "Normalize", "mean": [0.5], "std": [0.25]}]
    raw, _, _ = batches("mnist", [], normalize=False)
    data, train_b, _ = batches("mnist", steps, normalize=False)
    torch.testing.assert_close(data.x_val, (raw.x_val - 0.5) / 0.25)
    xb, _ = next(train_b.epoch())
    assert float(xb.min()) == pytest.approx(-2.0)  # black pixels (and the padding) land at (0 - 0.5) / 0.25


def test_the_scripts_code_builds_the_same_pipeline() -> None:
    cfg = DataConfig(dataset="mnist", augment=EVERY_STEP)
    steps = cfg.augment
    namespace: dict[str, Any] = {"K": K, "nn": nn}
    exec(pipeline_code(steps, [1, 28, 28]), namespace)
    ours = build_pipeline(steps, [1, 28, 28])
    assert repr(namespace["augment"]) == repr(ours)
    x = torch.rand(8, 1, 28, 28)
    torch.manual_seed(3)
    a = namespace["augment"](x)
    torch.manual_seed(3)
    torch.testing.assert_close(ours(x), a, rtol=0, atol=0)


def test_bad_pipelines_are_refused_with_the_reason() -> None:
    with pytest.raises(DatasetError, match=r"needs image samples \(C, H, W\); received samples of shape \(4\)"):
        batches("iris", FLIP_CROP)
    with pytest.raises(DatasetError, match="saturation and hue need RGB images"):
        batches("mnist", [{"op": "ColorJitter", "saturation": 0.2}])
    with pytest.raises(DatasetError, match="Normalize has 3 mean values but samples have 1 channels"):
        batches("mnist", [{"op": "Normalize", "mean": [0.5] * 3, "std": [0.2] * 3}], normalize=False)
    with pytest.raises(ValidationError, match="Normalize must be the last step"):
        DataConfig(augment=[{"op": "Normalize", "mean": [0.1], "std": [0.3]}, *FLIP_CROP], normalize=False)
    with pytest.raises(ValidationError, match="set normalize to false"):
        DataConfig(augment=[{"op": "Normalize", "mean": [0.1], "std": [0.3]}])
    with pytest.raises(ValidationError, match="scale must satisfy"):
        DataConfig(augment=[{"op": "RandomResizedCrop", "scale": [0.9, 0.5]}])


@pytest.mark.usefixtures("one_torch_thread")
def test_a_run_trains_with_augmentation() -> None:
    graph = chain([1, 8, 8], ("Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": "same"}),
                  ("ReLU", {}), ("Flatten", {}), ("Linear", {"out_features": 10}))
    events: list[Any] = []
    # One pixel of shift on an 8×8 digit is already hard for a model without pooling.
    augment = [{"op": "RandomCrop", "padding": 1}]
    config = RunConfig(data=DataConfig(dataset="digits", augment=augment), epochs=5, optimizer={"lr": 3e-3},
                       layer_stats_every=0)
    outcome = train(graph, config, emit=events.append)
    assert outcome.status == "finished", outcome
    last = [e for e in events if e.type == "epoch"][-1]
    assert last.val_accuracy > 0.8
    assert last.train_accuracy < last.val_accuracy  # the training batches were the harder, shifted ones


def test_preview_over_http(tmp_path: Any) -> None:
    from fastapi.testclient import TestClient

    from layerlab.api import create_app
    from layerlab.api.settings import Settings

    with TestClient(create_app(Settings(data_dir=tmp_path))) as client:
        flip = {"data": {"dataset": "mnist", "augment": [{"op": "RandomHorizontalFlip", "p": 1.0}]}, "samples": 3,
                "draws": 2}
        r = client.post("/api/datasets/augment-preview", json=flip)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["sample_shape"] == [1, 28, 28] and body["steps"] == ["RandomHorizontalFlip"]
        assert len(body["samples"]) == 3 and all(len(s["augmented"]) == 2 for s in body["samples"])
        for s in body["samples"]:  # a certain flip: each draw is the original mirrored
            original = torch.tensor(s["original"]).view(28, 28)
            assert s["label"] in [str(d) for d in range(10)] and original.max() == 255
            assert all(torch.equal(torch.tensor(a).view(28, 28), original.flip(-1)) for a in s["augmented"])
        # Seeded: the same request, the same random crops.
        crop = {"data": {"dataset": "digits", "augment": [{"op": "RandomCrop", "padding": 2}]}, "seed": 5}
        first = client.post("/api/datasets/augment-preview", json=crop).json()
        assert client.post("/api/datasets/augment-preview", json=crop).json() == first
        r = client.post("/api/datasets/augment-preview", json={"data": {"dataset": "iris", "augment": FLIP_CROP}})
        assert r.status_code == 422
        assert "needs image samples (C, H, W)" in r.json()["detail"][0]["message"]
