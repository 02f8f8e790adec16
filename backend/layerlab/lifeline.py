"""A child process's tie to the process that started it.

SIGKILL (or the kernel's OOM killer) ends a process without letting it end its children, and a
child that waits for its parent's next job waits forever, holding its memory. A child that calls
:func:`exit_with_parent` ends itself once its parent is gone: it has been handed to another parent.
"""

from __future__ import annotations

import os
import threading
import time


def exit_with_parent(parent_pid: int | None = None, *, every: float = 1.0) -> None:
    """End this process (``os._exit(1)``) within about ``every`` seconds of ``parent_pid`` (default:
    its parent now) no longer being its parent. A daemon thread watches; it costs nothing else."""
    parent = os.getppid() if parent_pid is None else parent_pid

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
