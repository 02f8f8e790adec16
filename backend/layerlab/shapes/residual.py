"""A residual Block's shortcut: the identity when the shapes agree, else the projection a person
would write (a strided 1×1 convolution, or a linear layer for vectors, then a BatchNorm), sized
and costed by those layers' own catalog entries."""

from __future__ import annotations

from typing import Any

from ..graph import InitSpec
from ..ops import TensorInfo, get_op
from ..ops.base import fmt_shape, numel
from ..plan import LayerPlan, Plan, SeqPlan
from .ledger import Failed, Ledger


def shortcut(ledger: Ledger, b: Any, x: TensorInfo, y: TensorInfo, *, frozen: bool, init: InitSpec | None,
             plans: bool = True) -> tuple[Plan | None, tuple[int, int, int]]:
    """None for the identity, else the projection's plan (None too without ``plans``: a report only);
    with its (params, MACs, activations)."""
    mode = b.params.shortcut
    if x.shape == y.shape and mode != "projection":
        return None, (0, 0, 0)
    xs, ys = fmt_shape(x.shape), fmt_shape(y.shape)
    if mode == "identity":
        ledger.error(b.id, f"residual shapes differ {xs} vs {ys}", field="shortcut",
                     suggestion="set shortcut='projection'")
        raise Failed
    if len(x.shape) != len(y.shape) or not 1 <= len(x.shape) <= 3:
        ledger.error(b.id, f"cannot project the residual input {xs} onto the output {ys}: ranks differ",
                     field="shortcut", suggestion="make the block keep the rank of its input")
        raise Failed
    rank = len(x.shape)
    if rank == 1:
        proj_name, proj_op = "proj", "Linear"
        proj_params: dict[str, Any] = {"out_features": y.shape[0], "bias": False}
    else:
        strides = []
        for a, (si, so) in enumerate(zip(x.shape[1:], y.shape[1:])):
            s = next((s for s in range(1, si + 1) if -(-si // s) == so), None)
            if s is None:
                ledger.error(b.id, f"cannot project {xs} onto {ys} with a strided 1×1 convolution "
                             f"(axis {a + 1}: {si} → {so})", field="shortcut",
                             suggestion="make the block's output size a division of its input size")
                raise Failed
            strides.append(s)
        proj_name, proj_op = "conv", "Conv2d" if rank == 3 else "Conv1d"
        stride = strides[0] if len(set(strides)) == 1 else tuple(strides)
        proj_params = {"out_channels": y.shape[0], "kernel_size": 1, "stride": stride, "bias": False}
    norm_op = "BatchNorm2d" if rank == 3 else "BatchNorm1d"
    items: list[Plan] = []
    params = macs = acts = 0
    t = x
    for name, op, op_params in ((proj_name, proj_op, proj_params), ("bn", norm_op, {})):
        spec = get_op(op)
        inf = spec.infer(spec.params_model.model_validate(op_params), [t])
        if plans:
            items.append(LayerPlan(name, None, op, spec.torch_class, inf.torch_args, spec.positional, t.shape,
                                   inf.out.shape, frozen, init))
        params, macs, acts = params + inf.params, macs + inf.macs, acts + numel(inf.out.shape)
        t = inf.out
    plan = SeqPlan(name="shortcut", node_id=None, items=items, out_shape=y.shape, frozen=frozen) if plans else None
    return plan, (params, macs, acts)
