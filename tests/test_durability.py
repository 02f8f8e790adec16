"""A run's events survive its server: real `layerlab serve` processes, killed and restarted.

SIGKILL mid-run: the worker notices, stops at the next batch with a checkpoint, and exits; the
next server on the same data dir shows the run stopped (interrupted), replays every event a client
had seen with the same seq, reuses no seq, and Continue goes on from the checkpoint. Ctrl+C
(SIGINT to the whole process group, as a terminal sends it) stops the run gracefully too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from layerlab.train.events import RunLog

TIMEOUT = 60.0
LONG = {"epochs": 500, "layer_stats_every": 0}  # far longer than the test: it is always cut short


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, data: Path) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "layerlab.cli", "serve", "--port", str(self.port), "--data-dir", str(data)],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.http = httpx.Client(base_url=self.base, timeout=30)
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                if self.http.get("/api/projects").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)

    def events(self, run_id: str, *, after: int = -1, until: Any = None) -> list[dict[str, Any]]:
        """Events from the websocket until ``until(events)`` holds or the server closes the socket."""
        out: list[dict[str, Any]] = []
        with connect(f"ws://127.0.0.1:{self.port}/api/runs/{run_id}/events?after={after}") as ws:
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                try:
                    out.append(json.loads(ws.recv(timeout=TIMEOUT)))
                except Exception:  # closed: the run is over and everything was sent
                    return out
                if until is not None and until(out):
                    return out
        raise AssertionError(f"timed out; got {[e['type'] for e in out]}")

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)


def _steps(n: int) -> Any:
    return lambda events: sum(e["type"] == "step" for e in events) >= n


def _wait_gone(pid: int, *, within: float = TIMEOUT) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":  # exited, waiting to be reaped
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} is still running")


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``, read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])  # after "pid (comm) state"
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        if ppid == pid:
            found.append(int(stat.parent.name))
    return found


def _start(server: Server) -> str:
    project = server.http.get("/api/projects").json()[0]["id"]  # the demo: a small CNN on digits
    r = server.http.post("/api/runs", json={"project_id": project, "config": LONG})
    assert r.status_code == 202, r.text
    return r.json()["id"]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_sigkill_mid_run_loses_no_event_and_reuses_no_seq(data: Path) -> None:
    server = Server(data)
    try:
        run_id = _start(server)
        seen = server.events(run_id, until=_steps(3))
        worker = RunLog(data / "runs" / run_id).holder_pid()
        assert worker is not None
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=10)
    finally:
        server.close()
    _wait_gone(worker)  # it saw its server die, checkpointed and left
    logged = RunLog(data / "runs" / run_id).read()
    assert logged[-1].type == "run_stopped" and logged[-1].reason == "interrupted"

    server = Server(data)
    try:
        run = server.http.get(f"/api/runs/{run_id}").json()
        assert run["status"] == "stopped" and run["has_checkpoint"], run
        replay = server.events(run_id)  # closes after the replay: the run is over
        assert [e["seq"] for e in replay] == list(range(len(replay))), "no gap, no seq twice"
        by_seq = {e["seq"]: e for e in replay}
        for e in seen:  # every event a client had is still there, unchanged
            assert by_seq[e["seq"]]["type"] == e["type"] and by_seq[e["seq"]].get("step") == e.get("step")
        stopped = replay[-1]
        assert stopped["type"] == "run_stopped" and stopped["reason"] == "interrupted"

        r = server.http.post(f"/api/runs/{run_id}/continue")
        assert r.status_code == 202, r.text
        more = server.events(run_id, after=stopped["seq"], until=_steps(2))
        assert [e["seq"] for e in more] == list(range(stopped["seq"] + 1, stopped["seq"] + 1 + len(more)))
        started = next(e for e in more if e["type"] == "run_started")
        assert started["start_step"] == stopped["step"], "went on from the checkpoint"
        assert server.http.post(f"/api/runs/{run_id}/stop").status_code == 202
        tail = server.events(run_id, after=more[-1]["seq"])
        assert tail[-1]["type"] == "run_stopped" and tail[-1]["reason"] == "requested"
    finally:
        server.close()


def test_ctrl_c_stops_runs_gracefully_with_a_checkpoint(data: Path) -> None:
    server = Server(data)
    try:
        run_id = _start(server)
        server.events(run_id, until=_steps(2))
        worker = RunLog(data / "runs" / run_id).holder_pid()
        os.killpg(server.proc.pid, signal.SIGINT)  # what a terminal's Ctrl+C does: the whole group
        assert server.proc.wait(timeout=30) is not None
    finally:
        server.close()
    assert worker is not None
    _wait_gone(worker)
    last = RunLog(data / "runs" / run_id).read()[-1]
    assert last.type == "run_stopped" and last.reason == "interrupted", last  # not a KeyboardInterrupt
    assert last.checkpoint and Path(last.checkpoint, "model.safetensors").is_file()


def test_sigkill_leaves_no_process_of_the_server_behind(data: Path) -> None:
    """A server killed with SIGKILL cannot end its children: its report worker, the worker that
    loaded torch for a run check and its warm training worker each notice and leave, instead of
    waiting for work forever (each holds tens to hundreds of MB)."""
    server = Server(data)
    children: list[int] = []
    try:
        graph = json.loads((Path(__file__).resolve().parents[1] / "examples" / "mlp.json").read_text())
        assert server.http.post("/api/graphs/report", json=graph).status_code == 200  # the report pool
        project = server.http.get("/api/projects").json()[0]["id"]
        checked = server.http.post("/api/runs/check", json={"project_id": project, "config": {"epochs": 1}})
        assert checked.status_code == 200, checked.text  # the torch pool
        children = _children(server.proc.pid)
        assert len(children) >= 3, children  # the two pools' workers and the warm training worker
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=10)
        for pid in children:
            _wait_gone(pid, within=10)
    finally:
        server.close()
        for pid in children:  # whatever is left, so that a failure here leaks nothing
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
