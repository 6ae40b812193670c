"""/style: Flair style models — create one, collect and review its images, train it, manage it.

A style model belongs to the member who created it, or to the server when an admin creates it with
`server: True` (usable by every member, changed only by admins). Who may do what is decided by
bot/jobs/access.py (through bot/styles.py's can_use / can_change). `/style generate`'s work and the result
buttons are in cogs/style_images.py.
"""

from __future__ import annotations

import asyncio
import re

import discord
from discord import app_commands
from discord.ext import commands

from bot import limits
from bot.app import EaselBot
from bot.delivery import FEATURE_TITLES
from bot.errors import BadInput, NotAllowed, NotFound
from bot.jobs.access import Actor
from bot.providers.flair import IMAGE, TRAINING, FlairAdapter
from bot.providers.flair.models import STRENGTH_MAX, STRENGTH_MIN
from bot.styles import (
    NAME_MAX,
    SqliteUploadLog,
    StyleModel,
    StyleRepository,
    can_change,
    can_use,
    clean_name,
    rules,
)
from bot.training import REFERRER_SQL, flow, menu, parse_numbers
from bot.tree import defer, respond
from cogs.style_images import Pick, StyleImages, new_seed
from cogs.style_work import StyleWork

PROVIDER = "flair"
PREFIX = "st"  # "st:<action>:<style id>[:<arg>]" on /style answers
SPEEDS = [
    app_commands.Choice(name="High quality (slower)", value="high_quality"),
    app_commands.Choice(name="Fast", value="fast"),
]


def _shown_id(raw: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "", raw)[:20]


def _owner_text(style: StyleModel) -> str:
    return "the server's" if style.server_owned else f"<@{style.user_id}>'s"


class Styles(commands.Cog):
    style = app_commands.Group(
        name="style",
        description="Style models: teach Flair an art style from images, then make pictures in it",
        guild_only=True,
    )

    def __init__(self, bot: EaselBot) -> None:
        self.bot = bot
        self.repo = StyleRepository(bot.db, bot.jobs.files)
        self.rules = rules(bot.settings)
        self.work = StyleWork(bot, self.repo, self.rules)
        adapter = bot.jobs.adapters.get(PROVIDER)
        if isinstance(adapter, FlairAdapter):
            adapter.upload_log = SqliteUploadLog(bot.db)  # a restart never uploads twice nor trains twice
        bot.jobs.store.add_input_referrer(REFERRER_SQL)
        bot.member_data_erasers.append(self.work.erase_member)
        self._locks: dict[str, asyncio.Lock] = {}
        FEATURE_TITLES[TRAINING] = "Style model training"
        FEATURE_TITLES[IMAGE] = "Style image"
        bot.components.register(PREFIX, "train", self.on_train_button)
        self.images = StyleImages(bot, self.repo, lambda: self.work.flair)
        self.images.install(bot.settings.quota_policy().costs)

    async def cog_load(self) -> None:
        menu.register(self.bot, self.rules.studio, self.add_from_message)
        # Deletions at Flair still owed from an earlier /forget-me (Flair was down then): try again now.
        self._settling = asyncio.create_task(self._settle(), name="easel-flair-erasures")

    async def _settle(self) -> None:
        try:
            await self.work.settle_erasures()
        except Exception as exc:  # noqa: BLE001 - a start-up chore must not take the bot down
            self.bot.unexpected_errors.append(("settling Flair erasures", exc))

    async def cog_unload(self) -> None:
        self._settling.cancel()
        menu.unregister(self.bot, self.rules.studio)
        self.bot.components.unregister(PREFIX, "train")
        self.images.uninstall()

    # Helpers

    @staticmethod
    def _guild(interaction: discord.Interaction[EaselBot]) -> int:
        if interaction.guild_id is None:
            raise NotAllowed("Style models live in a server: use this there, not in DMs.")
        return interaction.guild_id

    async def _style(self, interaction: discord.Interaction[EaselBot], style_id: str, *, change: bool) -> StyleModel:
        """A style this member may change (or, without `change`, use); the same answer for missing and not
        theirs, so ids of other members' styles cannot be probed."""
        self._guild(interaction)
        found = await self.repo.get(style_id.strip())
        actor = Actor.of(interaction)
        if found is not None and (can_change(found, actor) if change else can_use(found, actor)):
            return found
        if found is not None and found.server_owned and can_use(found, actor):
            raise NotAllowed(f"**{found.name}** is the server's style: only server admins can change it.")
        raise NotFound(f"No such style model of yours: `{_shown_id(style_id)}`. `/style models` lists them.")

    def _lock(self, style_id: str) -> asyncio.Lock:
        return self._locks.setdefault(style_id, asyncio.Lock())

    async def choices(
        self, interaction: discord.Interaction[EaselBot], current: str, *, change: bool, trained: bool = False
    ) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        actor = Actor.of(interaction)
        typed = current.strip().lower()
        found = [
            s
            for s in await self.repo.visible(interaction.guild_id, interaction.user.id)
            if (can_change(s, actor) if change else can_use(s, actor)) and (typed in s.name.lower() or typed in s.id)
        ]
        if trained:
            found = [s for s in found if await self.repo.trained(s) is not None]
        return [
            app_commands.Choice(name=f"{s.name} · {'server' if s.server_owned else 'yours'} · {s.id}"[:100], value=s.id)
            for s in found[: limits.AUTOCOMPLETE_RESULTS]
        ]

    # Creating

    @style.command(name="create", description="Create a style model (free); then add images and train it")
    @app_commands.describe(name="A name for the style", server="Admins: make it the server's style, usable by all")
    async def create(
        self,
        interaction: discord.Interaction[EaselBot],
        name: app_commands.Range[str, 1, NAME_MAX],
        server: bool = False,
    ) -> None:
        guild_id = self._guild(interaction)
        actor = Actor.of(interaction)
        if server and not actor.is_admin:
            raise NotAllowed("Only server admins can create the server's style models.")
        clean = clean_name(name)
        owner = None if server else interaction.user.id
        taken = [s for s in await self.repo.visible(guild_id, interaction.user.id) if s.user_id == owner]
        if any(s.name.lower() == clean.lower() for s in taken):
            raise BadInput(f"{'The server' if server else 'You'} already {'has' if server else 'have'} a style "
                           f"named **{clean}**; pick another name.")  # fmt: skip
        await defer(interaction, ephemeral=True)
        created = await self.work.call("create the model", self.work.flair.create_model(clean))
        style = await self.repo.create(guild_id, owner, clean, created.id, created_by=interaction.user.id)
        if style is None:  # lost a race for the name: the Flair model is not needed
            await self.work.call("delete the model", self.work.flair.delete_model(created.id))
            raise BadInput(f"A style named **{clean}** was just created; pick another name.")
        whose = "the server's style" if server else "your style"
        await respond(
            interaction,
            f"🎨 Created **{style.name}** (`{style.id}`), {whose}. Now add {self.rules.noun}s of the style: "
            f"{self.rules.limits_text()}.\n"
            f"• `/style add` takes up to 10 images at a time;\n"
            f"• or use **{menu.MENU_NAME}** (message menu → Apps) on your own message with images.\n"
            "Then `/style review` to check them, and `/style train`.",
        )

    # The training set

    @style.command(name="add", description="Add images to a style model's training set (up to 10 at a time)")
    @app_commands.describe(
        style="The style model", image1="An image in the style", **{f"image{n}": "Another image" for n in range(2, 11)}
    )
    async def add(
        self,
        interaction: discord.Interaction[EaselBot],
        style: str,
        image1: discord.Attachment,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        image5: discord.Attachment | None = None,
        image6: discord.Attachment | None = None,
        image7: discord.Attachment | None = None,
        image8: discord.Attachment | None = None,
        image9: discord.Attachment | None = None,
        image10: discord.Attachment | None = None,
    ) -> None:
        found = await self._style(interaction, style, change=True)
        given = [image1, image2, image3, image4, image5, image6, image7, image8, image9, image10]
        await self._add(interaction, found, [a for a in given if a is not None])

    async def add_from_message(
        self, interaction: discord.Interaction[EaselBot], message: discord.Message, set_id: int
    ) -> None:
        """The shared message command chose this style's set (the one this member worked on last)."""
        flow.check_own_message(message, interaction.user.id, self.rules)
        training_set = await self.repo.sets.get_set(set_id)
        style_id = training_set.owner_key.removeprefix("s:") if training_set else ""
        await self._add(interaction, await self._style(interaction, style_id, change=True), list(message.attachments))

    async def _add(
        self, interaction: discord.Interaction[EaselBot], style: StyleModel, attachments: list[discord.Attachment]
    ) -> None:
        training_set = await self.work.set_of(style)
        await defer(interaction, ephemeral=True)
        text = await flow.add_pictures(
            self.repo.sets, self.rules, training_set, attachments, added_by=interaction.user.id
        )
        await respond(interaction, text)

    @style.command(name="review", description="See a style model's images: count, numbered sheet, and train")
    @app_commands.describe(style="The style model")
    async def review(self, interaction: discord.Interaction[EaselBot], style: str) -> None:
        found = await self._style(interaction, style, change=True)
        training_set = await self.work.set_of(found)
        await self.repo.sets.touch(training_set.id)
        await defer(interaction, ephemeral=True)
        await self.work.show_set(interaction, found, training_set, f"🗂️ Training images of **{found.name}**")

    @style.command(name="remove", description="Remove images from a style model's training set by number")
    @app_commands.describe(style="The style model", numbers="Image numbers from /style review, e.g. 3, 7-9")
    async def remove(
        self, interaction: discord.Interaction[EaselBot], style: str, numbers: app_commands.Range[str, 1, 200]
    ) -> None:
        found = await self._style(interaction, style, change=True)
        training_set = await self.work.set_of(found)
        images = await self.repo.sets.images(training_set.id)
        if not images:
            raise BadInput("That style model has no images to remove.")
        chosen = parse_numbers(numbers, len(images), noun="image", review="/style review")
        await defer(interaction, ephemeral=True)
        removed = await self.work.remove_images(found, training_set, [i.sha256 for i in images if i.number in chosen])
        await self.work.show_set(
            interaction, found, training_set, f"🗑️ Removed {removed} image{'s' if removed != 1 else ''}; renumbered."
        )

    # Training

    @style.command(
        name="train",
        description="Train a style model on its images (shows the cost first)",
        extras={"feature": "style_training"},
    )
    @app_commands.describe(
        style="The style model",
        strength="How strongly it learns the style, 0-10 (default 7)",
        speed="High quality (default) or fast",
    )
    @app_commands.choices(speed=SPEEDS)
    async def train(
        self,
        interaction: discord.Interaction[EaselBot],
        style: str,
        strength: app_commands.Range[int, STRENGTH_MIN, STRENGTH_MAX] = 7,
        speed: str = "high_quality",
    ) -> None:
        found = await self._style(interaction, style, change=True)
        count = await self.work.check_trainable(found)
        cost = await self.work.training_cost(interaction.guild_id)
        label = f"Train · {cost} credits" if cost else "Train · free"
        view = discord.ui.View(timeout=None)
        view.add_item(
            discord.ui.Button(
                label=label,
                emoji="🧠",
                style=discord.ButtonStyle.primary,
                custom_id=f"{PREFIX}:train:{found.id}:{strength}.{speed}",
            )
        )
        speed_name = "high quality" if speed == "high_quality" else "fast"
        await respond(
            interaction,
            f"Train **{found.name}** on its **{count}** images (strength {strength}, {speed_name})? "
            f"It costs **{cost} credits**, refunded if the training fails. Training takes a while: I'll mention you "
            "here when it is ready.",
            view=view,
        )
        view.stop()  # resolved from the database by the component router

    async def on_train_button(self, interaction: discord.Interaction[EaselBot], style_id: str, arg: str | None) -> None:
        strength_text, _, speed = (arg or "").partition(".")
        valid_strength = strength_text.isdigit() and STRENGTH_MIN <= int(strength_text) <= STRENGTH_MAX
        if not valid_strength or speed not in {c.value for c in SPEEDS}:
            raise BadInput("That button is out of date: use `/style train` again.")
        found = await self._style(interaction, style_id, change=True)
        async with self._lock(found.id):  # a double click must not train twice
            await self.work.check_trainable(found)
            images = await self.repo.sets.images((await self.work.set_of(found)).id)
            inputs = await flow.job_inputs(self.bot.jobs.files, self.rules, images)
            await defer(interaction, ephemeral=True)
            await self.bot.jobs.create(
                interaction,
                feature=TRAINING,
                provider=PROVIDER,
                params={
                    "name": found.name,
                    "images": len(images),
                    "strength": int(strength_text),
                    "speed": speed,
                    "model_id": found.flair_model_id,
                    "style_id": found.id,
                },
                inputs=inputs,
                units=1,
            )

    @style.command(name="trainings", description="A style model's training progress and history")
    @app_commands.describe(style="The style model")
    async def trainings(self, interaction: discord.Interaction[EaselBot], style: str) -> None:
        found = await self._style(interaction, style, change=False)
        embed = await self.work.trainings_embed(found)
        await respond(interaction, embed=embed)

    @style.command(name="cancel", description="Stop a style model's training (it may be too late)")
    @app_commands.describe(style="The style model")
    async def cancel(self, interaction: discord.Interaction[EaselBot], style: str) -> None:
        found = await self._style(interaction, style, change=True)
        job = await self.repo.active_training(found)
        if job is None:
            raise BadInput(f"**{found.name}** has no training in progress.")
        await defer(interaction, ephemeral=True)
        await respond(interaction, await self.work.stop(interaction, job))

    # Making images

    @style.command(
        name="generate",
        description="Make images with up to three style models, blended by weight",
        extras={"feature": "style_image"},
    )
    @app_commands.describe(
        prompt="What to make, e.g. “a lighthouse at dusk”",
        style1="A trained style model (yours or the server's)",
        weight1="How strongly it applies, 0-2 (default 1)",
        style2="A second style to blend in (optional)",
        weight2="Its weight, 0-2 (default 1)",
        style3="A third style to blend in (optional)",
        weight3="Its weight, 0-2 (default 1)",
        width="Width in pixels, 512-1536 (default 1024)",
        height="Height in pixels, 512-1536 (default 1024)",
        count="How many images, 1-4 (each costs credits)",
        format="JPEG (default) or PNG",
        guidance="How closely to follow the prompt, 0-10",
        steps="Inference steps, 1-50",
        seed="A seed, to make the same image again (default: random)",
    )
    @app_commands.choices(
        format=[app_commands.Choice(name="JPEG", value="jpeg"), app_commands.Choice(name="PNG", value="png")]
    )
    async def generate(
        self,
        interaction: discord.Interaction[EaselBot],
        prompt: app_commands.Range[str, 1, 1500],
        style1: str,
        weight1: app_commands.Range[float, 0.0, 2.0] = 1.0,
        style2: str | None = None,
        weight2: app_commands.Range[float, 0.0, 2.0] = 1.0,
        style3: str | None = None,
        weight3: app_commands.Range[float, 0.0, 2.0] = 1.0,
        width: app_commands.Range[int, 512, 1536] = 1024,
        height: app_commands.Range[int, 512, 1536] = 1024,
        count: app_commands.Range[int, 1, 4] = 1,
        format: str = "jpeg",
        guidance: app_commands.Range[float, 0.0, 10.0] | None = None,
        steps: app_commands.Range[int, 1, 50] | None = None,
        seed: app_commands.Range[int, 0, 4294967295] | None = None,
    ) -> None:
        self._guild(interaction)
        picks = [Pick(style1, weight1)]
        picks += [Pick(s, w) for s, w in ((style2, weight2), (style3, weight3)) if s]
        options = {
            "width": width,
            "height": height,
            "num_images": count,
            "output_format": format,
            "guidance_scale": guidance,
            "steps": steps,
            "seed": new_seed() if seed is None else seed,  # recorded: "More like this" reuses it
        }
        params, ids = await self.images.build(Actor.of(interaction), picks, prompt, options)
        await self.images.create(interaction, params, ids)

    @generate.autocomplete("style1")
    @generate.autocomplete("style2")
    @generate.autocomplete("style3")
    async def _trained(
        self, interaction: discord.Interaction[EaselBot], current: str
    ) -> list[app_commands.Choice[str]]:
        """The member's and the server's trained styles."""
        return await self.choices(interaction, current, change=False, trained=True)

    # Managing

    @style.command(name="models", description="Your style models and the server's")
    async def models(self, interaction: discord.Interaction[EaselBot]) -> None:
        guild_id = self._guild(interaction)
        found = await self.repo.visible(guild_id, interaction.user.id)
        if not found:
            await respond(interaction, "No style models here yet. Create one with `/style create`.")
            return
        embed = await self.work.models_embed(found)
        await respond(interaction, embed=embed)

    @style.command(name="rename", description="Rename a style model")
    @app_commands.describe(style="The style model", name="Its new name")
    async def rename(
        self, interaction: discord.Interaction[EaselBot], style: str, name: app_commands.Range[str, 1, NAME_MAX]
    ) -> None:
        found = await self._style(interaction, style, change=True)
        clean = clean_name(name)
        siblings = await self.repo.visible(found.guild_id, interaction.user.id)
        if any(s.user_id == found.user_id and s.id != found.id and s.name.lower() == clean.lower() for s in siblings):
            raise BadInput(f"There already is a style named **{clean}** of the same owner; pick another name.")
        await defer(interaction, ephemeral=True)
        await self.work.call("rename the model", self.work.flair.rename_model(found.flair_model_id, clean))
        if not await self.repo.rename(found, clean):  # lost a race for the name
            raise BadInput(f"There already is a style named **{clean}** of the same owner; pick another name.")
        await respond(interaction, f"✏️ Renamed **{found.name}** to **{clean}** (`{found.id}`).")

    @style.command(name="delete", description="Delete a style model, its images and its trainings")
    @app_commands.describe(style="The style model")
    async def delete(self, interaction: discord.Interaction[EaselBot], style: str) -> None:
        found = await self._style(interaction, style, change=True)
        await defer(interaction, ephemeral=True)
        note = ""
        active = await self.repo.active_training(found)
        if active is not None:
            note = " " + await self.work.stop(interaction, active)
        await self.work.forget_at_flair(found)
        await self.repo.delete(found)
        await respond(interaction, f"🗑️ Deleted the style model **{found.name}** (`{found.id}`).{note}")

    @add.autocomplete("style")
    @review.autocomplete("style")
    @remove.autocomplete("style")
    @train.autocomplete("style")
    @cancel.autocomplete("style")
    @rename.autocomplete("style")
    @delete.autocomplete("style")
    async def _changeable(
        self, interaction: discord.Interaction[EaselBot], current: str
    ) -> list[app_commands.Choice[str]]:
        return await self.choices(interaction, current, change=True)

    @trainings.autocomplete("style")
    async def _usable(self, interaction: discord.Interaction[EaselBot], current: str) -> list[app_commands.Choice[str]]:
        return await self.choices(interaction, current, change=False)


async def setup(bot: EaselBot) -> None:
    await bot.add_cog(Styles(bot))
