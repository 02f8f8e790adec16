"""What a catalog entry is made of, and the pure-integer shape formulas the entries share.

Nothing here imports torch: shapes and costs are arithmetic. torch is the judge in the tests.
Shapes are per sample (no batch dimension): a 28×28 grey image is ``(1, 28, 28)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

Shape = tuple[int, ...]
DType = Literal["float32", "int64"]

# Caps that keep a hostile or mistaken graph from hanging the server or allocating terabytes.
MAX_DIM = 1 << 20  # one size of a tensor dimension or a layer width
MAX_KERNEL = 1024
MAX_NODE_PARAMS = 1 << 31  # ~2.1 billion parameters in one layer
MAX_ACTIVATION = 1 << 31  # elements in one per-sample activation


class TensorInfo(NamedTuple):
    """What flows along an edge: a per-sample shape and an element type. (A named tuple: the
    shapes stage hashes and compares thousands of them per report, and a tuple does both in C.)"""

    shape: Shape
    dtype: DType = "float32"

    def describe(self) -> str:
        return "(" + ", ".join(str(d) for d in self.shape) + ")"


class NodeProblem(Exception):
    """Raised by an op's shape rule; the analysis turns it into a report error for the node."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        suggestion: str | None = None,
        fix: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.suggestion = suggestion
        self.fix = fix


@dataclass
class Inferred:
    """What an op's shape rule returns for one node instance."""

    out: TensorInfo
    params: int = 0  # learnable parameter elements
    macs: int = 0  # multiply-accumulates per sample
    formula: list[str] = field(default_factory=list)  # how the size came about, numbers substituted
    resolved: dict[str, Any] = field(default_factory=dict)  # e.g. the padding 'same' resolved to
    torch_args: dict[str, Any] = field(default_factory=dict)  # constructor args, non-default only


@dataclass(frozen=True)
class TorchFunction:
    """A function form of an op that ``forward()`` may call, for import: ``F.relu(x)`` is a ReLU.

    ``names`` are dotted paths of callables (``torch.nn.functional.relu``) and ``Tensor.<method>``
    for methods; ``args`` are torch's argument names in order, the tensor first; ``params`` the
    arguments that are the op's params under the same name; ``must_be`` the arguments that must
    keep this value for the call to mean the op; any other argument (inplace) changes nothing.
    """

    key: str  # how messages name it: 'relu'
    names: tuple[str, ...]
    args: tuple[str, ...] = ("input",)
    defaults: dict[str, Any] = field(default_factory=dict)
    params: tuple[str, ...] = ()
    must_be: dict[str, Any] = field(default_factory=dict)
    required: tuple[str, ...] = ()  # arguments without a safe default (softmax's dim)
    identity_when: dict[str, Any] = field(default_factory=dict)  # arguments that make the call a no-op
    varargs: str | None = None  # the argument that collects the rest of the positional ones (x.permute(0, 2, 1))


@dataclass(frozen=True)
class MergeRule:
    """How a merge op joins its inputs in ``forward()``: ``function`` folded pairwise and printed
    with ``infix`` (``a + b``), or called once on the list of inputs (``torch.cat([a, b], dim=1)``)
    with the op's params named in ``kwargs``."""

    function: str  # dotted path: 'operator.add', 'torch.cat'
    infix: str | None = None
    kwargs: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParameterForm:
    """How an op is written when the enclosing module holds its weight as a raw ``nn.Parameter``
    (``self.cls_token``) instead of a submodule, as ViT reference code keeps its class token and its
    position table: the node's name is then the parameter's own state_dict key.

    ``code`` is forward()'s expression, ``{p}`` the parameter and ``{x}`` the input; ``function``
    (a name in layerlab/modules.py, called as ``function(x, p)``) computes the same, for the compiled
    model. ``init`` is how the parameter starts: ``zeros``, or ``normal`` with std 0.02.
    """

    code: str
    function: str
    init: Literal["zeros", "normal"] = "zeros"


class Params(BaseModel):
    """Base of every op's parameter model: unknown keys are errors, never silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class OpSpec:
    """One catalog entry: everything LayerLab knows about one kind of layer.

    Subclasses set the class attributes and implement ``infer``. ``torch_class`` names the
    ``torch.nn`` class the op builds (None for merge ops, which are functions in ``forward``);
    ``torch_args`` on the returned :class:`Inferred` are its constructor arguments, shared by the
    compiler and the code generator so the code shown is the module built.
    """

    name: ClassVar[str]
    category: ClassVar[str]
    help: ClassVar[str]
    params_model: ClassVar[type[Params]]
    torch_class: ClassVar[str | None] = None
    positional: ClassVar[tuple[str, ...]] = ()  # torch args printed positionally, in this order
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int] = 1
    dtype_in: ClassVar[DType | None] = "float32"  # None: any dtype passes through
    input_size_args: ClassVar[tuple[str, ...]] = ()  # args inferred from the incoming shape
    # True: torch_class names one of LayerLab's small modules (layerlab/modules.py), not a torch.nn class
    custom_module: ClassVar[bool] = False
    import_classes: ClassVar[tuple[str, ...]] = ()  # other torch.nn classes that import as this op
    # import: the torch.nn classes return (output, extra) (an LSTM's states); forward() takes [0]
    tuple_output: ClassVar[bool] = False
    # import: how forward() calls the module: its one input this many times (self-attention: 3, as
    # q, k, v), and keyword arguments that change nothing it returns as LayerLab uses it
    call_repeats: ClassVar[int] = 1
    call_ignored: ClassVar[tuple[str, ...]] = ()
    merge: ClassVar[MergeRule | None] = None  # set for ops that are a function in forward(), not a module
    # set for ops whose params model has ``form``: with form="parameter" a raw nn.Parameter, not a module
    parameter_form: ClassVar[ParameterForm | None] = None
    functions: ClassVar[tuple[TorchFunction, ...]] = ()  # function forms forward() may call (import)
    init_weight: ClassVar[bool] = False  # whether an init scheme sets its weight (matrices and filters)

    def init_targets(self, torch_args: dict[str, Any]) -> tuple[list[str], list[str]]:
        """The parameters an init scheme sets on the built module, and the biases it zeroes."""
        if not self.init_weight:
            return [], []
        return ["weight"], (["bias"] if torch_args.get("bias", True) is not False else [])

    def parameter_shape(self, torch_args: dict[str, Any]) -> Shape:
        """The raw parameter's shape in the parameter form (batch dim included, as torch holds it)."""
        raise NotImplementedError(f"{self.name} has no parameter form")

    def infer(self, p: Any, inputs: list[TensorInfo]) -> Inferred:  # pragma: no cover - abstract
        raise NotImplementedError

    def params_from_call(self, fn: TorchFunction, args: dict[str, Any], in_shape: Shape) -> dict[str, Any]:
        """The op's params from a function call's bound arguments (for import); ``in_shape`` is the
        input's per-sample shape. By default the arguments named in ``fn.params``."""
        return {k: args[k] for k in fn.params if k in args}

    def from_torch(self, module: Any) -> dict[str, Any]:
        """Parameters of this op read back from a built torch module (for import)."""
        fields = self.params_model.model_fields
        out: dict[str, Any] = {}
        for name in fields:
            if hasattr(module, name):
                value = getattr(module, name)
                if name == "bias":  # the module holds the tensor (or None); the op, whether there is one
                    value = value is not None
                elif isinstance(value, tuple) and len(set(value)) == 1 and name not in ("padding", "normalized_shape"):
                    value = value[0]
                out[name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """JSON-ready catalog data: drives the editor's palette and property forms."""
        schema = cls.params_model.model_json_schema()
        return {
            "op": cls.name,
            "category": cls.category,
            "help": cls.help,
            "torch_class": (cls.torch_class if cls.custom_module else f"nn.{cls.torch_class}")
            if cls.torch_class else None,
            "inputs": {"min": cls.min_inputs, "max": cls.max_inputs},
            "inferred": list(cls.input_size_args),
            "params": schema,
        }


# ---------------------------------------------------------------------------------------------
# Shared shape formulas (pure functions, each returns the size and the formula with numbers)


def ntuple(value: int | tuple[int, ...] | list[int], n: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    return tuple(value)


def conv_out(size: int, k: int, s: int, p_total: int, d: int, axis: str, p_shown: str) -> tuple[int, str]:
    """``floor((in + 2·p − d·(k−1) − 1) / s) + 1``; ``p_total`` is both sides together."""
    out = (size + p_total - d * (k - 1) - 1) // s + 1
    return out, f"{axis}: ({size} + {p_shown} − {d}·({k}−1) − 1) / {s} + 1 = {out}"


def pool_out(
    size: int, k: int, s: int, p: int, d: int, *, ceil_mode: bool, axis: str
) -> tuple[int, str]:
    """Pool output size, with torch's ceil_mode rule: the last window must start inside the input."""
    num = size + 2 * p - d * (k - 1) - 1
    if ceil_mode:
        out = -(-num // s) + 1
        note = ""
        if (out - 1) * s >= size + p:
            out -= 1
            note = " (last window would start in the padding: −1)"
        return out, f"{axis}: ceil(({size} + 2·{p} − {d}·({k}−1) − 1) / {s}) + 1 = {out}{note}"
    out = num // s + 1
    return out, f"{axis}: ({size} + 2·{p} − {d}·({k}−1) − 1) / {s} + 1 = {out}"


def conv_transpose_out(size: int, k: int, s: int, p: int, d: int, op: int, axis: str) -> tuple[int, str]:
    out = (size - 1) * s - 2 * p + d * (k - 1) + op + 1
    return out, f"{axis}: ({size}−1)·{s} − 2·{p} + {d}·({k}−1) + {op} + 1 = {out}"


def same_padding(k: int, d: int) -> tuple[int, int]:
    """'same' padding as torch applies it: ``d·(k−1)`` split over two sides, extra on the right."""
    total = d * (k - 1)
    left = total // 2
    return left, total - left


def numel(shape: Shape) -> int:
    return math.prod(shape)


def fmt_shape(shape: Shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def batch_dim_to_sample(dim: int, rank: int, *, field_name: str = "dim") -> int:
    """Map a torch dim (counted with the batch dimension) onto a per-sample axis."""
    full = rank + 1
    if not -full <= dim < full:
        raise NodeProblem(
            f"{field_name}={dim} is out of range for a tensor of {full} dimensions (batch included)",
            field=field_name,
        )
    axis = dim % full
    if axis == 0:
        raise NodeProblem(
            f"{field_name}={dim} is the batch dimension; LayerLab counts dims as torch does, "
            "so the first per-sample dimension is 1",
            field=field_name,
            suggestion=f"use {field_name}=1",
        )
    return axis - 1


def check_rank(x: TensorInfo, ranks: tuple[int, ...], what: str) -> None:
    if len(x.shape) not in ranks:
        want = " or ".join(f"{r}-D" for r in ranks)
        raise NodeProblem(
            f"expects a {want} input per sample ({what}), received {x.describe()}",
        )


def check_size(value: int, what: str, *, field_name: str | None = None) -> None:
    if value < 1:
        raise NodeProblem(f"{what} shrinks to {value}, must stay at least 1", field=field_name)
    if value > MAX_DIM:
        raise NodeProblem(f"{what} grows to {value}, above the limit of {MAX_DIM}", field=field_name)


def check_declared(
    p: Any, name: str, actual: int | list[int] | tuple[int, ...], *, source: str
) -> None:
    """A user-given input-size argument must agree with the incoming shape."""
    given = getattr(p, name, None)
    if given is None:
        return
    if isinstance(actual, tuple):
        actual = list(actual)
    if isinstance(given, tuple):
        given = list(given)
    if given != actual:
        raise NodeProblem(
            f"{name}={given} disagrees with the incoming {source} {actual}",
            field=name,
            suggestion=f"remove {name} (LayerLab infers it) or set it to {actual}",
        )
