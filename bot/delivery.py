"""Posting results and notices to Discord, within Discord's limits, by the best route still open.

Route order: the interaction's followup webhook while its token lives; then a channel message that mentions
the requester; then a DM; else the job is marked undeliverable and `/jobs` still shows it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import io
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, cast

import aiohttp
import discord

from bot import labels, limits, result_links
from bot.components import Spends, button_label
from bot.jobs.files import FileStore
from bot.jobs.model import Job, JobStatus, ResultRecord
from bot.media import EXTENSION, describe_size
from bot.media.fit import fit_image_async
from bot.media.video import fit_video

if TYPE_CHECKING:
    from bot.app import EaselBot

logger = logging.getLogger(__name__)

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
    spends: Spends | None = None  # a paid job: its label says what it costs on this server


class Route(StrEnum):
    INTERACTION = "interaction"
    CHANNEL = "channel"
    DM = "dm"


@dataclass
class Outcome:
    delivered: bool
    retry: bool = False  # a passing Discord error: try again later
    route: Route | None = None


class RouteClosed(Exception):
    """This route cannot reach the member (for a reason Discord did not give)."""


class PartLog(Protocol):
    """Where the engine records delivery progress, around each part posted."""

    async def sending(self, index: int, route: Route) -> None: ...

    async def sent(self, index: int, message: discord.Message | None) -> None: ...


HISTORY_MARGIN_S = 60.0  # clocks differ: look this much before the recorded start of a part
HISTORY_SEARCH_LIMIT = 1000  # messages read (newest first, 100 a request) when looking for a half-sent part


def part_label(index: int, total: int) -> str:
    return f"part {index + 1} of {total}"


def _is_part(message: discord.Message, job_id: str, index: int, total: int) -> bool:
    if total > 1:
        return f"job `{job_id}` · {part_label(index, total)}" in message.content
    return job_id in message.content or any(job_id in (embed.footer.text or "") for embed in message.embeds)


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
    return labels.describe(params)


class Deliverer:
    def __init__(self, bot: EaselBot, files: FileStore, *, clock: Callable[[], float] = time.time) -> None:
        self.bot = bot
        self.files = files
        self.clock = clock
        self.buttons_for: dict[str, list[ButtonSpec]] = {}
        # Buttons that depend on the job (e.g. labels stating this server's cost); win over buttons_for.
        self.button_makers: dict[str, Callable[[Job], Awaitable[list[ButtonSpec]]]] = {}
        self._link_key: bytes | None = None

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
        """The file as it can be uploaded (pictures keep their transparency, videos are re-encoded), or a
        note saying why it cannot."""
        if len(data) <= limit:
            return record.filename, data
        stem = record.filename.rsplit(".", 1)[0]
        if record.kind == "image":
            fitted = await fit_image_async(data, limit)
            if fitted is not None:
                return f"{stem}.{EXTENSION.get(fitted[1], 'jpg')}", fitted[0]
        elif record.kind == "video":
            video = await asyncio.to_thread(fit_video, data, limit)
            if video is not None:
                return f"{stem}.mp4", video
        return (
            f"`{record.filename}` is {describe_size(len(data))}, over this server's upload limit of "
            f"{describe_size(limit)}, so it could not be attached."
        )

    async def _shrunk_note(
        self, job: Job, record: ResultRecord, original: bytes, fitted: tuple[str, bytes] | str
    ) -> str:
        """Tell the member a result was shrunk (or left off), with a signed link to the original when Easel's
        web server is reachable (PUBLIC_URL)."""
        text = (
            fitted
            if isinstance(fitted, str)
            else f"ℹ️ `{record.filename}` was shrunk to fit Discord's upload limit "
            f"({describe_size(len(original))} → {describe_size(len(fitted[1]))})."
        )
        settings = self.bot.settings
        if settings.public_url is None:
            return text
        if self._link_key is None:
            secret = settings.result_link_secret
            self._link_key = await result_links.signing_key(
                self.bot.db, secret.get_secret_value() if secret is not None else None
            )
        hours = settings.result_link_hours
        expires = int(self.clock() + hours * 3600)
        url = result_links.link(str(settings.public_url), self._link_key, job.id, record.position, expires)
        return f"{text} Original: <{url}> (for {hours:g} h)"

    async def result_payloads(self, job: Job, results: Sequence[ResultRecord], *, mention: bool) -> list[Payload]:
        files: list[tuple[str, bytes]] = []
        notes: list[str] = []
        for record in results:
            if not record.send:
                continue
            data = await asyncio.to_thread(self.files.resolve(record.path).read_bytes)  # up to 100 MB
            fitted = await self._fit(record, data, job.attachment_limit)
            if isinstance(fitted, str) or fitted[1] is not data:  # left off, or shrunk: say so (and link)
                notes.append(await self._shrunk_note(job, record, data, fitted))
            if not isinstance(fitted, str):
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
        maker = self.button_makers.get(job.feature)
        buttons = [
            *(await maker(job) if maker is not None else self.buttons_for.get(job.feature, [])),
            ButtonSpec("info", "Details", "ℹ️"),
            ButtonSpec("del", "Delete", "🗑️", discord.ButtonStyle.danger),
        ]
        buttons = [
            replace(spec, label=await button_label(self.bot, job.guild_id, spec.label, spec.spends)) for spec in buttons
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

    async def deliver(
        self, job: Job, results: Sequence[ResultRecord], *, refunded: int | None, log: PartLog
    ) -> Outcome:
        """Post the parts not yet confirmed, by the best route still open. Each part is announced to `log`
        before it is posted and confirmed after, so a crash in between can be resolved without posting twice."""
        now = self.clock()
        if job.token_usable(now, limits.INTERACTION_TOKEN_SAFETY_S):
            outcome = await self._via(Route.INTERACTION, job, results, refunded, log)
            if outcome.delivered or outcome.retry:
                return outcome
        outcome = await self._via(Route.CHANNEL, job, results, refunded, log)
        if outcome.delivered or outcome.retry:
            return outcome
        return await self._via(Route.DM, job, results, refunded, log)

    async def _payloads(
        self, job: Job, results: Sequence[ResultRecord], refunded: int | None, route: Route
    ) -> list[Payload]:
        mention = route is not Route.DM
        if job.status is JobStatus.SUCCEEDED:
            payloads = await self.result_payloads(job, results, mention=mention)
        else:
            payloads = [Payload(self.failure_text(job, refunded, mention=mention), None, [], [])]
        if route is Route.DM and job.guild_id is not None and job.delivery_parts_sent < len(payloads):
            # The first part this DM carries: all of it, or the rest after the channel closed mid-way.
            first = payloads[job.delivery_parts_sent]
            what = "so here it is" if job.delivery_parts_sent == 0 else "so here is the rest"
            first.content = (f"I could not post in <#{job.channel_id}>, {what}.\n" + (first.content or ""))[
                : limits.MESSAGE_CONTENT_LIMIT
            ]
        return payloads

    async def _destination(self, job: Job, route: Route) -> Any:
        """Where the route posts: the job's channel (interaction followups land there too) or the DM."""
        if route is Route.DM:
            if job.user_id is None:
                raise RouteClosed("the member's data was erased")
            user = self.bot.get_user(job.user_id) or await self.bot.fetch_user(job.user_id)
            return await user.create_dm()
        return self.bot.get_channel(job.channel_id) or await self.bot.fetch_channel(job.channel_id)

    async def _via(
        self, route: Route, job: Job, results: Sequence[ResultRecord], refunded: int | None, log: PartLog
    ) -> Outcome:
        try:
            payloads = await self._payloads(job, results, refunded, route)
            if job.delivery_inflight is not None:
                posted = await self._find_posted(job, len(payloads))
                if posted is not None:
                    await log.sent(job.delivery_parts_sent, posted)
            if route is Route.INTERACTION:
                assert job.application_id is not None
                assert job.interaction_token is not None
                webhook = discord.Webhook.partial(job.application_id, job.interaction_token, client=self.bot)
                send: Callable[..., Any] = functools.partial(
                    webhook.send, wait=True, allowed_mentions=discord.AllowedMentions(users=True)
                )
            else:
                channel = await self._destination(job, route)
                send = channel.send
            await self._send_parts(route, send, job, payloads, log)
            if route is Route.INTERACTION:
                done = "✅ Done." if job.status is JobStatus.SUCCEEDED else "❌ " + (job.error or "")
                await self.edit_status(job, done)
        except (discord.NotFound, discord.Forbidden) as exc:
            logger.info("Job %s: %s route closed (%s)", job.id, route, exc.status)
            return Outcome(False)
        except RouteClosed as exc:
            logger.info("Job %s: %s route closed (%s)", job.id, route, exc)
            return Outcome(False)
        except discord.HTTPException as exc:
            if route is Route.INTERACTION and exc.status == 401:  # the token expired under us
                return Outcome(False)
            logger.warning("Job %s: Discord error %s delivering via %s", job.id, exc.status, route)
            return Outcome(False, retry=exc.status >= 500 or exc.status == 429)
        except (aiohttp.ClientError, OSError) as exc:  # no answer from Discord: the part may or may not be up
            logger.warning("Job %s: no answer from Discord delivering via %s (%s)", job.id, route, type(exc).__name__)
            return Outcome(False, retry=True)
        return Outcome(True, route=route)

    async def _send_parts(
        self, route: Route, send: Callable[..., Any], job: Job, payloads: list[Payload], log: PartLog
    ) -> None:
        total = len(payloads)
        for index in range(job.delivery_parts_sent, total):
            payload = payloads[index]
            kwargs: dict[str, Any] = {}
            content = payload.content or ""
            if total > 1:  # every part names its job and place, so a restart can recognise it (never cut off)
                marker = f"-# job `{job.id}` · {part_label(index, total)}"
                room = limits.MESSAGE_CONTENT_LIMIT - len(marker) - 1
                content = (content[:room] + "\n" if content else "") + marker
            if content:
                kwargs["content"] = content[: limits.MESSAGE_CONTENT_LIMIT]
            if payload.embed is not None:
                kwargs["embed"] = payload.embed
            if payload.files:
                kwargs["files"] = [discord.File(io.BytesIO(data), filename=name) for name, data in payload.files]
            if route is not Route.INTERACTION:
                # Discord answers a repeated nonce (within minutes) with the message it already made.
                kwargs["nonce"] = f"{job.id}.{index}"
            view = _view(job.id, payload.buttons)
            if view is not None:
                kwargs["view"] = view
            await log.sending(index, route)
            message = await send(**kwargs)
            if view is not None:
                view.stop()  # buttons are resolved from the database, not from this in-memory view
            await log.sent(index, message)

    async def _find_posted(self, job: Job, total: int) -> discord.Message | None:
        """Whether the part that was being posted when Easel stopped reached Discord: look for it, by its job
        id and place, among the bot's messages since then. If we cannot look, post again (the nonce still
        guards channel and DM posts): a result shown twice beats one never shown."""
        assert job.delivery_inflight is not None
        assert job.delivery_inflight_at is not None
        index = job.delivery_parts_sent
        try:
            channel = await self._destination(job, Route(job.delivery_inflight))
            since = dt.datetime.fromtimestamp(job.delivery_inflight_at - HISTORY_MARGIN_S, tz=dt.UTC)
            # Newest first, back to the recorded start (paged by discord.py): a busy channel may have had
            # hundreds of messages since then, and the part is among the most recent of them.
            async for message in channel.history(limit=HISTORY_SEARCH_LIMIT, after=since, oldest_first=False):
                if (
                    self.bot.user is not None
                    and message.author.id == self.bot.user.id
                    and _is_part(message, job.id, index, total)
                ):
                    logger.info("Job %s: part %d was posted before the restart; not posting it again", job.id, index)
                    return cast(discord.Message, message)
        except (discord.HTTPException, RouteClosed) as exc:
            logger.info("Job %s: could not look for part %d (%s); posting it again", job.id, index, exc)
        return None

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
            logger.info("Job %s: could not edit the status message (%s)", job.id, exc.status)
            return False
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:  # no answer: a status line is not worth more
            logger.info("Job %s: no answer editing the status message (%s)", job.id, type(exc).__name__)
            return False
        return True
