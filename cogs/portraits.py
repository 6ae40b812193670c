"""/portrait: personal portrait models on mimpi.ai — collect photos, review, train, generate, manage.

Everything is per server and per member: a model belongs to the member who trained it, in the server where
they trained it. Nobody else can use, see or delete it, except that server's admins (see and delete).
No privileged intent is needed: photos come as command attachments, or from the message a member points
the "Add to my training set" message command at (Discord sends that message with the interaction).
"""

from __future__ import annotations

import asyncio
import io
import re
import time

import discord
from discord import app_commands
from discord.ext import commands

from bot import limits
from bot.app import EaselBot
from bot.delivery import BUTTON_PREFIX, FEATURE_TITLES, ButtonSpec
from bot.errors import BadInput, NotAllowed, NotFound
from bot.jobs.access import Actor, can_act, owns
from bot.jobs.engine import NewInput
from bot.jobs.model import ACTIVE
from bot.portraits import (
    NAME_MAX,
    PROMPT_MAX,
    SUBJECTS,
    PortraitModel,
    PortraitRepository,
    clean_subject,
    rules,
    subject_token,
    with_token,
)
from bot.providers.mimpi import PORTRAIT, TRAINING, MimpiAdapter
from bot.quotas import QuotaLedger
from bot.training import REFERRER_SQL, SetImage, TrainingSet, flow, menu, parse_numbers
from bot.tree import defer, respond

PROVIDER = "mimpi"
SET_PREFIX = "pt"  # custom_id "pt:<action>:<set id>" for the review message's buttons
MORE_ACTION = "pmore"  # "ej:pmore:<job id>" on generated portraits
MAX_IMAGES_PER_IMAGE = 8
ADD_MENU_NAME = menu.MENU_NAME
_UNSAFE_NAME = re.compile(r"[`*_~|<>@#\\\n\r\t]+")


def _clean_name(raw: str | None, subject: str) -> str:
    name = " ".join(_UNSAFE_NAME.sub(" ", raw or "").split())[:NAME_MAX]
    return name or f"{subject.capitalize()} model"


def _when(epoch: float | None) -> str:
    return "—" if epoch is None else f"<t:{int(epoch)}:R>"


class Portraits(commands.Cog):
    portrait = app_commands.Group(
        name="portrait",
        description="Your own portrait model: train it on your photos, then make pictures",
        guild_only=True,
    )

    def __init__(self, bot: EaselBot) -> None:
        self.bot = bot
        self.repo = PortraitRepository(bot.db, bot.jobs.files)
        adapter = bot.jobs.adapters.get(PROVIDER)
        if isinstance(adapter, MimpiAdapter):
            adapter.upload_log = self.repo  # uploads survive restarts: never uploaded or trained twice
        # Photos of open sets live in the job input store too: finished jobs must not delete them.
        bot.jobs.store.add_input_referrer(REFERRER_SQL)
        bot.member_data_erasers.append(self.repo.erase_member)
        self.rules = rules(bot.settings)
        self._locks: dict[tuple[int, int], asyncio.Lock] = {}
        FEATURE_TITLES[TRAINING] = "Portrait model"
        FEATURE_TITLES[PORTRAIT] = "Portrait"
        bot.jobs.deliverer.buttons_for[PORTRAIT] = [ButtonSpec(MORE_ACTION, "More like this", "🔁")]
        bot.components.register(BUTTON_PREFIX, MORE_ACTION, self.on_more)
        bot.components.register(SET_PREFIX, "train", self.on_train_button)
        bot.components.register(SET_PREFIX, "discard", self.on_discard_button)

    async def cog_load(self) -> None:
        menu.register(self.bot, self.rules.studio, self.add_from_message)

    async def cog_unload(self) -> None:
        menu.unregister(self.bot, self.rules.studio)
        self.bot.jobs.deliverer.buttons_for.pop(PORTRAIT, None)
        self.bot.components.unregister(BUTTON_PREFIX, MORE_ACTION)
        self.bot.components.unregister(SET_PREFIX, "train")
        self.bot.components.unregister(SET_PREFIX, "discard")

    # Helpers

    @staticmethod
    def _guild(interaction: discord.Interaction[EaselBot]) -> int:
        if interaction.guild_id is None:
            raise NotAllowed("Portrait models live in a server: use this there, not in DMs.")
        return interaction.guild_id

    def _lock(self, guild_id: int, user_id: int) -> asyncio.Lock:
        return self._locks.setdefault((guild_id, user_id), asyncio.Lock())

    async def _open_set(self, interaction: discord.Interaction[EaselBot]) -> TrainingSet:
        found = await self.repo.open_set(self._guild(interaction), interaction.user.id)
        if found is None:
            raise NotFound("You have no training set open here. Start one with `/portrait new`.")
        return found

    def _limits_text(self) -> str:
        return self.rules.limits_text()

    async def _training_cost(self, guild_id: int) -> int | None:
        ledger = self.bot.ledger
        if isinstance(ledger, QuotaLedger):
            return (await ledger.costs(guild_id)).get(TRAINING)
        return None

    def _set_view(self, training_set: TrainingSet, count: int, cost: int | None) -> discord.ui.View:
        needed = self.bot.settings.portrait_min_images - count
        label = "Train" if cost is None else f"Train ({cost} credits)"
        if needed > 0:
            label = f"Train (needs {needed} more)"
        view = discord.ui.View(timeout=None)
        view.add_item(
            discord.ui.Button(
                label=label,
                emoji="🧠",
                style=discord.ButtonStyle.primary,
                custom_id=f"{SET_PREFIX}:train:{training_set.id}",
                disabled=needed > 0,
            )
        )
        view.add_item(
            discord.ui.Button(
                label="Discard set",
                emoji="🗑️",
                style=discord.ButtonStyle.danger,
                custom_id=f"{SET_PREFIX}:discard:{training_set.id}",
            )
        )
        return view

    async def _show_set(self, interaction: discord.Interaction[EaselBot], training_set: TrainingSet, head: str) -> None:
        """Count, advice, the numbered contact sheet and the Train/Discard buttons (ephemeral)."""
        photos = await self.repo.photos(training_set.id)
        settings = self.bot.settings
        count = len(photos)
        lines = [
            head,
            f"**{training_set.name}** — {training_set.subject}, **{count}** photo{'s' if count != 1 else ''} "
            f"({self._limits_text()}).",
        ]
        needed = settings.portrait_min_images - count
        if needed > 0:
            lines.append(f"⛔ Training needs at least {settings.portrait_min_images} photos: add {needed} more.")
        elif count < settings.portrait_recommended_images:
            lines.append(
                f"⚠️ Fewer than {settings.portrait_recommended_images} photos: the model will be weaker. "
                "Different days, light, clothes and angles help most."
            )
        if not photos:
            lines.append("Add photos with `/portrait add`, or the “Add to my training set” command on a message.")
            await respond(interaction, "\n".join(lines))
            return
        sheet, missing = await flow.contact_sheet(self.bot.jobs.files, photos)
        if missing:
            gone = ", ".join(str(n) for n in missing)
            lines.append(f"❗ Photos {gone} are no longer stored: remove them and add them again.")
        lines.append(
            f"Remove photos by number with `/portrait remove numbers: 3, 7-9`. Prompts will call the subject "
            f"“{subject_token(training_set.subject)}”."
        )
        view = self._set_view(training_set, count, await self._training_cost(training_set.guild_id))
        await respond(
            interaction,
            "\n".join(lines)[: limits.MESSAGE_CONTENT_LIMIT],
            file=discord.File(io.BytesIO(sheet), filename="training_set.jpg"),
            view=view,
        )
        view.stop()  # the buttons are resolved from the database by the component router

    @staticmethod
    def _owns(interaction: discord.Interaction[EaselBot], model: PortraitModel) -> bool:
        """Only its owner makes pictures with a portrait model (admins may see and delete it, not use it)."""
        return owns(model.job, Actor.of(interaction))

    async def _visible_model(
        self, interaction: discord.Interaction[EaselBot], model_id: str, *, admins: bool
    ) -> PortraitModel:
        """The member's own model here; with `admins`, any model this member may act on (bot/jobs/access.py)."""
        self._guild(interaction)
        found = await self.repo.model(model_id.strip())
        actor = Actor.of(interaction)
        allowed = found is not None and (self._owns(interaction, found) or (admins and can_act(found.job, actor)))
        if found is None or found.deleted or not allowed:
            shown = re.sub(r"[^A-Za-z0-9_-]", "", model_id)[:20]
            raise NotFound(f"No such model of yours: `{shown}`. `/portrait models` lists yours.")
        return found

    @staticmethod
    def _unusable_reason(model: PortraitModel, now: float) -> str:
        state = model.state(now)
        if state == "expired":
            return (
                f"**{model.name}** expired {_when(model.expires_at)}: mimpi keeps models 30 days. "
                "Train a new one with `/portrait new`."
            )
        if state in ("queued", "starting", "training"):
            return f"**{model.name}** is still training; I'll tell you when it is ready."
        return f"**{model.name}** cannot make pictures: its training {state}."

    # Training sets

    @portrait.command(name="new", description="Start a training set: the photos your model will learn from")
    @app_commands.describe(
        subject="Who or what the photos show (man, woman, person, dog, cat, …)",
        name="A name for your model (default: “<Subject> model”)",
    )
    async def new(
        self,
        interaction: discord.Interaction[EaselBot],
        subject: app_commands.Range[str, 2, 30],
        name: app_commands.Range[str, 1, NAME_MAX] | None = None,
    ) -> None:
        guild_id = self._guild(interaction)
        clean = clean_subject(subject)
        existing = await self.repo.open_set(guild_id, interaction.user.id)
        created = None
        if existing is None:
            created = await self.repo.create_set(guild_id, interaction.user.id, clean, _clean_name(name, clean))
            existing = created or await self.repo.open_set(guild_id, interaction.user.id)  # None: lost a race
        if created is None:
            count = len(await self.repo.photos(existing.id)) if existing is not None else 0
            raise BadInput(
                f"You already have a training set open here: **{existing.name if existing else '?'}** ({count} "
                "photos). Add to it, train it with `/portrait train`, or `/portrait discard` it first."
            )
        await respond(
            interaction,
            f"📸 Started **{created.name}** ({created.subject}). Now add photos of just that {created.subject}: "
            f"{self._limits_text()}.\n"
            "• `/portrait add` takes up to 10 photos at a time;\n"
            f"• or use **{ADD_MENU_NAME}** (message menu → Apps) on any message with photos.\n"
            "Clear, varied photos work best: different days, light, clothes and angles; no one else in them.\n"
            "Then `/portrait review` to check them and train.",
        )

    @new.autocomplete("subject")
    async def _subject_choices(
        self, interaction: discord.Interaction[EaselBot], current: str
    ) -> list[app_commands.Choice[str]]:
        typed = current.strip().lower()
        options = [s for s in SUBJECTS if typed in s]
        if typed and typed not in options:
            options.insert(0, typed[:30])
        return [app_commands.Choice(name=s, value=s) for s in options][: limits.AUTOCOMPLETE_RESULTS]

    @portrait.command(name="add", description="Add photos to your training set (up to 10 at a time)")
    @app_commands.describe(
        image1="A photo of your subject",
        **{f"image{n}": "Another photo (optional)" for n in range(2, 11)},
    )
    async def add(
        self,
        interaction: discord.Interaction[EaselBot],
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
        given = [image1, image2, image3, image4, image5, image6, image7, image8, image9, image10]
        await self._add(interaction, [a for a in given if a is not None])

    async def add_from_message(
        self, interaction: discord.Interaction[EaselBot], message: discord.Message, set_id: int
    ) -> None:
        """The shared message command chose this member's open portrait set."""
        flow.check_own_message(message, interaction.user.id, self.rules)
        await self._add(interaction, list(message.attachments))

    async def _add(self, interaction: discord.Interaction[EaselBot], attachments: list[discord.Attachment]) -> None:
        training_set = await self._open_set(interaction)
        if not can_act(training_set, Actor.of(interaction)):
            raise NotAllowed("That training set is not yours.")
        await defer(interaction, ephemeral=True)  # downloads and checks take a moment
        text = await flow.add_pictures(
            self.repo.sets, self.rules, training_set, attachments, added_by=interaction.user.id
        )
        await respond(interaction, text)

    @portrait.command(name="review", description="See your training set: count, numbered photos, and train")
    async def review(self, interaction: discord.Interaction[EaselBot]) -> None:
        training_set = await self._open_set(interaction)
        await self.repo.sets.touch(training_set.id)  # the shared message command adds here next
        await defer(interaction, ephemeral=True)
        await self._show_set(interaction, training_set, "🗂️ Your training set")

    @portrait.command(name="remove", description="Remove photos from your training set by their numbers")
    @app_commands.describe(numbers="Photo numbers from /portrait review, e.g. 3, 7-9")
    async def remove(
        self, interaction: discord.Interaction[EaselBot], numbers: app_commands.Range[str, 1, 200]
    ) -> None:
        training_set = await self._open_set(interaction)
        photos = await self.repo.photos(training_set.id)
        if not photos:
            raise BadInput("Your training set has no photos to remove.")
        chosen = parse_numbers(numbers, len(photos), noun="photo", review="/portrait review")
        await defer(interaction, ephemeral=True)
        removed = await self.repo.sets.remove_images(training_set.id, [p.sha256 for p in photos if p.number in chosen])
        await self._show_set(
            interaction,
            training_set,
            f"🗑️ Removed {removed} photo{'s' if removed != 1 else ''}; the rest are renumbered.",
        )

    @portrait.command(name="discard", description="Throw away your training set and its photos")
    async def discard(self, interaction: discord.Interaction[EaselBot]) -> None:
        training_set = await self._open_set(interaction)
        await self.repo.sets.discard(training_set.id)
        await respond(interaction, f"🗑️ Discarded the training set **{training_set.name}** and its photos.")

    async def on_discard_button(
        self, interaction: discord.Interaction[EaselBot], set_id: str, _arg: str | None
    ) -> None:
        training_set = await self._open_set(interaction)
        if str(training_set.id) != set_id:
            raise NotFound("That training set is no longer open.")
        await self.repo.sets.discard(training_set.id)
        await respond(interaction, f"🗑️ Discarded the training set **{training_set.name}** and its photos.")

    # Training

    @portrait.command(
        name="train",
        description="Train your model on your training set (costs credits)",
        extras={"feature": "portrait_training"},
    )
    async def train(self, interaction: discord.Interaction[EaselBot]) -> None:
        await self._train(interaction, None)

    async def on_train_button(self, interaction: discord.Interaction[EaselBot], set_id: str, _arg: str | None) -> None:
        await self._train(interaction, set_id)

    async def _train(self, interaction: discord.Interaction[EaselBot], set_id: str | None) -> None:
        guild_id = self._guild(interaction)
        settings = self.bot.settings
        async with self._lock(guild_id, interaction.user.id):  # a double click must not train twice
            training_set = await self._open_set(interaction)
            if set_id is not None and str(training_set.id) != set_id:
                raise NotFound("That training set is no longer open; `/portrait review` shows the current one.")
            already = await self.repo.sets.job_for_set(TRAINING, training_set.id)
            if already is not None:
                await self.repo.sets.mark_training(training_set.id, already)
                raise NotAllowed(f"This training set is already training (job `{already}`).")
            photos = await self.repo.photos(training_set.id)
            if len(photos) < settings.portrait_min_images:
                raise BadInput(
                    f"Your set has {len(photos)} photo{'s' if len(photos) != 1 else ''}; training needs at least "
                    f"{settings.portrait_min_images} ({settings.portrait_recommended_images} or more recommended). "
                    "Add more with `/portrait add`."
                )
            await defer(interaction, ephemeral=True)
            inputs = await self._inputs(photos)
            job = await self.bot.jobs.create(
                interaction,
                feature=TRAINING,
                provider=PROVIDER,
                params={
                    "name": training_set.name,
                    "subject": training_set.subject,
                    "token": subject_token(training_set.subject),
                    "photos": len(photos),
                    "_set_id": training_set.id,
                },
                inputs=inputs,
                units=1,
            )
            await self.repo.sets.mark_training(training_set.id, job.id)
        if len(photos) < settings.portrait_recommended_images:
            await respond(
                interaction,
                f"⚠️ Training on {len(photos)} photos; {settings.portrait_recommended_images} or more give better "
                "results. Training takes a while: I'll mention you here when the model is ready.",
            )

    async def _inputs(self, photos: list[SetImage]) -> list[NewInput]:
        return await flow.job_inputs(self.bot.jobs.files, self.rules, photos)

    # Generating

    @portrait.command(
        name="generate", description="Make pictures with one of your portrait models", extras={"feature": "portrait"}
    )
    @app_commands.describe(
        model="One of your ready models",
        prompt="What to make, e.g. “in soft light, portrait, in the style of Van Gogh”",
        count="How many pictures (1 by default; each costs credits)",
    )
    async def generate(
        self,
        interaction: discord.Interaction[EaselBot],
        model: str,
        prompt: app_commands.Range[str, 1, PROMPT_MAX - 40],
        count: app_commands.Range[int, 1, MAX_IMAGES_PER_IMAGE] = 1,
    ) -> None:
        found = await self._visible_model(interaction, model, admins=False)
        now = time.time()
        if not found.usable(now):
            raise NotAllowed(self._unusable_reason(found, now))
        text = with_token(prompt, found.token)
        if len(text) > PROMPT_MAX:
            raise BadInput(f"The prompt is too long: at most {PROMPT_MAX} characters with the subject token.")
        await self.bot.jobs.create(
            interaction,
            feature=PORTRAIT,
            provider=PROVIDER,
            params={
                "prompt": text,
                "model": found.name,
                "images": count,
                "_model_job": found.id,
                "_model_id": found.provider_model_id,
            },
            units=count,
        )

    @generate.autocomplete("model")
    async def _ready_model_choices(
        self, interaction: discord.Interaction[EaselBot], current: str
    ) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        now = time.time()
        mine = await self.repo.models(interaction.guild_id, interaction.user.id)
        return self._choices([m for m in mine if m.usable(now)], current, now)

    @staticmethod
    def _choices(models: list[PortraitModel], current: str, now: float) -> list[app_commands.Choice[str]]:
        typed = current.strip().lower()
        found = [m for m in models if typed in m.name.lower() or typed in m.id]
        return [
            app_commands.Choice(name=f"{m.name} · {m.subject} · {m.state(now)} · {m.id}"[:100], value=m.id)
            for m in found[: limits.AUTOCOMPLETE_RESULTS]
        ]

    async def on_more(self, interaction: discord.Interaction[EaselBot], job_id: str, _arg: str | None) -> None:
        """ "More like this": the same model and prompt again, as a new (charged) job."""
        job = await self.bot.jobs.store.get(job_id)
        model_job = job.params.get("_model_job") if job is not None and job.feature == PORTRAIT else None
        found = await self.repo.model(str(model_job)) if model_job else None
        if job is None or found is None or found.deleted or not self._owns(interaction, found):
            raise NotFound("Only the member who trained this portrait model can make more pictures with it.")
        now = time.time()
        if not found.usable(now):
            raise NotAllowed(self._unusable_reason(found, now))
        await self.bot.jobs.create(
            interaction,
            feature=PORTRAIT,
            provider=PROVIDER,
            params={**job.params, "_model_id": found.provider_model_id},
            units=int(job.params.get("images", 1)),
            parent_job=job.id,
        )

    # Managing models

    @portrait.command(name="models", description="Your portrait models here: status and when they expire")
    @app_commands.describe(everyone="Admins: list every member's models in this server")
    async def models(self, interaction: discord.Interaction[EaselBot], everyone: bool = False) -> None:
        guild_id = self._guild(interaction)
        if everyone and not Actor.of(interaction).is_admin:
            raise NotAllowed("Only server admins can list everyone's portrait models.")
        found = await self.repo.models(guild_id, None if everyone else interaction.user.id, limit=25)
        if not found:
            none = "No portrait models in this server yet." if everyone else "You have no portrait models here yet."
            await respond(interaction, none + " Start a training set with `/portrait new`.")
            return
        now = time.time()
        lines = [self._model_line(m, now, owner=everyone) for m in found]
        embed = discord.Embed(
            title="Portrait models in this server" if everyone else "Your portrait models",
            description="\n".join(lines)[: limits.EMBED_DESCRIPTION_LIMIT],
            colour=discord.Colour.blurple(),
        )
        embed.set_footer(text="mimpi keeps each model 30 days after it is trained.")
        await respond(interaction, embed=embed)

    @staticmethod
    def _model_line(model: PortraitModel, now: float, *, owner: bool) -> str:
        state = model.state(now)
        line = f"`{model.id}` **{model.name}** ({model.subject}) — {state}"
        if state == "training" and model.job.progress is not None:
            line += f" {model.job.progress:.0f}%"
        if state == "ready":
            line += f" — expires {_when(model.expires_at)}"
        elif state == "expired":
            line += f" {_when(model.expires_at)}"
        if model.is_test:
            line += " — 🧪 test"
        if owner:
            line += f" — <@{model.job.user_id}>" if model.job.user_id else " — (erased member)"
        return line

    @portrait.command(name="info", description="Details of one of your portrait models")
    @app_commands.describe(model="The model (see /portrait models)")
    async def info(self, interaction: discord.Interaction[EaselBot], model: str) -> None:
        found = await self._visible_model(interaction, model, admins=True)
        now = time.time()
        job = found.job
        embed = discord.Embed(title=f"Portrait model {found.name}", colour=discord.Colour.blurple())
        embed.add_field(name="Status", value=found.state(now))
        embed.add_field(name="Subject", value=f"{found.subject} (“{found.token}”)")
        embed.add_field(name="Photos", value=str(job.params.get("photos", "—")))
        embed.add_field(name="Trained", value=f"<t:{int(job.finished_at or job.created_at)}:f>")
        embed.add_field(name="Expires", value=_when(found.expires_at))
        embed.add_field(name="Owner", value=f"<@{job.user_id}>" if job.user_id else "—")
        if job.error:
            embed.add_field(name="Error", value=job.error[: limits.EMBED_FIELD_VALUE_LIMIT], inline=False)
        if found.is_test:
            embed.add_field(name="Mode", value="🧪 mimpi test key: sample data", inline=False)
        embed.set_footer(text=f"Model {found.id}")
        await respond(interaction, embed=embed)

    @portrait.command(name="delete", description="Delete one of your portrait models (admins: any model here)")
    @app_commands.describe(model="The model (see /portrait models)")
    async def delete(self, interaction: discord.Interaction[EaselBot], model: str) -> None:
        found = await self._visible_model(interaction, model, admins=True)
        await defer(interaction, ephemeral=True)
        note = ""
        if found.job.status in ACTIVE:
            try:
                await self.bot.jobs.cancel(found.id, actor=Actor.of(interaction))
                note = " Its training was stopped, and its credits refunded."
            except NotAllowed:
                note = " Its training is already at mimpi, which cannot stop it: its credits stay spent."
        await self.repo.delete_model(found.id, interaction.user.id)
        if found.expires_at is not None and not found.expired(time.time()):
            note += f" mimpi itself drops it {_when(found.expires_at)}; nobody can use it from here."
        await respond(interaction, f"🗑️ Deleted the portrait model **{found.name}** (`{found.id}`).{note}")

    @info.autocomplete("model")
    @delete.autocomplete("model")
    async def _visible_model_choices(
        self, interaction: discord.Interaction[EaselBot], current: str
    ) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        owner = None if Actor.of(interaction).is_admin else interaction.user.id
        return self._choices(await self.repo.models(interaction.guild_id, owner), current, time.time())


async def setup(bot: EaselBot) -> None:
    await bot.add_cog(Portraits(bot))
