"""Posting results and notices to Discord, within Discord's limits, by the best route still open.

Route order: the interaction's followup webhook while its token lives; then a channel message that mentions
the requester; then a DM; else the job is marked undeliverable and `/jobs` still shows it.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import discord

from bot import limits
from bot.jobs.files import FileStore
from bot.jobs.model import Job, JobStatus, ResultRecord
from bot.media import describe_size, fit_within_async

if TYPE_CHECKING:
    from bot.app import EaselBot

log = logging.getLogger(__name__)

BUTTON_PREFIX = "ej"  # custom_id = "ej:<action>:<job id>[:<arg>]", resolved from the database


def button_id(action: str, job_id: str, arg: str | None = None) -> str:
    custom_id = f"{BUTTON_PREFIX}:{action}:{job_id}" + (f":{arg}" if arg is not None else "")
    assert len(custom_id) <= limits.CUSTOM_ID_LIMIT
    return custom_id


@dataclass(frozen=True)
class ButtonSpec:
    action: str
    label: str
    emoji: str | None = None
    style: discord.ButtonStyle = discord.ButtonStyle.secondary
    arg: str | None = None


class Route(StrEnum):
    INTERACTION = "interaction"
    CHANNEL = "channel"
    DM = "dm"


@dataclass
class Outcome:
    delivered: bool
    retry: bool = False  # a passing Discord error: try again later
    route: Route | None = None
    channel_id: int | None = None
    message_id: int | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Payload:
    content: str | None
    embed: discord.Embed | None
    files: list[tuple[str, bytes]]
    buttons: list[ButtonSpec]


FEATURE_TITLES: dict[str, str] = {}


def feature_title(feature: str) -> str:
    return FEATURE_TITLES.get(feature, feature.replace("_", " ").capitalize())


def _view(job_id: str, buttons: Sequence[ButtonSpec]) -> discord.ui.View | None:
    if not buttons:
        return None
    view = discord.ui.View(timeout=None)
    for index, spec in enumerate(buttons[: limits.BUTTONS_PER_ROW * limits.ROWS_PER_MESSAGE]):
        view.add_item(
            discord.ui.Button(
                label=spec.label,
                emoji=spec.emoji,
                style=spec.style,
                custom_id=button_id(spec.action, job_id, spec.arg),
                row=index // limits.BUTTONS_PER_ROW,
            )
        )
    return view


def summarize_params(params: dict[str, Any]) -> list[tuple[str, str]]:
    shown = []
    for key, value in params.items():
        if value is None or key.startswith("_") or key == "prompt":
            continue
        shown.append((key.replace("_", " "), str(value)[:100]))
    return shown[:8]


class Deliverer:
    def __init__(self, bot: EaselBot, files: FileStore, *, clock: Callable[[], float] = time.time) -> None:
        self.bot = bot
        self.files = files
        self.clock = clock
        self.buttons_for: dict[str, list[ButtonSpec]] = {}

    # Building messages

    def result_embed(self, job: Job) -> discord.Embed:
        embed = discord.Embed(title=feature_title(job.feature), colour=discord.Colour.green())
        prompt = job.params.get("prompt")
        if prompt:
            embed.description = str(prompt)[: limits.EMBED_DESCRIPTION_LIMIT]
        for name, value in summarize_params(job.params):
            embed.add_field(name=name, value=value or "—", inline=True)
        embed.set_footer(text=f"Job {job.id} · {job.provider}")
        return embed

    async def _fit(self, record: ResultRecord, data: bytes, limit: int) -> tuple[str, bytes] | str:
        """The file as it can be uploaded, or a note saying why it cannot."""
        if len(data) <= limit:
            return record.filename, data
        if record.kind == "image":
            fitted = await fit_within_async(data, limit)
            if fitted is not None:
                stem = record.filename.rsplit(".", 1)[0]
                return f"{stem}.jpg", fitted[0]
        return (
            f"`{record.filename}` is {describe_size(len(data))}, over this server's upload limit of "
            f"{describe_size(limit)}, so it could not be attached."
        )

    async def result_payloads(self, job: Job, results: Sequence[ResultRecord], *, mention: bool) -> list[Payload]:
        files: list[tuple[str, bytes]] = []
        notes: list[str] = []
        for record in results:
            if not record.send:
                continue
            data = self.files.resolve(record.path).read_bytes()
            fitted = await self._fit(record, data, job.attachment_limit)
            if isinstance(fitted, str):
                notes.append(fitted)
            else:
                files.append(fitted)
        # Split: at most 10 files and 25 MiB per message.
        chunks: list[list[tuple[str, bytes]]] = [[]]
        size = 0
        for item in files:
            if len(chunks[-1]) >= limits.FILES_PER_MESSAGE or size + len(item[1]) > limits.REQUEST_SIZE_LIMIT:
                chunks.append([])
                size = 0
            chunks[-1].append(item)
            size += len(item[1])
        head = f"<@{job.user_id}> " if mention and job.user_id else ""
        text = f"{head}your {feature_title(job.feature).lower()} is ready."
        if job.result_text:
            text += "\n" + job.result_text
        if notes:
            text += "\n" + "\n".join(notes)
        buttons = [
            *self.buttons_for.get(job.feature, []),
            ButtonSpec("info", "Details", "ℹ️"),
            ButtonSpec("del", "Delete", "🗑️", discord.ButtonStyle.danger),
        ]
        payloads = [Payload(None, None, chunk, []) for chunk in chunks]
        payloads[0].content = text[: limits.MESSAGE_CONTENT_LIMIT]
        payloads[-1].embed = self.result_embed(job)
        payloads[-1].buttons = buttons
        return payloads

    def failure_text(self, job: Job, refunded: int | None, *, mention: bool) -> str:
        head = f"<@{job.user_id}> " if mention and job.user_id else ""
        verb = {JobStatus.CANCELLED: "was cancelled", JobStatus.EXPIRED: "was stopped"}.get(job.status, "failed")
        text = f"{head}❌ Your {feature_title(job.feature).lower()} (job `{job.id}`) {verb}: {job.error}"
        if refunded:
            text += f"\nYou were not charged: {refunded} credit{'s' if refunded != 1 else ''} went back to you."
        elif refunded == 0:
            text += "\nYou were not charged."
        return text[: limits.MESSAGE_CONTENT_LIMIT]

    # Sending

    async def deliver(self, job: Job, results: Sequence[ResultRecord], *, refunded: int | None) -> Outcome:
        now = self.clock()
        use_token = job.token_usable(now, limits.INTERACTION_TOKEN_SAFETY_S)
        if use_token:
            outcome = await self._via_interaction(job, results, refunded)
            if outcome.delivered or outcome.retry:
                return outcome
        outcome = await self._via_channel(job, results, refunded, Route.CHANNEL)
        if outcome.delivered or outcome.retry:
            return outcome
        return await self._via_channel(job, results, refunded, Route.DM)

    async def _payloads(
        self, job: Job, results: Sequence[ResultRecord], refunded: int | None, *, mention: bool
    ) -> list[Payload]:
        if job.status is JobStatus.SUCCEEDED:
            return await self.result_payloads(job, results, mention=mention)
        return [Payload(self.failure_text(job, refunded, mention=mention), None, [], [])]

    async def _send_all(
        self, send: Callable[..., Any], job: Job, payloads: list[Payload], **extra: Any
    ) -> discord.Message | None:
        first: discord.Message | None = None
        for payload in payloads:
            kwargs: dict[str, Any] = dict(extra)
            if payload.content:
                kwargs["content"] = payload.content
            if payload.embed is not None:
                kwargs["embed"] = payload.embed
            if payload.files:
                kwargs["files"] = [discord.File(io.BytesIO(data), filename=name) for name, data in payload.files]
            view = _view(job.id, payload.buttons)
            if view is not None:
                kwargs["view"] = view
            message = await send(**kwargs)
            if view is not None:
                view.stop()  # buttons are resolved from the database, not from this in-memory view
            first = first or message
        return first

    async def _via_interaction(self, job: Job, results: Sequence[ResultRecord], refunded: int | None) -> Outcome:
        assert job.application_id is not None
        assert job.interaction_token is not None
        webhook = discord.Webhook.partial(job.application_id, job.interaction_token, client=self.bot)
        try:
            payloads = await self._payloads(job, results, refunded, mention=True)
            message = await self._send_all(
                webhook.send,
                job,
                payloads,
                wait=True,
                allowed_mentions=discord.AllowedMentions(users=True),
            )
            await self.edit_status(job, "✅ Done." if job.status is JobStatus.SUCCEEDED else "❌ " + (job.error or ""))
        except (discord.NotFound, discord.Forbidden) as exc:
            log.info("Job %s: interaction route closed (%s); trying the channel", job.id, exc.status)
            return Outcome(False)
        except discord.HTTPException as exc:
            if exc.status == 401:  # token expired under us
                return Outcome(False)
            log.warning("Job %s: Discord error %s delivering via interaction", job.id, exc.status)
            return Outcome(False, retry=exc.status >= 500 or exc.status == 429)
        assert message is not None
        return Outcome(True, route=Route.INTERACTION, channel_id=message.channel.id, message_id=message.id)

    async def _via_channel(
        self, job: Job, results: Sequence[ResultRecord], refunded: int | None, route: Route
    ) -> Outcome:
        try:
            if route is Route.CHANNEL:
                channel: Any = self.bot.get_channel(job.channel_id) or await self.bot.fetch_channel(job.channel_id)
            else:
                if job.user_id is None:
                    return Outcome(False)
                user = self.bot.get_user(job.user_id) or await self.bot.fetch_user(job.user_id)
                channel = await user.create_dm()
            payloads = await self._payloads(job, results, refunded, mention=route is Route.CHANNEL)
            if route is Route.DM and job.guild_id is not None:
                payloads[0].content = (
                    f"I could not post in <#{job.channel_id}>, so here it is.\n" + (payloads[0].content or "")
                )[: limits.MESSAGE_CONTENT_LIMIT]
            message = await self._send_all(channel.send, job, payloads)
        except (discord.NotFound, discord.Forbidden) as exc:
            log.info("Job %s: %s route closed (%s %s)", job.id, route, exc.status, exc.code)
            return Outcome(False)
        except discord.HTTPException as exc:
            log.warning("Job %s: Discord error %s delivering via %s", job.id, exc.status, route)
            return Outcome(False, retry=exc.status >= 500 or exc.status == 429)
        assert message is not None
        return Outcome(True, route=route, channel_id=message.channel.id, message_id=message.id)

    async def edit_status(self, job: Job, content: str) -> bool:
        """Edit the command's original (ephemeral) response; never once the token is (nearly) dead."""
        if not job.token_usable(self.clock(), limits.INTERACTION_TOKEN_SAFETY_S):
            return False
        assert job.application_id is not None
        assert job.interaction_token is not None
        webhook = discord.Webhook.partial(job.application_id, job.interaction_token, client=self.bot)
        try:
            await webhook.edit_message("@original", content=content[: limits.MESSAGE_CONTENT_LIMIT])  # type: ignore[call-overload]
        except discord.HTTPException as exc:
            log.info("Job %s: could not edit the status message (%s)", job.id, exc.status)
            return False
        return True
