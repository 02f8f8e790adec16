"""Size limits for uploaded datasets, checked before anything is decompressed or parsed.

A zip's central directory declares each member's uncompressed size, and reading a member never
yields more than that (``zipfile`` stops there and checks the CRC), so summing the declared sizes
bounds what an archive can expand to: a 4 MB zip bomb is refused from its headers. Every archive
LayerLab reads (``.npz`` datasets, ``.zip`` image folders) opens through :func:`open_zip_checked`.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_EXPANDED_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_MEMBERS = 100_000
DEFAULT_MAX_CLASSES = 1_000


class UploadTooLargeError(ValueError):
    """An upload would expand past a size limit; the message names the limit and the size found."""


@dataclass(frozen=True)
class UploadLimits:
    """What reading one uploaded dataset may cost."""

    max_expanded_bytes: int = DEFAULT_MAX_EXPANDED_BYTES  # decompressed / parsed arrays, in memory
    max_members: int = DEFAULT_MAX_MEMBERS  # files inside an archive
    max_classes: int = DEFAULT_MAX_CLASSES  # distinct labels of a classification set

    @classmethod
    def from_env(cls) -> UploadLimits:
        """LAYERLAB_MAX_DATASET_BYTES, LAYERLAB_MAX_ARCHIVE_FILES and LAYERLAB_MAX_CLASSES (the server
        and the workers it starts read the same variables)."""
        from layerlab.graph import env_limit

        return cls(max_expanded_bytes=env_limit("LAYERLAB_MAX_DATASET_BYTES", DEFAULT_MAX_EXPANDED_BYTES),
                   max_members=env_limit("LAYERLAB_MAX_ARCHIVE_FILES", DEFAULT_MAX_MEMBERS),
                   max_classes=env_limit("LAYERLAB_MAX_CLASSES", DEFAULT_MAX_CLASSES))


def open_zip_checked(path: Path, limits: UploadLimits) -> zipfile.ZipFile:
    """Open ``path`` as a zip after checking, from its headers only, the number of members and
    the total they decompress to. Raises UploadTooLargeError (the caller closes nothing)."""
    zf = zipfile.ZipFile(path)
    try:
        members = zf.infolist()
        if len(members) > limits.max_members:
            raise UploadTooLargeError(
                f"the archive holds {len(members):,} files, above the limit of {limits.max_members:,}")
        expanded = sum(m.file_size for m in members)
        if expanded > limits.max_expanded_bytes:
            raise UploadTooLargeError(
                f"the archive decompresses to {_size(expanded)}, above the limit of "
                f"{_size(limits.max_expanded_bytes)} (LAYERLAB_MAX_DATASET_BYTES)")
    except BaseException:
        zf.close()
        raise
    return zf


def check_expanded(what: str, nbytes: int, limits: UploadLimits) -> None:
    """Refuse arrays (declared in a header, or about to be parsed) larger than the limit."""
    if nbytes > limits.max_expanded_bytes:
        raise UploadTooLargeError(f"{what} takes {_size(nbytes)} in memory, above the limit of "
                                  f"{_size(limits.max_expanded_bytes)} (LAYERLAB_MAX_DATASET_BYTES)")


def _size(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB" if n >= 2**20 else f"{n:,} bytes"
