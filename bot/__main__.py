"""`python -m bot`: read settings, then run Easel until stopped."""

from __future__ import annotations

import asyncio
import logging
import sys

import discord

from bot.logs import setup_logging
from bot.runtime import Runtime
from bot.settings import Settings, SettingsError, load_settings
from bot.storage.database import DatabaseError

NO_TOKEN_HELP = """\
Easel needs a Discord bot token, and DISCORD_TOKEN is not set.

  1. Open https://discord.com/developers/applications, create an application (or pick yours),
     go to "Bot" and press "Reset Token" to get a token.
  2. Put it in a file named .env next to this README (copy .env.example to start):
         DISCORD_TOKEN=your-token-here
     or export DISCORD_TOKEN in the environment.
  3. Invite the bot with the "bot" and "applications.commands" scopes, then run this command again.
"""


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print("Easel cannot start: the settings are not valid.", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        print("See .env.example for every setting and its allowed values.", file=sys.stderr)
        return 2
    if settings.discord_token is None:
        print(NO_TOKEN_HELP, file=sys.stderr, end="")
        return 2
    setup_logging(settings.log_level, settings.log_format, settings.secrets())
    try:
        asyncio.run(_run(settings))
    except KeyboardInterrupt:
        pass
    except discord.LoginFailure:
        logging.getLogger("bot").error("Discord refused the token in DISCORD_TOKEN: reset it and try again.")
        return 1
    except DatabaseError as exc:
        logging.getLogger("bot").error("Database problem: %s", exc)
        return 1
    return 0


async def _run(settings: Settings) -> None:
    runtime = Runtime(settings)
    await runtime.open()
    await runtime.run_until_stopped()


if __name__ == "__main__":
    sys.exit(main())
