"""Making images with style models (the /style generate command's work, and its result buttons).

Not a cog of its own: `/style generate` sits in the /style group of cogs/styles.py, which hands the work here.
Buttons under a result (custom_id "ej:<action>:<job>", resolved from the database, so they survive restarts):
Again (a new seed), More like this (the same seed, guidance nudged a little), Upscale (the generic handler).
Whoever presses pays, and may only use styles they may use.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord
from pydantic import ValidationError

from bot.app import EaselBot
from bot.delivery import BUTTON_PREFIX, ButtonSpec
from bot.errors import BadInput, NotAllowed, NotFound
from bot.jobs.access import Actor
from bot.jobs.model import Job
from bot.providers.base import ProviderError
from bot.providers.flair import IMAGE, FlairClient
from bot.providers.flair.models import GUIDANCE_MAX
from bot.providers.flair.params import BlendedModel, StyleImageParams
from bot.styles import StyleModel, StyleRepository, Trained, can_use
from bot.tree import respond

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

PROVIDER = "flair"
AGAIN, MORE, UPSCALE = "sagain", "smore", "upscale"
SEED_MAX = 2**32 - 1
DEFAULT_GUIDANCE = 5.0  # Flair's own default is not documented; "more like this" nudges from here when unset
NUDGE = 0.5


@dataclass(frozen=True)
class Pick:
    style_id: str
    weight: float


def with_exact_words(prompt: str, words: list[str]) -> str:
    """A trigger word the member typed in another case is written as Flair gave it (it is matched exactly),
    rather than added a second time."""
    for word in words:
        prompt = re.sub(rf"(?<![\w]){re.escape(word)}(?![\w])", word, prompt, flags=re.IGNORECASE)
    return prompt


def new_seed() -> int:
    return secrets.randbelow(SEED_MAX + 1)


def result_buttons(costs: dict[str, int]) -> list[ButtonSpec]:
    image = costs.get(IMAGE, 1)
    per = f"{image} credit{'s' if image != 1 else ''} per image"
    upscale = costs.get("upscale", 0)
    return [
        ButtonSpec(AGAIN, f"Again · {per}", "🎲"),
        ButtonSpec(MORE, f"More like this · {per}", "🔁"),
        ButtonSpec(UPSCALE, f"Upscale · {upscale} credits", "🔍"),
    ]


class StyleImages:
    def __init__(self, bot: EaselBot, repo: StyleRepository, flair: Callable[[], FlairClient]) -> None:
        self.bot = bot
        self.repo = repo
        self.flair = flair

    async def _trained(self, style: StyleModel) -> Trained:
        trained = await self.repo.trained(style)
        if trained is None:
            active = await self.repo.active_training(style)
            when = "it is still training" if active else "train it first with `/style train`"
            raise BadInput(f"**{style.name}** cannot make images yet: {when}.")
        if trained.trigger_word is None:
            # Its job's details were erased (the member who trained a server style left): ask Flair (free).
            try:
                status = await self.flair().get_training(style.flair_model_id, trained.training_id)
            except ProviderError:
                return trained  # without its word the model still applies, only more weakly
            trained = Trained(trained.training_id, status.trigger_word, trained.job_id)
            await self.repo.remember(style, trained)
        return trained

    def install(self, costs: dict[str, int]) -> None:
        self.bot.jobs.deliverer.buttons_for[IMAGE] = result_buttons(costs)
        self.bot.components.register(BUTTON_PREFIX, AGAIN, self.on_again)
        self.bot.components.register(BUTTON_PREFIX, MORE, self.on_more)

    def uninstall(self) -> None:
        self.bot.jobs.deliverer.buttons_for.pop(IMAGE, None)
        self.bot.components.unregister(BUTTON_PREFIX, AGAIN)
        self.bot.components.unregister(BUTTON_PREFIX, MORE)

    async def _usable(self, style_id: str, actor: Actor) -> StyleModel:
        style = await self.repo.get(style_id.strip())
        if style is None or not can_use(style, actor):
            shown = "".join(c for c in style_id if c.isalnum())[:20]
            raise NotFound(f"No such style model you can use: `{shown}`. `/style models` lists them.")
        return style

    async def build(
        self, actor: Actor, picks: Sequence[Pick], prompt: str, options: dict[str, Any]
    ) -> tuple[dict[str, Any], list[str]]:
        """The job's params (validated against Flair's ranges) and the style ids; BadInput naming the rule."""
        if len({p.style_id.strip() for p in picks}) != len(picks):
            raise BadInput("The same style is chosen twice: pick each style once and give it one weight.")
        if all(p.weight == 0 for p in picks):
            raise BadInput("Every weight is 0: give at least one style a weight above 0 (up to 2).")
        blended: list[BlendedModel] = []
        names: list[str] = []
        for pick in picks:
            style = await self._usable(pick.style_id, actor)
            trained = await self._trained(style)
            blended.append(
                BlendedModel(
                    model_id=style.flair_model_id,
                    training_id=trained.training_id,
                    scale=pick.weight,
                    trigger_word=trained.trigger_word,
                )
            )
            names.append(f"{style.name} ×{pick.weight:g}")
        text = with_exact_words(" ".join(prompt.split()), [m.trigger_word for m in blended if m.trigger_word])
        if not text:
            raise BadInput("Describe the picture you want, e.g. “a lighthouse at dusk”.")
        try:
            params = StyleImageParams(prompt=text, models=blended, **options)
            final = params.full_prompt()
            params = params.model_copy(update={"prompt": final})
            StyleImageParams.model_validate(params.model_dump())  # the final prompt must fit too
        except ValidationError as exc:
            fields = ", ".join(sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]}))
            raise BadInput(f"That request is outside what Flair accepts ({fields}).") from exc
        ids = [p.style_id.strip() for p in picks]
        # "styles" first: the result's embed shows the first few parameters, and the names matter most there.
        return {"styles": " + ".join(names), **params.model_dump(), "_style_ids": ids}, ids

    async def create(
        self,
        interaction: discord.Interaction[EaselBot],
        params: dict[str, Any],
        style_ids: list[str],
        *,
        parent: str | None = None,
    ) -> Job:
        job = await self.bot.jobs.create(
            interaction,
            feature=IMAGE,
            provider=PROVIDER,
            params=params,
            units=int(params.get("num_images") or 1),
            parent_job=parent,
        )
        await self.repo.record_image_job(job, style_ids)
        await respond(interaction, f"🖌️ The prompt sent to Flair: “{params['prompt']}”")
        return job

    # Result buttons

    async def _from_job(self, interaction: discord.Interaction[EaselBot], job_id: str) -> tuple[Job, list[Pick]]:
        job = await self.bot.jobs.store.get(job_id)
        if job is None or job.feature != IMAGE or job.guild_id != interaction.guild_id or not job.params:
            raise NotFound("That style image is no longer known here.")
        ids = [str(i) for i in job.params.get("_style_ids", [])]
        scales = [float(m.get("scale", 1.0)) for m in job.params.get("models", [])]
        if not ids or len(ids) != len(scales):
            raise NotFound("That style image is no longer known here.")
        return job, [Pick(i, s) for i, s in zip(ids, scales, strict=True)]

    async def _repeat(self, interaction: discord.Interaction[EaselBot], job_id: str, *, same_seed: bool) -> None:
        job, picks = await self._from_job(interaction, job_id)
        old = job.params
        # The member's own words: the trigger words are put in again from the styles' current trainings.
        options: dict[str, Any] = {
            k: old.get(k) for k in ("width", "height", "num_images", "output_format", "guidance_scale", "steps")
        }
        if same_seed:
            if old.get("seed") is None:
                raise NotAllowed("That image had no recorded seed, so it cannot be varied: use Again.")
            options["seed"] = old["seed"]
            guidance = float(old.get("guidance_scale") or DEFAULT_GUIDANCE)
            options["guidance_scale"] = guidance + NUDGE if guidance + NUDGE <= GUIDANCE_MAX else guidance - NUDGE
        else:
            options["seed"] = new_seed()
        params, ids = await self.build(Actor.of(interaction), picks, str(old.get("prompt", "")), options)
        await self.create(interaction, params, ids, parent=job.id)

    async def on_again(self, interaction: discord.Interaction[EaselBot], job_id: str, _arg: str | None) -> None:
        await self._repeat(interaction, job_id, same_seed=False)

    async def on_more(self, interaction: discord.Interaction[EaselBot], job_id: str, _arg: str | None) -> None:
        await self._repeat(interaction, job_id, same_seed=True)
