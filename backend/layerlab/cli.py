"""The ``layerlab`` command: shapes, export, schema, catalog, serve and train."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .graph import GraphInvalidError, graph_json_schema, parse_graph
from .ops import catalog
from .shapes import NodeReport, Report, infer

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="layerlab", description="A visual model builder for PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("shapes", help="print every layer's output shape, parameters and MACs")
    p.add_argument("graph", type=Path, help="a graph JSON file")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--batch-size", type=int, default=32, help="for the memory estimate (default 32)")
    p.add_argument("--optimizer", default="adam", choices=["sgd", "adam", "adamw", "rmsprop"])

    p = sub.add_parser("export", help="write the graph as PyTorch code, TorchScript, ONNX or JSON, or its "
                       "training run as a script or notebook")
    p.add_argument("graph", type=Path)
    p.add_argument("--format", default="python",
                   choices=["python", "torchscript", "onnx", "json", "script", "ipynb"],
                   help="script/ipynb: the whole training run (data, model, optimizer, loop) as plain PyTorch")
    p.add_argument("--config", type=Path, help="script/ipynb: the run config JSON (default: the defaults)")
    p.add_argument("-o", "--output", type=Path, help="file to write (default: stdout for text formats)")
    p.add_argument("--seed", type=int, default=0)

    sub.add_parser("schema", help="print the graph format's JSON Schema")
    sub.add_parser("catalog", help="print the layer catalog as JSON")

    p = sub.add_parser("serve", help="serve the editor and the API")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--data-dir", type=Path, default=None, help="projects, runs and checkpoints (LAYERLAB_DATA_DIR)")
    p.add_argument("--insecure", action="store_true",
                   help="allow a non-loopback --host without LAYERLAB_TOKEN (anyone who can reach it can use it)")

    _add_train(sub)

    args = parser.parse_args(argv)
    if args.command == "schema":
        print(json.dumps(graph_json_schema(), indent=2))
        return EXIT_OK
    if args.command == "catalog":
        print(json.dumps(catalog(), indent=2))
        return EXIT_OK
    if args.command == "serve":
        from .api import InsecureBindError, serve

        try:
            serve(host=args.host, port=args.port, data_dir=args.data_dir, insecure=args.insecure)
        except InsecureBindError as e:
            print(f"layerlab: {e}", file=sys.stderr)
            return EXIT_USAGE
        return EXIT_OK
    data = _load(args.graph)
    if data is None:
        return EXIT_USAGE
    if args.command == "train":
        from .train.cli import run  # imports torch: only here

        return run(args, data)
    if args.command == "shapes":
        report = infer(data, batch_size=args.batch_size, optimizer=args.optimizer)
        if args.json:
            print(report.model_dump_json(indent=2))
        else:
            print(format_report(report, data))
        return EXIT_OK if report.valid else EXIT_INVALID
    return _export(data, args)


def _add_train(sub: Any) -> None:
    """``layerlab train``: see layerlab/train/cli.py (exit 0 finished, 1 failed, 2 bad arguments, 130 Ctrl+C)."""
    p = sub.add_parser("train", help="train a graph in the foreground (progress bar, run directory, checkpoint)")
    p.add_argument("graph", type=Path, help="a graph JSON file")
    p.add_argument("--config", type=Path, help="a run config JSON (the flags below override it)")
    p.add_argument("--dataset", help="a built-in dataset (default digits)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw", "rmsprop"])
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--out", type=Path, help="the run directory (default runs/<graph name>-<time>)")
    p.add_argument("--quiet", action="store_true", help="no progress bar; still one line per epoch")


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as e:
        print(f"layerlab: cannot read {path}: {e.strerror}", file=sys.stderr)
    except json.JSONDecodeError as e:
        print(f"layerlab: {path} is not valid JSON: {e}", file=sys.stderr)
    return None


def _export(data: Any, args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from .export import TEXT_FORMATS, ExportUnavailableError, export_graph
    from .script import ScriptUnsupportedError

    config = None
    if args.config is not None:
        if args.format not in ("script", "ipynb"):
            print(f"layerlab: --config applies to --format script or ipynb, not {args.format}", file=sys.stderr)
            return EXIT_USAGE
        config = _load(args.config)
        if config is None:
            return EXIT_USAGE
    try:
        out = export_graph(data, args.format, seed=args.seed, config=config)
    except GraphInvalidError as e:
        print(f"layerlab: {e}", file=sys.stderr)
        return EXIT_INVALID
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors())
        print(f"layerlab: {args.config}: the run config is invalid: {problems}", file=sys.stderr)
        return EXIT_INVALID
    except ScriptUnsupportedError as e:
        print(f"layerlab: {e}", file=sys.stderr)
        return EXIT_INVALID
    except ExportUnavailableError as e:
        print(f"layerlab: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.output is not None:
        args.output.write_bytes(out.content)
        print(f"wrote {args.output} ({len(out.content):,} bytes)", file=sys.stderr)
    elif args.format in TEXT_FORMATS:
        sys.stdout.write(out.content.decode())
    else:
        print(f"layerlab: --format {args.format} is binary: give -o FILE", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def format_report(report: Report, data: Any) -> str:
    """A torchinfo-like table: node, op, output shape, params, trainable, MACs; then totals and errors."""
    graph, _ = parse_graph(data)
    depth: dict[str, int] = {}
    if graph is not None:
        parents = {n.id: n.parent for n in graph.nodes}
        for nid in parents:
            d, cur = 0, parents[nid]
            while cur is not None and d < 64:
                d, cur = d + 1, parents.get(cur)
            depth[nid] = d
    rows = [("Node", "Op", "Output shape", "Params", "Trainable", "MACs")]
    for n in _ordered(report.nodes, graph):
        shape = "×".join(str(d) for d in n.output_shape) if n.output_shape else ("error" if n.status == "error" else "-")
        rows.append((
            "  " * depth.get(n.id, 0) + n.id + (" *" if n.frozen else ""),
            n.op + (f" ×{n.instances}" if n.instances > 1 and n.op != "Block" else ""),
            shape,
            f"{n.params:,}",
            f"{n.trainable_params:,}",
            f"{n.macs:,}",
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    rule = "-" * (sum(widths) + 2 * 5)
    lines = []
    for i, r in enumerate(rows):
        cells = [r[c].ljust(widths[c]) if c < 3 else r[c].rjust(widths[c]) for c in range(6)]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append(rule)
    t = report.totals
    lines.append(rule)
    lines.append(f"Total params: {t.params:,}   trainable: {t.trainable_params:,}   frozen: {t.frozen_params:,}")
    lines.append(f"MACs per sample: {t.macs:,}")
    if t.memory is not None:
        lines.append(
            f"Training memory (batch {t.memory.batch_size}, {t.memory.optimizer}): {_mib(t.memory.total_bytes)} "
            f"= weights {_mib(t.memory.weights_bytes)} + gradients {_mib(t.memory.gradients_bytes)} + "
            f"optimizer {_mib(t.memory.optimizer_bytes)} + activations {_mib(t.memory.activations_bytes)}"
        )
    if any(n.frozen for n in report.nodes):
        lines.append("* frozen (requires_grad=False)")
    if report.errors:
        lines.append("")
        lines.append(f"{len(report.errors)} error{'s' if len(report.errors) > 1 else ''}:")
        for e in report.errors:
            lines.append(f"  - {e.message}" + (f"\n      fix: {e.suggestion}" if e.suggestion else ""))
    else:
        lines.append(f"Output shape per sample: {tuple(report.output_shape or ())}")
    return "\n".join(lines)


def _ordered(nodes: list[NodeReport], graph: Any) -> list[NodeReport]:
    """Blocks followed by their children, in graph order."""
    if graph is None:
        return nodes
    by_parent: dict[str | None, list[str]] = {}
    for n in graph.nodes:
        by_parent.setdefault(n.parent, []).append(n.id)
    reports = {n.id: n for n in nodes}
    out: list[NodeReport] = []

    def walk(parent: str | None) -> None:
        for nid in by_parent.get(parent, []):
            if nid in reports and reports[nid] not in out:
                out.append(reports[nid])
                walk(nid)

    walk(None)
    return out + [n for n in nodes if n not in out]


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
