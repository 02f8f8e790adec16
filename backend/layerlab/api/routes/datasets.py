"""Datasets: the built-in sets and the user's uploads (.npz or .csv, stored under generated names)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, File, HTTPException, Response, UploadFile, status
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from layerlab.graph import GraphError, GraphInvalidError
from layerlab.train.archive import UploadLimits, UploadTooLargeError
from layerlab.train.config import DataConfig, UploadRef
from layerlab.train.datasets import REGISTRY, DatasetEntry

from ..db import Upload, new_id
from ..deps import SessionDep, StateDep
from ..schemas import (
    AugmentPreview,
    AugmentPreviewRequest,
    DatasetInfo,
    DatasetList,
    Invalid,
    PreviewSample,
    Problem,
    UploadInfo,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/datasets", tags=["datasets"])

KINDS = {".npz": "npz", ".csv": "csv", ".zip": "zip", ".txt": "txt"}


def builtin_datasets(state: StateDep) -> list[DatasetInfo]:
    """Described once per app by loading each set (generated ones at their default size)."""
    with state.datasets_lock:
        if state.builtin_datasets is None:
            state.builtin_datasets = [_describe(entry) for entry in REGISTRY.values()]
        return state.builtin_datasets


def _describe(entry: DatasetEntry) -> DatasetInfo:
    from layerlab.train.data import describe, load_dataset

    ds = load_dataset(DataConfig(dataset=entry.name), seed=0)
    return DatasetInfo(name=entry.name, description=entry.description, help=entry.help,
                       settings=list(entry.settings), synthetic=entry.synthetic, **describe(ds))


def upload_info(row: Upload) -> UploadInfo:
    return UploadInfo(id=row.id, filename=row.filename, kind=row.kind, size=row.size, created_at=row.created_at,
                      **row.info)


@router.get("")
def list_datasets(state: StateDep, session: SessionDep) -> DatasetList:
    """The built-in datasets with sample shape, task and classes, and the uploads."""
    builtin = builtin_datasets(state)
    uploads = session.scalars(select(Upload).order_by(Upload.created_at.desc()))
    return DatasetList(builtin=builtin, uploads=[upload_info(u) for u in uploads], accepts=list(KINDS))


@router.post("", status_code=status.HTTP_201_CREATED,
             responses={413: {"model": Problem}, 422: {"model": Invalid}})
async def upload(file: Annotated[UploadFile, File(description=".npz (arrays x, y), .csv, .zip of images in one folder per class, or .txt")],
                 state: StateDep, session: SessionDep) -> UploadInfo:
    """Upload a dataset; it is read once here (never unpickled) to report its shape and task."""
    filename = (file.filename or "upload").replace("\\", "/").rsplit("/", 1)[-1][:255] or "upload"
    suffix = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if suffix not in KINDS:
        raise GraphInvalidError([GraphError(field="file", message=f"unsupported file type {suffix or filename!r}",
                                            suggestion="upload a .npz (arrays x and y), a .csv, a .zip of images "
                                                       "(one folder per class) or a .txt")])
    folder = state.settings.uploads_dir
    folder.mkdir(parents=True, exist_ok=True)
    upload_id = new_id()
    path = folder / f"{upload_id}{suffix}"
    size = 0
    try:
        with path.open("wb") as out:
            while chunk := await file.read(1 << 20):
                size += len(chunk)
                if size > state.settings.max_upload_bytes:
                    raise HTTPException(413, "request body too large")
                out.write(chunk)
        info = await run_in_threadpool(_inspect, path, state.settings.upload_limits)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    row = Upload(id=upload_id, filename=filename, kind=KINDS[suffix], size=size, info=info)
    session.add(row)
    session.commit()
    return upload_info(row)


def _inspect(path: Any, limits: UploadLimits) -> dict[str, Any]:
    from layerlab.train.data import describe, load_upload

    try:
        ds = load_upload(UploadRef(path=str(path)), limits=limits)
    except UploadTooLargeError as e:
        raise HTTPException(413, str(e).replace(path.stem, "upload")) from e
    except Exception as e:  # DatasetError says what to change; anything else is an unreadable file
        message = str(e) if type(e).__name__ == "DatasetError" else f"could not read the file ({type(e).__name__})"
        raise GraphInvalidError([GraphError(field="file", message=message.replace(path.stem, "upload"))]) from e
    return describe(ds)


@router.post("/augment-preview", responses={404: {"model": Problem}, 422: {"model": Invalid}})
async def augment_preview(body: AugmentPreviewRequest, state: StateDep, session: SessionDep) -> AugmentPreview:
    """A few training images as loaded and through the random augment steps, as the run draws them."""
    data = body.data
    if data.upload is not None:
        row = get_upload(session, str(data.upload.path))
        data = data.model_copy(update={"upload": data.upload.model_copy(update={"path": upload_path(state, row)})})
    return await run_in_threadpool(_preview, data, body)


def _preview(data: DataConfig, body: AugmentPreviewRequest) -> AugmentPreview:
    import numpy as np

    from layerlab.train.augment import PREVIEW_MAX_PIXELS, preview, problem, random_steps
    from layerlab.train.data import DatasetError, load_dataset

    def invalid(message: str) -> GraphInvalidError:
        return GraphInvalidError([GraphError(field="data.augment", message=message)])

    # A generated set needs only a few samples to show (and must not cost a million to make).
    data = data.model_copy(update={"n_samples": min(data.n_samples, 64)})
    try:
        ds = load_dataset(data, seed=body.seed)
    except DatasetError as e:
        raise invalid(str(e)) from e
    steps = random_steps(data)
    shape = list(ds.x.shape[1:])
    why = problem(data.augment, shape) if data.augment else "add an augment step to preview"
    if why:
        raise invalid(why)
    if shape[1] * shape[2] > PREVIEW_MAX_PIXELS:
        raise invalid(f"the preview shows images up to {PREVIEW_MAX_PIXELS:,} pixels; these are {shape[1]}×{shape[2]}")
    # The first few images of the training split's order, as loaded (before standardization).
    pick = np.random.default_rng(body.seed).permutation(len(ds.x))[: body.samples]
    images = ds.x[pick].astype(np.float32)
    draws = preview(images, steps, draws=body.draws, seed=body.seed)

    def pixels(a: np.ndarray) -> list[int]:
        return np.rint(np.clip(a, 0.0, 1.0) * 255).astype(np.uint8).ravel().tolist()

    names = ds.class_names
    return AugmentPreview(sample_shape=shape, steps=[s.op for s in steps], samples=[
        PreviewSample(label=names[int(ds.y[i])] if names else None, original=pixels(images[k]),
                      augmented=[pixels(d[k]) for d in draws])
        for k, i in enumerate(pick)
    ])


def get_upload(session: SessionDep, upload_id: str) -> Upload:
    row = session.get(Upload, upload_id)
    if row is None:
        raise HTTPException(404, "upload not found")
    return row


@router.get("/uploads/{upload_id}", responses={404: {"model": Problem}})
def get(upload_id: str, session: SessionDep) -> UploadInfo:
    """One upload."""
    return upload_info(get_upload(session, upload_id))


@router.delete("/uploads/{upload_id}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {"model": Problem}})
def delete(upload_id: str, session: SessionDep, state: StateDep) -> Response:
    """Delete an upload and its file."""
    row = get_upload(session, upload_id)
    (state.settings.uploads_dir / f"{row.id}.{row.kind}").unlink(missing_ok=True)
    session.delete(row)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def upload_path(state: StateDep, row: Upload) -> str:
    return str((state.settings.uploads_dir / row.stored_name).resolve())
