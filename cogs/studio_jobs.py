"""Starting jobs by what the member wants: route to a studio, build its parameters and the fall-over
Alternatives, create the job, and tell the member anything routing decided for them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import discord

from bot.app import EaselBot
from bot.errors import BadInput, NotAllowed
from bot.jobs.engine import NewInput
from bot.providers.routing import NoStudio, Route, Router
from bot.storage.studios import StudioDefaults
from bot.tree import respond
from cogs.studio_options import ImageOptions, fits_upscale, image_params, upscale_params

LARGEST_FACTOR = {"mimipanda": 4}  # studios with a factor choice: their largest


def _or_none(build: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], int] | None:
    """Parameters for an alternative, or None when the member's options do not fit that studio."""
    try:
        return build(), 1
    except BadInput:
        return None


class StudioJobs:
    def __init__(self, bot: EaselBot) -> None:
        self.bot = bot
        self.router = Router(bot.enabled_providers)
        self.defaults = StudioDefaults(bot.db)

    async def route(self, kind: str, guild_id: int | None, choice: str | None = None) -> Route:
        try:
            return self.router.route(kind, member_choice=choice, server_default=await self.defaults.get(guild_id, kind))
        except NoStudio as exc:
            raise NotAllowed(str(exc)) from exc

    async def costs(self, guild_id: int | None) -> dict[str, int]:
        costs = getattr(self.bot.ledger, "costs", None)  # a ledger without quotas charges nothing
        return dict(await costs(guild_id)) if costs is not None else {}

    async def start_image(
        self,
        interaction: discord.Interaction[EaselBot],
        options: ImageOptions,
        choice: str | None,
        parent_job: str | None = None,
    ) -> None:
        route = await self.route("image", interaction.guild_id, choice)
        params = image_params(route.studio, options)  # refuses options that do not fit, before any spend
        alternatives = route.alternatives(lambda studio, _f: _or_none(lambda: image_params(studio, options)))
        await self.bot.jobs.create(
            interaction,
            feature=route.feature,
            provider=route.studio,
            params=params,
            parent_job=parent_job,
            alternatives=alternatives,
        )
        if route.note:
            await respond(interaction, route.note)

    async def start_upscale(
        self,
        interaction: discord.Interaction[EaselBot],
        route: Route,
        upload: NewInput,
        factor: int | None,
        parent_job: str | None = None,
        *,
        largest: bool = False,
    ) -> None:
        """`largest`: no factor was asked for; each studio makes its largest (Mimi Panda: 4x where it can)."""
        width, height, size = upload.info.width, upload.info.height, len(upload.data)

        def factor_at(studio: str) -> int | None:
            return LARGEST_FACTOR.get(studio) if largest else factor

        params, note = upscale_params(route.studio, factor_at(route.studio), width, height)
        if largest:
            note = None  # nothing was promised, so nothing to correct

        def alternative(studio: str) -> tuple[dict[str, Any], int] | None:
            if not fits_upscale(studio, size, width, height):
                return None
            return _or_none(lambda: upscale_params(studio, factor_at(studio), width, height)[0])

        await self.bot.jobs.create(
            interaction,
            feature=route.feature,
            provider=route.studio,
            params=params,
            inputs=[upload],
            parent_job=parent_job,
            alternatives=route.alternatives(lambda studio, _f: alternative(studio)),
        )
        for text in (route.note, note):
            if text:
                await respond(interaction, text)
