"""The Discord side of a training set, the same for every studio: take members' pictures, show the set as a
numbered contact sheet, and turn it into a job's inputs.

Only a member's own pictures feed a set: attachments they upload with the command, or a message of their own
(never somebody else's: nobody can train a model of another member from their selfies).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import discord
from PIL import Image

from bot import limits
from bot.errors import BadInput, NotAllowed
from bot.inputs import read_image
from bot.jobs.engine import NewInput
from bot.jobs.files import FileStore
from bot.media import contact_sheet_async
from bot.training.rules import Rules
from bot.training.store import NewImage, SetImage, TrainingSet, TrainingSetStore


def check_own_message(message: discord.Message, user_id: int, rules: Rules) -> None:
    if message.author.id != user_id:
        raise NotAllowed(
            f"Only your own messages can feed your training set: that {rules.noun} was posted by someone else. "
            f"Post your own {rules.noun}s, or attach them to `{rules.command} add`."
        )
    if not message.attachments:
        raise BadInput(f"That message has no attached {rules.noun}s to add.")


async def prepare(
    files: FileStore, rules: Rules, attachments: Sequence[discord.Attachment]
) -> tuple[list[NewImage], list[str]]:
    """Download, check and store each picture by the studio's rules. Returns the stored images, and one
    problem line per picture refused."""
    problems: list[str] = []
    fresh: list[NewImage] = []
    for position, attachment in enumerate(attachments):
        try:
            checked = await read_image(
                attachment, name=rules.noun, position=position, max_bytes=rules.max_bytes, min_side=rules.min_side
            )
            prepared = await asyncio.to_thread(rules.prepare, checked.data)
        except BadInput as exc:
            problems.append(exc.message)
            continue
        except (OSError, ValueError, Image.DecompressionBombError):
            # It passed the checks but cannot be re-encoded (a truncated or exotic file): refuse just this one.
            problems.append(f"`{attachment.filename}` could not be read as a picture; try a PNG or JPEG copy.")
            continue
        sha = await files.put_input(prepared.data)
        fresh.append(NewImage(sha, checked.filename, prepared.format, len(prepared.data), prepared.width,
                              prepared.height))  # fmt: skip
    return fresh, problems


async def add_pictures(
    store: TrainingSetStore,
    rules: Rules,
    training_set: TrainingSet,
    attachments: Sequence[discord.Attachment],
    *,
    added_by: int,
) -> str:
    """Add to the set; the member's answer. BadInput (nothing added) when no picture could be added."""
    count = len(await store.images(training_set.id))
    if count >= rules.max_images:
        raise BadInput(
            f"Your training set already has {rules.plural(count)}, the most allowed ({rules.max_images}). "
            f"Remove some with `{rules.command} remove` first."
        )
    fresh, problems = await prepare(store.files, rules, attachments)
    result = await store.add_images(training_set.id, fresh, rules.max_images, added_by=added_by)
    refused = {p.sha256 for p in fresh if p.filename in result.over_limit}
    await store.forget_files(sorted(refused))
    notes = [f"❌ {p}" for p in problems]
    if result.duplicates:
        notes.append(f"↩️ Already in your set: {', '.join(f'`{n}`' for n in result.duplicates)}.")
    if result.over_limit:
        notes.append(
            f"⛔ Not added, the set is full ({rules.max_images} {rules.noun}s): "
            + ", ".join(f"`{n}`" for n in result.over_limit)
            + "."
        )
    if not result.added:
        raise BadInput("\n".join([f"No {rules.noun}s were added.", *notes])[: limits.MESSAGE_CONTENT_LIMIT])
    head = f"✅ Added {rules.plural(len(result.added))}: now {result.total} in **{training_set.name}**."
    if result.total < rules.min_images:
        advice = f" Training needs at least {rules.min_images}."
    elif result.total < rules.recommended_images:
        advice = f" {rules.recommended_images} or more are recommended."
    else:
        advice = f" `{rules.command} review` to check them and train."
    return "\n".join([head + advice, *notes])[: limits.MESSAGE_CONTENT_LIMIT]


def count_advice(rules: Rules, count: int) -> list[str]:
    needed = rules.min_images - count
    if needed > 0:
        return [f"⛔ Training needs at least {rules.plural(rules.min_images)}: add {needed} more."]
    if count < rules.recommended_images:
        return [f"⚠️ Fewer than {rules.recommended_images} {rules.noun}s: the model will be weaker. Variety helps most."]
    return []


async def contact_sheet(files: FileStore, images: list[SetImage]) -> tuple[bytes, list[int]]:
    """The numbered contact sheet, and the numbers of images whose file is gone."""

    def load() -> tuple[list[bytes], list[int]]:
        datas, missing = [], []
        for image in images:
            path = files.input_path(image.sha256)
            if path.exists():
                datas.append(path.read_bytes())
            else:
                datas.append(b"")
                missing.append(image.number)
        return datas, missing

    datas, missing = await asyncio.to_thread(load)
    return await contact_sheet_async(datas), missing


async def job_inputs(files: FileStore, rules: Rules, images: list[SetImage]) -> list[NewInput]:
    """The set's images as a training job's inputs (named after the studio's noun)."""

    def load() -> tuple[list[NewInput], list[int]]:
        made, missing = [], []
        for image in images:
            path = files.input_path(image.sha256)
            if not path.exists():
                missing.append(image.number)
                continue
            made.append(NewInput(rules.noun, image.filename, path.read_bytes(), image.info(), position=image.number))
        return made, missing

    inputs, missing = await asyncio.to_thread(load)
    if missing:
        raise BadInput(
            f"{rules.noun.capitalize()}s {', '.join(map(str, missing))} are no longer stored. Remove them with "
            f"`{rules.command} remove` and add them again."
        )
    return inputs
