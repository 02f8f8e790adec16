"""The run configuration: everything about a training run that is not the graph.

Validated once at the boundary (the API or the CLI); the trainer trusts it. Every model forbids
unknown keys so a typo such as ``learning_rate`` is an error, never a silently ignored setting.
docs/training.md is the reference for each field and its default.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .datasets import REGISTRY

# One name per registry entry (datasets.py): adding a dataset there adds it here.
BuiltinDataset = Literal[tuple(REGISTRY)]  # type: ignore[valid-type]
DatasetName = Literal[BuiltinDataset, "upload"]
LossName = Literal["cross_entropy", "nll", "mse", "l1", "smooth_l1", "bce_with_logits"]
OptimizerName = Literal["sgd", "adam", "adamw", "rmsprop"]
ScheduleName = Literal["none", "step", "cosine", "one_cycle"]
Precision = Literal["fp32", "bf16", "fp16"]
InitScheme = Literal[
    "default", "kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform", "orthogonal", "normal", "zeros"
]

CLASSIFICATION_LOSSES: frozenset[str] = frozenset({"cross_entropy", "nll", "bce_with_logits"})
REGRESSION_LOSSES: frozenset[str] = frozenset({"mse", "l1", "smooth_l1"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UploadRef(_Strict):
    """A user's own data: a .npz with arrays ``x`` and ``y``, a .csv with a target column, a .zip
    of images with one folder per class, or a .txt for next-character prediction."""

    path: str = Field(description="Path of the stored upload (.npz, .csv, .zip or .txt).")
    target_column: str | int | None = Field(
        None, description="CSV only: the target's column name or index; default the last column."
    )
    task: Literal["classification", "regression"] | None = Field(
        None, description="Default: classification when the targets are integers or text, else regression."
    )
    sample_shape: list[Annotated[int, Field(ge=1)]] | None = Field(
        None, description="Reshape each sample, e.g. [1, 28, 28] for flattened images."
    )
    image_size: int = Field(32, ge=4, le=512, description=".zip of images only: each image becomes size × size.")
    image_fit: Literal["center_crop", "resize"] = Field(
        "center_crop", description=".zip only: 'center_crop' scales the shorter side and crops the middle; "
        "'resize' stretches the whole image."
    )
    image_color: Literal["rgb", "grayscale"] = Field("rgb", description=".zip only: 3 channels or 1.")
    context: int = Field(32, ge=1, le=1024, description=".txt only: characters the model sees to predict the next.")


# --- augmentation: kornia.augmentation steps, applied to training batches on the device ---------


class RandomCrop(_Strict):
    """Pad each side by ``padding``, then crop back to the image's size at a random place."""

    op: Literal["RandomCrop"] = "RandomCrop"
    padding: int = Field(4, ge=0, le=64)
    padding_mode: Literal["constant", "reflect", "replicate"] = "constant"


class RandomHorizontalFlip(_Strict):
    op: Literal["RandomHorizontalFlip"] = "RandomHorizontalFlip"
    p: float = Field(0.5, ge=0.0, le=1.0, description="Probability of flipping each image.")


class RandomRotation(_Strict):
    op: Literal["RandomRotation"] = "RandomRotation"
    degrees: float = Field(15.0, gt=0.0, le=180.0, description="Rotate by a random angle in ±degrees.")
    p: float = Field(0.5, ge=0.0, le=1.0)


class RandomResizedCrop(_Strict):
    """Crop a random area (``scale`` of the image, aspect ``ratio``) and resize it to the image's size."""

    op: Literal["RandomResizedCrop"] = "RandomResizedCrop"
    scale: tuple[float, float] = Field((0.8, 1.0), description="Fraction of the area kept, (min, max).")
    ratio: tuple[float, float] = Field((0.75, 4 / 3), description="Aspect ratio of the crop, (min, max).")

    @model_validator(mode="after")
    def _ranges(self) -> RandomResizedCrop:
        lo, hi = self.scale
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"scale must satisfy 0 < min <= max <= 1; received {list(self.scale)}")
        if not 0.0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < min <= max; received {list(self.ratio)}")
        return self


class ColorJitter(_Strict):
    """Random brightness, contrast (any image), saturation and hue (RGB only), for pixels in [0, 1]."""

    op: Literal["ColorJitter"] = "ColorJitter"
    brightness: float = Field(0.2, ge=0.0, le=1.0)
    contrast: float = Field(0.2, ge=0.0, le=1.0)
    saturation: float = Field(0.0, ge=0.0, le=1.0)
    hue: float = Field(0.0, ge=0.0, le=0.5)
    p: float = Field(1.0, ge=0.0, le=1.0)


class Normalize(_Strict):
    """``(x - mean) / std`` per channel, for training and validation alike; the last step. Replaces
    the training-split statistics of ``data.normalize``."""

    op: Literal["Normalize"] = "Normalize"
    mean: list[float] = Field(min_length=1, max_length=64, description="One value per channel.")
    std: list[Annotated[float, Field(gt=0.0)]] = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _same_length(self) -> Normalize:
        if len(self.mean) != len(self.std):
            raise ValueError(f"mean has {len(self.mean)} values but std has {len(self.std)}")
        return self


AugmentStep = Annotated[
    RandomCrop | RandomHorizontalFlip | RandomRotation | RandomResizedCrop | ColorJitter | Normalize,
    Field(discriminator="op"),
]


class DataConfig(_Strict):
    dataset: DatasetName = "digits"
    upload: UploadRef | None = Field(None, description="Required when dataset is 'upload'.")
    val_split: float = Field(0.2, ge=0.0, lt=1.0, description="Fraction held out for validation.")
    batch_size: int = Field(64, ge=1, le=65536)
    shuffle: bool = True
    num_workers: int = Field(0, ge=0, le=64, description="DataLoader workers (large datasets only).")
    loader: Literal["auto", "tensor", "dataloader"] = Field(
        "auto",
        description="'tensor' keeps the data on the device and batches by index; 'dataloader' uses "
        "torch's DataLoader; 'auto' picks by size.",
    )
    normalize: bool = Field(True, description="Standardize inputs with training-split statistics.")
    normalize_targets: bool = Field(True, description="Regression: standardize targets likewise.")
    augment: list[AugmentStep] = Field(
        default_factory=list, max_length=16,
        description="Image augmentation, in order, on training batches only (validation is untouched); "
        "a Normalize step, if any, comes last and applies to both splits.",
    )
    # Generated datasets only: each registry entry lists the settings it reads.
    n_samples: int = Field(1000, ge=20, le=1_000_000)
    noise: float = Field(0.1, ge=0.0, le=10.0)
    num_classes: int | None = Field(
        None, ge=2, le=50, description="spirals (default 3), blobs (default 4), signals (default 10)."
    )
    signal_length: int = Field(64, ge=16, le=65536, description="signals: samples per sequence.")
    seq_length: int = Field(32, ge=4, le=4096, description="tokens and seasonal: steps per sequence.")
    horizon: int = Field(8, ge=1, le=1024, description="seasonal: future steps to forecast.")

    @model_validator(mode="after")
    def _upload_matches(self) -> DataConfig:
        if self.dataset == "upload" and self.upload is None:
            raise ValueError("dataset 'upload' needs an 'upload' reference (path to a .npz or .csv)")
        if self.dataset != "upload" and self.upload is not None:
            raise ValueError(f"'upload' is given but dataset is {self.dataset!r}; set dataset to 'upload'")
        for i, step in enumerate(self.augment):
            if step.op == "Normalize" and i != len(self.augment) - 1:
                raise ValueError(f"augment[{i}]: Normalize must be the last step (it standardizes what the "
                                 "random steps produce)")
            if step.op == "Normalize" and self.normalize:
                raise ValueError(f"augment[{i}]: Normalize sets the statistics itself; set normalize to false "
                                 "(normalize standardizes with training-split statistics instead)")
        return self


class LossConfig(_Strict):
    name: LossName = "cross_entropy"
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0, description="cross_entropy only.")
    beta: float = Field(1.0, gt=0.0, description="smooth_l1 only: where the loss turns from L2 to L1.")

    @model_validator(mode="after")
    def _smoothing_only_for_ce(self) -> LossConfig:
        if self.label_smoothing and self.name != "cross_entropy":
            raise ValueError(f"label_smoothing applies to cross_entropy only, not {self.name}")
        return self


class OptimizerConfig(_Strict):
    name: OptimizerName = "adamw"
    lr: float = Field(1e-3, gt=0.0, le=10.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="sgd and rmsprop.")
    nesterov: bool = Field(False, description="sgd only; needs momentum > 0.")
    betas: tuple[float, float] = Field((0.9, 0.999), description="adam and adamw.")
    eps: float = Field(1e-8, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0, le=1.0)
    weight_decay_all: bool = Field(
        False, description="Decay every parameter; by default biases and norm parameters are exempt."
    )
    l1: float = Field(0.0, ge=0.0, description="L1 penalty coefficient on the decayed weights.")
    grad_clip: float | None = Field(None, gt=0.0, description="Clip the global gradient norm to this.")

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> OptimizerConfig:
        if self.nesterov and (self.name != "sgd" or self.momentum == 0):
            raise ValueError("nesterov needs optimizer 'sgd' with momentum > 0")
        for b in self.betas:
            if not 0.0 <= b < 1.0:
                raise ValueError(f"betas must lie in [0, 1); received {list(self.betas)}")
        return self


class ScheduleConfig(_Strict):
    name: ScheduleName = "none"
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up from 0 to lr over these steps.")
    step_size: int = Field(1000, ge=1, description="step: multiply lr by gamma every step_size steps.")
    gamma: float = Field(0.1, gt=0.0, le=1.0)
    min_lr: float = Field(0.0, ge=0.0, description="cosine: the floor the lr decays to.")
    pct_start: float = Field(
        0.3, gt=0.0, lt=1.0, description="one_cycle: fraction of steps spent rising (if no warmup_steps)."
    )


class InitConfig(_Strict):
    """Global weight initialization passed to the compiler. A bare string is a scheme name."""

    scheme: InitScheme = "default"
    std: float | None = Field(None, gt=0.0, le=10.0, description="normal only.")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"scheme": value} if isinstance(value, str) else value


class RunConfig(_Strict):
    data: DataConfig = Field(default_factory=DataConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    epochs: int | None = Field(10, ge=1, le=100_000)
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps.")
    patience: int | None = Field(
        None, ge=1, description="Early stopping: epochs without a val-loss improvement before stopping."
    )
    min_delta: float = Field(0.0, ge=0.0, description="Early stopping: the improvement that counts.")
    seed: int = Field(0, ge=0, le=2**32 - 1)
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d{1,2})?)$")
    devices: int = Field(
        1, ge=1, le=64,
        description="Train one run data-parallel (DistributedDataParallel) on this many GPUs of one "
        "machine, or this many CPU processes; 1 trains in a single process.",
    )
    precision: Precision = "fp32"
    channels_last: bool = False
    compile: bool = Field(False, description="torch.compile the model (slow to start).")
    init: InitConfig | None = None
    freeze_bn_stats: bool = Field(
        True, description="BatchNorm layers whose parameters are all frozen keep their running stats."
    )
    step_event_interval_s: float = Field(0.05, ge=0.0, le=10.0, description="Coalesce step events.")
    layer_stats_every: int = Field(50, ge=0, description="Per-layer statistics every N steps, and after each "
                                   "epoch a snapshot of every layer's output on one validation sample; 0 disables both.")
    checkpoint_every_epochs: int | None = Field(None, ge=1, description="Also checkpoint every N epochs.")

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        if self.epochs is None and self.max_steps is None:
            raise ValueError("set epochs or max_steps (or both: training stops at whichever comes first)")
        if self.patience is not None and self.data.val_split == 0:
            raise ValueError("early stopping (patience) watches the validation loss: set data.val_split > 0")
        return self

    def init_arg(self) -> dict[str, Any] | None:
        """The ``init`` argument for ``layerlab.build``."""
        if self.init is None:
            return None
        return self.init.model_dump(exclude_none=True)
