"""The training loop: the flat loop a person would write, plus events, checkpoints and controls.

``train(graph, config, emit=...)`` is the entry point; it compiles the graph with
``layerlab.build``. ``train_spec`` does the same for a prepared :class:`ModelSpec`. Both report
everything through ``emit`` and end with exactly one of run_finished, run_stopped or run_failed;
they never raise for a failed run.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .checkpoint import (
    CheckpointError,
    load_weights_exact,
    load_weights_matching,
    read_state,
    save_checkpoint,
)
from .config import RunConfig
from .control import Control
from .data import ArrayDataset, DatasetError, load_dataset, make_batches, prepare
from .events import (
    CheckpointEvent,
    Emit,
    Emitter,
    EpochEvent,
    LayerSnapshotEvent,
    LayerStatsEvent,
    ModelSummary,
    RunFailed,
    RunFinished,
    RunPaused,
    RunResumed,
    RunStarted,
    RunStarting,
    RunStopped,
    StepEvent,
    WarningEvent,
)
from .optim import LossFn, l1_penalty, make_optimizer, make_scheduler, param_groups
from .spec import ModelSpec, RunSetupError, check_data, spec_from_graph
from .stats import LayerProbe, OutputProbe, StepBuffer

log = logging.getLogger(__name__)


@dataclass
class RunOutcome:
    """How a run ended (the same facts as its terminal event)."""

    status: Literal["finished", "stopped", "failed"]
    step: int
    epoch: int
    checkpoint: str | None = None
    reason: str | None = None


class _LossNotFinite(Exception):
    def __init__(self, step: int) -> None:
        super().__init__(f"the loss became {'NaN or infinite'} at step {step}")
        self.step = step


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RunSetupError(f"device '{name}' was requested but CUDA is not available here",
                            hint="set device to 'auto' or 'cpu'")
    device = torch.device(name if ":" in name else "cuda:0")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise RunSetupError(f"device '{name}' does not exist: {torch.cuda.device_count()} CUDA device(s) here",
                            hint="pick cuda:0 .. cuda:" + str(torch.cuda.device_count() - 1))
    return device


def frozen_batchnorms(model: nn.Module, spec: ModelSpec) -> list[tuple[str, _BatchNorm]]:
    """BatchNorm layers whose running statistics must not move: all affine parameters frozen,
    or (affine=False) the node itself or a block around it is marked frozen."""
    out = []
    for path, m in model.named_modules():
        if not isinstance(m, _BatchNorm):
            continue
        params = list(m.parameters(recurse=False))
        if (params and not any(p.requires_grad for p in params)) or (not params and spec.in_frozen_node(path)):
            out.append((path, m))
    return out


def set_train_mode(model: nn.Module, frozen_bn: list[tuple[str, _BatchNorm]]) -> None:
    """model.train(), then frozen BatchNorms back to eval so their running stats stay put."""
    model.train()
    for _, m in frozen_bn:
        m.eval()


def train(
    graph: Any,
    config: RunConfig | dict[str, Any],
    *,
    emit: Emit,
    run_id: str = "run",
    run_dir: str | Path = ".layerlab/runs/run",
    control: Control | None = None,
    resume_from: str | Path | None = None,
    init_from: str | Path | None = None,
    start_seq: int = 0,
    datasets: DatasetSource | None = None,
) -> RunOutcome:
    """Train a graph (a ``layerlab.graph/1`` dict or a ``layerlab.Graph``) under ``config``."""
    emitter = Emitter(run_id, emit, start_seq=start_seq)
    try:
        cfg = config if isinstance(config, RunConfig) else RunConfig.model_validate(config)
        spec = spec_from_graph(graph, cfg)
    except RunSetupError as e:
        emitter.emit(RunFailed, reason=e.reason, hint=e.hint, node=e.node, errors=e.errors, step=None)
        return RunOutcome("failed", 0, 0, reason=e.reason)
    except Exception as e:  # a config that does not validate, a core that refuses the graph
        log.exception("run %s could not start", run_id)
        emitter.emit(RunFailed, reason=f"the run could not start: {e}", hint="check the run configuration")
        return RunOutcome("failed", 0, 0, reason=str(e))
    return Trainer(spec, cfg, emitter=emitter, run_dir=Path(run_dir), control=control,
                   resume_from=resume_from, init_from=init_from, datasets=datasets).run()


def train_spec(
    spec: ModelSpec,
    config: RunConfig,
    *,
    emit: Emit,
    run_id: str = "run",
    run_dir: str | Path = ".layerlab/runs/run",
    control: Control | None = None,
    resume_from: str | Path | None = None,
    init_from: str | Path | None = None,
    start_seq: int = 0,
    datasets: DatasetSource | None = None,
) -> RunOutcome:
    """Train a model given as a :class:`ModelSpec` (a graph analysed already, or any factory)."""
    return Trainer(spec, config, emitter=Emitter(run_id, emit, start_seq=start_seq), run_dir=Path(run_dir),
                   control=control, resume_from=resume_from, init_from=init_from, datasets=datasets).run()


class DatasetSource:
    """Where a trainer gets its dataset: ``load_dataset``, unless a worker has some ready."""

    def load(self, cfg: Any, *, seed: int) -> ArrayDataset:
        return load_dataset(cfg, seed=seed)


class Trainer:
    """One run's state. ``run()`` sets up, trains, and always ends with one terminal event."""

    def __init__(
        self,
        spec: ModelSpec,
        config: RunConfig,
        *,
        emitter: Emitter,
        run_dir: Path,
        control: Control | None = None,
        resume_from: str | Path | None = None,
        init_from: str | Path | None = None,
        datasets: DatasetSource | None = None,
    ) -> None:
        self.spec = spec
        self.datasets = datasets or DatasetSource()
        self.cfg = config
        self.events = emitter
        self.run_dir = run_dir
        self.control = control or Control()
        self.resume_from = resume_from
        self.init_from = init_from
        self.step = 0  # optimizer steps done
        self.epoch = 0  # epochs completed
        self.batch_in_epoch = 0  # batches done in the current epoch (non-zero only when resuming)
        self.warnings: list[str] = []
        self.started = time.monotonic()

    # --- helpers ------------------------------------------------------------------------------

    def warn(self, message: str) -> None:
        log.warning("%s", message)
        self.events.emit(WarningEvent, message=message, step=self.step)

    def run(self) -> RunOutcome:
        try:
            self._setup()
            return self._fit()
        except RunSetupError as e:
            self.events.emit(RunFailed, reason=e.reason, hint=e.hint, node=e.node, errors=e.errors, step=self.step)
            return RunOutcome("failed", self.step, self.epoch, reason=e.reason)
        except (DatasetError, CheckpointError) as e:
            self.events.emit(RunFailed, reason=str(e), step=self.step, hint=getattr(e, "hint", None))
            return RunOutcome("failed", self.step, self.epoch, reason=str(e))
        except _LossNotFinite as e:
            reason = str(e)
            self.events.emit(RunFailed, reason=reason, step=e.step,
                             hint="lower the learning rate, enable grad_clip, or check the data for NaNs")
            return RunOutcome("failed", e.step, self.epoch, reason=reason)
        except torch.cuda.OutOfMemoryError as e:
            estimate = self.spec.memory_bytes
            quoted = f" (the estimate for this run was {estimate / 2**30:.2f} GiB)" if estimate else ""
            self.events.emit(RunFailed, reason=f"out of GPU memory{quoted}: {e}", step=self.step,
                             hint="lower data.batch_size or use a smaller model; bf16 precision also helps")
            return RunOutcome("failed", self.step, self.epoch, reason="out of memory")
        except Exception as e:
            log.exception("run %s failed", self.events.run_id)
            reason = f"{type(e).__name__}: {e}"
            self.events.emit(RunFailed, reason=reason, step=self.step, hint=None)
            return RunOutcome("failed", self.step, self.epoch, reason=reason)
        finally:
            self._release()

    def _release(self) -> None:
        device = getattr(self, "device", None)
        for name in ("model", "compiled", "optimizer", "scheduler", "train_batches", "val_batches"):
            if hasattr(self, name):
                delattr(self, name)
        if device is not None and device.type == "cuda":
            torch.cuda.empty_cache()

    # --- setup ----------------------------------------------------------------------------------

    def _setup(self) -> None:
        cfg = self.cfg
        self.device = resolve_device(cfg.device)
        self.precision = cfg.precision
        if cfg.precision != "fp32" and self.device.type != "cuda":
            self.warnings.append(f"precision '{cfg.precision}' needs a CUDA device; training in fp32 on the CPU")
            self.precision = "fp32"
        if self.precision == "bf16" and not torch.cuda.is_bf16_supported():
            self.warnings.append("this GPU does not support bf16; training in fp16 with a GradScaler instead")
            self.precision = "fp16"
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)

        # Data: generated or loaded under the seed, checked against the graph before anything else.
        self.events.emit(RunStarting, phase="data")
        dataset = self.datasets.load(cfg.data, seed=cfg.seed)
        self.warnings += check_data(self.spec, dataset, cfg.loss)
        self.data = prepare(dataset, cfg.data, seed=cfg.seed, input_dtype=self.spec.input_dtype)
        self.train_batches, self.val_batches = make_batches(self.data, cfg.data, device=self.device, seed=cfg.seed)
        self.steps_per_epoch = len(self.train_batches)
        limits = [cfg.max_steps] if cfg.max_steps else []
        if cfg.epochs:
            limits.append(cfg.epochs * self.steps_per_epoch)
        self.total_steps = min(limits)
        self.classification = self.data.info.task == "classification"

        # Model: seeded, then (fine-tuning) another run's weights, then the device.
        self.events.emit(RunStarting, phase="model")
        torch.manual_seed(cfg.seed)
        model = self.spec.build()
        if self.init_from is not None:
            moved = load_weights_matching(model, self.init_from)
            if moved.shape_mismatch:
                self.warnings.append("fine-tuning: kept fresh weights where shapes differ: "
                                     + ", ".join(moved.shape_mismatch[:8]))
            if moved.not_in_checkpoint:
                self.warnings.append("fine-tuning: not in the checkpoint, freshly initialized: "
                                     + ", ".join(moved.not_in_checkpoint[:8]))
        model.to(self.device)
        if cfg.channels_last:
            if len(self.spec.input_shape) == 3:
                model.to(memory_format=torch.channels_last)
            else:
                self.warnings.append("channels_last applies to 4-D (image) inputs only; ignored")
        self.model = model
        self.frozen_bn = frozen_batchnorms(model, self.spec) if cfg.freeze_bn_stats else []

        # Only trainable parameters reach the optimizer: frozen ones cannot move, whatever it does.
        groups, self.group_infos = param_groups(model, cfg.optimizer)
        if not groups:
            raise RunSetupError("every parameter is frozen, so there is nothing to train",
                                hint="unfreeze at least one node with parameters")
        # In the model's order, as the training script lists them (the clipping norm sums in this order).
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        self.l1_params = list(groups[0]["params"]) if cfg.optimizer.l1 and groups[0]["name"] != "no_decay" else []
        self.optimizer = make_optimizer(groups, cfg.optimizer)
        self.scheduler = make_scheduler(self.optimizer, cfg.schedule, base_lr=cfg.optimizer.lr,
                                        total_steps=self.total_steps)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")
        self.loss_fn = LossFn(cfg.loss, output_shape=self.spec.output_shape)

        self.best_val = math.inf
        self.bad_epochs = 0
        self.epoch_loss_sum = 0.0  # restored partial-epoch sums when resuming
        self.epoch_correct = 0
        self.epoch_seen = 0
        self.epoch_rng: torch.Tensor | None = None
        if self.resume_from is not None:
            self._restore(self.resume_from)

        self.compiled: nn.Module = model
        if cfg.compile:
            self.compiled = torch.compile(model)  # type: ignore[assignment]
        self.probe = LayerProbe(model, self.spec.node_for_path, with_hooks=not cfg.compile) \
            if cfg.layer_stats_every else None
        # Once an epoch, what each layer makes of one fixed sample (off with the statistics).
        self.outputs = OutputProbe(model, self.spec.node_for_path, self.spec.node_names) \
            if cfg.layer_stats_every else None
        if cfg.compile and cfg.layer_stats_every:
            self.warnings.append("dead-ReLU statistics are off under torch.compile (hooks would recompile)")

        n_total = sum(p.numel() for p in model.parameters())
        n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        self.events.emit(
            RunStarted,
            model=ModelSummary(
                params_total=n_total,
                params_trainable=n_trainable,
                params_frozen=n_total - n_trainable,
                frozen=[n for n, p in model.named_parameters() if not p.requires_grad],
                input_shape=self.spec.input_shape,
                output_shape=self.spec.output_shape,
                frozen_bn=[path for path, _ in self.frozen_bn],
            ),
            param_groups=self.group_infos,
            device=str(self.device),
            device_name=torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else None,
            threads=torch.get_num_threads(),
            precision=self.precision,
            dataset=self.data.info,
            total_steps=self.total_steps,
            steps_per_epoch=self.steps_per_epoch,
            start_step=self.step,
            start_epoch=self.epoch,
        )
        for message in self.warnings:
            self.warn(message)

    def _restore(self, path: str | Path) -> None:
        """Resume: the weights, the optimizer and scheduler, the position and every RNG."""
        load_weights_exact(self.model, path)
        state = read_state(path)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        except (ValueError, KeyError) as e:
            raise RunSetupError(
                f"the checkpoint's optimizer state does not fit this run's configuration ({e})",
                hint="resume with the stopped run's own optimizer and freezing settings, "
                "or start a new run from its weights (fine-tune)",
            ) from e
        if state.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.epoch_rng = state["data_rng"]
        self.best_val = float(state["best_val"])
        self.bad_epochs = int(state["bad_epochs"])
        self.epoch_loss_sum = float(state["epoch_loss_sum"])
        self.epoch_correct = int(state["epoch_correct"])
        self.epoch_seen = int(state["epoch_seen"])
        torch.set_rng_state(state["torch_rng"])
        if self.device.type == "cuda" and state.get("cuda_rng"):
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)

    # --- the loop -------------------------------------------------------------------------------

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def _fit(self) -> RunOutcome:
        cfg = self.cfg
        model, optimizer, scheduler, scaler = self.compiled, self.optimizer, self.scheduler, self.scaler
        loss_fn = self.loss_fn
        buffer = StepBuffer(cfg.step_event_interval_s)
        every = cfg.layer_stats_every
        channels_last = cfg.channels_last and len(self.spec.input_shape) == 3
        finish_reason: Literal["completed", "max_steps", "early_stopping"] = "completed"
        train_loss = val_loss = val_acc = None

        while True:
            if cfg.epochs is not None and self.epoch >= cfg.epochs:
                finish_reason = "completed"
                break
            if self.step >= self.total_steps:
                finish_reason = "max_steps"
                break
            # The shuffling generator's state at the start of the epoch: with the number of
            # batches done, it is all a resume needs to replay the same order.
            if self.epoch_rng is not None:
                self.train_batches.generator.set_state(self.epoch_rng)
            self.epoch_rng = self.train_batches.generator.get_state()
            skip, self.batch_in_epoch = self.batch_in_epoch, 0
            set_train_mode(self.model, self.frozen_bn)
            epoch_started = time.monotonic()
            # Summed on the device (no sync per step), starting from a resumed epoch's partial sums.
            loss_sum = torch.tensor(self.epoch_loss_sum, device=self.device)
            correct = torch.tensor(self.epoch_correct, dtype=torch.long, device=self.device)
            seen = self.epoch_seen
            batch = skip
            for batch, (xb, yb) in enumerate(self.train_batches.epoch(skip), start=skip):
                # Controls, between batches.
                if self.control.pause_requested(self.step):
                    epoch_started += self._pause(buffer)
                if self.control.stop_requested(self.step):
                    self._flush(buffer)
                    self.batch_in_epoch = batch
                    self._keep_epoch_sums(loss_sum, correct, seen)
                    path = self._checkpoint("stop")
                    self.events.emit(RunStopped, step=self.step, epoch=self.epoch, checkpoint=str(path),
                                     reason=self.control.stop_reason())
                    return RunOutcome("stopped", self.step, self.epoch, checkpoint=str(path))

                if channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)  # (B, C, H, W), NHWC in memory
                stats_due = self.probe is not None and (self.step + 1) % every == 0
                if stats_due:
                    self.probe.attach()
                try:
                    optimizer.zero_grad(set_to_none=True)
                    with self._autocast():
                        out = model(xb)  # (B, *output_shape)
                        loss = loss_fn(out, yb)
                    total = loss + cfg.optimizer.l1 * l1_penalty(self.l1_params) if self.l1_params else loss
                    scaler.scale(total).backward()
                    if cfg.optimizer.grad_clip is not None or stats_due:
                        scaler.unscale_(optimizer)  # clip and measure the true gradients (fp16)
                    if cfg.optimizer.grad_clip is not None:
                        torch.nn.utils.clip_grad_norm_(self.trainable, cfg.optimizer.grad_clip)
                    if stats_due:
                        self.probe.after_backward()
                    scaler.step(optimizer)
                    scaler.update()
                    if stats_due:
                        self.probe.after_step()
                finally:
                    if stats_due:
                        self.probe.detach()
                scheduler.step()
                self.step += 1

                bs = len(yb)
                seen += bs
                loss_sum += loss.detach().float() * bs
                if self.classification:
                    correct += loss_fn.correct(out.detach(), yb)
                buffer.add(self.step, loss, bs)
                if buffer.due():
                    self._flush(buffer)
                if stats_due:
                    self.events.emit(LayerStatsEvent, step=self.step, layers=self.probe.collect())
                if self.step >= self.total_steps:
                    break
            self._flush(buffer)

            batches_done = batch + 1
            partial = batches_done < self.steps_per_epoch
            train_loss = loss_sum.item() / max(seen, 1)
            train_acc = correct.item() / max(seen, 1) if self.classification else None
            # A partial epoch's sums go into the final checkpoint, so a longer resumed run
            # reports the whole epoch.
            if partial:
                self._keep_epoch_sums(loss_sum, correct, seen)
            else:
                self._keep_epoch_sums(None, None, 0)
            if not math.isfinite(train_loss):
                raise _LossNotFinite(self.step)
            if not partial:
                self.epoch += 1
                self.epoch_rng = None  # the next epoch continues from the generator as it is
            val_loss, val_acc = self._validate()
            self.events.emit(
                EpochEvent,
                epoch=self.epoch + (1 if partial else 0),
                step=self.step,
                train_loss=train_loss,
                train_accuracy=train_acc,
                val_loss=val_loss,
                val_accuracy=val_acc,
                lr=self._lr(),
                seconds=time.monotonic() - epoch_started,
                partial=partial,
            )
            self._snapshot(epoch=self.epoch + (1 if partial else 0))
            if partial:
                self.batch_in_epoch = batches_done
                finish_reason = "max_steps"
                break
            if cfg.patience is not None and val_loss is not None:
                if val_loss < self.best_val - cfg.min_delta:
                    self.best_val, self.bad_epochs = val_loss, 0
                else:
                    self.bad_epochs += 1
                    if self.bad_epochs >= cfg.patience:
                        finish_reason = "early_stopping"
                        break
            if cfg.checkpoint_every_epochs and self.epoch % cfg.checkpoint_every_epochs == 0:
                self._checkpoint("epoch")

        path = self._checkpoint("final")
        if finish_reason == "completed" and cfg.epochs is not None and self.epoch < cfg.epochs:
            finish_reason = "max_steps"
        self.events.emit(
            RunFinished,
            step=self.step,
            epoch=self.epoch,
            reason=finish_reason,
            train_loss=train_loss,
            val_loss=val_loss,
            val_accuracy=val_acc,
            checkpoint=str(path),
            seconds=time.monotonic() - self.started,
        )
        return RunOutcome("finished", self.step, self.epoch, checkpoint=str(path), reason=finish_reason)

    def _lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _flush(self, buffer: StepBuffer) -> None:
        if not len(buffer):
            return
        points, rate = buffer.drain()
        self.events.emit(StepEvent, step=points[-1][0], epoch=self.epoch + 1, points=points, lr=self._lr(),
                         samples_per_s=rate)
        bad = next((s for s, v in points if not math.isfinite(v)), None)
        if bad is not None:
            raise _LossNotFinite(bad)

    def _pause(self, buffer: StepBuffer) -> float:
        """Block until resumed or stopped; returns the seconds spent paused."""
        self._flush(buffer)
        paused_at = time.monotonic()
        self.events.emit(RunPaused, step=self.step)
        while self.control.pause_requested(self.step) and not self.control.stop_requested(self.step):
            self.control.wait_while_paused(0.2)
        self.events.emit(RunResumed, step=self.step)
        buffer.reset_clock()
        return time.monotonic() - paused_at

    def _validate(self) -> tuple[float | None, float | None]:
        if self.val_batches is None:
            return None, None
        model = self.compiled
        model.eval()
        try:
            n = 0
            with torch.inference_mode(), self._autocast():
                loss_sum = torch.zeros((), device=self.device)
                correct = torch.zeros((), dtype=torch.long, device=self.device)
                for xb, yb in self.val_batches.epoch():
                    out = model(xb)
                    loss_sum += self.loss_fn(out, yb).float() * len(yb)
                    if self.classification:
                        correct += self.loss_fn.correct(out, yb)
                    n += len(yb)
            val_loss = loss_sum.item() / max(n, 1)
            val_acc = correct.item() / max(n, 1) if self.classification else None
            return val_loss, val_acc
        finally:
            set_train_mode(self.model, self.frozen_bn)

    def _snapshot(self, *, epoch: int) -> None:
        """Every layer's output on the first validation sample (the first training sample when
        there is no validation split), and its weights: one forward pass of one sample."""
        if self.outputs is None:
            return
        split: Literal["val", "train"] = "val" if len(self.data.x_val) else "train"
        x = (self.data.x_val if split == "val" else self.data.x_train)[:1].to(self.device)  # (1, *input_shape)
        self.model.eval()  # the eager model: hooks do not fire inside a compiled graph
        try:
            with torch.inference_mode():
                layers = self.outputs.take(self.model, x)
        except Exception as e:  # a look inside must never end the run it looks at
            log.exception("run %s: layer snapshot failed", self.events.run_id)
            self.outputs = None
            self.warn(f"layer snapshots are off for the rest of this run: {type(e).__name__}: {e}")
            return
        finally:
            set_train_mode(self.model, self.frozen_bn)
        self.events.emit(LayerSnapshotEvent, step=self.step, epoch=epoch, split=split, sample=0, layers=layers)

    def _keep_epoch_sums(self, loss_sum: torch.Tensor | None, correct: torch.Tensor | None, seen: int) -> None:
        """The running sums of the current epoch (all zero: a new epoch starts)."""
        self.epoch_loss_sum = loss_sum.item() if loss_sum is not None else 0.0
        self.epoch_correct = int(correct.item()) if correct is not None else 0
        self.epoch_seen = seen

    def _checkpoint(self, reason: Literal["epoch", "final", "stop"]) -> Path:
        directory = self.run_dir / "checkpoints" / f"step-{self.step:07d}"
        state: dict[str, Any] = {
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "data_rng": self.epoch_rng if self.epoch_rng is not None else self.train_batches.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
            "best_val": self.best_val,
            "bad_epochs": self.bad_epochs,
            "epoch_loss_sum": self.epoch_loss_sum,
            "epoch_correct": self.epoch_correct,
            "epoch_seen": self.epoch_seen,
        }
        meta = {
            "run_id": self.events.run_id,
            "step": self.step,
            "epoch": self.epoch,
            "reason": reason,
            "graph": self.spec.graph,
            "config": self.cfg.model_dump(mode="json"),
        }
        save_checkpoint(directory, model=self.model, state=state, meta=meta)
        self.events.emit(CheckpointEvent, path=str(directory), step=self.step, epoch=self.epoch, reason=reason)
        return directory
