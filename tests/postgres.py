"""A throwaway PostgreSQL server for the tests: Debian's binaries, a temporary directory, a Unix
socket only (no TCP port), fsync off. As root (CI) the server runs as the ``postgres`` user,
since initdb refuses root; as anyone else it runs as that user."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from glob import glob
from pathlib import Path


def pg_bindir() -> Path | None:
    """The newest installed server's bin folder (the binaries are not on PATH on Debian)."""
    found = sorted(glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="layerlab-pg-"))
        self.data = self.root / "data"
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        self._databases: set[str] = set()

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}")

    def start(self) -> PostgresServer:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "layerlab", "-E", "UTF8",
                  "--no-sync", "--no-instructions")
        options = f"-k {self.root} -h '' -F -c max_connections=200"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                  "-w", "-t", "60", "start")
        return self

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://layerlab@/{database}?host={self.root}"

    def create_database(self, name: str) -> str:
        """A new, empty database; its SQLAlchemy URL."""
        import psycopg

        if name not in self._databases:
            with psycopg.connect(host=str(self.root), user="layerlab", dbname="postgres", autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            self._databases.add(name)
        return self.url(name)

    def database_for(self, data_dir: Path) -> str:
        """One database per data directory, as SQLite has one file per data directory: an app
        restarted on the same directory finds the same data."""
        key = hashlib.sha1(str(Path(data_dir).resolve()).encode()).hexdigest()[:20]
        return self.create_database(f"t{key}")
