"""The Discord emulator driven by a small, plain discord.py AutoShardedBot."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import discord
import pytest
import pytest_asyncio
from discord import app_commands
from discord.ext import commands

from tests.emulator import Attachment, DiscordEmulator, EmulatorUsageError
from tests.emulator import permissions as perms
from tests.emulator.harness import BotRun, running_bot

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201a3b1e0a70000000049454e44ae426082"
)
PALETTES = ["v1", "v2", "v3-beta"]


class PanelView(discord.ui.View):
    @discord.ui.button(label="OK", custom_id="panel:ok")
    async def ok(self, interaction: discord.Interaction, button: discord.ui.Button[PanelView]) -> None:
        await interaction.response.edit_message(content=f"clicked by {interaction.user.name}", view=None)


class FeedbackModal(discord.ui.Modal, title="Feedback"):
    text: discord.ui.TextInput[FeedbackModal] = discord.ui.TextInput(label="Your feedback", custom_id="feedback:text")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"thanks: {self.text.value}", ephemeral=True)


@dataclass
class Held:
    """Interactions the bot keeps so a test can act with them later (token expiry)."""

    interactions: list[discord.Interaction] = field(default_factory=list)


def build_bot(held: Held) -> commands.AutoShardedBot:
    bot = commands.AutoShardedBot(
        command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05, help_command=None
    )

    @bot.tree.command(description="About the bot")
    async def about(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("about: emulated")

    @bot.tree.command(description="Render an image")
    async def render(interaction: discord.Interaction, prompt: str) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.followup.send(f"rendered {prompt}", file=discord.File(io.BytesIO(PNG), "out.png"))

    @bot.tree.command(description="Inspect an uploaded image")
    async def inspect(interaction: discord.Interaction, image: discord.Attachment) -> None:
        data = await image.read()
        await interaction.response.send_message(f"{len(data)} bytes {image.content_type} {image.width}x{image.height}")

    @bot.tree.command(description="Show a panel")
    async def panel(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("panel", view=PanelView())

    @bot.tree.command(description="Leave feedback")
    async def feedback(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(FeedbackModal(custom_id="feedback"))

    @bot.tree.command(description="Defer and keep the interaction")
    async def hold(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        held.interactions.append(interaction)

    @bot.tree.command(description="Answer too late")
    async def sleepy(interaction: discord.Interaction) -> None:
        await asyncio.sleep(3.2)
        await interaction.response.send_message("finally")

    color = app_commands.Group(name="color", description="Colour tools")

    @color.command(name="page", description="Show a palette page")
    async def page(interaction: discord.Interaction, version: str) -> None:
        await interaction.response.send_message(f"palette {version}", ephemeral=True)

    @page.autocomplete("version")
    async def version_choices(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=v, value=v) for v in PALETTES if v.startswith(current)]

    bot.tree.add_command(color)

    @bot.tree.context_menu(name="Add to my training set")
    async def add_to_training(interaction: discord.Interaction, message: discord.Message) -> None:
        names = ",".join(a.filename for a in message.attachments)
        await interaction.response.send_message(f"added {names}", ephemeral=True)

    async def setup_hook() -> None:
        await bot.tree.sync()

    bot.setup_hook = setup_hook  # type: ignore[method-assign]
    return bot


@dataclass
class Running:
    emu: DiscordEmulator
    bot: commands.AutoShardedBot
    run: BotRun
    held: Held


@pytest_asyncio.fixture
async def running(emulator: DiscordEmulator) -> AsyncIterator[Running]:
    held = Held()
    bot = build_bot(held)
    async with running_bot(bot, emulator) as run:
        yield Running(emulator, bot, run, held)


async def test_login_and_sync_store_the_schema(running: Running) -> None:
    emu, bot = running.emu, running.bot
    assert bot.user is not None and bot.user.id == emu.application_id
    assert emu.sync_count == 1
    names = {(c["name"], c["type"]) for c in emu.commands}
    assert {("about", 1), ("color", 1), ("Add to my training set", 3)} <= names
    color = next(c for c in emu.commands if c["name"] == "color")
    assert color["options"][0]["name"] == "page" and color["options"][0]["options"][0]["autocomplete"] is True
    guild = bot.get_guild(emu.guild_id)
    assert guild is not None and guild.get_channel(emu.channel_id) is not None
    assert [r.path for r in emu.requests[:3]] == [
        "/users/@me",
        "/oauth2/applications/@me",
        f"/applications/{emu.application_id}/commands",
    ]


async def test_slash_command_answered_immediately(running: Running) -> None:
    alice = running.emu.add_member("alice")
    ix = await running.emu.invoke("about", user=alice)
    body = await ix.response()
    assert body["type"] == 4 and body["data"]["content"] == "about: emulated"
    assert not ix.deferred and not ix.ephemeral
    assert ix.original is not None and ix.original["content"] == "about: emulated"
    assert ix.response_latency is not None and ix.response_latency < 1.0
    assert running.run.errors == []


async def test_defer_then_followup_with_file(running: Running) -> None:
    emu = running.emu
    ix = await emu.invoke("render", {"prompt": "a cat"}, user=emu.add_member("bob"))
    assert (await ix.response())["type"] == 5 and ix.deferred
    message = await ix.wait_original(lambda m: bool(m["attachments"]))
    assert message["content"] == "rendered a cat"
    assert ix.followups[0]["id"] == message["id"]  # the first followup replaces the "thinking" message
    attachment = message["attachments"][0]
    assert attachment["filename"] == "out.png" and attachment["content_type"] == "image/png"
    assert emu.file_bytes(attachment) == PNG


async def test_attachment_option_is_read_by_the_bot(running: Running) -> None:
    emu = running.emu
    ix = await emu.invoke("inspect", attachments={"image": Attachment(PNG, "cat.png", "image/png")})
    assert (await ix.response())["data"]["content"] == f"{len(PNG)} bytes image/png 1x1"


async def test_button_press_edits_the_message(running: Running) -> None:
    emu = running.emu
    carol = emu.add_member("carol")
    ix = await emu.invoke("panel", user=carol)
    await ix.response()
    assert ix.original is not None
    press = await emu.press_button(ix.original, "panel:ok", user=carol)
    assert (await press.response())["type"] == 7
    edited = await ix.wait_original(lambda m: m["content"] == "clicked by carol")
    assert edited["components"] == [] and press.original == edited
    with pytest.raises(EmulatorUsageError, match="no component"):
        await emu.press_button(edited, "panel:ok", user=carol)


async def test_modal_submit(running: Running) -> None:
    emu = running.emu
    dave = emu.add_member("dave")
    shown = await emu.invoke("feedback", user=dave)
    assert (await shown.response())["type"] == 9
    ix = await emu.submit_modal("feedback", {"feedback:text": "lovely"}, user=dave)
    await ix.response()
    assert ix.ephemeral and ix.original is not None and ix.original["content"] == "thanks: lovely"


async def test_message_context_menu(running: Running) -> None:
    emu = running.emu
    erin = emu.add_member("erin")
    target = emu.user_message("look", user=erin, attachments=[Attachment(PNG, "cat.png")])
    ix = await emu.invoke_message_command("Add to my training set", target, user=erin)
    await ix.response()
    assert ix.original is not None and ix.original["content"] == "added cat.png"


async def test_autocomplete_and_subcommand(running: Running) -> None:
    emu = running.emu
    choices = await emu.autocomplete("color page", {"version": "v"}, focused="version")
    assert [c["value"] for c in choices] == PALETTES
    ix = await emu.invoke("color page", {"version": "v2"})
    await ix.response()
    assert ix.ephemeral and ix.original is not None and ix.original["content"] == "palette v2"
    with pytest.raises(EmulatorUsageError, match="unknown option"):
        await emu.invoke("color page", {"colour": "v2"})


async def test_channel_message_dm_and_their_refusals(running: Running) -> None:
    emu, bot = running.emu, running.bot
    frank = emu.add_member("frank")
    channel = bot.get_channel(emu.channel_id)
    assert isinstance(channel, discord.TextChannel)
    await channel.send("hello channel")
    assert (await emu.wait_for_message(emu.channel_id))["content"] == "hello channel"

    user = await bot.fetch_user(frank.id)
    await user.send("hello dm")
    assert [m["content"] for m in emu.dm_messages(frank.id)] == ["hello dm"]

    emu.forbid_channel(emu.channel_id)
    with pytest.raises(discord.Forbidden) as forbidden:
        await channel.send("nope")
    assert forbidden.value.code == 50013

    emu.close_dms(frank.id)
    with pytest.raises(discord.Forbidden) as closed:
        await user.send("nope")
    assert closed.value.code == 50007

    doomed_id = emu.add_channel("doomed")
    await emu.wait_for(lambda: bot.get_channel(doomed_id))
    doomed = bot.get_channel(doomed_id)
    assert isinstance(doomed, discord.TextChannel)
    emu.delete_channel(doomed_id)
    with pytest.raises(discord.NotFound) as gone:
        await doomed.send("anyone?")
    assert gone.value.code == 10003
    await emu.wait_for(lambda: bot.get_channel(doomed_id) is None)


async def test_history_pages_and_nonces_behave_as_discord_does(running: Running) -> None:
    emu, bot = running.emu, running.bot
    channel = bot.get_channel(emu.channel_id)
    assert isinstance(channel, discord.TextChannel)
    sent = [await channel.send(f"m{n}") for n in range(5)]
    newest = [m.content async for m in channel.history(limit=3)]
    assert newest == ["m4", "m3", "m2"]
    after = [m.content async for m in channel.history(limit=2, after=sent[1], oldest_first=True)]
    assert after == ["m2", "m3"]
    # enforce_nonce: the same nonce again answers with the first message instead of posting a second one.
    first = await channel.send("once", nonce="job1.0")
    again = await channel.send("once", nonce="job1.0")
    assert again.id == first.id
    assert [m["content"] for m in emu.messages(emu.channel_id)].count("once") == 1
    emu.advance_time(6 * 60)  # Discord only remembers nonces for a few minutes
    assert (await channel.send("once", nonce="job1.0")).id != first.id
    emu.forbid_channel(emu.channel_id, deny=perms.READ_MESSAGE_HISTORY)
    await emu.wait_for(lambda: not channel.permissions_for(channel.guild.me).read_message_history)
    with pytest.raises(discord.Forbidden):
        await anext(aiter(channel.history(limit=1)))


async def test_followup_after_token_expiry_is_refused(running: Running) -> None:
    emu = running.emu
    ix = await emu.invoke("hold")
    await ix.response()
    interaction = running.held.interactions[0]
    await interaction.followup.send("in time")
    emu.advance_time(16 * 60)
    with pytest.raises(discord.HTTPException) as expired:
        await interaction.followup.send("too late")
    assert expired.value.status == 401 and expired.value.code == 50027


async def test_late_first_response_is_refused(running: Running) -> None:
    emu = running.emu
    ix = await emu.invoke("sleepy")
    await emu.wait_for(lambda: ix.callback_errors, timeout=5.0)
    assert ix.callback_errors[0]["code"] == 10062
    assert ix.callback is None
    await emu.wait_for(lambda: running.run.errors, timeout=1.0)
    error = running.run.errors[0]
    assert isinstance(error, app_commands.CommandInvokeError) and isinstance(error.original, discord.NotFound)


async def test_schema_violations_are_rejected_at_sync(running: Running) -> None:
    emu, bot = running.emu, running.bot

    async def pick(interaction: discord.Interaction, colour: str) -> None: ...

    too_many = app_commands.Command(name="pick", description="Pick", callback=pick)
    too_many._params["colour"].choices = [app_commands.Choice(name=f"c{i}", value=f"c{i}") for i in range(26)]
    with pytest.raises(discord.HTTPException) as invalid:
        await bot.http.bulk_upsert_global_commands(emu.application_id, [too_many.to_dict(bot.tree)])
    assert invalid.value.code == 50035 and "25 or fewer" in invalid.value.text

    with pytest.raises(discord.HTTPException) as uppercase:
        await bot.http.bulk_upsert_global_commands(emu.application_id, [{"name": "About", "description": "x"}])
    assert uppercase.value.code == 50035
    assert {c["name"] for c in emu.commands} >= {"about"}  # a refused sync leaves the old commands


async def test_more_than_ten_files_are_rejected(running: Running) -> None:
    channel = running.bot.get_channel(running.emu.channel_id)
    assert isinstance(channel, discord.TextChannel)
    files = [discord.File(io.BytesIO(b"x"), f"{i}.txt") for i in range(11)]
    with pytest.raises(discord.HTTPException) as rejected:
        await channel.send(files=files)
    assert rejected.value.status == 413 and rejected.value.code == 40005

    running.emu.attachment_size_limit = 4
    with pytest.raises(discord.HTTPException) as too_big:
        await channel.send(file=discord.File(io.BytesIO(b"12345"), "big.bin"))
    assert too_big.value.status == 413 and too_big.value.code == 40005


async def test_unknown_route_is_a_json_404(running: Running) -> None:
    route = discord.http.Route("GET", "/guilds/{guild_id}/emojis", guild_id=running.emu.guild_id)
    with pytest.raises(discord.NotFound) as missing:
        await running.bot.http.request(route)
    assert f"emulator: no route GET /guilds/{running.emu.guild_id}/emojis" in missing.value.text


async def test_burst_of_interactions_from_many_users(running: Running) -> None:
    emu = running.emu
    users = [emu.add_member(f"user{i}") for i in range(20)]
    ixs = await asyncio.gather(*(emu.invoke("about", user=users[i % 20]) for i in range(100)))
    bodies = await asyncio.gather(*(ix.response() for ix in ixs))
    assert all(body["type"] == 4 for body in bodies)
    assert emu.api_errors == [] and running.run.errors == []


async def test_plain_bot_gets_members_dms_and_resumes(emulator: DiscordEmulator) -> None:
    intents = discord.Intents.default()
    intents.members = True
    bot = commands.Bot(command_prefix="!", intents=intents, guild_ready_timeout=0.05, help_command=None)
    acknowledged_twice: list[int] = []

    @bot.tree.command(description="Where am I?")
    async def where(interaction: discord.Interaction) -> None:
        await interaction.response.send_message(type(interaction.channel).__name__)
        route = discord.http.Route("POST", "/interactions/{i}/{t}/callback", i=interaction.id, t=interaction.token)
        try:
            await bot.http.request(route, json={"type": 4, "data": {"content": "again"}})
        except discord.HTTPException as error:
            acknowledged_twice.append(error.code)

    async def setup_hook() -> None:
        await bot.tree.sync()

    bot.setup_hook = setup_hook  # type: ignore[method-assign]
    async with running_bot(bot, emulator) as run:
        guild = bot.get_guild(emulator.guild_id)
        assert guild is not None and guild.chunked
        gus = emulator.add_member("gus")
        await emulator.wait_for(lambda: guild.get_member(gus.id))

        in_dm = await emulator.invoke("where", user=gus, guild=False)
        assert (await in_dm.response())["data"]["content"] == "DMChannel"
        assert in_dm.payload["user"]["id"] == str(gus.id) and "member" not in in_dm.payload
        await emulator.wait_for(lambda: acknowledged_twice)
        assert acknowledged_twice == [40060]

        session_id = bot.ws.session_id
        await emulator.drop_gateway()
        again = await emulator.invoke("where", user=gus)  # queued until the bot has resumed
        assert (await again.response())["data"]["content"] == "TextChannel"
        assert bot.ws.session_id == session_id and list(emulator.gateway.sessions) == [session_id]
        assert run.errors == []
