"""``layerlab train``: one run in the foreground, with a progress bar, leaving a run directory.

The run directory holds ``graph.json`` and ``config.json`` (the validated config, every default
spelled out), ``events.jsonl`` (every event, as the server would stream it) and
``checkpoints/step-N/`` (``model.safetensors`` and the trainer state). Exit status: 0 finished,
1 failed (the reason on stderr), 2 bad arguments, 130 stopped by Ctrl+C (after a checkpoint).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def run(args: argparse.Namespace, graph: Any) -> int:
    config = _config(args)
    if config is None:
        return EXIT_USAGE
    out = args.out or Path("runs") / f"{_name(graph, args.graph)}-{time.strftime('%Y%m%d-%H%M%S')}"
    if (out / "events.jsonl").exists():
        print(f"layerlab: {out} already holds a run; pick another --out", file=sys.stderr)
        return EXIT_USAGE
    out.mkdir(parents=True, exist_ok=True)
    (out / "graph.json").write_text(json.dumps(graph, indent=1))
    (out / "config.json").write_text(config.model_dump_json(indent=1))

    from .control import Control
    from .events import RunLog
    from .trainer import train

    class CtrlC(Control):
        """The first Ctrl+C asks the trainer to stop after the current batch (with a checkpoint);
        a second one interrupts at once."""

        def __init__(self) -> None:
            self.stop = False

        def stop_requested(self, step: int) -> bool:
            return self.stop

        def on_sigint(self, *_: Any) -> None:
            if self.stop:
                raise KeyboardInterrupt
            self.stop = True
            print("\nstopping after this batch (Ctrl+C again to abort)...", file=sys.stderr)

    control = CtrlC()
    events = RunLog(out)
    progress = _Progress(quiet=args.quiet)
    previous = signal.signal(signal.SIGINT, control.on_sigint)

    def emit(event: Any) -> None:
        events.append(event)
        progress.show(event)

    try:
        outcome = train(graph, config, emit=emit, run_id=out.name, run_dir=out, control=control)
    finally:
        signal.signal(signal.SIGINT, previous)
        progress.close()
        events.close()
    if outcome.status == "finished":
        print(f"finished: step {outcome.step}, epoch {outcome.epoch}; checkpoint {outcome.checkpoint}")
        return EXIT_OK
    if outcome.status == "stopped":
        print(f"stopped at step {outcome.step}; checkpoint {outcome.checkpoint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"layerlab: the run failed: {outcome.reason}", file=sys.stderr)
    return EXIT_FAILED


def _config(args: argparse.Namespace) -> Any:
    from .config import RunConfig

    data: dict[str, Any] = {}
    if args.config is not None:
        try:
            data = json.loads(args.config.read_text())
        except (OSError, json.JSONDecodeError) as e:
            print(f"layerlab: cannot read the run config {args.config}: {e}", file=sys.stderr)
            return None
        if not isinstance(data, dict):
            print(f"layerlab: {args.config}: a run config is a JSON object", file=sys.stderr)
            return None
    flags = {
        ("data", "dataset"): args.dataset, ("data", "batch_size"): args.batch_size,
        ("optimizer", "name"): args.optimizer, ("optimizer", "lr"): args.lr,
        ("epochs",): args.epochs, ("max_steps",): args.max_steps, ("seed",): args.seed, ("device",): args.device,
    }
    for path, value in flags.items():
        if value is not None:
            target = data
            for key in path[:-1]:
                target = target.setdefault(key, {})
            target[path[-1]] = value
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        for err in e.errors():
            where = ".".join(str(p) for p in err["loc"]) or "config"
            print(f"layerlab: {where}: {err['msg']} (received {err.get('input')!r})", file=sys.stderr)
        return None


def _name(graph: Any, path: Path) -> str:
    name = graph.get("name") if isinstance(graph, dict) else None
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in (name or path.stem))[:60] or "run"


class _Progress:
    """A tqdm bar over the run's steps (loss, samples/s, ETA) and one line per epoch."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Any = None

    def show(self, event: Any) -> None:
        from tqdm import tqdm

        if event.type == "run_started" and not self.quiet:
            self.bar = tqdm(total=event.total_steps, initial=event.start_step, unit="step", dynamic_ncols=True,
                            file=sys.stderr)
        elif event.type == "step" and self.bar is not None:
            self.bar.update(event.step - self.bar.n)
            self.bar.set_postfix(loss=f"{event.points[-1][1]:.4f}", samples_s=f"{event.samples_per_s:,.0f}",
                                 refresh=False)
        elif event.type == "epoch":
            parts = [f"epoch {event.epoch}", f"step {event.step}", f"train_loss {event.train_loss:.4f}"]
            if event.train_accuracy is not None:
                parts.append(f"train_acc {event.train_accuracy:.3f}")
            if event.val_loss is not None:
                parts.append(f"val_loss {event.val_loss:.4f}")
            if event.val_accuracy is not None:
                parts.append(f"val_acc {event.val_accuracy:.3f}")
            parts.append(f"{event.seconds:.1f} s")
            (tqdm.write if self.bar is not None else print)("  ".join(parts))
        elif event.type == "warning":
            (tqdm.write if self.bar is not None else print)(f"warning: {event.message}", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
