"""The bot class: owns nothing long-lived itself (main() does), loads the feature cogs, syncs commands."""

from __future__ import annotations

import gc
import hashlib
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import discord
import httpx
from discord.ext import commands

from bot.access import leave_if_not_allowed, leave_servers_not_allowed, open_to_everyone_warning, require_paid_feature
from bot.components import ComponentRouter
from bot.invite import invite_url
from bot.jobs.engine import JobEngine, Ledger, ProviderLimits
from bot.jobs.files import FileStore
from bot.jobs.store import JobStore
from bot.metrics import Metrics
from bot.providers.base import Adapter
from bot.providers.local.adapter import pool_size
from bot.quotas import QuotaLedger
from bot.settings import CommandSync, Settings
from bot.storage.database import Database
from bot.storage.guilds import CommandSyncRepository, GuildRepository
from bot.tree import AwaitingFirstResponse, EaselTree
from cogs import EXTENSIONS

log = logging.getLogger(__name__)
GC_YOUNG_THRESHOLD = 20_000  # allocations between young-generation collections (CPython default: 700)

PROVIDER_KEYS = {
    "mimipanda": "MIMIPANDA_API_TOKEN",
    "mimpi": "MIMPI_API_KEY",
    "flair": "FLAIR_API_KEY and FLAIR_BASE_URL",
    "imagine": "IMAGINE_API_KEY",
    "local": "LOCAL_STUDIO_ENABLED=true",
}


def provider_limits(settings: Settings) -> dict[str, ProviderLimits]:
    common = ProviderLimits(
        min_poll_s=settings.poll_min_seconds,
        max_poll_s=settings.poll_max_seconds,
        parallel_requests=settings.provider_parallel_requests,
    )
    return {
        "*": common,  # any other provider (e.g. one added by an extension)
        "mimipanda": common,
        "mimpi": replace(common, max_active={"models": settings.mimpi_max_concurrent_models}),
        "flair": common,
        "imagine": replace(common, requests_per_minute=settings.imagine_requests_per_minute),
        # One slot per worker process: jobs beyond them wait in the engine's queue, in order, with positions.
        "local": replace(
            common,
            max_active={"cpu": pool_size(settings)},
            max_per_member=settings.local_max_waiting_per_member,
        ),
    }


async def _paid_features_here(
    interaction: discord.Interaction[Any], *, feature: str, provider: str, params: dict[str, Any]
) -> None:
    """Paid studios spend the owner's money: not in DMs unless the owner allows it, nor in servers not allowed.
    Easel's own studio costs nothing to run, so it is not held back in DMs."""
    if provider != "local":
        require_paid_feature(interaction)


# Easel never joins voice: discord.py's warnings about voice libraries would only puzzle a newcomer.
discord.VoiceClient.warn_nacl = False
discord.VoiceClient.warn_dave = False


class EaselBot(commands.AutoShardedBot):
    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        http_client: httpx.AsyncClient,
        adapters: dict[str, Adapter] | None = None,
        ledger: Ledger | None = None,
        extra_extensions: tuple[str, ...] = (),
        provider_limits_override: dict[str, ProviderLimits] | None = None,
        **options: Any,
    ) -> None:
        # No privileged intent anywhere: slash commands, buttons and context menus bring what we need.
        intents = discord.Intents.none()
        intents.guilds = True
        options.setdefault("guild_ready_timeout", 2.0)
        super().__init__(
            command_prefix=commands.when_mentioned,
            help_command=None,
            intents=intents,
            tree_cls=EaselTree,
            shard_count=settings.shard_count,
            shard_ids=settings.shard_ids,  # type: ignore[arg-type]  # None means all shards
            member_cache_flags=discord.MemberCacheFlags.none(),
            chunk_guilds_at_startup=False,
            max_messages=None,
            allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=True),
            **options,
        )
        self.settings = settings
        self.db = db
        self.http_client = http_client
        self.metrics = Metrics()
        self.guild_configs = GuildRepository(db)
        self.command_sync_state = CommandSyncRepository(db)
        # On: a key is set AND this version has its adapter (a key alone must not advertise a studio).
        self.keyed_providers = {name for name, on in settings.provider_enabled().items() if on}
        self.enabled_providers = {name for name in self.keyed_providers if name in (adapters or {})}
        self.loaded_features: list[str] = []
        # The latest unexpected errors (bugs), for the test harness and debugging; bounded.
        self.unexpected_errors: deque[tuple[str, BaseException]] = deque(maxlen=100)
        self.commands_synced = False
        self.extra_extensions = extra_extensions
        self.awaiting_first_response = AwaitingFirstResponse()
        # Features that keep members' data outside jobs and the ledger register how to erase it (/forget-me).
        self.member_data_erasers: list[Callable[[int | None, int], Awaitable[int]]] = []
        self.components = ComponentRouter(self)
        self.add_listener(self.components.on_interaction, "on_interaction")
        self.ledger = ledger if ledger is not None else QuotaLedger(db, settings.quota_policy())
        self.jobs = JobEngine(
            bot=self,
            store=JobStore(db),
            files=FileStore(settings.data_dir),
            adapters=adapters or {},
            ledger=self.ledger,
            limits_by_provider={**provider_limits(settings), **(provider_limits_override or {})},
            public_url=str(settings.public_url) if settings.public_url else None,
        )
        self.jobs.scheduler.interactive_pending = lambda: bool(self.awaiting_first_response)
        self.jobs.admission_checks.append(_paid_features_here)
        if settings.discord_gateway_url:
            self._force_gateway(settings.discord_gateway_url)

    @property
    def easel_tree(self) -> EaselTree:
        assert isinstance(self.tree, EaselTree)
        return self.tree

    def _force_gateway(self, url: str) -> None:
        # An AutoShardedBot asks GET /gateway/bot for its URL; a gateway proxy must win over that answer.
        original = self.http.get_bot_gateway

        async def get_bot_gateway(**kwargs: Any) -> Any:
            shards, _url, limits = await original(**kwargs)
            return shards, url, limits

        self.http.get_bot_gateway = get_bot_gateway  # type: ignore[method-assign]

    async def setup_hook(self) -> None:
        for module, provider in EXTENSIONS:
            if provider is not None and provider not in self.enabled_providers:
                continue
            await self.load_extension(module)
            self.loaded_features.append(module.removeprefix("cogs."))
        for module in self.extra_extensions:
            await self.load_extension(module)
        for name, key in PROVIDER_KEYS.items():
            if name in self.keyed_providers and name not in self.enabled_providers:
                log.warning("Provider %s is configured, but no adapter for it is loaded: off", name)
            elif name not in self.enabled_providers:
                log.info("Provider %s is off (set %s to turn it on): its commands are not registered", name, key)
        await self.sync_commands()
        await self.jobs.start()

    async def close(self) -> None:
        # Stop starting new steps first; what is mid-flight finishes or is resumed after the restart.
        if self.jobs.started:
            await self.jobs.stop()
        await super().close()

    # Command sync: only when the tree changed, so restarts do not burn Discord's registration limits.

    def _sync_target(self) -> discord.Object | None:
        if self.settings.dev_guild_id is None:
            return None
        guild = discord.Object(id=self.settings.dev_guild_id)
        self.tree.copy_global_to(guild=guild)
        return guild

    def tree_hash(self, guild: discord.Object | None) -> str:
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands(guild=guild)]
        payload.sort(key=lambda c: (c.get("type", 1), c["name"]))
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    async def sync_commands(self) -> bool:
        """Sync the tree if the policy says so; returns whether a sync happened.

        Remembered per application and scope: another token on the same data folder registers its own
        commands, and servers that held development copies (DEV_GUILD_ID) are emptied once they are not
        the target any more."""
        policy = self.settings.command_sync
        if policy is CommandSync.NEVER:
            log.info("COMMAND_SYNC=never: not syncing application commands")
            return False
        application_id = self.application_id
        assert application_id is not None  # known from login, before setup_hook
        guild = self._sync_target()
        scope = "global" if guild is None else f"guild:{guild.id}"
        await self._clear_old_guild_commands(application_id, keep=guild)
        current = self.tree_hash(guild)
        if policy is CommandSync.AUTO and await self.command_sync_state.last_hash(application_id, scope) == current:
            log.info("Application commands unchanged since the last sync (%s): not syncing", scope)
            return False
        synced = await self.tree.sync(guild=guild)
        await self.command_sync_state.record(application_id, scope, current)
        self.commands_synced = True
        log.info("Synced %d application commands (%s)", len(synced), scope)
        return True

    async def _clear_old_guild_commands(self, application_id: int, keep: discord.Object | None) -> None:
        for guild_id in await self.command_sync_state.guilds_with_commands(application_id):
            if keep is not None and guild_id == keep.id:
                continue
            try:
                await self.http.bulk_upsert_guild_commands(application_id, guild_id, [])
            except (discord.Forbidden, discord.NotFound) as exc:
                # Not in that server any more (or never, for a legacy row): nothing of ours is shown there.
                log.info("Could not clear development commands in server %s (%s): forgetting them", guild_id, exc)
            else:
                log.info("Removed the development copies of the commands from server %s", guild_id)
            await self.command_sync_state.forget(application_id, f"guild:{guild_id}")

    _greeted = False  # the invite link and the access warning are logged at the first on_ready

    async def on_ready(self) -> None:
        assert self.user is not None
        log.info("Connected as %s (%s) to %d servers", self.user, self.user.id, len(self.guilds))
        if not self._greeted:  # on_ready repeats after a new gateway session: say this once per start
            self._greeted = True
            # What is loaded now (modules, commands, caches) lives as long as the process: keep it out of the
            # garbage collector's full passes, which otherwise stop the bot for 0.1-0.3 s under load. And
            # collect the young generation every 20,000 allocations instead of 700: a burst of 500 commands
            # then pays 2 collections instead of ~120 (0.05 s of CPU instead of ~0.25 s); what is garbage
            # by reference counting (nearly everything) never waits for a collection anyway.
            gc.collect()
            gc.freeze()
            gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)
            log.info("Invite Easel to a server with: %s", invite_url(self.application_id or self.user.id))
            warning = open_to_everyone_warning(self.settings, self.application)
            if warning is not None:
                log.warning(warning)
        # Every time: a server may have added the bot while it was disconnected (no on_guild_join then).
        await leave_servers_not_allowed(self, self.settings)

    async def on_guild_join(self, guild: discord.Guild) -> None:
        if not await leave_if_not_allowed(self.settings, guild, when="it just added the bot"):
            log.info("Added to server %s (%s)", guild.name, guild.id)
