"""The work behind /style's model and training-set commands (cogs/styles.py holds the commands themselves):
Flair's free calls, showing a set, checking and stopping trainings, and deleting a member's things at Flair.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import discord

from bot import limits
from bot.app import EaselBot
from bot.errors import BadInput, FeatureUnavailable, NotAllowed
from bot.jobs.access import Actor
from bot.jobs.model import Job, JobStatus
from bot.providers.base import NotFoundAtProvider, ProviderError
from bot.providers.flair import TRAINING, FlairAdapter, FlairClient, TooLateToCancel
from bot.quotas import QuotaLedger
from bot.styles import StyleModel, StyleRepository
from bot.training import Rules, TrainingSet, flow, menu
from bot.tree import respond

log = logging.getLogger(__name__)

PROVIDER = "flair"
CANCEL_WAIT_S = 10.0  # how long /style cancel waits for the job to end after Flair stopped it


def _state(job: Job) -> str:
    status = job.status
    if status is JobStatus.RUNNING:
        return "training" + (f" {job.progress:.0f}%" if job.progress is not None else "")
    if status in (JobStatus.QUEUED, JobStatus.SUBMITTING, JobStatus.SUBMITTED):
        return "starting"
    return {JobStatus.SUCCEEDED: "trained", JobStatus.EXPIRED: "timed out"}.get(status, status.value)


class StyleWork:
    def __init__(self, bot: EaselBot, repo: StyleRepository, rules: Rules) -> None:
        self.bot = bot
        self.repo = repo
        self.rules = rules

    @property
    def flair(self) -> FlairClient:
        adapter = self.bot.jobs.adapters.get(PROVIDER)
        if not isinstance(adapter, FlairAdapter):
            raise FeatureUnavailable("Flair is not switched on in this Easel.")
        return adapter.api

    async def call(self, what: str, call: Any) -> Any:
        """A free Flair call on the member's behalf; its failure is told plainly (no key, no URL in it)."""
        try:
            return await call
        except ProviderError as exc:
            raise FeatureUnavailable(f"Flair could not {what} just now ({exc.kind.value}); please try again.") from exc

    async def set_of(self, style: StyleModel) -> TrainingSet:
        found = await self.repo.training_set(style)
        if found is None:  # a model created before its set (a crash between the two): give it one
            owner = f"s:{style.id}"
            found = await self.repo.sets.create_set(
                self.rules.studio, style.guild_id, owner, style.user_id, name=style.name
            ) or await self.repo.sets.open_set(self.rules.studio, style.guild_id, owner)
        assert found is not None
        return found

    async def training_cost(self, guild_id: int | None) -> int:
        ledger = self.bot.ledger
        if isinstance(ledger, QuotaLedger):
            return (await ledger.costs(guild_id)).get(TRAINING, 0)
        return 0

    async def show_set(
        self, interaction: discord.Interaction[EaselBot], style: StyleModel, training_set: TrainingSet, head: str
    ) -> None:
        images = await self.repo.sets.images(training_set.id)
        count = len(images)
        lines = [head, f"**{count}** {self.rules.noun}{'s' if count != 1 else ''} ({self.rules.limits_text()})."]
        lines += flow.count_advice(self.rules, count)
        if not images:
            lines.append(f"Add images with `/style add`, or **{menu.MENU_NAME}** on your own message.")
            await respond(interaction, "\n".join(lines))
            return
        sheet, missing = await flow.contact_sheet(self.bot.jobs.files, images)
        if missing:
            lines.append(f"❗ Images {', '.join(map(str, missing))} are no longer stored: remove and add them again.")
        lines.append("Remove images by number with `/style remove numbers: 3, 7-9`.")
        await respond(
            interaction,
            "\n".join(lines)[: limits.MESSAGE_CONTENT_LIMIT],
            file=discord.File(io.BytesIO(sheet), filename="style_set.jpg"),
        )

    async def check_trainable(self, style: StyleModel) -> int:
        active = await self.repo.active_training(style)
        if active is not None:
            raise NotAllowed(f"**{style.name}** is already training (job `{active.id}`): `/style trainings`.")
        images = await self.repo.sets.images((await self.set_of(style)).id)
        if len(images) < self.rules.min_images:
            raise BadInput(
                f"**{style.name}** has {self.rules.plural(len(images))}; training needs at least "
                f"{self.rules.min_images} ({self.rules.recommended_images} or more recommended). Add more with "
                "`/style add`."
            )
        return len(images)

    async def stop(self, interaction: discord.Interaction[EaselBot], job: Job) -> str:
        """Stop a training: the engine while it is still queued; Flair itself once it has it."""
        model_id, training_id = job.ref.get("model_id"), job.ref.get("training_id")
        if job.status is JobStatus.QUEUED or not training_id or not model_id:
            try:
                await self.bot.jobs.cancel(job.id, actor=Actor.of(interaction))
            except NotAllowed as exc:
                return f"⚠️ {exc.message}"
            return f"⏹️ Cancelled the training `{job.id}`; its credits were refunded."
        try:
            await self.call("cancel the training", self.flair.cancel_training(str(model_id), str(training_id)))
        except FeatureUnavailable as exc:
            if isinstance(exc.__cause__, TooLateToCancel):
                return (
                    f"⚠️ Too late: Flair had already finished the training `{job.id}`. It is delivered as usual and "
                    "its credits stay spent."
                )
            raise
        self.bot.jobs.scheduler.schedule(job.id)  # its next check sees the cancel, ends it and refunds it
        await self.bot.jobs.wait_ended(job.id, CANCEL_WAIT_S)
        return f"⏹️ Cancelled the training `{job.id}` at Flair; its credits are refunded."

    async def forget_at_flair(self, style: StyleModel) -> None:
        """Its training images (permanent at Flair) and the model (soft-deleted there)."""
        api = self.flair
        for item in await self.call("list the images", api.list_data(style.flair_model_id)):
            await self.call("delete an image", api.delete_data(style.flair_model_id, item.data_id))
        await self.call("delete the model", api.delete_model(style.flair_model_id))

    async def erase_member(self, guild_id: int | None, user_id: int) -> int:
        """/forget-me: the member's style models, training images and predictions, here and at Flair. The
        deletions at Flair are recorded first and retried until done, so Flair being down never fails (or
        half-does) the member's erase."""
        if guild_id is None:
            return 0
        styles = await self.repo.of_member(guild_id, user_id)
        for style in styles:
            await self.repo.owe_erasure("model", style.flair_model_id)
        for prediction_id in await self.repo.member_predictions(guild_id, user_id):
            await self.repo.owe_erasure("prediction", prediction_id)
        for style in styles:
            await self.repo.delete(style)
        await self.repo.forget_member_jobs(guild_id, user_id)
        await self.settle_erasures()
        return len(styles)

    async def settle_erasures(self) -> int:
        """Carry out the deletions owed at Flair; those that fail stay for the next try. Returns those left."""
        left = 0
        for kind, item_id in await self.repo.owed_erasures():
            try:
                if kind == "model":
                    for item in await self.flair.list_data(item_id):
                        await self.flair.delete_data(item_id, item.data_id)
                    await self.flair.delete_model(item_id)
                else:
                    await self.flair.delete_prediction(item_id)
            except NotFoundAtProvider:
                pass  # already gone there: done
            except ProviderError as exc:
                log.warning("Flair could not delete %s %s now (%s); will retry", kind, item_id, exc.kind.value)
                left += 1
                await self.repo.erased(kind, item_id, done=False)
                continue
            await self.repo.erased(kind, item_id, done=True)
        return left

    async def remove_images(self, style: StyleModel, training_set: TrainingSet, shas: list[str]) -> int:
        """Images already at Flair are deleted there too, so the next training learns from the set as it is."""
        uploaded = await self.repo.uploads(style.flair_model_id)
        for sha in shas:
            if sha in uploaded:
                await self.call("delete the image", self.flair.delete_data(style.flair_model_id, uploaded[sha]))
                await self.repo.forget_upload(style.flair_model_id, sha)
        return await self.repo.sets.remove_images(training_set.id, shas)

    async def trainings_embed(self, style: StyleModel) -> discord.Embed:
        """Progress and history: each training's state, settings and trigger word."""
        lines = []
        for job in await self.repo.trainings(style):
            line = f"`{job.id}` <t:{int(job.created_at)}:f> — {_state(job)}"
            line += f" — strength {job.params.get('strength', '—')}, {job.params.get('images', '?')} images"
            if job.status is JobStatus.SUCCEEDED and job.meta.get("trigger_word"):
                line += f" — trigger word **{job.meta['trigger_word']}**"
            if job.error and job.status.final and job.status is not JobStatus.SUCCEEDED:
                line += f" — {job.error[:80]}"
            lines.append(line)
        embed = discord.Embed(
            title=f"Style model {style.name}",
            description="\n".join(lines)[: limits.EMBED_DESCRIPTION_LIMIT] or "Not trained yet: `/style train`.",
            colour=discord.Colour.blurple(),
        )
        embed.add_field(name="Owner", value="the server" if style.server_owned else f"<@{style.user_id}>")
        embed.add_field(name="Usable", value="yes" if await self.repo.trained(style) else "not yet")
        embed.set_footer(text=f"Style {style.id}")
        return embed

    async def models_embed(self, styles: list[StyleModel]) -> discord.Embed:
        lines = []
        for style in styles:
            trained = await self.repo.trained(style)
            active = await self.repo.active_training(style)
            state = "training" if active else ("ready" if trained else "not trained")
            word = f", trigger word **{trained.trigger_word}**" if trained and trained.trigger_word else ""
            whose = "server" if style.server_owned else "yours"
            lines.append(f"`{style.id}` **{style.name}** ({whose}) — {state}{word}")
        return discord.Embed(
            title="Style models",
            description="\n".join(lines)[: limits.EMBED_DESCRIPTION_LIMIT],
            colour=discord.Colour.blurple(),
        )
