"""GPU check: the GPU-only tests, then a bf16 training benchmark (samples/s and model FLOP utilisation).

    python benchmarks/gpu_check.py                      # tests + benchmark on cuda:0
    python benchmarks/gpu_check.py --skip-tests --steps 200 --peak-tflops 989

Without CUDA it says so and exits with status 2. The benchmark trains LayerLab graphs built by
``layerlab.build`` (a wide MLP, whose time is all matrix multiplies, and the resnet_mini
example) with bf16 autocast and a fused AdamW, and reports:

- samples/s, timed with CUDA events after a warm-up;
- model FLOP utilisation (MFU): 6 x MACs per sample (forward 2, backward 4) x samples/s,
  divided by the GPU's dense bf16 peak. MACs come from LayerLab's own cost analysis.

Then the same wide MLP goes through the LayerLab trainer (``precision: bf16``), whose step events
report samples/s, so the product path can be compared with the bare loop. docs/performance.md
says how to record the figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# Dense (no sparsity) bf16 tensor-core peaks, TFLOP/s, by a substring of the device name.
PEAK_BF16_TFLOPS: list[tuple[str, float]] = [
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100", 989.0),
    ("GH200", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("L4", 121.0),
    ("A10G", 70.0),
    ("A10", 125.0),
    ("RTX 4090", 165.0),
    ("RTX 3090", 71.0),
]


def wide_mlp(width: int, depth: int) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [{"id": "x", "op": "Input", "params": {"shape": [width]}}]
    for i in range(depth):
        nodes.append({"id": f"fc{i}", "op": "Linear", "params": {"out_features": width}})
        nodes.append({"id": f"act{i}", "op": "GELU", "params": {}})
    nodes.append({"id": "head", "op": "Linear", "params": {"out_features": 10}})
    nodes.append({"id": "y", "op": "Output", "params": {}})
    ids = [n["id"] for n in nodes]
    return {"format": "layerlab.graph/1", "name": f"mlp-{width}x{depth}", "nodes": nodes,
            "edges": [{"source": a, "target": b} for a, b in zip(ids, ids[1:])]}


def peak_tflops(name: str, override: float | None) -> float | None:
    if override is not None:
        return override
    return next((peak for key, peak in PEAK_BF16_TFLOPS if key in name), None)


def run_gpu_tests() -> int:
    print("== pytest -m gpu", flush=True)
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider"]
    return subprocess.run(cmd, cwd=ROOT, check=False).returncode


def bench_loop(graph: dict[str, Any], *, batch_size: int, steps: int, warmup: int, channels_last: bool,
               compile_model: bool) -> dict[str, Any]:
    """Bare training loop: bf16 autocast, fused AdamW, synthetic data already on the GPU."""
    import torch

    import layerlab

    report = layerlab.infer(graph)
    if not report.valid:
        raise SystemExit(f"{graph.get('name')}: invalid graph: {report.errors[0].message}")
    device = torch.device("cuda")
    model = layerlab.build(graph, seed=0).to(device)
    x = torch.randn(batch_size, *report.input_shape, device=device)  # (B, *input_shape)
    if channels_last and x.dim() == 4:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, report.output_shape[0], (batch_size,), device=device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    step_fn = torch.compile(model) if compile_model else model

    def step() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(step_fn(x), y)
        loss.backward()
        optimizer.step()
        return loss

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(steps):
        loss = step()
    end.record()
    torch.cuda.synchronize()
    seconds = start.elapsed_time(end) / 1000.0
    samples_per_s = steps * batch_size / seconds
    macs = report.totals.macs  # per sample
    return {
        "model": graph.get("name", "graph"),
        "params": report.totals.params,
        "macs_per_sample": macs,
        "batch_size": batch_size,
        "steps": steps,
        "ms_per_step": 1000.0 * seconds / steps,
        "samples_per_s": samples_per_s,
        "train_tflops": 6.0 * macs * samples_per_s / 1e12,
        "final_loss": float(loss.item()),
        "max_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
    }


def bench_trainer(graph: dict[str, Any], *, batch_size: int, steps: int, run_dir: Path,
                  device: str = "cuda") -> dict[str, Any]:
    """The same model through the LayerLab trainer, on an uploaded .npz of random data, reading
    samples/s from its step events."""
    import numpy as np

    from layerlab.train import train

    width = graph["nodes"][0]["params"]["shape"][0]
    rng = np.random.default_rng(0)
    n = batch_size * 2  # two batches per epoch: the data stays small, the steps stay real
    data = run_dir / "bench.npz"
    np.savez(data, x=rng.standard_normal((n, width), dtype=np.float32), y=rng.integers(0, 10, n))
    rates: list[float] = []
    ends: list[Any] = []

    def emit(event: Any) -> None:
        if event.type == "step":
            rates.append(event.samples_per_s)
        elif event.type in ("run_finished", "run_failed", "run_stopped"):
            ends.append(event)

    config = {
        "data": {"dataset": "upload", "upload": {"path": str(data)}, "batch_size": batch_size, "val_split": 0.0},
        "optimizer": {"name": "adamw", "lr": 1e-4},
        "max_steps": steps,
        "epochs": None,
        "device": device,
        "precision": "bf16" if device.startswith("cuda") else "fp32",
        "layer_stats_every": 0,
        "step_event_interval_s": 0.2,
    }
    started = time.perf_counter()
    train(graph, config, emit=emit, run_id="bench", run_dir=run_dir / "run")
    wall = time.perf_counter() - started
    end = ends[-1] if ends else None
    steady = rates[len(rates) // 2 :] or rates
    return {
        "outcome": end.type if end else "none",
        "reason": getattr(end, "reason", None),
        "samples_per_s_steady": sum(steady) / len(steady) if steady else None,
        "wall_s": wall,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-tests", action="store_true", help="do not run pytest -m gpu")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--width", type=int, default=8192, help="wide MLP: features per layer")
    parser.add_argument("--depth", type=int, default=8, help="wide MLP: hidden layers")
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--cnn-batch-size", type=int, default=1024)
    parser.add_argument("--compile", action="store_true", help="torch.compile the bare loop's model")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the GPU's dense bf16 peak")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    try:
        import torch
    except ImportError:
        print("gpu_check: torch is not installed; run `make install` first", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print(
            f"gpu_check: no CUDA device here (torch {torch.__version__}, built for CUDA {torch.version.cuda}); "
            "nothing to check. On a GPU machine install a CUDA torch, e.g. "
            "`make install TORCH_SPEC=\"torch --index-url https://download.pytorch.org/whl/cu128\"`.",
            file=sys.stderr,
        )
        return 2

    name = torch.cuda.get_device_name(0)
    peak = peak_tflops(name, args.peak_tflops)
    print(f"== {name}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"bf16 peak {f'{peak:.0f} TFLOP/s' if peak else 'unknown (pass --peak-tflops)'}", flush=True)
    tests_rc = 0 if args.skip_tests else run_gpu_tests()

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    results: dict[str, Any] = {"device": name, "torch": torch.__version__, "peak_bf16_tflops": peak, "loops": []}
    graphs = [
        (wide_mlp(args.width, args.depth), args.batch_size),
        (json.loads((ROOT / "examples" / "resnet_mini.json").read_text()), args.cnn_batch_size),
    ]
    print("== bare bf16 training loop")
    print(f"{'model':<16} {'batch':>6} {'ms/step':>9} {'samples/s':>12} {'TFLOP/s':>9} {'MFU':>7} {'mem GiB':>8}")
    for graph, batch_size in graphs:
        graph.setdefault("name", "graph")
        r = bench_loop(graph, batch_size=batch_size, steps=args.steps, warmup=args.warmup,
                       channels_last=True, compile_model=args.compile)
        r["mfu"] = r["train_tflops"] / peak if peak else None
        results["loops"].append(r)
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a"
        print(f"{r['model'][:16]:<16} {batch_size:>6} {r['ms_per_step']:>9.2f} {r['samples_per_s']:>12,.0f} "
              f"{r['train_tflops']:>9.1f} {mfu:>7} {r['max_memory_gib']:>8.2f}", flush=True)
        torch.cuda.empty_cache()

    print("== the same wide MLP through the LayerLab trainer (precision bf16)")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        t = bench_trainer(wide_mlp(args.width, args.depth), batch_size=args.batch_size, steps=args.steps,
                          run_dir=Path(tmp))
    results["trainer"] = t
    rate = t["samples_per_s_steady"]
    print(f"outcome {t['outcome']}" + (f" ({t['reason']})" if t["reason"] else "")
          + (f", {rate:,.0f} samples/s steady" if rate else "") + f", {t['wall_s']:.1f} s wall")

    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    if tests_rc != 0:
        print(f"gpu_check: pytest -m gpu failed (exit status {tests_rc})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
