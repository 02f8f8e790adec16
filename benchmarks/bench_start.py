"""Start-up benchmark: Train pressed → first step loss received over the websocket, on a warm server.

Starts a real server (uvicorn on loopback, a fresh data dir with the demo project), waits until its
warm worker is ready, then presses Train on the demo (a small CNN on the 8×8 digits) ``--runs``
times, each after the previous run has ended and a fresh worker is ready again. Each press is timed
from just before ``POST /api/runs`` to the receipt of the first ``step`` event on the run's
websocket. The baseline, measured in the same run, is a cold ``python -c "import torch"``.
Goal: median first step ≤ 0.1× the cold import.

    .venv/bin/python benchmarks/bench_start.py [--runs 5] [--epochs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
SERVER = """
import sys, uvicorn
from layerlab.api import Settings, create_app
uvicorn.run(create_app(Settings(data_dir=sys.argv[1])), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""
GOAL = 0.1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cold_import_torch(repeats: int) -> float:
    """Median seconds of a fresh interpreter importing torch."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch"], check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def wait_until(predicate, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


async def press_train(base: str, project: str, epochs: int) -> tuple[float, float]:
    """(seconds to the first step event, seconds to the run's end), from the request."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        started = time.perf_counter()
        r = await client.post("/api/runs", json={"project_id": project, "config": {"epochs": epochs}})
        r.raise_for_status()
        run_id = r.json()["id"]
        first = None
        async with connect(f"ws{base.removeprefix('http')}/api/runs/{run_id}/events") as ws:
            async for text in ws:
                event = json.loads(text)
                if event["type"] == "step" and first is None:
                    first = time.perf_counter() - started
                if event["type"] in ("run_finished", "run_failed", "run_stopped"):
                    if event["type"] != "run_finished":
                        raise SystemExit(f"the run ended with {event}")
                    break
        return first or float("nan"), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()

    cold = cold_import_torch(3)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "backend")}
        server = subprocess.Popen([sys.executable, "-c", SERVER, data, str(port)], env=env)
        try:
            http = httpx.Client(base_url=base, timeout=10)
            wait_until(lambda: http.get("/api/projects").status_code == 200, 60, "the server")
            project = http.get("/api/projects").json()[0]["id"]

            def ready() -> bool:
                return http.get("/api/runs/workers").json()["ready"] >= 1

            firsts, totals = [], []
            for i in range(args.runs + 1):  # the first press warms the server's own code paths
                wait_until(ready, 120, "a warm worker")
                first, total = asyncio.run(press_train(base, project, args.epochs))
                if i:
                    firsts.append(first)
                    totals.append(total)
                print(f"  run {i}{' (warm-up, not counted)' if not i else ''}: first step {first * 1000:.0f} ms, "
                      f"finished in {total:.2f} s")
        finally:
            server.terminate()
            server.wait(timeout=30)
    median_first = statistics.median(firsts)
    ratio = median_first / cold
    print(f"cold `python -c 'import torch'` (median of 3): {cold * 1000:.0f} ms")
    print(f"Train → first step loss over the websocket (median of {args.runs}): {median_first * 1000:.0f} ms "
          f"(run finished in {statistics.median(totals):.2f} s)")
    print(f"ratio: {ratio:.3f}× the cold import (goal ≤ {GOAL}×: {'met' if ratio <= GOAL else 'NOT met'})")


if __name__ == "__main__":
    main()
