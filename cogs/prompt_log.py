"""/prompt-log: a member's recent prompts with their job ids, for the server's moderators.

Read from the jobs table (each job's params), so a prompt is kept exactly as long as its job, and gone once
the member used /forget-me (which anonymises their jobs' params). Only this server's jobs are shown.
"""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot import limits
from bot.app import EaselBot
from bot.delivery import feature_title
from bot.errors import NotAllowed
from bot.jobs.model import Job
from bot.permissions import can_moderate_results
from bot.tree import respond

PROMPT_SHOWN = 300  # characters of each prompt in the log


def logged_text(job: Job) -> str | None:
    """What the member asked for in this job: the prompt, or for a training the model's name."""
    for key in ("prompt", "name"):
        value = job.params.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def log_line(job: Job) -> str:
    text = logged_text(job)
    shown = "(no prompt)" if text is None else "“" + discord.utils.escape_markdown(text[:PROMPT_SHOWN]) + "”"
    if text is not None and len(text) > PROMPT_SHOWN:
        shown = shown[:-1] + "…”"
    return f"`{job.id}` <t:{int(job.created_at)}:R> {feature_title(job.feature)} · {job.status.value}: {shown}"


@app_commands.guild_only()
@app_commands.default_permissions(manage_messages=True)
class PromptLog(commands.Cog):
    def __init__(self, bot: EaselBot) -> None:
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction[EaselBot]) -> bool:  # type: ignore[override]
        if interaction.guild_id is None or not can_moderate_results(interaction):
            raise NotAllowed("Only this server's moderators (Manage Messages) can read members' prompts.")
        return True

    @app_commands.command(name="prompt-log", description="A member's recent prompts here, with job ids (moderators)")
    @app_commands.describe(member="The member", limit="How many of their latest jobs (default 10)")
    async def prompt_log(
        self,
        interaction: discord.Interaction[EaselBot],
        member: discord.User,
        limit: app_commands.Range[int, 1, 25] = 10,
    ) -> None:
        jobs = await self.bot.jobs.store.for_member(interaction.guild_id, member.id, limit=limit)
        if not jobs:
            await respond(interaction, f"{member.mention} has no jobs in this server.", allowed_mentions=NO_MENTIONS)
            return
        lines: list[str] = []
        used = 0
        for job in jobs:
            line = log_line(job)
            if used + len(line) + 1 > limits.EMBED_DESCRIPTION_LIMIT:
                break
            lines.append(line)
            used += len(line) + 1
        embed = discord.Embed(
            title=f"Latest prompts of {member.display_name}"[:256],
            description="\n".join(lines),
            colour=discord.Colour.dark_grey(),
        )
        embed.set_footer(text="Kept as long as the jobs are; /forget-me erases a member's.")
        await respond(interaction, embed=embed, allowed_mentions=NO_MENTIONS)


NO_MENTIONS = discord.AllowedMentions.none()


async def setup(bot: EaselBot) -> None:
    await bot.add_cog(PromptLog(bot))
