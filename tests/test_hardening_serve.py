"""The server process under load: CPU work runs in a bounded pool of worker processes, and
SIGTERM ends a real `layerlab serve` within 5 s whatever is in flight."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from layerlab.api.demo import demo_graph
from layerlab.offload import CpuPool, ServerBusyError


def test_the_pool_refuses_work_past_its_line_and_stops_without_waiting() -> None:
    import asyncio

    pool = CpuPool(1, max_pending=1)
    pool.start()
    try:
        async def three_at_once() -> list[object]:
            return await asyncio.gather(*(pool.run(time.sleep, 0.5) for _ in range(3)), return_exceptions=True)

        results = asyncio.run(three_at_once())
        assert results.count(None) == 2  # one ran, one waited for it
        [busy] = [r for r in results if r is not None]
        assert isinstance(busy, ServerBusyError) and busy.status_code == 503
        future = pool._executor().submit(time.sleep, 60)  # a job that will not end by itself
        time.sleep(0.5)
        workers = list(pool._executor()._processes.values())  # type: ignore[union-attr]
        assert workers and all(p.is_alive() for p in workers)
    finally:
        t0 = time.perf_counter()
        pool.shutdown()
        took = time.perf_counter() - t0
    assert took < 3
    assert not any(p.is_alive() for p in workers)
    assert future.done()  # settled before shutdown returned: the killed job failed, it does not hang
    assert isinstance(future.exception(timeout=0), BrokenProcessPool)


def test_a_run_preflight_crosses_to_a_worker_process_as_plain_data() -> None:
    """What ``POST /api/runs`` and ``/api/runs/check`` ask of the pool: graph JSON and the config as
    the run's worker gets it in; the problems, the model spec and its state_dict shapes out."""
    import torch

    from layerlab.api.runs import available_memory, preflight

    config = {"data": {"dataset": "digits"}, "device": "cpu", "seed": 3}
    pool = CpuPool(1, max_pending=0)
    pool.start()
    try:
        ok = pool.call(preflight, demo_graph(), config, available_memory("cpu"), True, True)
        iris = pool.call(preflight, demo_graph(), {**config, "data": {"dataset": "iris"}}, ("this machine", None),
                         False, False)
        no_room = pool.call(preflight, demo_graph(), config, ("this machine", 1024), False, False)
    finally:
        pool.shutdown()
    assert ok.errors == []
    model = ok.spec.build()  # the spec came back whole: it builds the model the run would train
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == ok.state_shapes
    assert model(torch.zeros(2, *ok.spec.input_shape)).shape == (2, *ok.spec.output_shape)
    [problem] = iris.errors
    assert problem.field == "config.data" and "gives samples of shape (4)" in problem.message
    assert iris.spec is None and iris.state_shapes is None
    [memory] = no_room.errors
    assert memory.field == "config.data.batch_size" and "this machine has 1.0 KiB available" in memory.message


def test_a_report_worker_never_traces_its_memo_in_a_collection() -> None:
    """A report worker's memo holds hundreds of thousands of objects once full; a full collection
    that traced them all paused the worker for 100 ms and more every few hundred reports."""
    from helpers import chain, gc_state
    from layerlab import offload

    pool = CpuPool(1, max_pending=0)
    pool.start()
    try:
        before = pool.call(gc_state)
        for k in range(20):  # 20 graphs of 300 layers: 6,000 nodes in the memo, each a few objects
            layers = [("Linear", {"out_features": 32 + k}), ("ReLU", {})] * 150
            body = json.dumps(chain([16], *layers)).encode()
            assert json.loads(pool.call(offload.report_json, body, 32, "adam"))["valid"]
        after = pool.call(gc_state)
    finally:
        pool.shutdown()
    assert after["frozen"] > before["frozen"] + 20 * 300 * 3  # what the memo holds: never traced
    assert after["traced"] < 2_000  # what a collection would trace: the probe's own few objects


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        for child in map(int, text.split()):
            found |= {child} | children(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] if Path(f"/proc/{pid}").exists() else "X"
    return state not in ("Z", "X")


@pytest.mark.slow
def test_sigterm_stops_the_server_within_5_s_whatever_is_in_flight(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = os.environ | {"LAYERLAB_DATA_DIR": str(tmp_path), "LAYERLAB_TRAIN_THREADS": "1"}
    server = subprocess.Popen([sys.executable, "-m", "layerlab.cli", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"{base}/api/catalog", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.time() < deadline, "the server did not start"
            time.sleep(0.2)
        http = httpx.Client(base_url=base, timeout=30)
        # 1. a training run, streaming to a websocket
        project = http.get("/api/projects").json()[0]["id"]
        run = http.post("/api/runs", json={"project_id": project, "config": {
            "epochs": 10_000, "data": {"dataset": "digits", "batch_size": 16}}})
        assert run.status_code == 202, run.text
        run_id = run.json()["id"]
        ws = connect(f"ws://127.0.0.1:{port}/api/runs/{run_id}/events?after=-1")
        ws.recv(timeout=60)
        while http.get(f"/api/runs/{run_id}").json()["status"] != "running":
            time.sleep(0.1)
        # 2. an upload whose body never finishes arriving
        upload = socket.create_connection(("127.0.0.1", port))
        upload.sendall(b"POST /api/datasets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 50000000\r\n"
                       b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n")
        # 3. reports as fast as four clients can ask
        def reports() -> None:
            with httpx.Client(base_url=base, timeout=30) as c:
                while not stop.is_set():
                    try:
                        c.post("/api/graphs/report", json=demo_graph())
                    except httpx.HTTPError:
                        return
        threads = [threading.Thread(target=reports, daemon=True) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        spawned = {pid: Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:120] for pid in children(server.pid)}
        assert spawned, "the run and the report workers are processes"

        t0 = time.perf_counter()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        took = time.perf_counter() - t0
        assert took < 5.0, f"SIGTERM took {took:.1f} s\n{server.stdout.read()}"  # type: ignore[union-attr]
        for _ in range(40):
            left = {pid: cmd for pid, cmd in spawned.items() if alive(pid)}
            if not left:
                break
            time.sleep(0.1)
        assert not left, f"no worker outlives the server: {left}"
        upload.close()
        ws.close()
    finally:
        stop.set()
        if server.poll() is None:
            server.kill()
            server.wait()
