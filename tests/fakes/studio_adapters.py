"""Adapters for the fake studio, one per execution style, written like real ones (ProviderHTTP, errors)."""

from __future__ import annotations

from typing import Any

import httpx

from bot.providers.base import (
    Adapter,
    ErrorKind,
    Failed,
    Finished,
    JobContext,
    Pending,
    ResultFile,
    Submitted,
)
from bot.providers.http import ProviderHTTP


class _Studio(Adapter):
    poll_every = 0.05

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        token: str,
        *,
        deadline_s: float = 60.0,
        slot: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.base_url = base_url
        self.http = ProviderHTTP(
            client,
            provider=self.name,
            base_url=base_url,
            auth_headers={"Authorization": f"Bearer {token}"},
            content_policy_markers=("content policy",),
            timeout=httpx.Timeout(timeout),
        )
        self._deadline = deadline_s
        self._slot = slot

    def deadline(self, feature: str) -> float:
        return self._deadline

    def slot_group(self, feature: str) -> str | None:
        return self._slot

    def _body(self, job: JobContext) -> dict[str, Any]:
        return {
            "prompt": job.params["prompt"],
            "size": job.params.get("size", 128),
            "count": job.params.get("count", 1),
        }


class SyncStudio(_Studio):
    name = "studio_sync"

    async def submit(self, job: JobContext) -> Finished:
        response = await self.http.request("POST", "/render", safe=False, data=self._body(job))
        return Finished([ResultFile("render.png", data=response.content)], meta={"style": "sync"})


class PollStudio(_Studio):
    name = "studio_poll"

    async def submit(self, job: JobContext) -> Submitted:
        body = self._body(job)
        if job.callback_url:
            body["callback_url"] = job.callback_url
        answer = await self.http.json("POST", "/jobs", safe=False, json=body)
        return Submitted({"id": answer["id"]}, next_check=self.poll_every)

    async def check(self, job: JobContext) -> Pending | Finished | Failed:
        answer = await self.http.json("GET", f"/jobs/{job.ref['id']}", safe=True)
        status = answer.get("status")
        if status == "done":
            return Finished([ResultFile(f"studio-{i}.png", url=u) for i, u in enumerate(answer["images"])])
        if status in ("failed", "cancelled"):
            return Failed(ErrorKind.FAILED, answer.get("error", status))
        if status not in ("queued", "running"):
            from bot.providers.base import Transient

            raise Transient(f"unknown status {status!r}")
        return Pending(progress=answer.get("progress"), next_check=self.poll_every, running=status == "running")

    async def cancel(self, job: JobContext) -> bool:
        if "id" not in job.ref:
            return False  # the create is still on its way
        await self.http.json("POST", f"/jobs/{job.ref['id']}/cancel", safe=True)
        return True

    def cancellable(self, feature: str) -> bool:
        return True


class CallbackStudio(PollStudio):
    """Waits for the studio's callback; polls only as a slow fallback."""

    name = "studio_cb"
    poll_every = 30.0

    def parse_callback(self, body: bytes) -> dict[str, Any]:
        return {"size": len(body)}
