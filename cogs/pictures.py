"""Coloring pages, paint-by-numbers and photo filters, by what members want, from whichever studio makes them:
Mimi Panda (paid) or Easel's own studio (free, on this machine). `/coloring photo`, `/paint-by-numbers` and
`/ai-filter` get a `studio` option when both are on; options of one studio are refused, clearly, for the other.
Mimi Panda's own handling (its request models, buttons) stays in cogs/mimipanda.py; this cog routes to it.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.app_commands import Choice
from discord.ext import commands

from bot import labels
from bot.app import EaselBot
from bot.delivery import FEATURE_TITLES, ButtonSpec
from bot.errors import BadInput, NotAllowed
from bot.inputs import read_image
from bot.jobs.engine import Alternative
from bot.providers.mimipanda_models import MAX_UPLOAD_BYTES
from bot.providers.routing import Route, studio_name
from bot.tree import defer, respond
from cogs.dynamic_commands import Opt, build, studio_option
from cogs.mimipanda import (
    AI_COLORING_RATIOS,
    ART_STYLE_CHOICES,
    DETAILS_CHOICES,
    GRADIENT_CHOICES,
    PBN_FILE,
    PBN_FILES,
    PRECISION_CHOICES,
    SEGMENT_CHOICES,
    STRENGTH_CHOICES,
    STYLE_CHOICES,
    TYPE_CHOICES,
    VERSION_CHOICES,
    MimiPanda,
    Prompt,
    send_result_file,
)
from cogs.result_actions import upscale_button_for
from cogs.studio_jobs import StudioJobs

LOCAL = "local"
MIMI = "mimipanda"
LOCAL_PBN_FILES = ("svg", "pdf", "csv", "gpl")
LOCAL_MAX_SIDE = 8000  # the studio decodes at most 40 MP and works at ~1024 px anyway
LOCAL_STYLES = [
    Choice(name="Simple: big areas, bold outlines (default)", value="simple"),
    Choice(name="Detailed: more areas and lines", value="detailed"),
    Choice(name="Bold: few big areas, thick lines", value="bold"),
]
PAPER = [Choice(name="A4 (default)", value="a4"), Choice(name="Letter", value="letter")]
LOCAL_DETAIL = [
    Choice(name="Low: fewer, bigger areas", value="low"),
    Choice(name="Normal (default)", value="normal"),
    Choice(name="High: more, smaller areas", value="high"),
]
LOCAL_FILTERS = {
    "pencil": "Pencil sketch",
    "watercolor": "Watercolour",
    "oil": "Oil painting",
    "cartoon": "Cartoon",
    "posterize": "Posterise",
}
TITLES = {
    "local_coloring": "Coloring page",
    "local_pbn": "Paint-by-numbers",
    "local_upscale": "Upscaled image",
    "local_filter": "Filtered image",
}
# Options only one studio has: refused (with the alternative named) when the other studio makes the job.
MIMI_ONLY = {
    "coloring": ("version", "type"),
    "pbn": (
        "prompt",
        "segments",
        "gradient",
        "precision",
        "details",
        "palette",
        "palette_colors",
        "mix_palette",
        "art_style",
        "min_area",
    ),
}
LOCAL_ONLY = {"coloring": ("style", "paper"), "pbn": ("detail",)}


def _canvas_inches(canvas: str | None) -> tuple[float, float] | None:
    if canvas is None:
        return None
    parts = canvas.lower().replace(" ", "").split("x")
    try:
        width, height = (float(p) for p in parts)
    except ValueError as exc:
        raise BadInput("`canvas` is width x height in inches, e.g. `12x16`.") from exc
    if not (4 <= width <= 45 and 4 <= height <= 45):
        raise BadInput("Each canvas side must be between 4 and 45 inches.")
    return width, height


def _refuse_foreign(kind: str, studio: str, given: dict[str, Any]) -> None:
    foreign = MIMI_ONLY.get(kind, ()) if studio == LOCAL else LOCAL_ONLY.get(kind, ())
    used = [name for name in foreign if given.get(name) not in (None, False)]
    if used:
        other = "Mimi Panda" if studio == LOCAL else "Easel's own studio"
        raise BadInput(
            f"{studio_name(studio)} has no {', '.join(f'`{u}`' for u in used)} option (that is {other}'s): "
            f"pick {other} as the studio, or leave {'it' if len(used) == 1 else 'them'} empty."
        )


class Pictures(commands.Cog):
    def __init__(self, bot: EaselBot) -> None:
        self.bot = bot
        self.jobs = StudioJobs(bot)
        FEATURE_TITLES.update(TITLES)
        labels.register("style", "Style", {c.value: c.name.split(":")[0] for c in LOCAL_STYLES})
        labels.register("paper", "Paper", {"a4": "A4", "letter": "Letter"})
        labels.register("detail", "Detail", {c.value: c.name.split(":")[0].split(" (")[0] for c in LOCAL_DETAIL})
        labels.register("colors", "Colours")
        labels.register("canvas_inches", "Canvas (inches)")
        labels.register("filter", "Filter", LOCAL_FILTERS)
        labels.register("strength", "Strength")
        for feature in ("local_coloring", "local_upscale", "local_filter"):
            bot.jobs.deliverer.button_makers[feature] = self._upscale_button
        bot.jobs.deliverer.buttons_for["local_pbn"] = [
            ButtonSpec(PBN_FILE, label, "📄" if kind in ("svg", "pdf") else "🎨", arg=kind)
            for kind, label in PBN_FILES.items()
            if kind in LOCAL_PBN_FILES
        ]
        router = self.jobs.router
        self.built: list[app_commands.Command[Any, ..., None] | app_commands.Group] = []
        coloring = router.studios("coloring")
        if coloring or MIMI in bot.enabled_providers:
            self.built.append(self._coloring_group(coloring))
        if pbn := router.studios("pbn"):
            self.built.append(self._pbn_command(pbn))
        if filters := router.studios("filter"):
            self.built.append(self._filter_command(filters))

    async def _upscale_button(self, job: Any) -> list[ButtonSpec]:
        button = await upscale_button_for(self.bot, job.guild_id)
        return [button] if button is not None else []

    async def on_result_file(self, interaction: discord.Interaction[EaselBot], job_id: str, kind: str | None) -> None:
        await send_result_file(self.bot, interaction, job_id, kind)

    async def cog_load(self) -> None:
        for command in self.built:
            self.bot.tree.add_command(command)
        if MIMI not in self.bot.enabled_providers:  # else Mimi Panda's cog answers the same buttons
            self.bot.components.register("ej", PBN_FILE, self.on_result_file)

    async def cog_unload(self) -> None:
        for command in self.built:
            self.bot.tree.remove_command(command.name)
        if MIMI not in self.bot.enabled_providers:
            self.bot.components.unregister("ej", PBN_FILE)

    @property
    def mimi(self) -> MimiPanda:
        cog = self.bot.get_cog("MimiPanda")
        if not isinstance(cog, MimiPanda):
            raise NotAllowed("Mimi Panda is not switched on in this Easel.")
        return cog

    async def _local_job(
        self,
        interaction: discord.Interaction[EaselBot],
        route: Route,
        params: dict[str, Any],
        image: discord.Attachment,
        alternatives: list[Alternative] | None = None,
    ) -> None:
        upload = await read_image(image, max_bytes=MAX_UPLOAD_BYTES, max_side=LOCAL_MAX_SIDE)
        await self.bot.jobs.create(
            interaction,
            feature=route.feature,
            provider=route.studio,
            params=params,
            inputs=[upload],
            alternatives=alternatives or [],
        )
        if route.note:
            await respond(interaction, route.note)

    # /coloring photo | prompt

    def _coloring_group(self, studios: list[str]) -> app_commands.Group:
        group = app_commands.Group(name="coloring", description="Coloring pages from your photo or from a prompt")
        if studios:
            options = [Opt("image", discord.Attachment, "JPG, PNG, WEBP or HEIC, up to 20 MB")]
            options += studio_option(studios, "draws it")
            if MIMI in studios:
                options += [
                    Opt(
                        "version", str | None, "Mimi Panda: v2 (newer, default) or v1 (classic)", None, VERSION_CHOICES
                    ),
                    Opt(
                        "type",
                        str | None,
                        "Mimi Panda: the kind of line art (each version has its own)",
                        None,
                        TYPE_CHOICES,
                    ),
                ]
            if LOCAL in studios:
                options += [
                    Opt("style", str | None, "Easel's studio: simple (default), detailed or bold", None, LOCAL_STYLES),
                    Opt("paper", str | None, "Easel's studio: the PDF's paper, A4 (default) or Letter", None, PAPER),
                ]
            build(
                "photo", "Turn your photo or picture into a coloring page", self.coloring_photo, options, parent=group
            )
            group.get_command("photo").extras["feature"] = "coloring"  # type: ignore[union-attr]
        if MIMI in self.bot.enabled_providers:
            build(
                "prompt",
                "Draw a new coloring page from a description (Mimi Panda)",
                self.coloring_prompt,
                [
                    Opt("prompt", Prompt, "What to draw (3-600 characters)"),
                    Opt(
                        "style",
                        str,
                        "Who it is for: kids (simple), teenagers, adults",
                        "kids_coloring_page",
                        STYLE_CHOICES,
                    ),
                    Opt("aspect_ratio", str | None, "Page shape (optional)", None, AI_COLORING_RATIOS),
                    Opt("version", str, "v2 (newer, default) or v1 (classic)", "v2", VERSION_CHOICES),
                ],
                parent=group,
            )
        return group

    async def coloring_photo(
        self,
        interaction: discord.Interaction[EaselBot],
        image: discord.Attachment,
        studio: str | None = None,
        version: str | None = None,
        type: str | None = None,
        style: str | None = None,
        paper: str | None = None,
    ) -> None:
        await defer(interaction, ephemeral=True)
        route = await self.jobs.route("coloring", interaction.guild_id, studio)
        _refuse_foreign("coloring", route.studio, {"version": version, "type": type, "style": style, "paper": paper})
        if route.studio == MIMI:
            await self.mimi.coloring_photo(interaction, image, version, type)
            return
        params = {"style": style or "simple", "paper": paper or "a4"}
        await self._local_job(interaction, route, params, image)

    async def coloring_prompt(
        self,
        interaction: discord.Interaction[EaselBot],
        prompt: str,
        style: str = "kids_coloring_page",
        aspect_ratio: str | None = None,
        version: str = "v2",
    ) -> None:
        await self.mimi.coloring_prompt(interaction, prompt, style, aspect_ratio, version)

    # /paint-by-numbers

    def _pbn_command(self, studios: list[str]) -> app_commands.Command[Any, ..., None]:
        mimi = MIMI in studios
        options = [
            Opt("image", discord.Attachment | None, "A photo (JPG, PNG, WEBP or HEIC, up to 20 MB)", None),
            *studio_option(studios, "makes it"),
            Opt("colors", app_commands.Range[int, 7, 100] | None, "Number of paint colours, 7-100", None),
            Opt(
                "canvas",
                app_commands.Range[str, 3, 16] | None,
                "Canvas size in inches, e.g. 12x16 (4x4 to 45x45)",
                None,
            ),
            Opt("crop", bool | None, "Crop the picture to cover the whole canvas (default no)", None),
        ]
        if LOCAL in studios:
            options.append(Opt("detail", str | None, "Easel's studio: size of the paint areas", None, LOCAL_DETAIL))
        if mimi:
            options += [
                Opt("prompt", Prompt | None, "Mimi Panda: or describe a picture to generate (not both)", None),
                Opt("segments", str | None, "Mimi Panda: size of the paint areas", None, SEGMENT_CHOICES),
                Opt("gradient", str | None, "Mimi Panda: colour steps between shades", None, GRADIENT_CHOICES),
                Opt("precision", str | None, "Mimi Panda: colour matching", None, PRECISION_CHOICES),
                Opt(
                    "details", str | None, "Mimi Panda: how strongly small details are filtered", None, DETAILS_CHOICES
                ),
                Opt("palette", app_commands.Range[int, 1] | None, "Mimi Panda: a saved palette's id", None),
                Opt(
                    "palette_colors",
                    app_commands.Range[str, 1, 1000] | None,
                    "Mimi Panda: codes from that palette, at least 7",
                    None,
                ),
                Opt("mix_palette", bool | None, "Mimi Panda: allow 50:50 mixes of the palette's colours", None),
                Opt("art_style", str | None, "Mimi Panda: repaint in an AI art style first", None, ART_STYLE_CHOICES),
                Opt(
                    "min_area",
                    app_commands.Range[int, 0, 100] | None,
                    "Mimi Panda: merge areas smaller than this % (0-100)",
                    None,
                ),
            ]
        command = build(
            "paint-by-numbers",
            "A numbered paint-by-numbers template from a photo" + (" or a prompt" if mimi else ""),
            self.paint_by_numbers,
            options,
        )
        command.extras["feature"] = "pbn"
        return command

    async def paint_by_numbers(
        self, interaction: discord.Interaction[EaselBot], image: discord.Attachment | None = None, **given: Any
    ) -> None:
        await defer(interaction, ephemeral=True)
        route = await self.jobs.route("pbn", interaction.guild_id, given.pop("studio", None))
        _refuse_foreign("pbn", route.studio, given)
        if route.studio == MIMI:
            mimi = {k: v for k, v in given.items() if v is not None and k != "detail"}
            await self.mimi.paint_by_numbers(interaction, image, **mimi)
            return
        if image is None:
            raise BadInput("Attach the `image` to turn into a paint-by-numbers template.")
        params: dict[str, Any] = {
            "colors": given.get("colors") or 16,
            "detail": given.get("detail") or "normal",
            "crop": bool(given.get("crop")),
        }
        if (canvas := _canvas_inches(given.get("canvas"))) is not None:
            params["canvas_inches"] = list(canvas)
        await self._local_job(interaction, route, params, image)

    # /ai-filter

    def _filter_command(self, studios: list[str]) -> app_commands.Command[Any, ..., None]:
        options = [
            Opt("image", discord.Attachment, "JPG, PNG, WEBP or HEIC, up to 20 MB"),
            Opt(
                "filter",
                app_commands.Range[str, 1, 100],
                "The filter (start typing: the list follows the studio)",
                autocomplete=self._filter_autocomplete,
            ),
            *studio_option(studios, "applies it"),
            Opt(
                "strength",
                float | None,
                "How strongly, 0.2 (subtle) to 1.0 (full); default 0.6",
                None,
                STRENGTH_CHOICES,
            ),
        ]
        command = build("ai-filter", "Restyle an image with a filter", self.ai_filter, options)
        command.extras["feature"] = "filter"
        return command

    async def ai_filter(
        self,
        interaction: discord.Interaction[EaselBot],
        image: discord.Attachment,
        filter: str,
        studio: str | None = None,
        strength: float | None = None,
    ) -> None:
        await defer(interaction, ephemeral=True)
        route = await self.jobs.route("filter", interaction.guild_id, studio)
        if route.studio == MIMI:
            await self.mimi.ai_filter(interaction, image, filter, strength if strength is not None else 0.6)
            return
        name = filter.strip().lower()
        if name not in LOCAL_FILTERS:
            raise BadInput(
                f"Easel's studio has no filter “{filter[:40]}”; it has: "
                + ", ".join(f"`{k}` ({v})" for k, v in LOCAL_FILTERS.items())
                + "."
            )
        params = {"filter": name, "strength": strength if strength is not None else 0.6}
        await self._local_job(interaction, route, params, image)

    async def _filter_autocomplete(self, interaction: discord.Interaction[EaselBot], current: str) -> list[Choice[str]]:
        chosen = getattr(interaction.namespace, "studio", None)
        route = await self.jobs.route("filter", interaction.guild_id, chosen if isinstance(chosen, str) else None)
        if route.studio == MIMI:
            return await self.mimi._filter_autocomplete(interaction, current)
        typed = current.strip().lower()
        return [
            Choice(name=label, value=key)
            for key, label in LOCAL_FILTERS.items()
            if typed in key or typed in label.lower()
        ]


async def setup(bot: EaselBot) -> None:
    await bot.add_cog(Pictures(bot))
