"""Your own images: a .zip with one folder per class of PNG/JPEG files, read with Pillow within limits."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from layerlab.api import create_app
from layerlab.api.settings import Settings
from layerlab.train import DataConfig, DatasetError, UploadRef, load_dataset
from layerlab.train.archive import UploadLimits, UploadTooLargeError
from layerlab.train.data import load_upload
from layerlab.train.datacode import loading_code
from layerlab.train.images import read_image_folder


def image_bytes(color: tuple[int, int, int], size: tuple[int, int], fmt: str) -> bytes:
    """A solid image whose top quarter of rows is white, so crops and resizes show."""
    img = Image.new("RGB", size, color)
    img.paste((255, 255, 255), (0, 0, size[0], size[1] // 4))
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def two_classes(path: Path, prefix: str = "") -> Path:
    members = {}
    for i in range(4):
        members[f"{prefix}red/{i}.png"] = image_bytes((200, 0, 0), (40, 30), "PNG")
        members[f"{prefix}blue/{i}.jpg"] = image_bytes((0, 0, 200), (24, 48), "JPEG")
    members[f"{prefix}.DS_Store"] = b"\0\1"
    members["__MACOSX/red/._0.png"] = b"junk"
    return make_zip(path, members)


def load(path: Path, limits: UploadLimits | None = None, **ref: Any) -> Any:
    return load_upload(UploadRef(path=str(path), **ref), limits=limits)


def test_png_and_jpeg_folders_become_classes(tmp_path: Path) -> None:
    ds = load(two_classes(tmp_path / "pets.zip"), image_size=16)
    assert ds.x.shape == (8, 3, 16, 16) and ds.x.dtype == np.float32
    assert ds.class_names == ["blue", "red"] and ds.task == "classification"
    assert np.bincount(ds.y).tolist() == [4, 4]
    blue, red = ds.x[ds.y == 0], ds.x[ds.y == 1]
    # Bottom-right pixels keep the class colour (JPEG within a few levels), the top-left is white.
    np.testing.assert_allclose(red[:, :, -1, -1], [[200 / 255, 0, 0]] * 4, atol=2 / 255)
    np.testing.assert_allclose(blue[:, :, -1, -1], [[0, 0, 200 / 255]] * 4, atol=8 / 255)
    assert red[:, :, 0, 0].min() > 0.95
    # Through the run's own loader too, and the same arrays again under a single top folder.
    again = load_dataset(DataConfig(dataset="upload", upload=UploadRef(path=str(tmp_path / "pets.zip"),
                                                                       image_size=16)), seed=0)
    np.testing.assert_array_equal(again.x, ds.x)
    nested = load(two_classes(tmp_path / "nested.zip", prefix="holiday/"), image_size=16)
    assert nested.class_names == ["blue", "red"]
    np.testing.assert_array_equal(nested.x, ds.x)


def test_size_fit_and_grayscale(tmp_path: Path) -> None:
    path = two_classes(tmp_path / "pets.zip")
    gray = load(path, image_size=8, image_color="grayscale")
    assert gray.x.shape == (8, 1, 8, 8)
    # Red (200, 0, 0) in Pillow's L = 0.299 R + 0.587 G + 0.114 B.
    np.testing.assert_allclose(gray.x[gray.y == 1][:, 0, -1, -1], round(0.299 * 200) / 255, atol=1 / 255)
    # The tall 24×48 blue images: resize keeps the white top quarter; center_crop keeps the middle
    # 24×24 (rows 12..36), below the white rows.
    crop = load(path, image_size=24, image_fit="center_crop")
    stretch = load(path, image_size=24, image_fit="resize")
    white_crop = (crop.x[crop.y == 0].min(axis=1) > 0.9).mean()
    white_stretch = (stretch.x[stretch.y == 0].min(axis=1) > 0.9).mean()
    assert white_stretch == pytest.approx(0.25, abs=0.05)
    assert white_crop == 0.0


@pytest.mark.parametrize(("members", "message"), [
    ({"notes.txt": b"hello", "sub/readme.md": b"x"}, "no PNG or JPEG images found"),
    ({"cats/1.png": image_bytes((1, 2, 3), (8, 8), "PNG"), "cats/2.png": image_bytes((1, 2, 3), (8, 8), "PNG")},
     "at least 2 classes (folders); found only 'cats'"),
    ({"cats/1.png": image_bytes((1, 2, 3), (8, 8), "PNG"), "dogs/notes.txt": b"no dogs yet"},
     "class folder 'dogs' holds no PNG or JPEG images"),
    ({"cats/1.png": image_bytes((1, 2, 3), (8, 8), "PNG"), "dogs/2.png": image_bytes((1, 2, 3), (8, 8), "PNG"),
      "loose.png": image_bytes((1, 2, 3), (8, 8), "PNG")}, "loose.png is outside any class folder"),
    ({"cats/1.png": image_bytes((1, 2, 3), (8, 8), "PNG"), "dogs/ok.jpg": image_bytes((1, 2, 3), (8, 8), "JPEG"),
      "dogs/broken.jpg": b"\xff\xd8 not really a jpeg", "cats/empty.png": b""},
     "2 files could not be read as an image: cats/empty.png, dogs/broken.jpg"),
], ids=["no images", "one class", "empty folder", "loose file", "unreadable"])
def test_bad_archives_are_refused_naming_the_problem(tmp_path: Path, members: dict[str, bytes], message: str) -> None:
    path = make_zip(tmp_path / "bad.zip", members)
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load(path)


def test_a_zip_bomb_is_refused_before_it_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    members = {f"a/{i}.png": image_bytes((9, 9, 9), (8, 8), "PNG") for i in range(2)}
    members["b/bomb.png"] = bytes(20 * 2**20)  # 20 MiB of zeros, ~20 kB compressed
    path = make_zip(tmp_path / "bomb.zip", members)
    assert path.stat().st_size < 100_000

    def no_expanding(*args: object, **kwargs: object) -> None:
        raise AssertionError("a member was decompressed")

    monkeypatch.setattr(zipfile.ZipExtFile, "read", no_expanding)
    with pytest.raises(UploadTooLargeError, match="decompresses to 20.0 MiB, above the limit of 8.0 MiB"):
        load(path, UploadLimits(max_expanded_bytes=8 * 2**20))


def test_too_many_files_and_too_many_pixels(tmp_path: Path) -> None:
    members = {f"{c}/{i}.png": image_bytes((9, 9, 9), (8, 8), "PNG") for c in "ab" for i in range(6)}
    path = make_zip(tmp_path / "many.zip", members)
    with pytest.raises(UploadTooLargeError, match="holds 12 files, above the limit of 10"):
        load(path, UploadLimits(max_members=10))
    # The decoded array is sized before decoding: 12 images of 3×512×512 float32 is 36 MiB.
    with pytest.raises(UploadTooLargeError, match=r"12 images of 3×512×512\) takes 36.0 MiB"):
        load(path, UploadLimits(max_expanded_bytes=16 * 2**20), image_size=512)
    big = make_zip(tmp_path / "big.zip", {"a/huge.png": image_bytes((1, 1, 1), (300, 200), "PNG"),
                                          "b/small.png": image_bytes((1, 1, 1), (8, 8), "PNG")})
    with pytest.raises(ValueError, match="a/huge.png is 300×200 pixels, above the limit of 10,000 pixels"):
        read_image_folder(str(big), size=8, fit="resize", color="rgb", max_pixels=100 * 100)


def test_the_training_scripts_code_reads_the_same_arrays(tmp_path: Path) -> None:
    path = two_classes(tmp_path / "pets.zip")
    cfg = DataConfig(dataset="upload", upload=UploadRef(path=str(path), image_size=12, image_color="grayscale"))
    code = loading_code(cfg, seed=0)
    source = "\n".join(["from pathlib import Path", "import numpy as np", *code.constants, code.source])
    namespace: dict[str, Any] = {}
    exec(compile(source, "<script>", "exec", dont_inherit=True), namespace)
    ds = load_dataset(cfg, seed=0)
    np.testing.assert_array_equal(namespace["x"], ds.x)
    np.testing.assert_array_equal(namespace["y"], ds.y)


def test_upload_a_zip_over_http(tmp_path: Path) -> None:
    good = two_classes(tmp_path / "pets.zip").read_bytes()
    one_class = make_zip(tmp_path / "one.zip", {"cats/1.png": image_bytes((1, 2, 3), (8, 8), "PNG")}).read_bytes()
    bomb = make_zip(tmp_path / "bomb.zip", {"a/1.png": bytes(20 * 2**20)}).read_bytes()
    settings = Settings(data_dir=tmp_path / "data", upload_limits=UploadLimits(max_expanded_bytes=8 * 2**20))
    with TestClient(create_app(settings)) as client:
        r = client.post("/api/datasets", files={"file": ("pets.zip", good)})
        assert r.status_code == 201, r.text
        info = r.json()
        assert info["kind"] == "zip" and info["sample_shape"] == [3, 32, 32] and info["samples"] == 8
        assert info["class_names"] == ["blue", "red"]
        r = client.post("/api/datasets", files={"file": ("one.zip", one_class)})
        assert r.status_code == 422
        assert "at least 2 classes (folders); found only 'cats'" in r.json()["detail"][0]["message"]
        r = client.post("/api/datasets", files={"file": ("bomb.zip", bomb)})
        assert r.status_code == 413 and "decompresses to 20.0 MiB" in r.json()["detail"]
        assert [p.name for p in (tmp_path / "data" / "uploads").iterdir()] == [f"{info['id']}.zip"]
        r = client.post("/api/datasets", files={"file": ("poem.txt", ("the cat sat on the mat. " * 20).encode())})
        assert r.status_code == 201, r.text
        assert r.json()["kind"] == "txt" and r.json()["sample_shape"] == [32] and r.json()["input_dtype"] == "int64"
