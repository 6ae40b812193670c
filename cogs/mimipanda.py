"""Mimi Panda commands: /coloring photo|prompt, /paint-by-numbers, /ai-filter, and the buttons on their results
(paint-by-numbers files; "coloring page / paint-by-numbers / upscale of this").

/upscale and /ai-image live in cogs/create.py now: /upscale is one command across studios, and /ai-image is
`/imagine studio:Mimi Panda` under its old name.

Each command checks every option (pydantic models at the provider boundary) and the attachment by its
content before `bot.jobs.create`, so a refused request never makes a job or costs credits.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

import discord
from discord import app_commands
from discord.app_commands import Choice
from discord.ext import commands
from pydantic import ValidationError

from bot import labels
from bot.app import EaselBot
from bot.components import Handler, Spends
from bot.delivery import FEATURE_TITLES, ButtonSpec, button_id
from bot.errors import BadInput, NotFound
from bot.inputs import check_image_bytes, read_image
from bot.jobs.engine import NewInput
from bot.jobs.model import JobStatus, ResultRecord
from bot.media import describe_size
from bot.providers.mimipanda_models import (
    AI_FILTER_TYPES,
    COLORING_TYPES,
    MAX_UPLOAD_BYTES,
    PROMPT_MAX,
    PROMPT_MIN,
    UPSCALE_4X_MAX_SIDE,
    UPSCALE_MAX_SIDE,
    AiColoringRequest,
    ColoringRequest,
    FilterRequest,
    PbnRequest,
    UpscaleRequest,
    effective_upscale,
    version_of_type,
)
from bot.tree import defer, respond

PROVIDER = "mimipanda"
Prompt = app_commands.Range[str, PROMPT_MIN, PROMPT_MAX]

TITLES = {
    "coloring": "Coloring page",
    "ai_coloring": "Generated coloring page",
    "pbn": "Paint-by-numbers",
    "ai_image": "Generated image",
    "upscale": "Upscaled image",
    "filter": "Filtered image",
}

# Button actions (custom_id "ej:<action>:<job>[:<arg>]")
CHAIN_COLORING, CHAIN_PBN, CHAIN_UPSCALE = "mp-col", "mp-pbn", "mp-up"
CHAIN_PICK = "mp-pick"  # the select that asks which image, when a result has several
PBN_FILE = "mp-file"
CHAIN_FEATURES = {CHAIN_COLORING: "coloring", CHAIN_PBN: "pbn", CHAIN_UPSCALE: "upscale"}
CHAIN_BUTTONS = {
    CHAIN_COLORING: ButtonSpec(CHAIN_COLORING, "Coloring page of this", "🖍️", spends=Spends("coloring")),
    CHAIN_PBN: ButtonSpec(CHAIN_PBN, "Paint-by-numbers of this", "🎨", spends=Spends("pbn")),
    CHAIN_UPSCALE: ButtonSpec(CHAIN_UPSCALE, "Upscale this", "🔍", spends=Spends("upscale")),
}
PBN_FILES = {  # result label -> button label (and what the presser is told)
    "svg": "SVG",
    "pdf": "PDF",
    "csv": "Palette CSV",
    "gpl": "GIMP palette",
    "kpl": "Krita palette",
    "swatches": "Procreate swatches",
}
RESULT_BUTTONS: dict[str, list[ButtonSpec]] = {
    "coloring": [CHAIN_BUTTONS[CHAIN_UPSCALE]],
    "ai_coloring": [CHAIN_BUTTONS[CHAIN_UPSCALE]],
    "ai_image": list(CHAIN_BUTTONS.values()),
    "upscale": [CHAIN_BUTTONS[CHAIN_COLORING], CHAIN_BUTTONS[CHAIN_PBN]],
    "filter": list(CHAIN_BUTTONS.values()),
    "pbn": [
        ButtonSpec(PBN_FILE, label, "📄" if kind in ("svg", "pdf") else "🎨", arg=kind)
        for kind, label in PBN_FILES.items()
    ],
}

# Option names as members see them, for error messages built from the request models' field names.
OPTION_NAMES = {
    "number_of_colors": "colors",
    "segments_complexity": "segments",
    "gradient_step": "gradient",
    "color_precision": "precision",
    "canvas_size": "canvas",
    "details_filter": "details",
    "ai_filter_type": "art_style",
    "filter_type": "filter",
    "upscale": "factor",
}

TYPE_LABELS = {
    "v2_general": "General",
    "v2_detailed": "Detailed",
    "v2_anime": "Anime",
    "v2_simplified": "Simplified",
    "v2_comic": "Comic",
    "for_adults": "For adults",
    "for_kids": "For kids",
    "simple": "Simple",
    "image": "Image",
    "photo": "Photo",
    "sketching": "Sketching",
}
TYPE_CHOICES = [
    Choice(name="v2 · General: clean outlines for most pictures (v2 default)", value="v2_general"),
    Choice(name="v2 · Detailed: more lines and texture", value="v2_detailed"),
    Choice(name="v2 · Anime: anime and manga line art", value="v2_anime"),
    Choice(name="v2 · Simplified: fewer, bolder lines", value="v2_simplified"),
    Choice(name="v2 · Comic: comic-book inking", value="v2_comic"),
    Choice(name="v1 · For adults: intricate (v1 default)", value="for_adults"),
    Choice(name="v1 · For kids: big, simple shapes", value="for_kids"),
    Choice(name="v1 · Simple: minimal outlines", value="simple"),
    Choice(name="v1 · Image: follows the picture closely", value="image"),
    Choice(name="v1 · Photo: made for photographs", value="photo"),
    Choice(name="v1 · Sketching: pencil-sketch look", value="sketching"),
]
VERSION_CHOICES = [Choice(name="v2: newer models (default)", value="v2"), Choice(name="v1: classic models", value="v1")]
AI_COLORING_RATIOS = [
    Choice(name="1:1 square", value="1x1"),
    Choice(name="2:3 portrait", value="2x3"),
    Choice(name="3:2 landscape", value="3x2"),
    Choice(name="4:3 landscape", value="4x3"),
    Choice(name="3:4 portrait", value="3x4"),
    Choice(name="9:16 tall", value="9x16"),
    Choice(name="16:9 wide", value="16x9"),
]
AI_IMAGE_RATIOS = [
    Choice(name="1:1 square (default)", value="1x1"),
    Choice(name="2:3 portrait", value="2x3"),
    Choice(name="3:2 landscape", value="3x2"),
    Choice(name="4:5 portrait", value="4x5"),
    Choice(name="5:4 landscape", value="5x4"),
]
STYLE_CHOICES = [
    Choice(name="For kids: big, simple shapes", value="kids_coloring_page"),
    Choice(name="For teenagers: more detail", value="teenagers_coloring_page"),
    Choice(name="For adults: intricate", value="adults_coloring_page"),
]
SEGMENT_CHOICES = [
    Choice(name="none: as the picture is (default)", value="none"),
    Choice(name="level 1: slightly bigger areas", value="level1"),
    Choice(name="level 2: bigger areas", value="level2"),
    Choice(name="level 3: biggest areas", value="level3"),
    Choice(name="simplest", value="simplest"),
]
GRADIENT_CHOICES = [
    Choice(name="high: smoother, fewer details (default)", value="high"),
    Choice(name="normal: distinct colour steps, slower", value="normal"),
]
PRECISION_CHOICES = [
    Choice(name="high (default)", value="high"),
    Choice(name="normal", value="normal"),
    Choice(name="low: may merge colours", value="low"),
    Choice(name="lowest: merges most", value="lowest"),
]
DETAILS_CHOICES = [Choice(name=value, value=value) for value in ("ultra", "high", "normal", "low", "lowest")]
ART_STYLE_CHOICES = [
    Choice(name="none (default)" if value == "none" else value.removeprefix("painting-").replace("-", " "), value=value)
    for value in AI_FILTER_TYPES
]
UPSCALE_CHOICES = [
    Choice(name="2x (default)", value=2),
    Choice(name="4x (images up to 1000 px; larger ones get 2x)", value=4),
]
STRENGTH_CHOICES = [
    Choice(name=f"{value:.1f}" + {0.2: " (subtle)", 0.6: " (default)", 1.0: " (full)"}.get(value, ""), value=value)
    for value in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
]
# The filter list is "available from support"; these are suggestions, any plausible name is accepted.
FILTER_SUGGESTIONS = ("artistic", *(value for value in AI_FILTER_TYPES if value != "none"))


def _choice_labels(choices: list[Choice[str]]) -> dict[str, str]:
    return {str(c.value): c.name.split(":")[0].split(" (")[0] for c in choices}


def register_labels() -> None:
    """How this studio's options read in results and Details ("Detailed", "3:4 portrait")."""
    labels.register("type", "Type", TYPE_LABELS)
    labels.register("version", "Version")
    labels.register("aspect_ratio", "Shape", _choice_labels(AI_COLORING_RATIOS) | _choice_labels(AI_IMAGE_RATIOS))
    labels.register("style", "Style", _choice_labels(STYLE_CHOICES))
    labels.register("number_of_colors", "Colours")
    labels.register("segments_complexity", "Areas", _choice_labels(SEGMENT_CHOICES))
    labels.register("gradient_step", "Gradient", _choice_labels(GRADIENT_CHOICES))
    labels.register("color_precision", "Colour precision", _choice_labels(PRECISION_CHOICES))
    labels.register("canvas_size", "Canvas (inches)")
    labels.register("details_filter", "Detail filter")
    labels.register("ai_filter_type", "Art style", _choice_labels(ART_STYLE_CHOICES))
    labels.register("min_area", "Smallest area (%)")
    labels.register("filter_type", "Filter")
    labels.register("upscale", "Factor", {"2": "2x", "4": "4x"})


def _option(field: str) -> str:
    return OPTION_NAMES.get(field, field)


def bad_request(exc: ValidationError) -> BadInput:
    """A model's validation errors as one message naming the options as the member typed them."""
    parts = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        fields = [str(part) for part in error["loc"] if isinstance(part, str)]
        parts.append(f"`{_option(fields[0])}`: {message}" if fields else message[:1].upper() + message[1:])
    return BadInput("That request can't be sent: " + "; ".join(parts) + ".")


def coloring_request(version: str | None, type_: str | None) -> ColoringRequest:
    if version is not None and type_ is not None and type_ not in COLORING_TYPES[version]:
        wanted = ", ".join(TYPE_LABELS[t] for t in COLORING_TYPES[version])
        raise BadInput(
            f"The type “{TYPE_LABELS.get(type_, type_)}” belongs to version {version_of_type(type_)}, but you "
            f"chose version {version}. Version {version} types are: {wanted}. Pick one of those, or set the "
            f"version to {version_of_type(type_)}."
        )
    try:
        return ColoringRequest.model_validate({"version": version, "type": type_})
    except ValidationError as exc:
        raise bad_request(exc) from exc


def build(model: type[Any], **values: Any) -> Any:
    try:
        return model(**values)
    except ValidationError as exc:
        raise bad_request(exc) from exc


def upscale_note(requested: int, effective: int, width: int, height: int) -> str | None:
    if requested == effective:
        return None
    return (
        f"ℹ️ Your image is {width}×{height} px. Mimi Panda upscales images larger than "
        f"{UPSCALE_4X_MAX_SIDE} px by 2x only, so this will be a **2x** upscale "
        f"({width * 2}×{height * 2} px), not 4x."
    )


class MimiPanda(commands.Cog):
    def __init__(self, bot: EaselBot) -> None:
        self.bot = bot
        FEATURE_TITLES.update(TITLES)
        register_labels()
        for feature, buttons in RESULT_BUTTONS.items():
            bot.jobs.deliverer.buttons_for[feature] = buttons
        router = bot.components
        router.register("ej", PBN_FILE, self.on_pbn_file)
        for action, feature in CHAIN_FEATURES.items():
            router.register("ej", action, self._chain_handler(action), spends=Spends(feature))
        router.register("ej", CHAIN_PICK, self.on_pick)

    async def cog_unload(self) -> None:
        for feature in RESULT_BUTTONS:
            self.bot.jobs.deliverer.buttons_for.pop(feature, None)
        for action in (PBN_FILE, CHAIN_PICK, *CHAIN_FEATURES):
            self.bot.components.unregister("ej", action)

    async def _start(
        self,
        interaction: discord.Interaction[EaselBot],
        feature: str,
        params: dict[str, Any],
        inputs: list[NewInput] | None = None,
        parent_job: str | None = None,
    ) -> None:
        await self.bot.jobs.create(
            interaction,
            feature=feature,
            provider=PROVIDER,
            params=params,
            inputs=inputs or [],
            units=1,
            parent_job=parent_job,
        )

    # /coloring photo | prompt

    async def coloring_photo(
        self,
        interaction: discord.Interaction[EaselBot],
        image: discord.Attachment,
        version: str | None = None,
        page_type: str | None = None,
    ) -> None:
        await defer(interaction, ephemeral=True)
        request = coloring_request(version, page_type)
        upload = await read_image(image, max_bytes=MAX_UPLOAD_BYTES)
        await self._start(interaction, "coloring", request.params(), [upload])

    async def coloring_prompt(
        self,
        interaction: discord.Interaction[EaselBot],
        prompt: Prompt,
        style: str = "kids_coloring_page",
        aspect_ratio: str | None = None,
        version: str = "v2",
    ) -> None:
        request = build(AiColoringRequest, prompt=prompt, style=style, aspect_ratio=aspect_ratio, version=version)
        await self._start(interaction, "ai_coloring", request.params())

    # /paint-by-numbers

    async def paint_by_numbers(
        self,
        interaction: discord.Interaction[EaselBot],
        image: discord.Attachment | None = None,
        prompt: Prompt | None = None,
        colors: app_commands.Range[int, 7, 100] = 30,
        segments: str = "none",
        gradient: str = "high",
        precision: str = "high",
        canvas: app_commands.Range[str, 3, 16] | None = None,
        crop: bool = False,
        details: str | None = None,
        palette: app_commands.Range[int, 1] | None = None,
        palette_colors: app_commands.Range[str, 1, 1000] | None = None,
        mix_palette: bool = False,
        art_style: str = "none",
        min_area: app_commands.Range[int, 0, 100] = 0,
    ) -> None:
        await defer(interaction, ephemeral=True)
        if (image is None) == (prompt is None):
            raise BadInput(
                "Paint-by-numbers starts from exactly one thing: attach an `image` **or** write a `prompt`"
                + (", not both." if image is not None else ".")
            )
        request = build(
            PbnRequest,
            from_image=image is not None,
            prompt=prompt,
            number_of_colors=colors,
            segments_complexity=segments,
            gradient_step=gradient,
            color_precision=precision,
            canvas_size=canvas,
            crop=crop,
            details_filter=details,
            palette=palette,
            palette_colors=palette_colors,
            mix_palette=mix_palette,
            ai_filter_type=art_style,
            min_area=min_area,
        )
        inputs = [await read_image(image, max_bytes=MAX_UPLOAD_BYTES)] if image is not None else []
        await self._start(interaction, "pbn", request.params(), inputs)

    # /ai-filter

    async def _upscale(
        self,
        interaction: discord.Interaction[EaselBot],
        upload: NewInput,
        requested: int,
        parent_job: str | None = None,
    ) -> None:
        width, height = upload.info.width, upload.info.height
        effective = effective_upscale(requested, width, height)
        # Send the factor that will really apply, so the job's details and the request tell the truth.
        request = build(UpscaleRequest, upscale=effective)
        await self._start(interaction, "upscale", request.params(), [upload], parent_job=parent_job)
        note = upscale_note(requested, effective, width, height)
        if note is not None:
            await respond(interaction, note)

    async def ai_filter(
        self,
        interaction: discord.Interaction[EaselBot],
        image: discord.Attachment,
        filter_type: app_commands.Range[str, 1, 100],
        strength: float = 0.6,
    ) -> None:
        await defer(interaction, ephemeral=True)
        request = build(FilterRequest, filter_type=filter_type, strength=strength)
        upload = await read_image(image, max_bytes=MAX_UPLOAD_BYTES)
        await self._start(interaction, "filter", request.params(), [upload])

    async def _filter_autocomplete(self, interaction: discord.Interaction[EaselBot], current: str) -> list[Choice[str]]:
        typed = current.strip().lower()
        matches = [name for name in FILTER_SUGGESTIONS if typed in name]
        if typed and typed not in matches:
            matches.insert(0, typed)  # whatever the member knows from support is always allowed
        return [Choice(name=name, value=name) for name in matches[:25]]

    # Buttons: paint-by-numbers files

    async def on_pbn_file(self, interaction: discord.Interaction[EaselBot], job_id: str, kind: str | None) -> None:
        await send_result_file(self.bot, interaction, job_id, kind)

    # Buttons: start a new job from a result image

    def _chain_handler(self, action: str) -> Handler:
        async def handler(interaction: discord.Interaction[EaselBot], job_id: str, arg: str | None) -> None:
            await self.chain(interaction, job_id, action, None)

        return handler

    async def on_pick(self, interaction: discord.Interaction[EaselBot], job_id: str, action: str | None) -> None:
        data: dict[str, Any] = interaction.data or {}  # type: ignore[assignment]
        values = data.get("values") or []
        if action not in CHAIN_FEATURES or not values or not str(values[0]).isdigit():
            raise BadInput("Pick one of the images in the list.")
        await self.chain(interaction, job_id, action, int(values[0]))

    async def _source_images(self, job_id: str) -> list[ResultRecord]:
        job = await self.bot.jobs.store.get(job_id)
        if job is None or job.status is not JobStatus.SUCCEEDED:
            raise NotFound("This result's job no longer exists.")
        return [
            r for r in await self.bot.jobs.store.results(job_id) if r.kind == "image" and r.send and r.label != "legend"
        ]

    async def chain(
        self, interaction: discord.Interaction[EaselBot], job_id: str, action: str, position: int | None
    ) -> None:
        feature = CHAIN_FEATURES[action]
        images = await self._source_images(job_id)
        if not images:
            raise NotFound("This result has no image left to work from (it may have been deleted).")
        if position is None and len(images) > 1:
            await self._ask_which(interaction, job_id, action, len(images))
            return
        index = position or 0
        if not 0 <= index < len(images):
            raise BadInput("That image is not part of this result.")
        record = images[index]
        path = self.bot.jobs.files.resolve(record.path)
        if not path.exists():
            raise NotFound("That image is no longer stored (the result may have been deleted).")
        await defer(interaction, ephemeral=True)
        data = await asyncio.to_thread(path.read_bytes)
        info = await check_image_bytes(
            data,
            label="That image",
            max_bytes=MAX_UPLOAD_BYTES,
            max_side=UPSCALE_MAX_SIDE if feature == "upscale" else None,
        )
        upload = NewInput(name="image", filename=record.filename, data=data, info=info)
        if feature == "upscale":
            await self._upscale(interaction, upload, 4, parent_job=job_id)
        elif feature == "coloring":
            await self._start(interaction, feature, coloring_request(None, None).params(), [upload], job_id)
        else:
            request = build(PbnRequest, from_image=True)
            await self._start(interaction, feature, request.params(), [upload], job_id)

    async def _ask_which(
        self, interaction: discord.Interaction[EaselBot], job_id: str, action: str, count: int
    ) -> None:
        what = CHAIN_BUTTONS[action].label.removesuffix(" of this").removesuffix(" this").lower()
        select: discord.ui.Select[discord.ui.View] = discord.ui.Select(
            custom_id=button_id(CHAIN_PICK, job_id, action),
            placeholder="Which image?",
            options=[discord.SelectOption(label=f"Image {n}", value=str(n - 1)) for n in range(1, count + 1)][:25],
        )
        view = discord.ui.View(timeout=None)
        view.add_item(select)
        await respond(interaction, f"This result has {count} images: which one should I use ({what})?", view=view)
        view.stop()  # answered by the component router from the custom_id, not by this in-memory view


async def send_result_file(
    bot: EaselBot, interaction: discord.Interaction[EaselBot], job_id: str, kind: str | None
) -> None:
    """A paint-by-numbers file (SVG, PDF, palette) of a result, from whichever studio made it."""
    label = PBN_FILES.get(kind or "")
    job = await bot.jobs.store.get(job_id)
    if label is None or job is None or job.status is not JobStatus.SUCCEEDED:
        raise NotFound("This result's files are no longer available.")
    record = next((r for r in await bot.jobs.store.results(job_id) if r.label == kind), None)
    path = bot.jobs.files.resolve(record.path) if record is not None else None
    if record is None or path is None or not path.exists():
        raise NotFound(f"The {label} file of job `{job_id}` is not available (it may have been deleted).")
    if record.size > interaction.filesize_limit:
        raise BadInput(
            f"The {label} file is {describe_size(record.size)}, over this server's upload limit of "
            f"{describe_size(interaction.filesize_limit)}."
        )
    data = await asyncio.to_thread(path.read_bytes)
    await respond(
        interaction,
        f"{label} of paint-by-numbers job `{job_id}`:",
        file=discord.File(io.BytesIO(data), filename=record.filename),
    )


async def setup(bot: EaselBot) -> None:
    await bot.add_cog(MimiPanda(bot))
