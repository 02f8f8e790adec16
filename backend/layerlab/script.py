"""A run as the PyTorch training script a person would write: data, model, optimizer, loop.

``to_script(graph, config)`` renders one self-contained file that, run on the CPU, reproduces the
LayerLab run of the same graph and config: the same split and normalization, the same initial
weights, batches, dropout masks, optimizer steps and schedule, so the same per-epoch losses and
final weights. It follows the trainer (``layerlab.train.trainer``) step for step; the reproduction
tests run both and compare. ``script_sections`` gives the same code cut into tutorial sections
(the notebook's cells).

Only the settings in use appear: no branch for an option the run did not choose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .codegen import accessor, docstring_text, model_definitions
from .graph import Graph, GraphInvalidError
from .plan import LayerPlan, ModelPlan, iter_frozen, iter_layers, iter_parameters
from .shapes import analyze
from .train.augment import pipeline_code, random_steps
from .train.augment import problem as augment_problem
from .train.config import RunConfig
from .train.data import TENSOR_LOADER_MAX_BYTES
from .train.datacode import DataCode, loading_code

# torch classes whose parameters are scales and shifts: the trainer's NORM_TYPES, by name
NORM_CLASSES = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "GroupNorm", "LayerNorm", "LocalResponseNorm",
                "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "RMSNorm")
BATCHNORM_CLASSES = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d")

LOSS_CALLS = {
    "cross_entropy": ("nn.CrossEntropyLoss", "raw logits in: log-softmax and NLL in one stable step"),
    "nll": ("nn.NLLLoss", "expects log-probabilities (the graph ends with LogSoftmax)"),
    "mse": ("nn.MSELoss", "mean squared error"),
    "l1": ("nn.L1Loss", "mean absolute error: less swayed by outliers than MSE"),
    "smooth_l1": ("nn.SmoothL1Loss", "squared near zero, absolute further out"),
    "bce_with_logits": ("nn.BCEWithLogitsLoss", "sigmoid and binary cross-entropy in one stable step"),
}


class ScriptUnsupportedError(ValueError):
    """The run uses a setting the training script cannot show as plain code."""


@dataclass
class Section:
    """One part of the script: a notebook cell, under a heading."""

    title: str
    code: str
    nodes: dict[str, list[int]] = field(default_factory=dict)  # node id -> lines (0-based, in code)
    notebook: str | None = None  # the cell's code where a notebook differs from the script
    in_script: bool = True  # False: a notebook-only cell (a peek at a batch, a plot)


@dataclass
class TrainingScript:
    name: str
    docstring: str
    intro: str  # the notebook's opening text
    imports: list[str]
    sections: list[Section]  # the first one parses the command line (a notebook replaces it)

    @property
    def script_sections(self) -> list[Section]:
        return [s for s in self.sections if s.in_script]

    def text(self) -> str:
        head = f'"""{self.docstring}"""\n\n' + "\n".join(self.imports) + "\n"
        return head + "".join(("\n" if i == 0 else "\n\n") + s.code.rstrip("\n") + "\n"
                              for i, s in enumerate(self.script_sections))

    def node_lines(self) -> dict[str, list[int]]:
        """Node id -> 1-based line numbers in ``text()`` that define or use the node."""
        out: dict[str, list[int]] = {}
        line = 1 + self.docstring.count("\n") + 2 + len(self.imports)
        for i, s in enumerate(self.script_sections):
            line += 1 if i == 0 else 2  # the blank lines before a section
            for node, rows in s.nodes.items():
                out.setdefault(node, []).extend(line + r for r in rows)
            line += s.code.rstrip("\n").count("\n") + 1
        return out


def to_script(graph: Graph | dict[str, Any], config: RunConfig | dict[str, Any]) -> str:
    """The training script for ``graph`` under ``config``; raises GraphInvalidError if the graph is invalid."""
    return script_sections(graph, config).text()


def script_sections(graph: Graph | dict[str, Any], config: RunConfig | dict[str, Any]) -> TrainingScript:
    cfg = config if isinstance(config, RunConfig) else RunConfig.model_validate(config)
    analysis = analyze(graph)
    if analysis.plan is None:
        raise GraphInvalidError(analysis.report.errors)
    return _Script(analysis.plan, cfg).build()


def _shape(dims: list[int] | tuple[int, ...]) -> str:
    return "(B, " + ", ".join(str(d) for d in dims) + ")"


class _Script:
    def __init__(self, plan: ModelPlan, cfg: RunConfig) -> None:
        self.plan = plan
        self.cfg = cfg
        self.data: DataCode = loading_code(cfg.data, seed=cfg.seed)
        self.classification = self.data.task == "classification"
        self.validate = cfg.data.val_split > 0
        kind = cfg.data.loader
        if kind == "auto":
            kind = "tensor" if self.data.nbytes <= TENSOR_LOADER_MAX_BYTES else "dataloader"
        self.loader = kind
        self.augment_steps = random_steps(cfg.data)
        self.fixed_norm = next((s for s in cfg.data.augment if s.op == "Normalize"), None)
        self.standardize = plan.input_dtype != "int64" and (self.fixed_norm is not None or cfg.data.normalize)
        self.layers = list(iter_layers(plan.root))
        self.frozen_paths = [path for path, _ in iter_frozen(plan.root)]

    # -- helpers -------------------------------------------------------------------------------

    def ref(self, path: str) -> str:
        return accessor(self.plan.root, path.split(".")) if path else "model"

    def node_of(self, path: str) -> str | None:
        """The node a module path was made from (its deepest part that is a node)."""
        cur, node = self.plan.root, self.plan.root.node_id
        from .plan import children

        for part in path.split(".") if path else []:
            cur = next(c for c in children(cur) if c.name == part)
            node = cur.node_id or node
        return node

    def frozen_batchnorms(self) -> list[str]:
        if not self.cfg.freeze_bn_stats:
            return []
        return [path for path, lp in self.layers if lp.torch_class in BATCHNORM_CLASSES
                and any(path == f or path.startswith(f + ".") or f == "" for f in self.frozen_paths)]

    # -- sections ------------------------------------------------------------------------------

    def build(self) -> TrainingScript:
        cfg = self.cfg
        if cfg.devices > 1:
            raise ScriptUnsupportedError(
                f"the run trains data-parallel on {cfg.devices} processes; the script shows a single-process run "
                "(set devices to 1)")
        if cfg.data.dataset == "upload" and cfg.data.upload is not None \
                and cfg.data.upload.path.lower().endswith(".txt"):
            raise ScriptUnsupportedError("a .txt upload (next-character windows, split in order) is not in the "
                                         "training script yet")
        if cfg.precision != "fp32":
            raise ScriptUnsupportedError(
                f"precision '{cfg.precision}' is not in the training script yet; it trains in fp32 (set precision "
                "to fp32)")
        trouble = augment_problem(cfg.data.augment, self.plan.input_shape) if cfg.data.augment else None
        if trouble:
            raise ScriptUnsupportedError(trouble)
        sections = [self.cli(), self.data_section(), self.batches(), self.peek(), self.model(), self.optimizer(),
                    self.loop(), self.plot()]
        imports = ["import argparse", "import json"]
        if any("math." in s.code for s in sections if s.in_script):
            imports.append("import math")
        if any("csv." in s.code for s in sections):
            imports.append("import csv")
        if any("OrderedDict" in s.code for s in sections):
            imports.append("from collections import OrderedDict")
        imports.append("from pathlib import Path")
        imports += ["", "import numpy as np", "import torch", "from torch import nn"]
        if self.loader == "dataloader":
            imports.append("from torch.utils.data import DataLoader, TensorDataset")
        if self.augment_steps:
            imports.append("import kornia.augmentation as K")
        imports += [line for line in self.data.imports if line != "import csv"]
        imports = _ordered_imports(imports)
        name = self.plan.name
        doc = (f"{docstring_text(name)}: its LayerLab training run as a plain PyTorch script.\n\n"
               "Run: python train.py [--out DIR] [--device cpu]\n"
               "Prints one line per epoch and writes DIR/weights.safetensors (and DIR/history.json).\n"
               f"On the CPU it reproduces the run (seed {cfg.seed}): the same losses and the same final weights.\n")
        intro = ("Run the cells in order. Training prints one line per epoch and writes weights.safetensors "
                 f"and history.json to this folder; on the CPU it reproduces the run (seed {cfg.seed}): the same "
                 "losses and the same final weights.")
        return TrainingScript(name, doc, intro, imports, sections)

    def cli(self) -> Section:
        cfg = self.cfg
        default = '"cpu"' if cfg.device == "cpu" else '"cuda" if torch.cuda.is_available() else "cpu"'
        lines = [
            f"SEED = {cfg.seed}",
            f"BATCH_SIZE = {cfg.data.batch_size}",
        ]
        if cfg.epochs is not None:
            lines.append(f"EPOCHS = {cfg.epochs}")
        if cfg.max_steps is not None:
            lines.append(f"MAX_STEPS = {cfg.max_steps}  # optimizer steps: training stops here at the latest")
        lines += [
            "",
            'parser = argparse.ArgumentParser(description="Train the model as its LayerLab run did.")',
            'parser.add_argument("--out", type=Path, default=Path("."), help="folder for weights.safetensors")',
            f'parser.add_argument("--device", default={default}, help="cpu reproduces the run exactly")',
            "args = parser.parse_args()",
            "out_dir, device = args.out, torch.device(args.device)",
        ]
        notebook = lines[: lines.index("")] + ["", f'out_dir, device = Path("."), torch.device({default})']
        return Section("Settings", "\n".join(lines), notebook="\n".join(notebook))

    def data_section(self) -> Section:
        cfg, d = self.cfg, self.data
        lines = [*d.constants, *([""] if d.constants else []), d.source.rstrip("\n")]
        split = cfg.data.val_split
        if self.validate:
            lines += [
                f"# A seeded shuffle of the samples; the first {split:.0%} of it is held out for validation.",
                "order = np.random.default_rng(SEED).permutation(len(x))",
                f"n_val = min(max(round(len(x) * {split!r}), 1), len(x) - 1)",
                "x_train, y_train = x[order[n_val:]], y[order[n_val:]]",
                "x_val, y_val = x[order[:n_val]], y[order[:n_val]]",
            ]
        else:
            lines += [
                "# No validation split: every sample trains, in a seeded shuffled order.",
                "order = np.random.default_rng(SEED).permutation(len(x))",
                "x_train, y_train = x[order], y[order]",
            ]
        both = "x_train, x_val" if self.validate else "x_train"
        if self.plan.input_dtype == "int64":
            cast = "x_train.astype(np.int64), x_val.astype(np.int64)" if self.validate else "x_train.astype(np.int64)"
            lines.append(f"{both} = {cast}  # integer ids for the Embedding")
        else:
            cast = "x_train.astype(np.float32), x_val.astype(np.float32)" if self.validate \
                else "x_train.astype(np.float32)"
            lines.append(f"{both} = {cast}  # float32, as the weights are (and a fresh, compact copy)")
            ndim = len(self.plan.input_shape)
            if self.fixed_norm is not None:
                shape = ", ".join(["-1", *["1"] * (ndim - 1)])
                lines += [
                    "",
                    "# Standardize each channel with the fixed statistics of the Normalize step.",
                    f"mean = np.array({self.fixed_norm.mean!r}, dtype=np.float32).reshape({shape})",
                    f"std = np.array({self.fixed_norm.std!r}, dtype=np.float32).reshape({shape})",
                ]
            elif cfg.data.normalize:
                axes = (0,) if ndim <= 1 else (0, *range(2, ndim + 1))
                per = "feature" if ndim <= 1 else "channel"
                lines += [
                    "",
                    f"# Standardize each {per} with statistics of the training split only: validation stands for "
                    "unseen data.",
                    f"mean = x_train.mean(axis={axes}, keepdims=True, dtype=np.float64)[0]",
                    f"std = x_train.std(axis={axes}, keepdims=True, dtype=np.float64)[0]",
                    "std = np.where(std < 1e-8, 1.0, std)  # a constant feature is only centred",
                    "mean, std = mean.astype(np.float32), std.astype(np.float32)",
                ]
            if self.standardize and self.augment_steps:
                lines += [
                    "# Training images stay as loaded: each batch is standardized after its augmentation, so",
                    "# padding and jitter see real pixels.",
                ]
                if self.validate:
                    lines.append("x_val = (x_val - mean) / std")
            elif self.standardize:
                scaled = "(x_train - mean) / std, (x_val - mean) / std" if self.validate else "(x_train - mean) / std"
                lines.append(f"{both} = {scaled}")
        if not self.classification and cfg.data.normalize_targets:
            scaled = "(y_train - y_mean) / y_std, (y_val - y_mean) / y_std" if self.validate \
                else "(y_train - y_mean) / y_std"
            lines += [
                "",
                "# Targets standardized too, so the loss starts near 1 (predictions: out * y_std + y_mean).",
                "y_mean = y_train.mean(axis=0, dtype=np.float64).astype(np.float32)",
                "y_std = y_train.std(axis=0, dtype=np.float64).astype(np.float32)",
                "y_std = np.where(y_std < 1e-8, 1.0, y_std).astype(np.float32)",
                f"{'y_train, y_val' if self.validate else 'y_train'} = {scaled}",
            ]
        return Section("The data", "\n".join(lines))

    def batches(self) -> Section:
        cfg, v = self.cfg, self.validate
        if self.loader == "tensor":
            lines = [
                "# Small enough to live on the device whole: a batch is an index slice of a random permutation,",
                "# which skips a DataLoader's per-sample collation.",
                "x_train, y_train = torch.from_numpy(x_train).to(device), torch.from_numpy(y_train).to(device)",
            ]
            if v:
                lines.append("x_val, y_val = torch.from_numpy(x_val).to(device), torch.from_numpy(y_val).to(device)")
            lines += [
                "shuffle = torch.Generator().manual_seed(SEED)  # its own generator: the order ignores dropout's draws",
                "# A last training batch of one sample breaks BatchNorm's batch statistics: drop that one sample.",
                "n_used = len(x_train) - 1 if len(x_train) % BATCH_SIZE == 1 else len(x_train)",
                "steps_per_epoch = math.ceil(n_used / BATCH_SIZE)",
            ]
        else:
            workers = cfg.data.num_workers
            extra = f", num_workers={workers}, persistent_workers=True" if workers else ""
            lines = [
                "# Too large to keep on the device: a DataLoader serves shuffled batches from CPU memory.",
                "shuffle = torch.Generator().manual_seed(SEED)  # its own generator: the order ignores dropout's draws",
                "train_loader = DataLoader(",
                "    TensorDataset(torch.from_numpy(x_train), torch.from_numpy(y_train)),",
                f"    batch_size=BATCH_SIZE, shuffle={cfg.data.shuffle}, generator=shuffle{extra},",
                '    pin_memory=device.type == "cuda",  # page-locked memory copies to the GPU faster',
                "    drop_last=len(x_train) % BATCH_SIZE == 1,  # a batch of one sample breaks BatchNorm",
                ")",
            ]
            if v:
                lines += [
                    "# Iterating a DataLoader draws a seed from its generator: give it one, or it shifts dropout's RNG.",
                    "val_loader = DataLoader(TensorDataset(torch.from_numpy(x_val), torch.from_numpy(y_val)),",
                    "                        batch_size=BATCH_SIZE, generator=torch.Generator().manual_seed(SEED))",
                ]
            lines.append("steps_per_epoch = len(train_loader)")
        if self.augment_steps:
            lines += [
                "",
                "# Random augmentation of training batches, on the device (validation is never augmented):",
                "# every epoch shows each image in a new random variant.",
                *pipeline_code(self.augment_steps, self.plan.input_shape).rstrip("\n").split("\n"),
                "augment = augment.to(device)",
            ]
            if self.standardize:
                lines.append("mean_t, std_t = torch.as_tensor(mean, device=device), torch.as_tensor(std, device=device)")
        if cfg.epochs is not None and cfg.max_steps is not None:
            lines.append("total_steps = min(EPOCHS * steps_per_epoch, MAX_STEPS)")
        elif cfg.epochs is not None:
            lines.append("total_steps = EPOCHS * steps_per_epoch")
        else:
            lines.append("total_steps = MAX_STEPS")
        return Section("Batches", "\n".join(lines))

    def peek(self) -> Section:
        """A notebook cell: one batch's shapes, taken without drawing from the shuffling generator."""
        first = ("x_train[:BATCH_SIZE], y_train[:BATCH_SIZE]" if self.loader == "tensor"
                 else "train_loader.dataset[:BATCH_SIZE]")
        code = "\n".join([
            f"xb, yb = {first}  # the first samples; the loop draws shuffled ones",
            'print("inputs", tuple(xb.shape), xb.dtype, " targets", tuple(yb.shape), yb.dtype)',
        ])
        return Section("A peek at a batch", code, in_script=False)

    def plot(self) -> Section:
        """A notebook cell: the loss curves, if matplotlib is there."""
        lines = [
            "try:",
            "    import matplotlib.pyplot as plt",
            "except ImportError:  # not installed: the numbers above are the whole story",
            "    plt = None",
            "if plt is not None:",
            '    epochs = [h["epoch"] for h in history]',
            '    plt.plot(epochs, [h["train_loss"] for h in history], label="train")',
        ]
        if self.validate:
            lines.append('    plt.plot(epochs, [h["val_loss"] for h in history], label="validation")')
        lines += ['    plt.xlabel("epoch")', '    plt.ylabel("loss")', "    plt.legend()", "    plt.show()"]
        return Section("The loss curves", "\n".join(lines), in_script=False)

    def model(self) -> Section:
        cfg = self.cfg
        source = model_definitions(self.plan, init=cfg.init_arg(), seed=cfg.seed)
        lines = source.rstrip("\n").split("\n") + [
            "",
            "",
            "model = build_model().to(device)  # seeded inside: the run's initial weights",
            "torch.manual_seed(SEED)  # dropout draws from the seed as in the run (the model was built on a fork)",
        ]
        nodes: dict[str, list[int]] = {}
        # lines that define a node: its module in build_model or a class, its freeze and init lines
        named = [*self.layers, *iter_parameters(self.plan.root)]
        names = {lp.name: lp.node_id for _, lp in named if lp.node_id}
        for path, lp in named:
            if lp.node_id:
                names[path] = lp.node_id
        for i, text in enumerate(lines):
            stripped = text.strip()
            for name, node in names.items():
                if stripped.startswith(f"({name!r},") or stripped.startswith(f"self.{name} =") \
                        or f".{name}." in stripped or f".{name})" in stripped or f"[{name!r}]" in stripped:
                    nodes.setdefault(node, []).append(i)
        if cfg.channels_last and len(self.plan.input_shape) == 3:
            lines.append("model = model.to(memory_format=torch.channels_last)  # NHWC: faster convolutions on GPUs")
        if cfg.compile:
            lines.append("compiled = torch.compile(model)  # one fused graph instead of op-by-op Python")
        frozen_bn = self.frozen_batchnorms()
        if frozen_bn:
            lines += [
                "",
                "# Frozen BatchNorms stay in eval mode while training, so their running statistics stay put too.",
                f"frozen_bn = [{', '.join(self.ref(p) for p in frozen_bn)}]",
            ]
            for p in frozen_bn:
                node = self.node_of(p)
                if node:
                    nodes.setdefault(node, []).append(len(lines) - 1)
        model_lines = len(lines)
        lines += [
            "",
            "n_params = sum(p.numel() for p in model.parameters())",
            "n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)",
            'print(f"{n_params:,} parameters, {n_trainable:,} trainable")',
        ]
        notebook = [*lines[:model_lines], "print(model)", *lines[model_lines:]]
        return Section("The model", "\n".join(lines), nodes, notebook="\n".join(notebook))

    def optimizer(self) -> Section:
        opt = self.cfg.optimizer
        lines = [
            "# Only trainable parameters go to the optimizer: frozen ones cannot move, whatever momentum or decay do.",
            "trainable = [p for p in model.parameters() if p.requires_grad]",
        ]
        grouped = not opt.weight_decay_all and (opt.weight_decay > 0 or opt.l1 > 0)
        if grouped:
            norms = sorted({lp.torch_class for _, lp in self.layers if lp.torch_class in NORM_CLASSES})
            norm_check = ""
            if norms:
                kinds = ", ".join(f"nn.{n}" for n in norms)
                norm_check = f" and not isinstance(module, {'(' + kinds + ')' if len(norms) > 1 else kinds})"
            lines += [
                "# Weight decay pulls weight matrices and filters toward zero; biases and norm scales and shifts",
                "# are exempt (decaying them only limits what a layer can represent).",
                "decay, no_decay = [], []",
                "for module in model.modules():",
                "    for p in module.parameters(recurse=False):",
                "        if not p.requires_grad:",
                "            continue  # frozen",
                f"        if p.ndim >= 2{norm_check}:",
                "            decay.append(p)  # weight matrices and filters",
                "        else:",
                "            no_decay.append(p)  # biases, norm scales and shifts",
            ]
            params = (f'[\n    {{"params": decay, "weight_decay": {opt.weight_decay!r}}},\n'
                      '    {"params": no_decay, "weight_decay": 0.0},\n]')
        else:
            params = "trainable"
        args = [params, f"lr={opt.lr!r}"]
        if opt.name in ("sgd", "rmsprop") and opt.momentum:
            args.append(f"momentum={opt.momentum!r}")
        if opt.nesterov:
            args.append("nesterov=True")
        if opt.name in ("adam", "adamw") and tuple(opt.betas) != (0.9, 0.999):
            args.append(f"betas={tuple(opt.betas)!r}")
        if opt.name != "sgd" and opt.eps != 1e-8:
            args.append(f"eps={opt.eps!r}")
        if not grouped and (opt.weight_decay > 0 or opt.name == "adamw"):  # AdamW decays by 0.01 unless told
            args.append(f"weight_decay={opt.weight_decay!r}")
        cls = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop"}[opt.name]
        why = {
            "sgd": "# SGD with momentum: a running average of gradients smooths the steps."
            if opt.momentum else "# Plain SGD: each step moves against the gradient.",
            "adam": "# Adam: per-parameter step sizes; its weight decay is added to the gradient (L2)."
            if opt.weight_decay else "# Adam: per-parameter step sizes from running gradient moments.",
            "adamw": "# AdamW: Adam with the weight decay applied to the weights directly (decoupled).",
            "rmsprop": "# RMSprop: steps scaled by a running average of squared gradients.",
        }[opt.name]
        lines += [why, f"optimizer = torch.optim.{cls}({', '.join(args)})"]
        lines += self.loss_lines()
        lines += self.schedule_lines()
        return Section("Loss, optimizer and schedule", "\n".join(lines))

    def loss_lines(self) -> list[str]:
        cfg = self.cfg
        call, why = LOSS_CALLS[cfg.loss.name]
        args = []
        if cfg.loss.label_smoothing:
            args.append(f"label_smoothing={cfg.loss.label_smoothing!r}")
        if cfg.loss.name == "smooth_l1" and cfg.loss.beta != 1.0:
            args.append(f"beta={cfg.loss.beta!r}")
        lines = ["", f"loss_fn = {call}({', '.join(args)})  # {why}"]
        if cfg.optimizer.l1:
            src = "trainable" if cfg.optimizer.weight_decay_all else "decay"
            lines += [
                f"L1 = {cfg.optimizer.l1!r}  # the L1 penalty's weight: it pushes the decayed weights toward exactly 0",
                f"l1_params = {src}",
            ]
        return lines

    def schedule_lines(self) -> list[str]:
        s = self.cfg.schedule
        lr = self.cfg.optimizer.lr
        if s.name == "one_cycle":
            pct = f"{s.warmup_steps} / total_steps" if s.warmup_steps else repr(s.pct_start)
            return [
                "",
                "# One cycle: the lr rises to its peak, then anneals far below it; stepped once per batch.",
                "scheduler = torch.optim.lr_scheduler.OneCycleLR(",
                f"    optimizer, max_lr={lr!r}, total_steps=max(total_steps, 2),",
                f"    pct_start=min(max({pct}, 1e-3), 0.999),",
                ")",
            ]
        if s.name == "none" and not s.warmup_steps:
            return []
        body: list[str] = []
        what = []
        if s.warmup_steps:
            what.append(f"a linear warm-up over {s.warmup_steps} steps")
            body += [f"    if step < {s.warmup_steps}:", f"        return (step + 1) / {s.warmup_steps}"]
        after = f"(step - {s.warmup_steps})" if s.warmup_steps else "step"
        if s.name == "step":
            what.append(f"× {s.gamma!r} every {s.step_size} steps")
            body.append(f"    return {s.gamma!r} ** ({after} // {s.step_size})")
        elif s.name == "cosine":
            span = f"max(total_steps - {s.warmup_steps}, 1)" if s.warmup_steps else "max(total_steps, 1)"
            body.append(f"    progress = min({after} / {span}, 1.0)")
            floor = s.min_lr / lr
            if floor:
                what.append(f"cosine decay to {s.min_lr!r}")
                body.append(f"    return {floor!r} + (1.0 - {floor!r}) * 0.5 * (1.0 + math.cos(math.pi * progress))")
            else:
                what.append("cosine decay to 0")
                body.append("    return 0.5 * (1.0 + math.cos(math.pi * progress))")
        else:
            body.append("    return 1.0")
        return [
            "",
            "",
            "def lr_factor(step: int) -> float:",
            f'    """The lr multiplier at an optimizer step: {", then ".join(what)}."""',
            *body,
            "",
            "",
            "scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)  # stepped once per batch",
        ]

    def targets_expr(self) -> str:
        """What the loss compares the output with."""
        if self.cfg.loss.name != "bce_with_logits":
            return "yb"
        out = self.plan.root.out_shape if not isinstance(self.plan.root, LayerPlan) else self.plan.root.out_shape
        if tuple(out) == (1,):
            return "yb.float().view(-1, 1)"  # one logit per sample
        return f"nn.functional.one_hot(yb, {out[0]}).float()"

    def correct_expr(self, out: str) -> str:
        if self.cfg.loss.name == "bce_with_logits" and tuple(self.plan.root.out_shape) == (1,):
            return f"(({out}.view(-1) > 0).long() == yb).sum()"
        return f"({out}.argmax(dim=1) == yb).sum()"

    def loop(self) -> Section:
        cfg = self.cfg
        opt = cfg.optimizer
        fwd = "compiled" if cfg.compile else "model"
        shape_in = _shape(self.plan.input_shape)
        shape_out = _shape(list(self.plan.root.out_shape))
        target = self.targets_expr()
        frozen_bn = bool(self.frozen_batchnorms())
        lines = ["history = []", "step = 0"]
        if cfg.patience is not None:
            lines += ["best_val, bad_epochs = math.inf, 0  # early stopping watches the validation loss"]
        if cfg.epochs is not None:
            lines.append("for epoch in range(1, EPOCHS + 1):")
        else:
            lines += ["epoch = 0", "while step < total_steps:", "    epoch += 1"]
        train_mode = ["    model.train()  # dropout on; BatchNorm normalizes with batch statistics and updates its running ones"]
        if frozen_bn:
            train_mode += ["    for m in frozen_bn:", "        m.eval()"]
        lines += train_mode
        lines += [
            "    loss_sum, seen = torch.zeros((), device=device), 0  # summed on the device: no sync per step",
        ]
        if self.loader == "tensor":
            order = ("torch.randperm(len(x_train), generator=shuffle)" if cfg.data.shuffle
                     else "torch.arange(len(x_train))")
            lines += [
                f"    order = {order}.to(device)[:n_used]",
                "    for i in range(steps_per_epoch):",
                "        idx = order[i * BATCH_SIZE : (i + 1) * BATCH_SIZE]",
                f"        xb, yb = x_train[idx], y_train[idx]  # {shape_in}, (B,)" if self.classification
                else f"        xb, yb = x_train[idx], y_train[idx]  # {shape_in}",
            ]
        else:
            lines += [
                "    for xb, yb in train_loader:",
                f"        xb, yb = xb.to(device), yb.to(device)  # {shape_in}",
            ]
        if self.augment_steps:
            lines += [
                "        with torch.no_grad():  # augmentation is data preparation, not part of the model",
                "            xb = augment(xb)  # same shape, randomly cropped / flipped / ...",
            ]
            if self.standardize:
                lines.append("            xb = (xb - mean_t) / std_t")
        if cfg.channels_last and len(self.plan.input_shape) == 3:
            lines.append("        xb = xb.contiguous(memory_format=torch.channels_last)")
        lines += [
            "        optimizer.zero_grad(set_to_none=True)  # gradients add up across backward() calls otherwise",
            f"        out = {fwd}(xb)  # {shape_out}",
            f"        loss = loss_fn(out, {target})",
        ]
        if opt.l1:
            lines += [
                "        penalty = torch.stack([p.abs().sum() for p in l1_params]).sum()",
                "        (loss + L1 * penalty).backward()  # the penalty trains but is not reported in the loss",
            ]
        else:
            lines.append("        loss.backward()")
        if opt.grad_clip is not None:
            lines.append(f"        torch.nn.utils.clip_grad_norm_(trainable, {opt.grad_clip!r})  "
                         "# rescale if the gradients' total norm is larger")
        lines.append("        optimizer.step()")
        if self.cfg.schedule.name != "none" or self.cfg.schedule.warmup_steps:
            lines.append("        scheduler.step()")
        lines += [
            "        step += 1",
            "        loss_sum += loss.detach() * len(yb)",
            "        seen += len(yb)",
        ]
        if cfg.max_steps is not None:
            lines += ["        if step >= total_steps:", "            break"]
        lines.append("    train_loss = loss_sum.item() / seen")
        metrics = ['"epoch": epoch', '"train_loss": train_loss']
        printed = ['epoch {epoch}', 'train_loss {train_loss:.6f}']
        if self.validate:
            lines += [
                "",
                "    model.eval()  # dropout off; BatchNorm uses its running statistics",
                "    with torch.inference_mode():  # no autograd graph: faster, less memory",
                "        loss_sum, correct, n = torch.zeros((), device=device), 0, 0" if self.classification
                else "        loss_sum, n = torch.zeros((), device=device), 0",
            ]
            if self.loader == "tensor":
                lines += [
                    "        for i in range(0, len(x_val), BATCH_SIZE):",
                    "            xb, yb = x_val[i : i + BATCH_SIZE], y_val[i : i + BATCH_SIZE]",
                ]
            else:
                lines += [
                    "        for xb, yb in val_loader:",
                    "            xb, yb = xb.to(device), yb.to(device)",
                ]
            lines += [
                f"            out = {fwd}(xb)",
                f"            loss_sum += loss_fn(out, {target}) * len(yb)",
            ]
            if self.classification:
                lines.append(f"            correct += {self.correct_expr('out')}")
            lines.append("            n += len(yb)")
            lines.append("    val_loss = loss_sum.item() / n")
            metrics.append('"val_loss": val_loss')
            printed.append("val_loss {val_loss:.6f}")
            if self.classification:
                lines.append("    val_accuracy = int(correct) / n")
                metrics.append('"val_accuracy": val_accuracy')
                printed.append("val_accuracy {val_accuracy:.6f}")
        lines += [
            f"    history.append({{{', '.join(metrics)}}})",
            f'    print(f"{" ".join(printed)}", flush=True)',
        ]
        if cfg.max_steps is not None:
            lines += ["    if step >= total_steps:", "        break"]
        if cfg.patience is not None:
            lines += [
                f"    if val_loss < best_val - {cfg.min_delta!r}:",
                "        best_val, bad_epochs = val_loss, 0",
                "    else:",
                "        bad_epochs += 1",
                f"        if bad_epochs >= {cfg.patience}:  # no improvement for {cfg.patience} epochs: stop early",
                "            break",
            ]
        lines += [
            "",
            "out_dir.mkdir(parents=True, exist_ok=True)",
            "(out_dir / \"history.json\").write_text(json.dumps(history, indent=1))",
            "weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}",
            "try:",
            "    from safetensors.torch import save_file",
            "",
            '    save_file(weights, out_dir / "weights.safetensors")  # plain tensors: nothing executable',
            "except ImportError:  # safetensors not installed: torch's own format",
            '    torch.save(weights, out_dir / "weights.pt")',
        ]
        return Section("Training", "\n".join(lines))


def _ordered_imports(lines: list[str]) -> list[str]:
    """Standard library, then third-party, each group sorted as isort would."""
    std = sorted({ln for ln in lines if ln and ln.split()[1].split(".")[0] in
                  ("argparse", "csv", "json", "math", "collections", "pathlib")},
                 key=lambda ln: (ln.startswith("from "), ln))
    third = sorted({ln for ln in lines if ln and ln not in std}, key=lambda ln: (ln.startswith("from "), ln))
    return [*std, "", *third]


def to_notebook(script: TrainingScript) -> str:
    """The script as a Jupyter notebook: a heading and a code cell per section, in tutorial order."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    cells = [
        new_markdown_cell(f"# {docstring_text(script.name)}: its LayerLab training run\n\n{script.intro}"),
        new_code_cell("\n".join(line for line in script.imports if line != "import argparse")),
    ]
    for s in script.sections:
        cells += [new_markdown_cell(f"## {s.title}"), new_code_cell((s.notebook or s.code).rstrip("\n"))]
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i}"  # stable ids: the same run exports the same file
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"
