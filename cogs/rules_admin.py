"""/rules-admin: each server's content rules (blocked words and patterns, the NSFW policy, features on or off
per server and channel), and the admission check that applies them to every new job.

Discord hides these from members without Manage Server (default_permissions), but a server can loosen that
in its integration settings, so every command is also checked here (`interaction_check`).
"""

from __future__ import annotations

from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot import limits
from bot.app import EaselBot
from bot.content import FEATURE_GROUPS, SERVER, ContentCheck, ContentStore, GuildRules, group_title
from bot.content.matching import PATTERN_MAX, WORD_MAX
from bot.errors import BadInput, NotAllowed
from bot.permissions import is_server_admin
from bot.tree import respond

State = Literal["on", "off", "default"]
GROUP_CHOICES = [
    app_commands.Choice(name=f"{group.title} ({name})"[:100], value=name) for name, group in FEATURE_GROUPS.items()
][: limits.CHOICES_PER_OPTION]
ChannelOption = app_commands.AppCommandChannel | app_commands.AppCommandThread
NO_MENTIONS = discord.AllowedMentions.none()


def rules_text(rules: GuildRules) -> str:
    words = ", ".join(f"`{r.value}`" for r in rules.words()) or "none"
    patterns = "\n".join(f"• `{r.value}`" for r in rules.patterns()) or "none"
    policy = "only in age-restricted channels" if rules.age_restricted_only else "in any channel"
    default = "" if rules.age_policy_set else " (Easel's default here)"
    switches = "\n".join(
        f"• {group_title(s.group)}: **{'on' if s.enabled else 'off'}** "
        + ("in the whole server" if s.channel_id == SERVER else f"in <#{s.channel_id}>")
        for s in rules.switches
    )
    text = (
        f"**Blocked words** ({len(rules.words())}): {words}\n"
        f"**Blocked patterns** ({len(rules.patterns())}):\n{patterns}\n"
        f"**Images may be made** {policy}{default}.\n"
        f"**Features switched** (everything else is on):\n{switches or 'none'}"
    )
    if len(text) > limits.MESSAGE_CONTENT_LIMIT:
        text = text[: limits.MESSAGE_CONTENT_LIMIT - 40] + "\n… (too long to show in full)"
    return text


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class RulesAdmin(
    commands.GroupCog,
    group_name="rules-admin",
    group_description="Content rules here: blocked words and patterns, NSFW channels, features per channel",
):
    def __init__(self, bot: EaselBot) -> None:
        self.bot = bot
        settings = bot.settings
        self.store = ContentStore(bot.db, default_age_restricted_only=settings.content_age_restricted_only)
        self.check = ContentCheck(self.store, dm_age_restricted_only=settings.content_age_restricted_only_dms)

    async def cog_load(self) -> None:
        self.bot.jobs.admission_checks.append(self.check)
        self.bot.member_data_erasers.append(self.store.erase_member)

    async def cog_unload(self) -> None:
        if self.check in self.bot.jobs.admission_checks:
            self.bot.jobs.admission_checks.remove(self.check)
        if self.store.erase_member in self.bot.member_data_erasers:
            self.bot.member_data_erasers.remove(self.store.erase_member)

    async def interaction_check(self, interaction: discord.Interaction[EaselBot]) -> bool:  # type: ignore[override]
        # Discord's default_permissions can be loosened by a server: this check cannot.
        if not is_server_admin(interaction):
            raise NotAllowed("Only server admins (Manage Server) can change or see Easel's content rules.")
        return True

    @staticmethod
    def _guild(interaction: discord.Interaction[EaselBot]) -> int:
        if interaction.guild_id is None:  # guild_only already keeps these out of DMs
            raise NotAllowed("Content rules belong to a server: use this command in one.")
        return interaction.guild_id

    # Blocked words and patterns

    @app_commands.command(name="block", description="Refuse prompts containing a word (whole word, any case)")
    @app_commands.describe(word="The word; also caught with repeated letters, spaces or symbols in between")
    async def block(
        self, interaction: discord.Interaction[EaselBot], word: app_commands.Range[str, 1, WORD_MAX]
    ) -> None:
        rule, new = await self.store.add_rule(self._guild(interaction), "word", word, interaction.user.id)
        text = (
            f"⛔ Prompts with the word “{rule.value}” are refused here"
            if new
            else f"“{rule.value}” was already blocked"
        )
        await respond(interaction, text + ". `/rules-admin unblock` lifts it.", allowed_mentions=NO_MENTIONS)

    @app_commands.command(name="block-pattern", description="Refuse prompts matching a regular expression")
    @app_commands.describe(pattern="A Python regular expression, matched case-insensitively anywhere in the prompt")
    async def block_pattern(
        self, interaction: discord.Interaction[EaselBot], pattern: app_commands.Range[str, 1, PATTERN_MAX]
    ) -> None:
        rule, new = await self.store.add_rule(self._guild(interaction), "pattern", pattern, interaction.user.id)
        text = f"⛔ Prompts matching `{rule.value}` are refused here" if new else f"`{rule.value}` was already blocked"
        await respond(interaction, text + ". `/rules-admin unblock` lifts it.", allowed_mentions=NO_MENTIONS)

    @app_commands.command(name="unblock", description="Remove a blocked word or pattern")
    @app_commands.describe(entry="The word or pattern, as `/rules-admin list` shows it")
    async def unblock(self, interaction: discord.Interaction[EaselBot], entry: str) -> None:
        removed = await self.store.remove_rule(self._guild(interaction), entry)
        if removed is None:
            raise BadInput(f"“{entry[:100]}” is not blocked here; `/rules-admin list` shows what is.")
        await respond(interaction, f"✅ Removed the {removed.describe()}.", allowed_mentions=NO_MENTIONS)

    @unblock.autocomplete("entry")
    async def _entries(
        self, interaction: discord.Interaction[EaselBot], current: str
    ) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None or not is_server_admin(interaction):
            return []
        rules = await self.store.rules_for(interaction.guild_id)
        typed = current.lower()
        return [
            app_commands.Choice(name=f"{r.kind}: {r.value}"[:100], value=r.value[:100])
            for r in rules.rules
            if typed in r.value.lower()
        ][: limits.AUTOCOMPLETE_RESULTS]

    @app_commands.command(name="list", description="Every content rule of this server")
    async def list_rules(self, interaction: discord.Interaction[EaselBot]) -> None:
        rules = await self.store.rules_for(self._guild(interaction))
        await respond(interaction, rules_text(rules), allowed_mentions=NO_MENTIONS)

    @app_commands.command(name="test", description="See whether a prompt would be refused here, and by which rule")
    @app_commands.describe(prompt="The prompt to try (nothing is made or charged)")
    async def test(self, interaction: discord.Interaction[EaselBot], prompt: app_commands.Range[str, 1, 1000]) -> None:
        rules = await self.store.rules_for(self._guild(interaction))
        matched = rules.matcher.first_match([prompt])
        text = (
            f"⛔ Refused: it matches the {matched.describe()}." if matched else "✅ No blocked word or pattern matches."
        )
        await respond(interaction, text, allowed_mentions=NO_MENTIONS)

    # The NSFW policy and features

    @app_commands.command(name="nsfw", description="Allow making images only in age-restricted channels")
    @app_commands.describe(only_age_restricted="on: only in age-restricted channels; default: Easel's setting")
    async def nsfw(self, interaction: discord.Interaction[EaselBot], only_age_restricted: State) -> None:
        guild_id = self._guild(interaction)
        value = None if only_age_restricted == "default" else only_age_restricted == "on"
        await self.store.set_age_restricted_only(guild_id, value, interaction.user.id)
        rules = await self.store.rules_for(guild_id)
        if rules.age_restricted_only:
            text = "🔞 Images can be made here only in age-restricted channels."
        else:
            text = "✅ Images can be made in any channel here where Easel's commands are allowed."
        if value is None:
            text += " (Easel's default, set by its owner.)"
        await respond(interaction, text)

    @app_commands.command(name="feature", description="Switch a feature on or off in the server or in one channel")
    @app_commands.describe(
        feature="The feature",
        state="on, off, or default (remove this switch)",
        channel="A channel or thread (leave out for the whole server); a channel's switch wins over the server's",
    )
    @app_commands.choices(feature=GROUP_CHOICES)
    async def feature(
        self,
        interaction: discord.Interaction[EaselBot],
        feature: str,
        state: State,
        channel: ChannelOption | None = None,
    ) -> None:
        guild_id = self._guild(interaction)
        if feature not in FEATURE_GROUPS:
            raise BadInput(f"“{feature[:50]}” is not a feature; pick one from the list.")
        channel_id = SERVER if channel is None else channel.id
        enabled = None if state == "default" else state == "on"
        await self.store.set_feature(guild_id, channel_id, feature, enabled, interaction.user.id)
        where = "the whole server" if channel is None else f"<#{channel.id}>"
        title = group_title(feature)
        if enabled is None:
            text = f"✅ {title} in {where} follows " + (
                "the default (on)." if channel is None else "the server's switch."
            )
        else:
            text = f"{'✅' if enabled else '⛔'} {title} is **{state}** in {where}."
        await respond(interaction, text, allowed_mentions=NO_MENTIONS)


async def setup(bot: EaselBot) -> None:
    await bot.add_cog(RulesAdmin(bot))
