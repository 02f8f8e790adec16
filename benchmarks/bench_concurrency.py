"""Light requests under heavy load: GET /api/catalog latency while 20 clients keep asking for
reports on a 300-node graph (or, with ``--load check``, for run checks of it: analysis, memory
estimate, dataset loaded and checked against the graph), against the same server with no load
(measured in the same run).

A real uvicorn server in its own process on loopback; the catalog is timed from a process of its
own, so the load generator's own work does not count. The goal: catalog p99 ≤ 50 ms under load.

    .venv/bin/python benchmarks/bench_concurrency.py [--load report|check] [--heavy 20] [--samples 200] [--nodes 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_stream import chain_graph, free_port, percentile  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SERVER = """
import sys, uvicorn
from layerlab.api import Settings, create_app
uvicorn.run(create_app(Settings(data_dir=sys.argv[1], demo=False)), host="127.0.0.1", port=int(sys.argv[2]),
            log_level="warning")
"""


async def light_latencies(http: httpx.AsyncClient, samples: int) -> list[float]:
    """Sequential GET /api/catalog, one every 10 ms, in milliseconds."""
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        r = await http.get("/api/catalog")
        out.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200
        await asyncio.sleep(0.01)
    return out


def probe(base: str, samples: int) -> list[float]:
    """Catalog latencies measured by a separate process."""
    out = subprocess.run([sys.executable, __file__, "--probe", base, "--samples", str(samples)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


async def run_probe(base: str, samples: int) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        await light_latencies(http, 20)  # warm-up
        print(json.dumps(await light_latencies(http, samples)))


# What each heavy client asks, and the answer it must get.
LOADS = {"report": ("/api/graphs/report", b'"valid":true'), "check": ("/api/runs/check", b'"ok":true')}


def heavy_body(load: str, nodes: int) -> bytes:
    """The report's body is the chain graph; a run check sends it with a run config whose dataset
    fits it (wine: 13 features, 3 classes), so every check goes all the way through."""
    g = chain_graph(nodes)
    if load == "report":
        return json.dumps(g).encode()
    g["nodes"][0]["params"]["shape"] = [13]
    g["nodes"][-2]["params"]["out_features"] = 3
    return json.dumps({"graph": g, "config": {"data": {"dataset": "wine"}, "device": "cpu"}}).encode()


async def heavy_client(http: httpx.AsyncClient, load: str, body: bytes, stop: asyncio.Event,
                       done: list[float]) -> None:
    path, ok = LOADS[load]
    headers = {"content-type": "application/json"}
    while not stop.is_set():
        t0 = time.perf_counter()
        r = await http.post(path, content=body, headers=headers)
        assert r.status_code == 200 and ok in r.content, r.text[:300]
        done.append((time.perf_counter() - t0) * 1000)


async def measure(base: str, *, load: str, heavy: int, samples: int, nodes: int) -> None:
    body = heavy_body(load, nodes)
    path, ok = LOADS[load]
    limits = httpx.Limits(max_connections=heavy + 5)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as loaded:
        for _ in range(3):  # warm the workers
            r = await loaded.post(path, content=body, headers={"content-type": "application/json"})
            assert r.status_code == 200 and ok in r.content, r.text[:300]
        alone = r.elapsed.total_seconds() * 1000
        baseline = await asyncio.to_thread(probe, base, samples)
        stop = asyncio.Event()
        reports: list[float] = []
        workers = [asyncio.create_task(heavy_client(loaded, load, body, stop, reports)) for _ in range(heavy)]
        await asyncio.sleep(1.0)  # let the load build up
        started = time.perf_counter()
        under_load = await asyncio.to_thread(probe, base, samples)
        elapsed = time.perf_counter() - started
        stop.set()
        await asyncio.gather(*workers)
    b50, b99 = statistics.median(baseline), percentile(baseline, 0.99)
    l50, l99 = statistics.median(under_load), percentile(under_load, 0.99)
    print(f"POST {path} on {nodes} nodes alone: {alone:.0f} ms; under load "
          f"{len(reports) / elapsed:.1f} {load}s/s, p50 {statistics.median(reports):.0f} ms")
    print(f"GET /api/catalog, no load:          p50 {b50:6.1f} ms   p99 {b99:6.1f} ms")
    print(f"GET /api/catalog, {heavy} heavy clients: p50 {l50:6.1f} ms   p99 {l99:6.1f} ms")
    print(f"ratio under load / no load: p50 {l50 / b50:.1f}×, p99 {l99 / b99:.1f}×")
    print(f"goal p99 ≤ 50 ms under load: {'met' if l99 <= 50 else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", choices=sorted(LOADS), default="report", help="what the heavy clients ask")
    parser.add_argument("--heavy", type=int, default=20, help="concurrent heavy clients")
    parser.add_argument("--samples", type=int, default=200, help="catalog requests measured per phase")
    parser.add_argument("--nodes", type=int, default=300)
    parser.add_argument("--probe", metavar="URL", help=argparse.SUPPRESS)  # the measuring process
    args = parser.parse_args()
    if args.probe:
        asyncio.run(run_probe(args.probe, args.samples))
        return
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = os.environ | {"PYTHONPATH": str(ROOT / "backend")}
        server = subprocess.Popen([sys.executable, "-c", SERVER, data, str(port)], env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.time() + 60
            while True:
                try:
                    httpx.get(f"{base}/api/catalog", timeout=1)
                    break
                except httpx.TransportError:
                    if time.time() > deadline or server.poll() is not None:
                        raise SystemExit("the server did not start") from None
                    time.sleep(0.2)
            asyncio.run(measure(base, load=args.load, heavy=args.heavy, samples=args.samples, nodes=args.nodes))
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
