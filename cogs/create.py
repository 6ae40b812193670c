"""Commands by what members want, whichever studio makes it: /imagine, /upscale, /edit, /video.

Each command exists only when an enabled studio can do it, and its `studio` option only when more than one
can (options are decided at start-up from the enabled studios). Options that differ per studio (Imagine's
styles, each studio's aspect ratios) come by autocomplete that follows the chosen studio, and are refused
with a clear message when they do not fit it. Everything is checked before `jobs.create`, so a refused
request makes no job and costs nothing.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.app_commands import Choice
from discord.ext import commands

from bot import labels
from bot.app import EaselBot
from bot.delivery import FEATURE_TITLES
from bot.errors import BadInput
from bot.inputs import read_image
from bot.providers.imagine.choices import ASPECT_LABELS, BACKGROUND_STYLES, IMAGE_STYLES, VIDEO_ASPECTS, VIDEO_STYLES
from bot.providers.imagine.models import PROMPT_MAX
from bot.tree import defer
from cogs.dynamic_commands import Opt, build, studio_option
from cogs.edits import Edits
from cogs.mimipanda import AI_IMAGE_RATIOS
from cogs.mimipanda import Prompt as MimiPrompt
from cogs.result_actions import ResultActions
from cogs.studio_jobs import StudioJobs
from cogs.studio_options import (
    IMAGE_ASPECT_CHOICES,
    IMAGE_STYLE_CHOICES,
    SEED_MAX,
    UPLOAD_LIMITS,
    UPSCALE_LIMITS,
    ImageOptions,
    video_params,
)

TITLES = {
    "imagine_image": "Picture",
    "imagine_edit": "Edited picture",
    "imagine_upscale": "Enhanced picture",
    "imagine_video": "Video",
}
Prompt = app_commands.Range[str, 3, PROMPT_MAX]
FACTOR_CHOICES = [
    Choice(name="2x", value=2),
    Choice(name="4x (Mimi Panda: images up to 1000 px; larger ones get 2x)", value=4),
]


class Create(commands.Cog):
    def __init__(self, bot: EaselBot) -> None:
        self.bot = bot
        self.jobs = StudioJobs(bot)
        self.actions = ResultActions(bot, self.jobs)
        FEATURE_TITLES.update(TITLES)
        labels.register("style", "Style", IMAGE_STYLES | VIDEO_STYLES | BACKGROUND_STYLES)
        labels.register("aspect_ratio", "Shape", ASPECT_LABELS)
        labels.register("seed", "Seed")
        self.built: list[app_commands.Command[Any, ..., None] | app_commands.Group] = []
        router = self.jobs.router
        if image := router.studios("image"):
            self.built.append(self._imagine_command(image))
        if "mimipanda" in image:
            self.built.append(self._ai_image_command())
        if upscale := router.studios("upscale"):
            self.built.append(self._upscale_command(upscale))
        if router.studios("edit"):
            self.built.append(Edits(bot, self.jobs).group())
        if router.studios("video"):
            self.built.append(self._video_group())

    async def cog_load(self) -> None:
        for command in self.built:
            self.bot.tree.add_command(command)
        self.actions.register()

    async def cog_unload(self) -> None:
        for command in self.built:
            self.bot.tree.remove_command(command.name)
        self.actions.unregister()

    # /imagine

    def _imagine_command(self, studios: list[str]) -> app_commands.Command[Any, ..., None]:
        options = [
            Opt("prompt", Prompt, "What to picture"),
            *studio_option(studios, "draws it"),
        ]
        if any(IMAGE_STYLE_CHOICES.get(s) for s in studios):
            options.append(
                Opt(
                    "style",
                    str | None,
                    "Imagine's style (start typing; follows the studio)",
                    None,
                    autocomplete=self._style_autocomplete,
                )
            )
        options.append(
            Opt(
                "aspect_ratio",
                str | None,
                "Picture shape, e.g. 16:9 (the list follows the studio)",
                None,
                autocomplete=self._aspect_autocomplete,
            )
        )
        if "imagine" in studios:
            options.append(
                Opt("seed", app_commands.Range[int, 1, SEED_MAX] | None, "Imagine: same seed, same picture", None)
            )
            options.append(Opt("transparent", bool | None, "Imagine: a PNG with a transparent background", None))
        return build("imagine", "Make a picture from a description", self.imagine, options)

    async def imagine(
        self,
        interaction: discord.Interaction[EaselBot],
        prompt: str,
        studio: str | None = None,
        style: str | None = None,
        aspect_ratio: str | None = None,
        seed: int | None = None,
        transparent: bool | None = None,
    ) -> None:
        options = ImageOptions(
            prompt=prompt, style=style, aspect_ratio=aspect_ratio, seed=seed, transparent=bool(transparent)
        )
        await self.jobs.start_image(interaction, options, studio)

    async def _namespace_studio(self, interaction: discord.Interaction[EaselBot], kind: str) -> str:
        chosen = getattr(interaction.namespace, "studio", None)
        return (await self.jobs.route(kind, interaction.guild_id, chosen if isinstance(chosen, str) else None)).studio

    async def _style_autocomplete(self, interaction: discord.Interaction[EaselBot], current: str) -> list[Choice[str]]:
        styles = IMAGE_STYLE_CHOICES.get(await self._namespace_studio(interaction, "image"), {})
        return _matching(styles, current)

    async def _aspect_autocomplete(self, interaction: discord.Interaction[EaselBot], current: str) -> list[Choice[str]]:
        aspects = IMAGE_ASPECT_CHOICES.get(await self._namespace_studio(interaction, "image"), {})
        return _matching(aspects, current)

    # /ai-image: the old name of `/imagine studio:Mimi Panda`, kept so members' habits keep working

    def _ai_image_command(self) -> app_commands.Command[Any, ..., None]:
        options = [
            Opt("prompt", MimiPrompt, "What to picture (3-600 characters)"),
            Opt("aspect_ratio", str, "Picture shape (default square)", "1x1", AI_IMAGE_RATIOS),
        ]
        return build("ai-image", "Generate a picture from a description (Mimi Panda)", self.ai_image, options)

    async def ai_image(
        self, interaction: discord.Interaction[EaselBot], prompt: str, aspect_ratio: str = "1x1"
    ) -> None:
        options = ImageOptions(prompt=prompt, aspect_ratio=aspect_ratio.replace("x", ":"))
        await self.jobs.start_image(interaction, options, "mimipanda")

    # /upscale

    def _upscale_command(self, studios: list[str]) -> app_commands.Command[Any, ..., None]:
        options = [
            Opt("image", discord.Attachment, "JPG, PNG, WEBP or HEIC, up to 20 MB"),
            Opt(
                "factor",
                int | None,
                "2x or 4x where the studio offers it (Mimi Panda); Imagine picks its own",
                None,
                FACTOR_CHOICES,
            ),
            *studio_option(studios, "upscales it"),
        ]
        return build("upscale", "Enlarge and enhance an image with AI", self.upscale, options)

    async def upscale(
        self,
        interaction: discord.Interaction[EaselBot],
        image: discord.Attachment,
        factor: int | None = None,
        studio: str | None = None,
    ) -> None:
        await defer(interaction, ephemeral=True)
        route = await self.jobs.route("upscale", interaction.guild_id, studio)
        max_bytes, max_side = UPSCALE_LIMITS.get(route.studio, UPLOAD_LIMITS["imagine"])
        if route.studio == "imagine" and factor is not None:
            raise BadInput(
                "Imagine enhances at its own size and has no factor option; leave factor empty, "
                "or pick Mimi Panda for 2x/4x."
            )
        upload = await read_image(image, max_bytes=max_bytes, max_side=max_side)
        await self.jobs.start_upscale(interaction, route, upload, factor)

    # /video prompt | image

    def _video_group(self) -> app_commands.Group:
        group = app_commands.Group(name="video", description="Make a short video")
        aspects = [Choice(name=label, value=ratio) for ratio, label in VIDEO_ASPECTS.items()]
        style = Opt("style", app_commands.Range[str, 1, 64] | None, "Video model, e.g. kling-1.0-pro (default)", None)
        build(
            "prompt",
            "A video from a description",
            self.video_prompt,
            [
                Opt("prompt", Prompt, "What happens in the video"),
                Opt("aspect_ratio", str | None, "Video shape (default square)", None, aspects),
                style,
            ],
            parent=group,
        )
        build(
            "image",
            "Bring a picture to life",
            self.video_image,
            [
                Opt("image", discord.Attachment, "The first frame (JPG, PNG, WEBP or HEIC, up to 20 MB)"),
                Opt("prompt", Prompt, "What happens in the video"),
                style,
            ],
            parent=group,
        )
        return group

    async def video_prompt(
        self,
        interaction: discord.Interaction[EaselBot],
        prompt: str,
        aspect_ratio: str | None = None,
        style: str | None = None,
    ) -> None:
        params = video_params("text", prompt, style, aspect_ratio)
        route = await self.jobs.route("video", interaction.guild_id)
        await self.bot.jobs.create(interaction, feature=route.feature, provider=route.studio, params=params)

    async def video_image(
        self,
        interaction: discord.Interaction[EaselBot],
        image: discord.Attachment,
        prompt: str,
        style: str | None = None,
    ) -> None:
        await defer(interaction, ephemeral=True)
        params = video_params("image", prompt, style, None)
        route = await self.jobs.route("video", interaction.guild_id)
        upload = await read_image(image, max_bytes=UPLOAD_LIMITS["imagine"][0])
        await self.bot.jobs.create(
            interaction, feature=route.feature, provider=route.studio, params=params, inputs=[upload]
        )


def _matching(choices: dict[str, str], current: str) -> list[Choice[str]]:
    typed = current.strip().lower()
    return [
        Choice(name=label, value=value)
        for value, label in choices.items()
        if typed in value.lower() or typed in label.lower()
    ][:25]


async def setup(bot: EaselBot) -> None:
    await bot.add_cog(Create(bot))
