"""The invariants bench/chaos.py checks after a run, read from the three witnesses that outlive the bot:
its SQLite file (jobs, ledger), the Discord emulator (every message posted) and the fake studio (every create
it accepted).

Each invariant is a count that must be 0, with a few job ids as examples for whoever debugs it.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.emulator import DiscordEmulator
from tests.emulator.messages import EPHEMERAL
from tests.fakes.studio import Accepted

FINAL = ("succeeded", "failed", "cancelled", "expired")
TAG = re.compile(r"\bchaos-(\d+)\b")  # every prompt the bench sends carries its tag
PART = re.compile(r"job `(\w+)` · part (\d+) of (\d+)")
FOOTER = re.compile(r"^Job (\w+) ·")
NOTICE = re.compile(r"\(job `(\w+)`\)")
EXAMPLES = 5


@dataclass
class Invariant:
    name: str
    count: int = 0
    examples: list[str] = field(default_factory=list)
    extra: bool = False  # beyond the brief's list (still a violation)

    def add(self, example: str) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(example)


@dataclass
class JobRow:
    id: str
    status: str
    credits: int
    provider: str
    tag: int | None
    delivery: str
    finished_at: float | None
    error_kind: str | None = None


@contextmanager
def reading(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the bot's database (the bot stays its only writer), closed after use."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        yield conn
    finally:
        conn.close()


def read_jobs(db_path: Path) -> list[JobRow]:
    with reading(db_path) as conn:
        return read_jobs_in(conn)


def read_jobs_in(conn: sqlite3.Connection) -> list[JobRow]:
    rows = conn.execute(
        "SELECT id, status, credits, provider, params, delivery, finished_at, error_kind FROM jobs"
    ).fetchall()
    jobs = []
    for r in rows:
        match = TAG.search(str(json.loads(r["params"]).get("prompt", "")))
        jobs.append(
            JobRow(
                r["id"],
                r["status"],
                r["credits"],
                r["provider"],
                int(match.group(1)) if match else None,
                r["delivery"],
                r["finished_at"],
                r["error_kind"],
            )
        )
    return jobs


def check_stuck(jobs: Sequence[JobRow]) -> Invariant:
    inv = Invariant("stuck (not terminal at the end)")
    for job in jobs:
        if job.status not in FINAL:
            inv.add(f"{job.id} {job.provider} {job.status}")
    return inv


def check_undelivered(jobs: Sequence[JobRow]) -> Invariant:
    """Ended, but its result or failure notice was never posted nor given up on (delivery still pending): the
    member hears nothing, and no retry is scheduled if the engine forgot the job."""
    inv = Invariant("ended but never delivered (delivery still pending at the end)", extra=True)
    for job in jobs:
        if job.status in FINAL and job.delivery == "pending":
            inv.add(f"{job.id} {job.provider} {job.status}")
    return inv


def check_submitted_twice(jobs: Sequence[JobRow], accepted: Iterable[Accepted]) -> Invariant:
    inv = Invariant("submitted twice (two accepted creates for one job)")
    by_tag: Counter[int] = Counter()
    for item in accepted:
        match = TAG.search(item.prompt)
        if match:
            by_tag[int(match.group(1))] += 1
    for job in jobs:
        if job.tag is not None and by_tag[job.tag] > 1:
            inv.add(f"{job.id} {job.provider} x{by_tag[job.tag]}")
    return inv


def result_keys(message: dict[str, Any]) -> list[tuple[str, str]]:
    """(job id, which part) for a result or notice message: multi-part results per part."""
    content = str(message.get("content") or "")
    part = PART.search(content)
    if part:
        return [(part.group(1), f"part {part.group(2)}/{part.group(3)}")]
    for embed in message.get("embeds") or []:
        footer = FOOTER.match(str((embed.get("footer") or {}).get("text", "")))
        if footer:
            return [(footer.group(1), "result")]
    notice = NOTICE.search(content)
    if notice:
        return [(notice.group(1), "notice")]
    return []


def posted_messages(emu: DiscordEmulator, member_ids: Iterable[int]) -> list[dict[str, Any]]:
    """The bot's non-ephemeral messages: channel posts, interaction followups (they land in the channel),
    and DMs to members."""
    messages = [
        m for m in emu.store.by_id.values() if m["channel_id"] == str(emu.channel_id) and not m["flags"] & EPHEMERAL
    ]
    for user_id in member_ids:
        messages.extend(emu.dm_messages(user_id))
    bot_id = str(emu.application_id)
    return [m for m in messages if str((m.get("author") or {}).get("id")) == bot_id]


def check_delivered_twice(jobs: Sequence[JobRow], messages: Iterable[dict[str, Any]]) -> Invariant:
    inv = Invariant("delivered twice (a result or part posted in two messages)")
    known = {job.id for job in jobs}
    counts: Counter[tuple[str, str]] = Counter()
    for message in messages:
        for key in result_keys(message):
            counts[key] += 1
    for (job_id, part), n in sorted(counts.items()):
        if n > 1 and job_id in known:
            inv.add(f"{job_id} {part} x{n}")
    return inv


def check_settlements(db_path: Path, jobs: Sequence[JobRow]) -> list[Invariant]:
    both = Invariant("charged and refunded")
    neither = Invariant("neither charged nor refunded (terminal, credits > 0)")
    wrong = Invariant("settled against its outcome (success refunded, failure charged)", extra=True)
    with reading(db_path) as conn:
        rows = conn.execute(
            "SELECT job_id, kind FROM quota_ledger WHERE kind IN ('commit', 'refund') AND job_id IS NOT NULL"
        ).fetchall()
    kinds: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        kinds[row["job_id"]].append(row["kind"])
    for job in jobs:
        settled = kinds.get(job.id, [])
        if "commit" in settled and "refund" in settled:
            both.add(job.id)
        if job.status in FINAL and job.credits > 0 and not settled:
            neither.add(f"{job.id} {job.status}")
        if (job.status == "succeeded" and "refund" in settled) or (job.status != "succeeded" and "commit" in settled):
            wrong.add(f"{job.id} {job.status} {'+'.join(settled)}")
    return [both, neither, wrong]


def check_balances(db_path: Path) -> Invariant:
    """The running balances (quota_members, quota_guilds) against the same sums re-derived from the entries."""
    inv = Invariant("ledger balances differ from the entries")
    with reading(db_path) as conn:
        entries = conn.execute(
            "SELECT guild_key, user_id, kind, period_start, allowance_delta, bonus_delta FROM quota_ledger"
        ).fetchall()
        members = conn.execute(
            "SELECT guild_key, user_id, bonus, period_start, period_used FROM quota_members"
        ).fetchall()
        guilds = conn.execute("SELECT guild_key, budget_period_start, budget_spent FROM quota_guilds").fetchall()
    bonus: Counter[tuple[int, int]] = Counter()
    used: Counter[tuple[int, int, int]] = Counter()
    budget: Counter[tuple[int, int]] = Counter()
    for e in entries:
        member = (e["guild_key"], e["user_id"])
        bonus[member] += e["bonus_delta"]
        used[(*member, e["period_start"])] -= e["allowance_delta"]
        if e["kind"] in ("reserve", "refund"):
            budget[(e["guild_key"], e["period_start"])] -= e["allowance_delta"] + e["bonus_delta"]
    for m in members:
        member = (m["guild_key"], m["user_id"])
        if m["bonus"] != bonus[member] or m["period_used"] != used[(*member, m["period_start"])]:
            inv.add(f"member {m['user_id']}: used {m['period_used']} vs {used[(*member, m['period_start'])]}")
    for g in guilds:
        derived = budget[(g["guild_key"], g["budget_period_start"])]
        if g["budget_spent"] != derived:
            inv.add(f"guild {g['guild_key']}: spent {g['budget_spent']} vs {derived}")
    return inv


def max_overlap(intervals: Iterable[tuple[float, float]]) -> int:
    events = sorted(
        [(start, 1) for start, end in intervals if end > start] + [(end, -1) for start, end in intervals if end > start]
    )
    best = current = 0
    for _, step in events:  # at equal times, ends (-1) sort before starts (+1): touching is not overlapping
        current += step
        best = max(best, current)
    return best


def check_slots(
    jobs: Sequence[JobRow], accepted: Iterable[Accepted], finished_seen: dict[str, float], provider: str, limit: int
) -> tuple[Invariant, int]:
    """Jobs at the studio at once for the slot-limited provider. A studio job counts from the create the studio
    accepted until the first poll that saw it end, or until Easel finished the job, whichever came first:
    Easel holds the slot for longer than that, so a correct engine never shows more than `limit` here."""
    inv = Invariant(f"slot limit exceeded ({provider}: more than {limit} jobs at the studio at once)", extra=True)
    finished = {job.tag: job.finished_at for job in jobs if job.provider == provider and job.tag is not None}
    intervals = []
    for item in accepted:
        match = TAG.search(item.prompt)
        if item.route != "jobs" or not match or int(match.group(1)) not in finished:
            continue
        end = min(finished_seen.get(item.studio_id, float("inf")), finished[int(match.group(1))] or float("inf"))
        intervals.append((item.at, end))
    peak = max_overlap(intervals)
    if peak > limit:
        inv.add(f"peak {peak}")
    return inv, peak
