"""Buttons on results, resolved from their custom_id (so they survive restarts), each stating its cost:
- **Again** (`ej:im-again:<job>`): the same text-to-image request with a new seed;
- **Edit prompt** (`ej:im-prompt:<job>`): a modal with the prompt, then the same request with the new one;
- **Upscale** (`ej:upscale:<job>[:<position>]`): upscale one result image of ANY job with the server's
  upscale studio; other features put this button on their results (`upscale_button()`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import discord

from bot.app import EaselBot
from bot.delivery import ButtonSpec, button_id
from bot.errors import BadInput, NotFound
from bot.inputs import check_image_bytes
from bot.jobs.engine import NewInput
from bot.jobs.model import Job, JobStatus, ResultRecord
from bot.tree import defer, respond
from cogs.studio_jobs import StudioJobs
from cogs.studio_options import UPSCALE_LIMITS, image_options_of, new_seed

AGAIN, EDIT_PROMPT, PROMPT_SET = "im-again", "im-prompt", "im-prompt-set"
UPSCALE, UPSCALE_PICK = "upscale", "upscale-pick"
TEXT_TO_IMAGE = ("imagine_image", "ai_image")
PROMPT_FIELD = "prompt"


def credits_label(label: str, cost: int) -> str:
    return f"{label} · " + ("free" if cost == 0 else f"{cost} credit{'s' if cost != 1 else ''}")


def upscale_button(label: str, cost: int, position: int | None = None) -> ButtonSpec:
    """The generic Upscale button, for any feature's results (`position`: which result image)."""
    return ButtonSpec(UPSCALE, credits_label(label, cost), "🔍", arg=None if position is None else str(position))


async def upscale_button_for(bot: EaselBot, guild_id: int | None, position: int | None = None) -> ButtonSpec | None:
    """The Upscale button for another feature's result (e.g. in its `deliverer.button_makers` entry), labelled
    with what the server's upscale studio costs there; None when no studio that upscales is on."""
    jobs = StudioJobs(bot)
    if not jobs.router.studios("upscale"):
        return None
    route = await jobs.route("upscale", guild_id)
    return upscale_button("Upscale", (await jobs.costs(guild_id)).get(route.feature, 0), position)


def _modal_value(components: list[Any], custom_id: str) -> str | None:
    """A field's value in a modal submit, whether its rows are action rows or labels."""
    for component in components:
        if not isinstance(component, dict):
            continue
        if component.get("custom_id") == custom_id and "value" in component:
            return str(component["value"])
        nested = component.get("components") or ([component["component"]] if "component" in component else [])
        found = _modal_value(nested, custom_id)
        if found is not None:
            return found
    return None


class ResultActions:
    def __init__(self, bot: EaselBot, jobs: StudioJobs) -> None:
        self.bot = bot
        self.jobs = jobs
        self._makers = {
            "imagine_image": self._image_buttons,
            "ai_image": self._image_buttons,
            "imagine_edit": self._edit_buttons,
        }

    def register(self) -> None:
        router = self.bot.components
        router.register("ej", AGAIN, self.on_again)
        router.register("ej", EDIT_PROMPT, self.on_edit_prompt)
        router.register("ej", PROMPT_SET, self.on_prompt_set)
        router.register("ej", UPSCALE, self.on_upscale)
        router.register("ej", UPSCALE_PICK, self.on_upscale_pick)
        self.bot.jobs.deliverer.button_makers.update(self._makers)

    def unregister(self) -> None:
        for action in (AGAIN, EDIT_PROMPT, PROMPT_SET, UPSCALE, UPSCALE_PICK):
            self.bot.components.unregister("ej", action)
        for feature in self._makers:
            self.bot.jobs.deliverer.button_makers.pop(feature, None)

    # Buttons on results, labelled with this server's costs

    async def _image_buttons(self, job: Job) -> list[ButtonSpec]:
        if job.provider not in self.jobs.router.studios("image"):  # e.g. another feature's test studio
            return list(self.bot.jobs.deliverer.buttons_for.get(job.feature, []))
        cost = (await self.jobs.costs(job.guild_id)).get(job.feature, 0)
        mine = [
            ButtonSpec(AGAIN, credits_label("Again", cost), "🔁"),
            ButtonSpec(EDIT_PROMPT, credits_label("Edit prompt", cost), "✏️"),
        ]
        if job.feature == "ai_image":  # Mimi Panda's own chain buttons (coloring, paint-by-numbers, upscale) stay
            return [*self.bot.jobs.deliverer.buttons_for.get(job.feature, []), *mine]
        return [*mine, *await self._upscale_buttons(job)]

    async def _edit_buttons(self, job: Job) -> list[ButtonSpec]:
        return await self._upscale_buttons(job)

    async def _upscale_buttons(self, job: Job) -> list[ButtonSpec]:
        button = await upscale_button_for(self.bot, job.guild_id)
        return [button] if button is not None else []

    # Again, Edit prompt

    async def _image_job(self, job_id: str) -> Job:
        job = await self.bot.jobs.store.get(job_id)
        if job is None or job.feature not in TEXT_TO_IMAGE or not job.params.get("prompt"):
            raise NotFound("This picture's request is no longer known (it may have been deleted).")
        return job

    async def on_again(self, interaction: discord.Interaction[EaselBot], job_id: str, _arg: str | None) -> None:
        job = await self._image_job(job_id)
        options = image_options_of(job.feature, job.params)
        if job.provider == "imagine":
            options = options.model_copy(update={"seed": new_seed()})
        await self.jobs.start_image(interaction, options, job.provider, parent_job=job.id)

    async def on_edit_prompt(self, interaction: discord.Interaction[EaselBot], job_id: str, _arg: str | None) -> None:
        job = await self._image_job(job_id)
        modal = discord.ui.Modal(title="Edit the prompt", custom_id=button_id(PROMPT_SET, job.id), timeout=None)
        modal.add_item(
            discord.ui.TextInput(
                label="Prompt",
                custom_id=PROMPT_FIELD,
                style=discord.TextStyle.paragraph,
                default=str(job.params["prompt"])[:2000],
                min_length=3,
                max_length=2000,
            )
        )
        await interaction.response.send_modal(modal)
        modal.stop()  # answered by the component router from the custom_id, not by this in-memory modal

    async def on_prompt_set(self, interaction: discord.Interaction[EaselBot], job_id: str, _arg: str | None) -> None:
        job = await self._image_job(job_id)
        data: dict[str, Any] = interaction.data or {}  # type: ignore[assignment]
        prompt = _modal_value(list(data.get("components") or []), PROMPT_FIELD)
        if not prompt or not prompt.strip():
            raise BadInput("The prompt is empty: write what to picture.")
        options = image_options_of(job.feature, job.params).model_copy(update={"prompt": prompt.strip()})
        if job.provider == "imagine":
            options = options.model_copy(update={"seed": new_seed()})
        await self.jobs.start_image(interaction, options, job.provider, parent_job=job.id)

    # Upscale (any job's result image)

    async def _images(self, job_id: str) -> list[ResultRecord]:
        job = await self.bot.jobs.store.get(job_id)
        if job is None or job.status is not JobStatus.SUCCEEDED:
            raise NotFound("This result's job no longer exists.")
        return [
            r for r in await self.bot.jobs.store.results(job_id) if r.kind == "image" and r.send and r.label != "legend"
        ]

    async def on_upscale(self, interaction: discord.Interaction[EaselBot], job_id: str, arg: str | None) -> None:
        images = await self._images(job_id)
        if not images:
            raise NotFound("This result has no image left to upscale (it may have been deleted).")
        if arg is None and len(images) > 1:
            select: discord.ui.Select[discord.ui.View] = discord.ui.Select(
                custom_id=button_id(UPSCALE_PICK, job_id),
                placeholder="Which image?",
                options=[
                    discord.SelectOption(label=f"Image {n}", value=str(r.position))
                    for n, r in enumerate(images[:25], start=1)
                ],
            )
            view = discord.ui.View(timeout=None)
            view.add_item(select)
            await respond(interaction, f"This result has {len(images)} images: which one should I upscale?", view=view)
            view.stop()
            return
        await self._upscale(interaction, job_id, images, arg)

    async def on_upscale_pick(self, interaction: discord.Interaction[EaselBot], job_id: str, _arg: str | None) -> None:
        data: dict[str, Any] = interaction.data or {}  # type: ignore[assignment]
        values = data.get("values") or []
        if not values:
            raise BadInput("Pick one of the images in the list.")
        await self._upscale(interaction, job_id, await self._images(job_id), str(values[0]))

    async def _upscale(
        self, interaction: discord.Interaction[EaselBot], job_id: str, images: list[ResultRecord], arg: str | None
    ) -> None:
        if arg is not None and not arg.isdigit():
            raise BadInput("That image is not part of this result.")
        record = images[0] if arg is None else next((r for r in images if r.position == int(arg)), None)
        if record is None:
            raise BadInput("That image is not part of this result.")
        path = self.bot.jobs.files.resolve(record.path)
        if not path.exists():
            raise NotFound("That image is no longer stored (the result may have been deleted).")
        await defer(interaction, ephemeral=True)
        route = await self.jobs.route("upscale", interaction.guild_id)
        max_bytes, max_side = UPSCALE_LIMITS.get(route.studio, (20 * 1024 * 1024, None))
        data = await asyncio.to_thread(path.read_bytes)
        info = await check_image_bytes(data, label="That image", max_bytes=max_bytes, max_side=max_side)
        upload = NewInput(name="image", filename=record.filename, data=data, info=info)
        # No factor asked: each studio its largest (Mimi Panda 4x where it can, 2x above 1000 px).
        await self.jobs.start_upscale(interaction, route, upload, None, parent_job=job_id, largest=True)
