"""benchmarks/gpu_check.py: its pieces work on the CPU, and without CUDA it says so and exits 2."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import layerlab

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_it_exits_with_a_clear_message() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "no CUDA device" in result.stderr
    assert "TORCH_SPEC" in result.stderr, "it says how to get a CUDA torch"


def test_benchmark_graph_and_flop_count() -> None:
    gpu_check = _load()
    graph = gpu_check.wide_mlp(64, 2)
    report = layerlab.infer(graph)
    assert report.valid
    assert report.totals.macs == 64 * 64 * 2 + 64 * 10  # the MFU numerator counts matmuls only
    assert layerlab.build(graph)(torch.randn(3, 64)).shape == (3, 10)
    assert gpu_check.peak_tflops("NVIDIA H100 PCIe", None) == 756.0
    assert gpu_check.peak_tflops("NVIDIA H100 80GB HBM3", None) == 989.0
    assert gpu_check.peak_tflops("Some Future GPU", None) is None
    assert gpu_check.peak_tflops("Some Future GPU", 123.0) == 123.0


def test_trainer_benchmark_path_runs_on_cpu(tmp_path: Path) -> None:
    gpu_check = _load()
    result = gpu_check.bench_trainer(gpu_check.wide_mlp(32, 1), batch_size=16, steps=6, run_dir=tmp_path,
                                     device="cpu")
    assert result["outcome"] == "run_finished", result
    assert result["samples_per_s_steady"] > 0
