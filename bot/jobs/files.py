"""Files kept for jobs under the data directory: inputs by content hash, results per job."""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
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

    def input_path(self, sha256: str) -> Path:
        return self.inputs / sha256[:2] / sha256

    async def put_input(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
