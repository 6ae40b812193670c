"""The invite link for this application: the scopes and exactly the permissions Easel uses.

Each permission, and why (the README says the same):
- View Channel: see the channels where members run commands, to post results there.
- Send Messages, Send Messages in Threads: post results when the interaction's token has expired (long jobs).
- Embed Links: job status, /quota, /jobs and /help answers are embeds.
- Attach Files: the images themselves.
- Read Message History: after a crash mid-post, find the result the bot may already have posted, so it
  never posts twice.
"""

from __future__ import annotations

import discord

SCOPES = ("bot", "applications.commands")

REQUIRED_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
)


def invite_url(application_id: int) -> str:
    """The OAuth2 URL that adds the bot to a server with its commands and the permissions above."""
    return discord.utils.oauth_url(application_id, permissions=REQUIRED_PERMISSIONS, scopes=SCOPES)
