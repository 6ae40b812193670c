"""/edit fill | erase | remove-background | background: change a picture with a mask, or its background.

The mask is a second attachment (white = change; stretched to the picture when its size differs, and the
member is told) or a rectangle in percent of the picture, because drawing a mask in Discord is hard.
"""

from __future__ import annotations

import asyncio
from typing import Any

import discord
from discord import app_commands

from bot.app import EaselBot
from bot.errors import BadInput
from bot.inputs import read_image
from bot.jobs.engine import NewInput
from bot.media import MediaInfo
from bot.media.fit import has_transparency
from bot.providers.imagine.models import PROMPT_MAX
from bot.tree import defer, respond
from cogs.dynamic_commands import Opt, build
from cogs.studio_jobs import StudioJobs
from cogs.studio_options import (
    SEED_MAX,
    UPLOAD_LIMITS,
    edit_params,
    fitted_mask,
    rectangle,
    rectangle_mask,
)

Prompt = app_commands.Range[str, 3, PROMPT_MAX]
Percent = app_commands.Range[int, 0, 100]
EDIT_IMAGE_LIMIT = UPLOAD_LIMITS["imagine"][0]


def _mask_options() -> list[Opt]:
    return [
        Opt(
            "mask",
            discord.Attachment | None,
            "Black-and-white mask, white = change (or use left/top/width/height)",
            None,
        ),
        Opt("left", Percent | None, "Rectangle mask: its left edge, % of the picture's width", None),
        Opt("top", Percent | None, "Rectangle mask: its top edge, % of the picture's height", None),
        Opt("width", app_commands.Range[int, 1, 100] | None, "Rectangle mask: its width, % of the picture", None),
        Opt("height", app_commands.Range[int, 1, 100] | None, "Rectangle mask: its height, % of the picture", None),
    ]


class Edits:
    def __init__(self, bot: EaselBot, jobs: StudioJobs) -> None:
        self.bot = bot
        self.jobs = jobs

    def group(self) -> app_commands.Group:
        group = app_commands.Group(name="edit", description="Change a picture: fill, erase, cut out, new background")
        image = Opt("image", discord.Attachment, "The picture (JPG, PNG, WEBP or HEIC, up to 20 MB)")
        build(
            "fill",
            "Paint something new where the mask is",
            self.edit_fill,
            [Opt("prompt", Prompt, "What to paint in the masked area"), image, *_mask_options()],
            parent=group,
        )
        build(
            "erase",
            "Remove an object: the masked area is filled with what is around it",
            self.edit_erase,
            [image, *_mask_options()],
            parent=group,
        )
        build(
            "remove-background",
            "Cut the subject out: a PNG with a transparent background",
            self.edit_remove_background,
            [image],
            parent=group,
        )
        build(
            "background",
            "A new AI background behind a picture with a transparent background",
            self.edit_background,
            [
                Opt("prompt", Prompt, "The new background"),
                Opt("image", discord.Attachment, "A PNG or WEBP with a transparent background"),
                Opt("seed", app_commands.Range[int, 1, SEED_MAX] | None, "Same seed, same background", None),
            ],
            parent=group,
        )
        return group

    async def edit_fill(
        self, interaction: discord.Interaction[EaselBot], prompt: str, image: discord.Attachment, **mask: Any
    ) -> None:
        await self._masked_edit(interaction, "fill", prompt, image, **mask)

    async def edit_erase(
        self, interaction: discord.Interaction[EaselBot], image: discord.Attachment, **mask: Any
    ) -> None:
        await self._masked_edit(interaction, "erase", None, image, **mask)

    async def _masked_edit(
        self,
        interaction: discord.Interaction[EaselBot],
        operation: str,
        prompt: str | None,
        image: discord.Attachment,
        mask: discord.Attachment | None = None,
        left: int | None = None,
        top: int | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> None:
        await defer(interaction, ephemeral=True)
        params = edit_params(operation, prompt)
        box = rectangle(left, top, width, height)
        if (mask is None) == (box is None):
            raise BadInput(
                "Say where to change the picture with exactly one of: a `mask` attachment (white = change) "
                "**or** a rectangle (`left`, `top`, `width`, `height` in percent)"
                + (", not both." if mask is not None else ".")
            )
        route = await self.jobs.route("edit", interaction.guild_id)
        upload = await read_image(image, max_bytes=EDIT_IMAGE_LIMIT)
        w, h = upload.info.width, upload.info.height
        note = None
        if mask is not None:
            given = await read_image(mask, name="mask", max_bytes=EDIT_IMAGE_LIMIT, label="The mask")
            png, resized, anything = await asyncio.to_thread(fitted_mask, given.data, w, h)
            if not anything:
                raise BadInput(
                    "The mask has no white area, so there is nothing to change: paint white where to change."
                )
            if resized:
                note = (
                    f"ℹ️ Your mask is {given.info.width}×{given.info.height} px and the picture {w}×{h} px, so I "
                    "stretched the mask to the picture's size."
                )
        else:
            assert box is not None
            png = await asyncio.to_thread(rectangle_mask, box, w, h)
        mask_input = NewInput(name="mask", filename="mask.png", data=png, info=MediaInfo("image", "png", w, h))
        await self.bot.jobs.create(
            interaction, feature=route.feature, provider=route.studio, params=params, inputs=[upload, mask_input]
        )
        if note:
            await respond(interaction, note)

    async def edit_remove_background(
        self, interaction: discord.Interaction[EaselBot], image: discord.Attachment
    ) -> None:
        await defer(interaction, ephemeral=True)
        params = edit_params("remove_background", None)
        route = await self.jobs.route("edit", interaction.guild_id)
        upload = await read_image(image, max_bytes=EDIT_IMAGE_LIMIT)
        await self.bot.jobs.create(
            interaction, feature=route.feature, provider=route.studio, params=params, inputs=[upload]
        )

    async def edit_background(
        self,
        interaction: discord.Interaction[EaselBot],
        prompt: str,
        image: discord.Attachment,
        seed: int | None = None,
    ) -> None:
        await defer(interaction, ephemeral=True)
        params = edit_params("background", prompt, seed=seed)
        route = await self.jobs.route("edit", interaction.guild_id)
        upload = await read_image(image, max_bytes=EDIT_IMAGE_LIMIT, allowed=("png", "webp"))
        if not await asyncio.to_thread(has_transparency, upload.data):
            raise BadInput(
                "A new background needs a picture with a transparent background, and this one has none. "
                "Cut the subject out first with `/edit remove-background`, then use its result here."
            )
        await self.bot.jobs.create(
            interaction, feature=route.feature, provider=route.studio, params=params, inputs=[upload]
        )
