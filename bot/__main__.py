"""`python -m bot`: read settings, then run Easel until stopped. `python -m bot backup PATH`: back up."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import sys
from collections.abc import Mapping
from pathlib import Path

import aiohttp
import discord

from bot.backup import BackupError, backup, describe
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
  3. Run this command again: the log shows a link that invites the bot to your server with the
     permissions it needs. Set ALLOWED_GUILD_IDS to your server ids so that nobody else can use it.
"""


USAGE = """\
usage: python -m bot                run Easel (settings from the environment and .env)
       python -m bot backup PATH    copy the database and job files into the new folder PATH (safe while
                                    Easel runs); restore: stop Easel, copy PATH's contents into the data
                                    folder (or point DATABASE_PATH at PATH's database), start Easel
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    if args and args[0] == "backup":
        if len(args) != 2:
            print(USAGE, file=sys.stderr, end="")
            return 2
        return _backup(Path(args[1]))
    if args:
        print(f"Unknown command: {' '.join(args)}\n{USAGE}", file=sys.stderr, end="")
        return 2
    try:
        settings = load_settings()
    except SettingsError as exc:
        _print_problems(exc)
        return 2
    if settings.discord_token is None:
        print(NO_TOKEN_HELP, file=sys.stderr, end="")
        return 2
    setup_logging(settings.log_level, settings.log_format, settings.secrets())
    for warning in container_warnings(settings, os.environ):
        logging.getLogger("bot").warning(warning)
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
    except (aiohttp.ClientError, OSError) as exc:
        logging.getLogger("bot").error(
            "Could not reach Discord at %s (%s). Check this machine's network and DNS, or DISCORD_API_BASE_URL "
            "if you use a proxy.",
            settings.api_base,
            exc,
        )
        return 1
    return 0


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def container_warnings(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """Settings that cannot work in the Docker image (which sets EASEL_DEFAULT_*), e.g. from an older .env."""
    warnings = []
    if environ.get("EASEL_DEFAULT_HTTP_HOST") and settings.http_host in LOOPBACK:
        warnings.append(
            f"HTTP_HOST={settings.http_host} inside a container: published ports, the reverse proxy and studio "
            "callbacks cannot reach the web server. Leave HTTP_HOST blank in .env (the image listens on 0.0.0.0)."
        )
    default_db = environ.get("EASEL_DEFAULT_DATABASE_PATH")
    if default_db and not settings.database_path.is_absolute():
        warnings.append(
            f"DATABASE_PATH={settings.database_path} is relative: in this container that is "
            f"{settings.database_path.resolve()}. Leave DATABASE_PATH blank in .env to use {default_db}."
        )
    return warnings


def _print_problems(exc: SettingsError) -> None:
    print("Easel cannot start: the settings are not valid.", file=sys.stderr)
    for problem in exc.problems:
        print(f"  - {problem}", file=sys.stderr)
    print("See .env.example for every setting and its allowed values.", file=sys.stderr)


def _backup(destination: Path) -> int:
    # Only DATABASE_PATH matters here: no token needed, the bot may be running.
    try:
        settings = load_settings()
    except SettingsError as exc:
        _print_problems(exc)
        return 2
    try:
        report = backup(settings.database_path, destination)
    except (BackupError, sqlite3.Error, OSError) as exc:
        print(f"Backup failed: {exc}", file=sys.stderr)
        return 1
    print(describe(report))
    return 0


async def _run(settings: Settings) -> None:
    runtime = Runtime(settings)
    await runtime.open()
    await runtime.run_until_stopped()


if __name__ == "__main__":
    sys.exit(main())
