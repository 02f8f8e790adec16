"""The parameter types and helpers the catalog entries share (pure Python, no torch)."""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import Field

from .base import MAX_DIM, MAX_KERNEL, NodeProblem, Params, TensorInfo

# strict: JSON true is not the integer 1, nor "3" the integer 3
Width = Annotated[int, Field(ge=1, le=MAX_DIM, strict=True)]
Kernel = Annotated[int, Field(ge=1, le=MAX_KERNEL, strict=True)]
NonNeg = Annotated[int, Field(ge=0, le=MAX_KERNEL, strict=True)]
Prob = Annotated[float, Field(ge=0.0, le=1.0)]
TorchDim = Annotated[int, Field(ge=-8, le=8, strict=True)]
PadMode = Literal["same", "valid"]
Pair = Kernel | tuple[Kernel, Kernel]
PadPair = NonNeg | tuple[NonNeg, NonNeg]


AXES = {1: ("L",), 2: ("H", "W")}

FLATTEN_FIX = "insert Flatten before {node}"


@functools.cache
def field_defaults(model: type[Params]) -> dict[str, Any]:
    return {name: f.default for name, f in model.model_fields.items()}


def torch_kw(p: Params, *names: str) -> dict[str, Any]:
    """Constructor args that differ from their torch defaults (the params model's defaults)."""
    defaults = field_defaults(type(p))
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(p, name)
        if value != defaults[name]:
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


def as_given(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def need_flat(x: TensorInfo, op: str, ranks: tuple[int, ...] = (1, 2)) -> None:
    if len(x.shape) not in ranks:
        raise NodeProblem(
            f"{op} works on a vector of features per sample, received {x.describe()} "
            f"({len(x.shape) + 1}-D with the batch)",
            suggestion=FLATTEN_FIX,
            fix={"action": "insert_before", "op": "Flatten"},
        )


F = "torch.nn.functional."  # prefix of the functional forms' dotted names


class NoParams(Params):
    pass
