"""Streaming benchmark: a real uvicorn server on loopback, one training run, N websocket watchers.

Checks that every watcher receives every event (in order, no gaps), and prints the delivery
latency (event creation in the worker → receipt by a client, p50/p99), the trainer's slowdown
with N watchers against none, and the latency of /api/graphs/report on a 300-node graph.

    .venv/bin/python benchmarks/bench_stream.py [--clients 100] [--epochs 8]
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
from typing import Any

import httpx
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
SERVER = """
import sys, uvicorn
from layerlab.api import Settings, create_app
app = create_app(Settings(data_dir=sys.argv[1], ws_queue_size=100_000))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def chain_graph(n_nodes: int) -> dict[str, Any]:
    """Input → (Linear, ReLU) × k → Linear → Output, n_nodes in all."""
    nodes: list[dict[str, Any]] = [{"id": "inp", "op": "Input", "params": {"shape": [64]}}]
    for i in range((n_nodes - 3) // 2):
        nodes.append({"id": f"fc{i}", "op": "Linear", "params": {"out_features": 64}})
        nodes.append({"id": f"act{i}", "op": "ReLU"})
    while len(nodes) < n_nodes - 2:
        nodes.append({"id": f"extra{len(nodes)}", "op": "ReLU"})
    nodes.append({"id": "head", "op": "Linear", "params": {"out_features": 10}})
    nodes.append({"id": "out", "op": "Output"})
    edges = [{"source": a["id"], "target": b["id"]} for a, b in zip(nodes, nodes[1:])]
    return {"format": "layerlab.graph/1", "nodes": nodes, "edges": edges}


async def watch(base_ws: str, run_id: str, received: list[tuple[int, float, float]],
                connected: list[float]) -> None:
    async with connect(f"{base_ws}/api/runs/{run_id}/events?after=-1", max_size=None) as ws:
        connected.append(time.time())
        async for text in ws:
            now = time.time()
            event = json.loads(text)
            received.append((event["seq"], event["time"], now))
            if event["type"] in ("run_finished", "run_failed", "run_stopped"):
                return


async def wait_done(http: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    while True:
        run = (await http.get(f"/api/runs/{run_id}")).json()
        if run["status"] in ("finished", "failed", "stopped"):
            return run
        await asyncio.sleep(0.2)


async def final_event(http: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    page = (await http.get(f"/api/runs/{run_id}/events/history", params={"after": -1, "limit": 10000})).json()
    return page["events"][-1]


async def one_run(http: httpx.AsyncClient, base_ws: str, project: str, config: dict[str, Any],
                  clients: int) -> tuple[dict[str, Any], list[list[tuple[int, float, float]]], float]:
    """Returns the terminal event, each client's (seq, sent, received) log, and when the last
    client had connected."""
    run_id = (await http.post("/api/runs", json={"project_id": project, "config": config})).json()["id"]
    logs: list[list[tuple[int, float, float]]] = [[] for _ in range(clients)]
    connected: list[float] = []
    if clients:
        await asyncio.wait_for(asyncio.gather(*(watch(base_ws, run_id, log, connected) for log in logs)),
                               timeout=600)
    await wait_done(http, run_id)
    return await final_event(http, run_id), logs, max(connected, default=0.0)


async def main(args: argparse.Namespace) -> None:
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="layerlab-bench-")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "backend")}
    server = subprocess.Popen([sys.executable, "-c", SERVER, data_dir, str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            for _ in range(300):
                try:
                    if (await http.get("/api/projects")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            project = (await http.get("/api/projects")).json()[0]["id"]
            config = {"epochs": args.epochs, "layer_stats_every": 20,
                      "data": {"dataset": "digits", "batch_size": 32}}

            # Warm-up (first worker start pays for imports), then the baseline without watchers.
            await one_run(http, "", project, {**config, "max_steps": 2}, 0)
            base_end, _, _ = await one_run(http, "", project, config, 0)
            end, logs, all_connected = await one_run(http, f"ws://127.0.0.1:{port}", project, config, args.clients)

            expected = list(range(end["seq"] + 1))
            complete = sum(1 for log in logs if [seq for seq, _, _ in log] == expected)
            # Live deliveries only: an event made before every client was connected was replayed.
            latencies = [(now - sent) * 1000 for log in logs for _, sent, now in log if sent > all_connected]
            replayed = sum(1 for log in logs for _, sent, _ in log if sent <= all_connected)
            print(f"events per run: {len(expected)}; clients receiving every event in order: "
                  f"{complete}/{args.clients}")
            print(f"live delivery latency (worker emit -> client receive) over {len(latencies)} deliveries: "
                  f"p50 {percentile(latencies, 0.5):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms "
                  f"({replayed} deliveries were replays while clients connected)")
            slowdown = end["seconds"] / base_end["seconds"] - 1
            print(f"trainer: {base_end['seconds']:.2f} s without watchers, {end['seconds']:.2f} s with "
                  f"{args.clients} ({slowdown:+.1%})")

            graph = chain_graph(300)
            timings = []
            for _ in range(args.report_repeats):
                t = time.perf_counter()
                r = await http.post("/api/graphs/report", json=graph)
                timings.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200 and r.json()["valid"], r.text[:300]
            print(f"/api/graphs/report, {len(graph['nodes'])} nodes: p50 {statistics.median(timings):.1f} ms, "
                  f"p99 {percentile(timings, 0.99):.1f} ms")
            if complete != args.clients:
                raise SystemExit("some clients missed events")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--report-repeats", type=int, default=50)
    asyncio.run(main(parser.parse_args()))
