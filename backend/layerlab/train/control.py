"""How a running trainer is told to stop or pause: checked between batches.

The trainer sees only the small :class:`Control` interface. :class:`ProcessControl` is the
multiprocessing implementation the executor hands to a worker process; tests may pass their
own (for example one that asks to stop at a given step).
"""

from __future__ import annotations

import multiprocessing as mp
from multiprocessing.context import BaseContext
from multiprocessing.synchronize import Event as MpEvent
from typing import Literal


class Control:
    """Never stops, never pauses. Subclasses override what they need."""

    def stop_requested(self, step: int) -> bool:  # noqa: ARG002 - step is for subclasses
        return False

    def pause_requested(self, step: int) -> bool:  # noqa: ARG002
        return False

    def wait_while_paused(self, timeout: float) -> None:
        """Block up to ``timeout`` seconds or until resumed or stopped."""

    def stop_reason(self) -> Literal["requested", "interrupted"]:
        """Why a stop was requested: by a person, or because the server is going away."""
        return "requested"


class ProcessControl(Control):
    """Multiprocessing events shared with the parent: ``stop`` and ``pause`` (and ``interrupted``,
    set with ``stop`` when the server is the reason).

    Pausing sets ``pause``; resuming clears it and sets ``wake`` so a paused worker reacts at once.
    """

    def __init__(self, ctx: BaseContext | None = None) -> None:
        ctx = ctx or mp.get_context("spawn")
        self.stop: MpEvent = ctx.Event()
        self.pause: MpEvent = ctx.Event()
        self.wake: MpEvent = ctx.Event()
        self.interrupted: MpEvent = ctx.Event()

    def stop_requested(self, step: int) -> bool:
        return self.stop.is_set()

    def pause_requested(self, step: int) -> bool:
        return self.pause.is_set()

    def wait_while_paused(self, timeout: float) -> None:
        self.wake.wait(timeout)
        self.wake.clear()

    def stop_reason(self) -> Literal["requested", "interrupted"]:
        return "interrupted" if self.interrupted.is_set() else "requested"

    # The parent's side (and the worker's own, when it finds its parent gone).
    def request_stop(self, *, interrupted: bool = False) -> None:
        if interrupted:
            self.interrupted.set()
        self.stop.set()
        self.wake.set()

    def request_pause(self) -> None:
        self.pause.set()

    def request_resume(self) -> None:
        self.pause.clear()
        self.wake.set()
