"""The end of a studio's work: its answer saved before anything is downloaded or processed (new state
`fetching`), then its files fetched (retried, never mistaken for a lost create), checked by content, and the
job succeeds with its credits committed in the same transaction."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from typing import TYPE_CHECKING, Any

from bot.downloads import fetch, host_is_private
from bot.jobs.files import safe_filename
from bot.jobs.model import Delivery, Job, JobStatus, Request, ResultRecord
from bot.jobs.store import JobStore
from bot.media import MediaError, identify_async
from bot.providers.base import ErrorKind, Finished, ProviderError, RateLimited, Transient

if TYPE_CHECKING:
    from bot.jobs.steps import Steps

log = logging.getLogger(__name__)

RESULT_MAX_BYTES = 100 * 1024 * 1024
MAX_CHECK_ERRORS = 8  # failed downloads in a row before the job is failed (and refunded)


class ResultSteps:
    def __init__(self, steps: Steps) -> None:
        self.s = steps
        self._private_ok: dict[str, bool] = {}

    async def finished(self, job: Job, finished: Finished) -> None:
        entries: list[dict[str, Any]] = []
        for position, result in enumerate(finished.files):
            entry: dict[str, Any] = {
                "filename": result.filename,
                "url": result.url,
                "kind": result.kind,
                "label": result.label,
                "send": result.send,
                "path": None,
            }
            if result.data is not None:
                try:
                    entry["path"] = await self.s.files.put_result(job.id, position, result.filename, result.data)
                except OSError as exc:  # e.g. a full disk: the bytes exist only here, so stop and refund
                    log.error("Job %s: could not store its result: %s", job.id, exc)
                    await self.s.fail(job, ErrorKind.FAILED, "Easel could not store the result (its disk may be full)")
                    return
                entry["size"] = len(result.data)
            entries.append(entry)
        outcome = {"files": entries, "meta": finished.meta, "text": finished.text}
        moved = await self.s.db.write(
            lambda c: JobStore.update(
                c,
                job.id,
                when=[JobStatus.SUBMITTING, JobStatus.SUBMITTED, JobStatus.RUNNING],
                status=JobStatus.FETCHING,
                outcome=outcome,
                check_errors=0,
                next_check_at=self.s.clock(),
            )
        )
        if not moved:
            return
        self.s.e.idle.pop(job.id, None)
        job.status, job.outcome, job.check_errors = JobStatus.FETCHING, outcome, 0
        await self.s.e.wake_queue(job.provider, job.slot_group)  # its slot at the provider is free
        await self.fetch_results(job)

    async def _provider_is_private(self, provider: str) -> bool:
        """Whether the provider itself lives on a private/loopback address (then its result URLs may too).
        Resolved on first use, not at start-up: a DNS hiccup must not stop the bot from starting."""
        if provider not in self._private_ok:
            adapter = self.s.e.adapters.get(provider)
            try:
                private = adapter is not None and bool(adapter.base_url) and await host_is_private(adapter.base_url)
            except ProviderError:
                return False  # unknown for now: refuse private targets this time, ask again next time
            self._private_ok[provider] = private
        return self._private_ok[provider]

    async def fetch_results(self, job: Job) -> None:
        assert job.outcome is not None
        entries: list[dict[str, Any]] = job.outcome["files"]
        records: list[ResultRecord] = []
        for position, entry in enumerate(entries):
            if entry.get("path") is None:
                try:
                    data = await fetch(
                        self.s.e.bot.http_client,
                        str(entry["url"]),
                        max_bytes=RESULT_MAX_BYTES,
                        allow_private=await self._provider_is_private(job.provider),
                    )
                except (RateLimited, Transient) as exc:
                    await self._retry_fetch(job, f"the results could not be downloaded: {exc.message}", exc.kind)
                    return
                except ProviderError as exc:
                    await self.s.fail(job, exc.kind, f"the results could not be downloaded: {exc.message}")
                    return
                entry["path"] = await self.s.files.put_result(job.id, position, entry["filename"], data)
                entry["size"] = len(data)
                await self._save_outcome(job)  # after a crash, what was fetched is not fetched again
            path = self.s.files.resolve(str(entry["path"]))
            kind, mime = str(entry["kind"]), "application/octet-stream"
            if kind != "file":
                try:
                    head = await asyncio.to_thread(path.read_bytes)
                    info = await identify_async(head)
                except (MediaError, OSError) as exc:
                    if entry.get("url"):  # a bad download: fetch it again later
                        entry["path"] = None
                        await self._retry_fetch(job, f"the service sent a broken file ({exc})", ErrorKind.TRANSIENT)
                        return
                    await self.s.fail(job, ErrorKind.FAILED, "the image service sent a result that is not an image")
                    return
                kind, mime = info.kind, info.mime
            records.append(
                ResultRecord(
                    position,
                    safe_filename(str(entry["filename"])),
                    kind,
                    mime,
                    int(entry.get("size") or path.stat().st_size),
                    str(entry["path"]),
                    entry.get("label"),
                    bool(entry.get("send", True)),
                )
            )
        text = job.outcome.get("text")
        if not records and not text:
            await self.s.fail(job, ErrorKind.FAILED, "the image service finished but sent no images")
            return
        await self._succeed(job, records, job.outcome.get("meta") or {}, text)

    async def _save_outcome(self, job: Job) -> None:
        outcome = job.outcome
        await self.s.db.write(lambda c: JobStore.update(c, job.id, outcome=outcome))

    async def _retry_fetch(self, job: Job, message: str, kind: ErrorKind) -> None:
        errors = job.check_errors + 1
        if errors > MAX_CHECK_ERRORS:
            await self.s.fail(job, kind, message)
            return
        outcome = job.outcome
        await self.s.db.write(lambda c: JobStore.update(c, job.id, check_errors=errors, outcome=outcome))
        job.check_errors = errors
        self.s.again_in(job, self.s.backoff(job, errors))

    async def _succeed(self, job: Job, records: list[ResultRecord], meta: dict[str, Any], text: str | None) -> None:
        now = self.s.clock()
        erase = job.request is Request.ERASE

        def write(conn: sqlite3.Connection) -> bool:
            moved = JobStore.update(
                conn,
                job.id,
                when=[JobStatus.FETCHING],
                status=JobStatus.SUCCEEDED,
                progress=100.0,
                meta=meta,
                result_text=text,
                # An erased member's result is never posted: the studio billed it, so it is charged.
                delivery=Delivery.DELIVERED if erase else Delivery.PENDING,
                finished_at=now,
                next_check_at=None,
                outcome=None,
            )
            if moved:
                JobStore.add_results(conn, job.id, records)
                self.s.e.ledger.commit_in(conn, job.id)
            return moved

        if await self.s.db.write(write):
            self.s.e.bot.metrics.jobs.labels(job.provider, job.feature, "succeeded").inc()
            await self.s.after_final(job)
