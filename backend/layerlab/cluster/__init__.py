"""Scale-out: runs on a Ray cluster, and one run on several devices (DistributedDataParallel).

``make_executor`` picks the executor the server uses, from settings or ``LAYERLAB_*`` variables:

- ``LAYERLAB_EXECUTOR``: ``local`` (default; one process per run on this machine) or ``ray``;
- ``LAYERLAB_RAY_ADDRESS``: the cluster to join, e.g. ``ray-head:6379`` or ``auto``; unset
  starts a Ray instance inside the server (one machine, mostly for trying it out);
- ``LAYERLAB_RAY_CPUS_PER_RUN``: the CPUs each run's actor asks for (default 1).

Neither ``import layerlab.cluster`` nor ``make_executor(...)`` for the local executor imports ray:
``pip install layerlab[cluster]`` is needed only where Ray is chosen.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from layerlab.train.executor import Executor

EXECUTORS = ("local", "ray")


def _lookup(source: Any, attr: str, env_name: str) -> str | None:
    """A setting from an object's attribute, else from a mapping (the environment) by name."""
    value = getattr(source, attr, None) if not isinstance(source, Mapping) else None
    if value is None:
        env = source if isinstance(source, Mapping) else os.environ
        value = env.get(env_name)
    return None if value is None or str(value).strip() == "" else str(value).strip()


def executor_kind(settings_or_env: Any = None) -> str:
    """``'local'`` or ``'ray'``, from ``settings.executor`` or ``LAYERLAB_EXECUTOR``."""
    kind = (_lookup(settings_or_env, "executor", "LAYERLAB_EXECUTOR") or "local").lower()
    if kind not in EXECUTORS:
        raise ValueError(f"LAYERLAB_EXECUTOR must be one of {', '.join(EXECUTORS)}; received {kind!r}")
    return kind


def make_executor(
    settings_or_env: Any = None,
    *,
    runs_dir: str | Path | None = None,
    max_concurrent: int | None = None,
) -> Executor:
    """The executor chosen by ``settings_or_env``: a settings object (attributes ``executor``,
    ``ray_address``, ``runs_dir``, ``max_concurrent_runs``, each optional), a mapping such as
    ``os.environ``, or None for ``os.environ``. Keyword arguments win over both.
    """
    source = os.environ if settings_or_env is None else settings_or_env
    if runs_dir is None:
        runs_dir = getattr(source, "runs_dir", None) if not isinstance(source, Mapping) else None
    if runs_dir is None:
        data_dir = _lookup(source, "data_dir", "LAYERLAB_DATA_DIR") or "data"
        runs_dir = Path(data_dir) / "runs"
    if max_concurrent is None:
        raw = getattr(source, "max_concurrent_runs", None) if not isinstance(source, Mapping) else None
        max_concurrent = int(raw if raw is not None else (_lookup(source, "max_runs", "LAYERLAB_MAX_RUNS") or 1))

    if executor_kind(source) == "local":
        from layerlab.train.executor import LocalExecutor  # noqa: PLC0415

        return LocalExecutor(runs_dir, max_concurrent=max_concurrent)

    try:
        from .ray_executor import RayExecutor  # noqa: PLC0415 - ray is optional
    except ImportError as e:
        raise RuntimeError(
            "LAYERLAB_EXECUTOR=ray needs Ray: pip install 'layerlab[cluster]'"
        ) from e
    cpus = _lookup(source, "ray_cpus_per_run", "LAYERLAB_RAY_CPUS_PER_RUN")
    return RayExecutor(
        runs_dir,
        address=_lookup(source, "ray_address", "LAYERLAB_RAY_ADDRESS"),
        max_concurrent=max_concurrent,
        cpus_per_run=float(cpus) if cpus else 1.0,
    )


def executor_factory(settings_or_env: Any = None) -> Any:
    """``make_executor`` in the shape the API's ``create_app(executor_factory=...)`` takes:
    ``factory(runs_dir, max_concurrent) -> Executor``."""

    def factory(runs_dir: Path, max_concurrent: int) -> Executor:
        return make_executor(settings_or_env, runs_dir=runs_dir, max_concurrent=max_concurrent)

    return factory


__all__ = ["EXECUTORS", "executor_factory", "executor_kind", "make_executor"]
