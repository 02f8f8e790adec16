"""Code export: a graph as the self-contained PyTorch file a person would write (torch.nn only).

It renders the same plan ``compile.build`` instantiates, in the same order, so with the same
seed ``build_model()`` in the generated file produces the very same weights.
Pure Python: no torch import here.
"""

from __future__ import annotations

import ast
import keyword
from pathlib import Path
from typing import Any

from .graph import Graph, InitSpec
from .ops import get_op
from .plan import (
    PARAMETER_STD,
    DagPlan,
    LayerPlan,
    ModelPlan,
    ParameterPlan,
    Plan,
    ResidualPlan,
    SeqPlan,
    Step,
    children,
    class_name,
    init_targets,
    iter_frozen,
    iter_layers,
)
from .shapes import analyze

MODULES_FILE = Path(__file__).with_name("modules.py")


def module_sources() -> dict[str, tuple[str, list[str]]]:
    """Each class in layerlab/modules.py: its source and the classes of that file it builds on,
    read as text (no torch import here), so the exported file defines exactly what compile builds."""
    text = MODULES_FILE.read_text()
    out: dict[str, tuple[str, list[str]]] = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.ClassDef):
            bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
            out[node.name] = (ast.get_source_segment(text, node) or "", bases)
    return out


def to_python(graph: Graph | dict[str, Any], *, init: InitSpec | str | dict[str, Any] | None = None,
              seed: int | None = 0) -> str:
    """A Python file defining ``build_model()`` for the graph; raises GraphInvalidError if invalid."""
    from .graph import GraphInvalidError

    analysis = analyze(graph)
    if analysis.plan is None:
        raise GraphInvalidError(analysis.report.errors)
    default = InitSpec.model_validate(init) if init is not None else None
    return _Writer(analysis.plan, default, seed).render()


def model_definitions(plan: ModelPlan, *, init: InitSpec | str | dict[str, Any] | None = None,
                      seed: int | None = 0) -> str:
    """The classes and ``build_model()`` of the exported file, for a longer script to include."""
    default = InitSpec.model_validate(init) if init is not None else None
    return _Writer(plan, default, seed).definitions()


def fmt_value(value: Any) -> str:
    if isinstance(value, list):
        return "(" + ", ".join(fmt_value(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, str):
        return repr(value)
    return repr(value)


def fmt_call(p: LayerPlan) -> str:
    args = [fmt_value(p.args[k]) for k in p.positional if k in p.args]
    args += [f"{k}={fmt_value(v)}" for k, v in p.args.items() if k not in p.positional]
    return f"{'' if p.custom else 'nn.'}{p.torch_class}({', '.join(args)})"


def shape_comment(shape: tuple[int, ...]) -> str:
    return "# -> " + fmt_value(list(shape))


def accessor(root: Plan, path: list[str]) -> str:
    """Python to reach a submodule by its names: ``model.block1[0].conv1``. ``[i]`` only where the
    name is the position in an nn.Sequential (Sequential indexes by position, not by name);
    ``getattr`` for other names that are not attributes (a '0' in a branching region)."""
    out, cur = "model", root
    for part in path:
        kids = children(cur)
        child = next(c for c in kids if c.name == part)
        if isinstance(cur, SeqPlan) and part.isdigit() and kids.index(child) == int(part):
            out += f"[{part}]"
        elif is_attr(part):
            out += f".{part}"
        else:
            out = f"getattr({out}, {part!r})"
        cur = child
    return out


# names forward() itself uses: a node id equal to one must not shadow it as a local variable
FORWARD_NAMES = frozenset({"self", "torch"})


def local_names(variables: list[str]) -> dict[str, str]:
    """forward()'s local variable for each node id: the id, or the id with '_' appended while it
    would shadow a name forward() uses or another variable."""
    taken = set(variables)
    out: dict[str, str] = {}
    for v in variables:
        name = v
        if name in FORWARD_NAMES:
            while name in FORWARD_NAMES or name in taken:
                name += "_"
            taken.add(name)
        out[v] = name
    return out


def docstring_text(text: str) -> str:
    """User text for a docstring: on one line, with no quote or backslash that could end the
    string early (a graph's name must never become code in the exported file)."""
    return " ".join(text.split()).replace("\\", "\\\\").replace('"', '\\"')


def is_attr(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


class _Writer:
    def __init__(self, plan: ModelPlan, default: InitSpec | None, seed: int | None) -> None:
        self.plan = plan
        self.default = default
        self.seed = seed
        self.classes: list[str] = []
        self.class_names: set[str] = set()
        self.used: set[str] = set()  # LayerLab's small modules the model uses (layerlab/modules.py)

    # -- expressions -------------------------------------------------------------------------

    def expr(self, p: Plan, indent: int) -> str:
        """Python expression constructing plan ``p`` (may span lines, indented by ``indent``)."""
        pad = " " * indent
        if isinstance(p, LayerPlan):
            if p.custom:
                self.used.add(p.torch_class)
            return fmt_call(p)
        if isinstance(p, SeqPlan):
            if not p.items:
                return "nn.Sequential()"
            lines = ["nn.Sequential(OrderedDict(["]
            for item in p.items:
                body = self.expr(item, indent + 4)
                comment = f"  {shape_comment(item.out_shape)}"
                lines.append(f"{pad}    ({item.name!r}, {body}),{comment}")
            lines.append(f"{pad}]))")
            return "\n".join(lines)
        if isinstance(p, ResidualPlan):
            self.used.add("Residual")
            body = self.expr(p.body, indent + 4)
            short = self.expr(p.shortcut, indent + 4) if p.shortcut is not None else "None"
            return f"Residual(\n{pad}    body={body},\n{pad}    shortcut={short},\n{pad})"
        return f"{self.dag_class(p)}()"

    def dag_class(self, p: DagPlan) -> str:
        base = class_name(p.name)
        name, k = base, 2
        while name in self.class_names:
            name, k = f"{base}{k}", k + 1
        self.class_names.add(name)
        lines = [
            f"class {name}(nn.Module):",
            '    """A region with branches: forward follows the graph\'s topological order."""'
            if not any(isinstance(m, ParameterPlan) for m in p.modules)
            else '    """Holds raw parameters its forward uses; forward follows the graph\'s topological order."""',
            "",
            "    def __init__(self) -> None:",
            "        super().__init__()",
        ]
        for m in p.modules:
            if isinstance(m, ParameterPlan):
                lines.append(f"        {parameter_line(m)}")
                continue
            body = self.expr(m, 8)
            comment = f"  {shape_comment(m.out_shape)}"
            if is_attr(m.name):
                lines.append(f"        self.{m.name} = {body}{comment}")
            else:
                lines.append(f"        self.add_module({m.name!r}, {body}){comment}")
        local = local_names([p.input_var, *(s.var for s in p.steps)])
        lines += ["", f"    def forward(self, {local[p.input_var]}: torch.Tensor) -> torch.Tensor:"]
        for s in p.steps:
            args = [local[v] for v in s.inputs]
            target = f"self.{s.target}" if is_attr(s.target or "") else f"getattr(self, {s.target!r})"
            if s.kind == "module":
                rhs = f"{target}({args[0]})"
            elif s.kind == "parameter":
                rhs = get_op(s.op or "").parameter_form.code.format(p=target, x=args[0])
            else:
                rhs = merge_expr(s, args)
            lines.append(f"        {local[s.var]} = {rhs}  {shape_comment(s.shape).replace('-> ', '')}")
        lines.append(f"        return {local[p.output_var]}")
        # nested classes must be defined before use: render them first
        self.classes.append("\n".join(lines) + "\n")
        return name

    # -- statements after construction ---------------------------------------------------------

    def init_lines(self) -> list[str]:
        layers = [(path, lp, lp.init or self.default, init_targets(lp)) for path, lp in iter_layers(self.plan.root)]
        layers = [entry for entry in layers if entry[3][0]]
        chosen = [entry for entry in layers if entry[2] is not None and entry[2].scheme != "default"]
        if not chosen:
            return []
        specs = {spec for _, _, spec, _ in chosen}
        # one apply() when the scheme is the same everywhere and every layer is a plain weight (+ bias)
        plain = all(weights == ["weight"] and biases in ([], ["bias"]) for _, _, _, (weights, biases) in chosen)
        if len(chosen) == len(layers) and len(specs) == 1 and plain:
            spec = next(iter(specs))
            classes = sorted({lp.torch_class for _, lp, _, _ in chosen})
            kinds = ", ".join(f"nn.{c}" for c in classes)
            kinds = f"({kinds})" if len(classes) > 1 else kinds
            return [
                "",
                "    # initialization: every layer with a weight matrix or filter, biases at zero",
                "    def init_weights(module: nn.Module) -> None:",
                f"        if isinstance(module, {kinds}):",
                f"            {init_call('module.weight', spec)}",
                "            if getattr(module, 'bias', None) is not None:",
                "                nn.init.zeros_(module.bias)",
                "",
                "    model.apply(init_weights)",
            ]
        lines = ["", "    # initialization (biases at zero under every scheme)"]
        for path, _, spec, (weights, biases) in chosen:
            ref = accessor(self.plan.root, path.split("."))
            lines += [f"    {init_call(f'{ref}.{w}', spec)}" for w in weights]
            lines += [f"    nn.init.zeros_({ref}.{b})" for b in biases]
        return lines

    def freeze_lines(self) -> list[str]:
        frozen = list(iter_frozen(self.plan.root))
        if not frozen:
            return []
        lines = ["", "    # frozen: no gradients; give the optimizer only the parameters that require them"]
        for path, _ in frozen:
            ref = accessor(self.plan.root, path.split(".")) if path else "model"
            lines.append(f"    {ref}.requires_grad_(False)")
        return lines

    def module_classes(self) -> list[str]:
        """The sources of the small modules used, with the classes they build on, in file order."""
        sources = module_sources()
        needed: set[str] = set()
        stack = list(self.used)
        while stack:
            name = stack.pop()
            if name not in needed:
                needed.add(name)
                stack += [b for b in sources[name][1] if b in sources]
        return [src + "\n" for name, (src, _) in sources.items() if name in needed]

    def definitions(self) -> str:
        """The helper classes and ``build_model()``: the part of the file that defines the model."""
        root_expr = self.expr(self.plan.root, 4)
        blocks = self.module_classes() + self.classes
        body = ["def build_model() -> nn.Module:"]
        if self.seed is not None:
            body.append(f"    torch.manual_seed({self.seed})")
        body.append(f"    model = {root_expr}")
        body += self.init_lines()
        body += self.freeze_lines()
        body.append("    return model")
        return "\n".join([b + "\n" for b in blocks] + ["\n".join(body) + "\n"])

    def render(self) -> str:
        header = [
            f'"""{docstring_text(self.plan.name)}: generated by LayerLab. Needs only PyTorch.',
            "",
            f"Input: a batch of shape (B, {', '.join(str(d) for d in self.plan.input_shape)})"
            + (" of int64 ids" if self.plan.input_dtype == "int64" else "") + ".",
            '"""',
            "",
            "from collections import OrderedDict",
            "",
            "import torch",
            "from torch import nn",
            "",
            "",
            "",
        ]
        dims = ", ".join(str(d) for d in self.plan.input_shape)
        example = f"torch.randint(0, 2, (2, {dims}))" if self.plan.input_dtype == "int64" else f"torch.randn(2, {dims})"
        main = [
            "",
            'if __name__ == "__main__":',
            "    model = build_model()",
            f"    x = {example}  # a batch of 2",
            "    print(model)",
            "    print(model(x).shape)",
        ]
        return "\n".join(header) + self.definitions() + "\n" + "\n".join(main) + "\n"


def parameter_line(p: ParameterPlan) -> str:
    """``self.cls_token = nn.Parameter(torch.zeros(1, 1, 16))``: a raw parameter, started as compile does."""
    dims = ", ".join(str(d) for d in p.shape)
    start = f"torch.empty({dims}).normal_(std={PARAMETER_STD})" if p.form.init == "normal" else f"torch.zeros({dims})"
    if is_attr(p.name):
        return f"self.{p.name} = nn.Parameter({start})"
    return f"self.register_parameter({p.name!r}, nn.Parameter({start}))"


def merge_expr(s: Step, args: list[str]) -> str:
    """A merge step as Python: ``a + b`` for a folded rule, ``torch.cat([a, b], dim=1)`` for a call."""
    rule = get_op(s.op or "").merge
    if rule.infix is not None:
        return f" {rule.infix} ".join(args)
    kwargs = "".join(f", {k}={fmt_value(v)}" for k, v in s.kwargs.items())
    return f"{rule.function}([{', '.join(args)}]{kwargs})"


def init_call(target: str, spec: InitSpec) -> str:
    match spec.scheme:
        case "kaiming_normal" | "kaiming_uniform":
            return f"nn.init.{spec.scheme}_({target}, nonlinearity={spec.nonlinearity!r})"
        case "normal":
            return f"nn.init.normal_({target}, mean=0.0, std={spec.std!r})"
        case _:
            return f"nn.init.{spec.scheme}_({target})"
