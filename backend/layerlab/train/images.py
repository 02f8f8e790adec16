"""A folder of your own images, uploaded as a .zip: one folder per class of PNG or JPEG files.

:func:`read_image_folder` is self-contained (zipfile, io, numpy, Pillow) so the training script
embeds its source and reads the archive the same way. Before it runs, ``data.load_upload`` has
checked the archive's headers (``archive.open_zip_checked``: the number of files and the bytes they
decompress to), so a zip bomb is refused before anything is expanded.
"""

from __future__ import annotations

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_IMAGE_PIXELS = 4096 * 4096  # one image's width × height, read from its header before decoding


def read_image_folder(
    path: str, *, size: int, fit: str, color: str, max_pixels: int = MAX_IMAGE_PIXELS
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images of ``path`` (a .zip, one folder per class) as x (N, C, size, size) in [0, 1], C = 1
    for grayscale or 3 for RGB, y (N,) class indices and the class names (the sorted folders).
    ``fit``: 'center_crop' scales the shorter side to ``size`` and crops the middle; 'resize'
    stretches the whole image to size × size."""
    import io
    import zipfile

    from PIL import Image, ImageOps, UnidentifiedImageError

    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        # Skip what archivers add beside the images: macOS resource forks, hidden and thumbnail files.
        names = sorted(n for n in names if not n.startswith("__MACOSX/") and not any(
            part.startswith(".") or part.lower() == "thumbs.db" for part in n.split("/")))
        images = [n for n in names if n.lower().endswith(IMAGE_SUFFIXES)]
        if not images:
            raise ValueError("no PNG or JPEG images found; the .zip needs one folder per class, "
                             "e.g. cats/1.png, dogs/2.jpg")
        # An archive of one top folder (holiday/cats/1.png, ...) has its classes one level down.
        tops = {n.split("/")[0] for n in names}
        depth = 1 if len(tops) == 1 and all(n.count("/") >= 2 for n in images) else 0
        loose = [n for n in images if n.count("/") <= depth]
        if loose:
            raise ValueError(f"images must sit in one folder per class; {', '.join(loose[:5])} "
                             f"{'is' if len(loose) == 1 else 'are'} outside any class folder")
        folders = sorted({n.split("/")[depth] for n in names if n.count("/") > depth})
        by_class = {c: [n for n in images if n.split("/")[depth] == c] for c in folders}
        empty = [c for c, members in by_class.items() if not members]
        if empty:
            raise ValueError(f"class folder {', '.join(repr(c) for c in empty[:5])} holds no PNG or JPEG images")
        if len(folders) < 2:
            raise ValueError(f"a classifier needs at least 2 classes (folders); found only {folders[0]!r}")

        mode, channels = ("L", 1) if color == "grayscale" else ("RGB", 3)
        x = np.empty((len(images), channels, size, size), dtype=np.float32)
        y = np.empty(len(images), dtype=np.int64)
        unreadable: list[str] = []
        i = 0
        for c, folder in enumerate(folders):
            for name in by_class[folder]:
                try:
                    with Image.open(io.BytesIO(zf.read(name))) as img:  # reads the header only
                        if img.width * img.height > max_pixels:
                            raise ValueError(f"{name} is {img.width}×{img.height} pixels, above the limit of "
                                             f"{max_pixels:,} pixels per image")
                        img = img.convert(mode)
                        if fit == "center_crop":
                            img = ImageOps.fit(img, (size, size), method=Image.Resampling.BILINEAR)
                        else:
                            img = img.resize((size, size), Image.Resampling.BILINEAR)
                        pixels = np.asarray(img, dtype=np.float32) / 255.0  # (H, W) or (H, W, 3)
                except (UnidentifiedImageError, OSError, SyntaxError):  # Pillow's errors for broken files
                    unreadable.append(name)
                    continue
                x[i] = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)  # (C, H, W)
                y[i] = c
                i += 1
        if unreadable:
            raise ValueError(f"{len(unreadable)} file{'s' if len(unreadable) > 1 else ''} could not be read as "
                             f"an image: {', '.join(unreadable[:5])}{' ...' if len(unreadable) > 5 else ''}")
    return x, y, folders
