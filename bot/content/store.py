"""Each server's content rules in SQLite, cached per server (this process is the only writer)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bot.content.matching import Rule, RuleKind, RuleSet
from bot.errors import BadInput
from bot.storage.database import Database

MAX_WORDS = 300
MAX_PATTERNS = 50
SERVER = 0  # the channel id of a server-wide feature switch


@dataclass(frozen=True)
class Switch:
    group: str
    channel_id: int  # SERVER for the whole server
    enabled: bool


@dataclass(frozen=True)
class GuildRules:
    rules: tuple[Rule, ...] = ()
    age_restricted_only: bool = False
    age_policy_set: bool = False  # False: the server follows the owner's default
    switches: tuple[Switch, ...] = field(default_factory=tuple)
    matcher: RuleSet = field(default_factory=lambda: RuleSet(()))

    def words(self) -> list[Rule]:
        return [r for r in self.rules if r.kind == "word"]

    def patterns(self) -> list[Rule]:
        return [r for r in self.rules if r.kind == "pattern"]

    def feature_switch(self, group: str, channel_ids: Sequence[int]) -> Switch | None:
        """The switch that decides `group` here: the most specific of these channels (a thread, then its
        parent channel), else the server's; None when nobody switched it."""
        by_channel = {s.channel_id: s for s in self.switches if s.group == group}
        for channel_id in (*channel_ids, SERVER):
            if channel_id in by_channel:
                return by_channel[channel_id]
        return None


class ContentStore:
    def __init__(
        self, db: Database, *, default_age_restricted_only: bool = False, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self.default_age_restricted_only = default_age_restricted_only
        self.clock = clock
        self._cache: dict[int, GuildRules] = {}
        # Bumped by every write: a read that started before a write must not cache what it read.
        self._generation: dict[int, int] = {}

    async def rules_for(self, guild_id: int) -> GuildRules:
        cached = self._cache.get(guild_id)
        if cached is None:
            generation = self._generation.get(guild_id, 0)
            cached = await self.db.read(lambda conn: self._load(conn, guild_id))
            if self._generation.get(guild_id, 0) == generation:
                self._cache[guild_id] = cached
        return cached

    def _load(self, conn: sqlite3.Connection, guild_id: int) -> GuildRules:
        rules: list[Rule] = []
        for row in conn.execute(
            "SELECT kind, value FROM content_blocklist WHERE guild_id = ? ORDER BY kind DESC, value", (guild_id,)
        ):
            try:
                rules.append(Rule.build(row["kind"], row["value"]))
            except BadInput:
                continue  # stored by an older, looser version: skipped rather than blocking every prompt
        setting = conn.execute(
            "SELECT age_restricted_only FROM content_settings WHERE guild_id = ?", (guild_id,)
        ).fetchone()
        switches = tuple(
            Switch(row["feature_group"], int(row["channel_id"]), bool(row["enabled"]))
            for row in conn.execute(
                "SELECT feature_group, channel_id, enabled FROM content_features WHERE guild_id = ? "
                "ORDER BY feature_group, channel_id",
                (guild_id,),
            )
        )
        return GuildRules(
            rules=tuple(rules),
            matcher=RuleSet(rules),
            age_restricted_only=bool(setting[0]) if setting else self.default_age_restricted_only,
            age_policy_set=setting is not None,
            switches=switches,
        )

    async def _write(self, guild_id: int, fn: Callable[[sqlite3.Connection], object]) -> None:
        self._generation[guild_id] = self._generation.get(guild_id, 0) + 1
        try:
            await self.db.write(fn)
        finally:
            self._generation[guild_id] += 1
            self._cache.pop(guild_id, None)

    # Blocked words and patterns

    async def add_rule(self, guild_id: int, kind: RuleKind, value: str, by: int) -> tuple[Rule, bool]:
        """The rule as stored, and whether it is new (False: it was already there)."""
        rule = Rule.build(kind, value)
        limit = MAX_WORDS if kind == "word" else MAX_PATTERNS
        added: list[bool] = []

        def write(conn: sqlite3.Connection) -> None:
            count = conn.execute(
                "SELECT COUNT(*) FROM content_blocklist WHERE guild_id = ? AND kind = ?", (guild_id, kind)
            ).fetchone()[0]
            exists = conn.execute(
                "SELECT 1 FROM content_blocklist WHERE guild_id = ? AND kind = ? AND value = ?",
                (guild_id, kind, rule.value),
            ).fetchone()
            if exists is None and count >= limit:
                raise BadInput(f"This server already has {limit} blocked {kind}s; remove some first.")
            cursor = conn.execute(
                "INSERT OR IGNORE INTO content_blocklist (guild_id, kind, value, added_by, added_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (guild_id, kind, rule.value, by, self.clock()),
            )
            added.append(cursor.rowcount == 1)

        await self._write(guild_id, write)
        return rule, added[0]

    async def remove_rule(self, guild_id: int, value: str) -> Rule | None:
        """Remove the word or pattern `value` (a word is found however it is spelled); the removed rule."""
        rules = (await self.rules_for(guild_id)).rules
        text = value.strip()
        found = next((r for r in rules if r.kind == "pattern" and r.value == text), None)
        if found is None:
            try:
                key = Rule.build("word", text).value
            except BadInput:
                key = None
            found = next((r for r in rules if r.kind == "word" and r.value == key), None)
        if found is None:
            return None
        rule = found
        await self._write(
            guild_id,
            lambda c: c.execute(
                "DELETE FROM content_blocklist WHERE guild_id = ? AND kind = ? AND value = ?",
                (guild_id, rule.kind, rule.value),
            ),
        )
        return rule

    # The NSFW policy and feature switches

    async def set_age_restricted_only(self, guild_id: int, value: bool | None, by: int) -> None:
        """None: back to the owner's default."""
        if value is None:
            sql, args = "DELETE FROM content_settings WHERE guild_id = ?", (guild_id,)
        else:
            sql = (
                "INSERT INTO content_settings (guild_id, age_restricted_only, updated_by, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (guild_id) DO UPDATE SET age_restricted_only = excluded."
                "age_restricted_only, updated_by = excluded.updated_by, updated_at = excluded.updated_at"
            )
            args = (guild_id, int(value), by, self.clock())  # type: ignore[assignment]
        await self._write(guild_id, lambda c: c.execute(sql, args))

    async def set_feature(self, guild_id: int, channel_id: int, group: str, enabled: bool | None, by: int) -> None:
        """Switch a feature group on or off in a channel (or SERVER); None removes that switch."""
        if enabled is None:
            await self._write(
                guild_id,
                lambda c: c.execute(
                    "DELETE FROM content_features WHERE guild_id = ? AND channel_id = ? AND feature_group = ?",
                    (guild_id, channel_id, group),
                ),
            )
            return
        await self._write(
            guild_id,
            lambda c: c.execute(
                "INSERT INTO content_features (guild_id, channel_id, feature_group, enabled, updated_by, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id, channel_id, feature_group) DO UPDATE SET "
                "enabled = excluded.enabled, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                (guild_id, channel_id, group, int(enabled), by, self.clock()),
            ),
        )

    async def erase_member(self, guild_id: int | None, user_id: int) -> int:
        """/forget-me for an admin: the rules stay (they are the server's), their name on them goes."""
        if guild_id is None:
            return 0

        def write(conn: sqlite3.Connection) -> int:
            changed = 0
            for table, column in (
                ("content_blocklist", "added_by"),
                ("content_settings", "updated_by"),
                ("content_features", "updated_by"),
            ):
                changed += conn.execute(
                    f"UPDATE {table} SET {column} = NULL WHERE guild_id = ? AND {column} = ?", (guild_id, user_id)
                ).rowcount
            return changed

        return await self.db.write(write)
