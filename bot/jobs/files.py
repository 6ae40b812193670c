"""Files kept for jobs under the data directory: inputs by content hash, results per job."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str, default: str = "file") -> str:
    cleaned = _UNSAFE.sub("_", name).strip("._")[:80]
    return cleaned or default


class FileStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir
        self.inputs = data_dir / "inputs"
        self.results = data_dir / "results"
        # One lock per input hash, held while a job is created with that file and while a finished job's
        # clean-up decides to delete it: the clean-up never deletes a file a new job has just referenced.
        self._locks: dict[str, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def holding(self, shas: Iterable[str]) -> AsyncIterator[None]:
        """Hold the locks of these input hashes (in a fixed order: no deadlock between two holders)."""
        wanted = sorted(set(shas))
        taken: list[asyncio.Lock] = []
        try:
            for sha in wanted:
                lock = self._locks.setdefault(sha, asyncio.Lock())
                await lock.acquire()
                taken.append(lock)
            yield
        finally:
            for sha, lock in zip(wanted, taken, strict=False):
                lock.release()
                if not lock.locked() and not lock._waiters:
                    self._locks.pop(sha, None)

    @staticmethod
    def sha256(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    def input_path(self, sha256: str) -> Path:
        return self.inputs / sha256[:2] / sha256

    async def put_input(self, data: bytes, sha: str | None = None) -> str:
        sha = sha or self.sha256(data)
        path = self.input_path(sha)
        if not path.exists():
            await asyncio.to_thread(_write_atomically, path, data)
        return sha

    async def remove_input(self, sha256: str) -> None:
        self.input_path(sha256).unlink(missing_ok=True)

    def result_dir(self, job_id: str) -> Path:
        return self.results / safe_filename(job_id)

    async def put_result(self, job_id: str, position: int, filename: str, data: bytes) -> str:
        """Store a result; returns its path relative to the data directory."""
        path = self.result_dir(job_id) / f"{position:02d}_{safe_filename(filename)}"
        await asyncio.to_thread(_write_atomically, path, data)
        return str(path.relative_to(self.root))

    def resolve(self, relative: str) -> Path:
        return self.root / relative

    async def remove_results(self, job_id: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self.result_dir(job_id), True)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write beside the target under a name of its own, then rename: two writers of the same file at once
    never share a temporary file, and a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
