"""/jobs, /cancel, and the buttons every result carries (details, delete)."""

from __future__ import annotations

import asyncio
import contextlib
import io
from datetime import UTC, datetime

import discord
from discord import app_commands
from discord.ext import commands

from bot import labels
from bot.app import EaselBot
from bot.delivery import BUTTON_PREFIX, feature_title
from bot.errors import NotAllowed, NotFound
from bot.jobs.access import Actor, can_delete_result, can_see_result, can_view
from bot.jobs.creation import PROVIDER_NAMES
from bot.jobs.model import Delivery, Job, JobStatus
from bot.retention import REMOVED_KEY
from bot.tree import defer, respond

STATUS_ICONS = {
    JobStatus.QUEUED: "⏳",
    JobStatus.SUBMITTING: "📨",
    JobStatus.SUBMITTED: "📨",
    JobStatus.RUNNING: "🎨",
    JobStatus.FETCHING: "📥",
    JobStatus.SUCCEEDED: "✅",
    JobStatus.FAILED: "❌",
    JobStatus.CANCELLED: "🚫",
    JobStatus.EXPIRED: "⌛",
}


def message_link(job: Job) -> str | None:
    if job.result_message_id is None or job.result_channel_id is None:
        return None
    guild = job.guild_id if job.guild_id is not None else "@me"
    return f"https://discord.com/channels/{guild}/{job.result_channel_id}/{job.result_message_id}"


def job_line(job: Job) -> str:
    when = f"<t:{int(job.created_at)}:R>"
    line = f"{STATUS_ICONS[job.status]} `{job.id}` {feature_title(job.feature)} — {job.status.value} {when}"
    if job.status is JobStatus.RUNNING and job.progress is not None:
        line += f" ({job.progress:.0f}%)"
    link = message_link(job)
    if link:
        line += f" — [result]({link})"
    elif job.delivery is Delivery.UNDELIVERABLE:
        line += " — not delivered: `/jobs job:" + job.id + "` shows it"
    return line


def details_embed(job: Job) -> discord.Embed:
    embed = discord.Embed(title=f"{feature_title(job.feature)} — job {job.id}", colour=discord.Colour.blurple())
    embed.add_field(name="Status", value=f"{STATUS_ICONS[job.status]} {job.status.value}")
    embed.add_field(name="Studio", value=PROVIDER_NAMES.get(job.provider, job.provider))
    embed.add_field(name="Credits", value=str(job.credits))
    embed.add_field(name="Asked", value=f"<t:{int(job.created_at)}:f>")
    if job.finished_at:
        embed.add_field(name="Took", value=f"{job.finished_at - job.created_at:.0f} s")
    if job.user_id:
        embed.add_field(name="By", value=f"<@{job.user_id}>")
    prompt = job.params.get("prompt")
    shown = ([("Prompt", str(prompt)[:300])] if prompt else []) + labels.describe(job.params, limit=12)
    params = "\n".join(f"**{name}**: {value}" for name, value in shown)
    if params:
        embed.add_field(name="Options", value=params[:1024], inline=False)
    if job.error:
        embed.add_field(name="Error", value=job.error[:1024], inline=False)
    if job.parent_job:
        embed.add_field(name="Made from", value=f"job `{job.parent_job}`")
    removed = job.meta.get(REMOVED_KEY)
    if isinstance(removed, int | float):
        embed.add_field(name="Files", value=f"removed <t:{int(removed)}:R> (this server keeps them for a while)")
    link = message_link(job)
    if link:
        embed.add_field(name="Result", value=f"[jump to it]({link})")
    embed.timestamp = datetime.fromtimestamp(job.created_at, tz=UTC)
    return embed


class Jobs(commands.Cog):
    def __init__(self, bot: EaselBot) -> None:
        self.bot = bot
        bot.components.register(BUTTON_PREFIX, "info", self.on_details)
        bot.components.register(BUTTON_PREFIX, "del", self.on_delete)

    async def cog_unload(self) -> None:
        self.bot.components.unregister(BUTTON_PREFIX, "info")
        self.bot.components.unregister(BUTTON_PREFIX, "del")

    async def _visible_job(self, interaction: discord.Interaction[EaselBot], job_id: str) -> Job:
        job = await self.bot.jobs.store.get(job_id.strip())
        if job is None or not can_view(job, Actor.of(interaction)):
            raise NotFound(f"There is no job `{job_id}` of yours here.")
        return job

    @app_commands.command(name="jobs", description="Your recent jobs, or one job's details and results")
    @app_commands.describe(job="A job id, to see its details and get its results again")
    async def jobs(self, interaction: discord.Interaction[EaselBot], job: str | None = None) -> None:
        if job is None:
            recent = await self.bot.jobs.store.for_member(interaction.guild_id, interaction.user.id, limit=10)
            if not recent:
                await respond(interaction, "You have no jobs here yet.")
                return
            embed = discord.Embed(
                title="Your recent jobs",
                description="\n".join(job_line(j) for j in recent),
                colour=discord.Colour.blurple(),
            )
            await respond(interaction, embed=embed)
            return
        found = await self._visible_job(interaction, job)
        await defer(interaction, ephemeral=True)
        files: list[discord.File] = []
        if found.status is JobStatus.SUCCEEDED and not found.meta.get(REMOVED_KEY):
            for record in await self.bot.jobs.store.results(found.id):
                if not record.send:
                    continue  # extras (e.g. PBN SVG/PDF) are offered by their own buttons
                path = self.bot.jobs.files.resolve(record.path)
                if path.exists() and record.size <= interaction.filesize_limit and len(files) < 10:
                    data = await asyncio.to_thread(path.read_bytes)  # up to 100 MB: never on the event loop
                    files.append(discord.File(io.BytesIO(data), filename=record.filename))
        await respond(interaction, embed=details_embed(found), files=files)

    @jobs.autocomplete("job")
    async def _job_autocomplete(
        self, interaction: discord.Interaction[EaselBot], current: str
    ) -> list[app_commands.Choice[str]]:
        recent = await self.bot.jobs.store.for_member(interaction.guild_id, interaction.user.id, limit=25)
        return [
            app_commands.Choice(name=f"{j.id} · {feature_title(j.feature)} · {j.status.value}"[:100], value=j.id)
            for j in recent
            if current.lower() in j.id
        ][:25]

    @app_commands.command(name="cancel", description="Cancel one of your queued or running jobs (refunded)")
    @app_commands.describe(job="The job id (see /jobs)")
    async def cancel(self, interaction: discord.Interaction[EaselBot], job: str) -> None:
        await defer(interaction, ephemeral=True)
        cancelled = await self.bot.jobs.cancel(job.strip(), actor=Actor.of(interaction))
        note = f" {cancelled.credits} credits went back to you." if cancelled.credits else ""
        await respond(interaction, f"🚫 Cancelled job `{cancelled.id}`.{note}")

    @cancel.autocomplete("job")
    async def _cancel_autocomplete(
        self, interaction: discord.Interaction[EaselBot], current: str
    ) -> list[app_commands.Choice[str]]:
        active = await self.bot.jobs.store.active_for_member(interaction.guild_id, interaction.user.id)
        return [
            app_commands.Choice(name=f"{j.id} · {feature_title(j.feature)} · {j.status.value}"[:100], value=j.id)
            for j in active
            if current.lower() in j.id
        ][:25]

    # Buttons on results

    async def on_details(self, interaction: discord.Interaction[EaselBot], job_id: str, _arg: str | None) -> None:
        job = await self.bot.jobs.store.get(job_id)
        if job is None or not can_see_result(job, Actor.of(interaction)):
            raise NotFound("This result's job no longer exists.")
        await respond(interaction, embed=details_embed(job))

    async def on_delete(self, interaction: discord.Interaction[EaselBot], job_id: str, _arg: str | None) -> None:
        job = await self.bot.jobs.store.get(job_id)
        if not can_delete_result(job, Actor.of(interaction)):
            raise NotAllowed("Only the member who asked for this, or a server moderator, can delete it.")
        await interaction.response.defer(ephemeral=True, thinking=True)
        # Every part of the result, not just the message holding the buttons.
        parts = await self.bot.jobs.store.messages(job_id) if job is not None else []
        if interaction.message is not None and interaction.channel_id is not None:
            parts.append((interaction.channel_id, interaction.message.id))
        for channel_id, message_id in dict.fromkeys(parts):
            with contextlib.suppress(discord.NotFound):
                await self.bot.http.delete_message(channel_id, message_id)
        if job is not None:
            await self.bot.jobs.files.remove_results(job.id)
        await respond(interaction, "🗑️ Deleted.")


async def setup(bot: EaselBot) -> None:
    await bot.add_cog(Jobs(bot))
