"""Where the bot's time goes during the burst, per command: from py-spy's samples, or cProfile's file.

sampled_breakdown (py-spy, the better one: no overhead in the bot) splits each thread's CPU seconds, as
/proc counted them, in the shares of that thread's samples that had a part's function on their stack. A
part's figure is that CPU share divided by the commands in the burst. Nested parts are indented; a sample
counts once per part however deep the function recurs.

breakdown (cProfile) is kept for machines without py-spy; its figures carry the profiler's overhead (about
x3 here, more on small functions).

With cProfile, a coroutine's time is counted per resumption: its cumulative time is what the loop's thread
spent inside it (and in what it awaited without suspending), not the time it waited. The database's own work
runs on aiosqlite's thread, which cProfile does not see.
"""

from __future__ import annotations

import pstats
from collections import Counter
from pathlib import Path
from typing import NamedTuple

# (label, a file path fragment, the function's name): each part's cumulative time on the loop's thread.
PARTS: list[tuple[str, str, str]] = [
    ("gateway frame read + JSON (discord.py)", "discord/gateway.py", "received_message"),
    ("  of which INTERACTION_CREATE parse (discord.py)", "discord/state.py", "parse_interaction_create"),
    ("command dispatch, whole (discord.py tree _call)", "discord/app_commands/tree.py", "_call"),
    ("  our tree's interaction_check", "bot/tree.py", "interaction_check"),
    ("  JobEngine.create, whole", "bot/jobs/engine.py", "create"),
    ("    admission checks: paid features here", "bot/app.py", "_paid_features_here"),
    ("    admission checks: server rules", "cogs/rules_admin.py", "check"),
    ("    database write, loop's side (Database.write)", "bot/storage/database.py", "write"),
    ("    first response HTTP call (_tell_queued)", "bot/jobs/engine.py", "_tell_queued"),
    ("job's first step, whole (JobEngine._step)", "bot/jobs/engine.py", "_step"),
    ("all HTTP requests via discord.py (HTTPClient.request)", "discord/http.py", "request"),
    ("all httpx requests (to the studio)", "httpx/_client.py", "send"),
    ("event loop: selector wait (idle)", "selectors.py", "select"),
]


def breakdown(path: Path, commands: int, top: int = 0) -> str:
    stats = pstats.Stats(str(path))
    table = stats.stats  # type: ignore[attr-defined]  # {(file, line, name): (cc, nc, tt, ct, callers)}
    total = sum(tt for (_cc, _nc, tt, _ct, _callers) in table.values())
    lines = [
        f"  bot process, event-loop thread, profiled burst: {total:.2f} s under cProfile "
        f"({total / commands * 1000:.2f} ms per command, profiler overhead included)"
    ]
    for label, fragment, name in PARTS:
        cum = sum(ct for (file, _line, fn), (_cc, _nc, _tt, ct, _c) in table.items() if fn == name and fragment in file)
        lines.append(f"    {label:<58} {cum / commands * 1000:7.3f} ms/command  ({cum:.2f} s)")
    if top:
        ranked = sorted(table.items(), key=lambda kv: kv[1][3], reverse=True)[:top]
        lines.append("  top by cumulative time:")
        for (file, line, fn), (_cc, nc, tt, ct, _c) in ranked:
            lines.append(f"    {ct:6.2f} s cum {tt:6.2f} s own {nc:7d} calls  {fn} ({file[-50:]}:{line})")
    return "\n".join(lines)


LOOP, DB = "MainThread", "_connection_worker_thread"  # py-spy's names for the event loop's and aiosqlite's threads

# Frames that place a sample even when py-spy could not unwind its stack to the loop (it reads the stack while
# the bot runs: --nonblocking): the deeper functions only one part calls. httpx is the studios' client only.
CREATE = ("JobEngine.create",)
ANSWER = ("JobEngine._tell_queued", "InteractionResponse.send_message")
SUBMIT = (
    "Steps.call",
    "PollStudio.submit",
    "ProviderHTTP.request",
    "AsyncClient.send",
    "AiohttpTransport.handle_async_request",
)

# (label, thread, the qualified names any of which puts a sample in the part)
SAMPLED_PARTS: list[tuple[str, str, tuple[str, ...]]] = [
    ("gateway frame read + INTERACTION_CREATE (discord.py)", LOOP, ("DiscordWebSocket.received_message",)),
    ("  of which the interaction's parsing", LOOP, ("ConnectionState.parse_interaction_create",)),
    ("the command's task (discord.py CommandTree._call)", LOOP, ("CommandTree._call", *CREATE, *ANSWER)),
    ("  our tree's interaction_check", LOOP, ("EaselTree.interaction_check",)),
    ("  JobEngine.create, all of it", LOOP, (*CREATE, *ANSWER)),
    ("    admission checks", LOOP, ("_paid_features_here", "ContentCheck.__call__", "RulesAdmin.check")),
    ("    new_job_id (one call to the OS's randomness)", LOOP, ("new_job_id",)),
    ("    database write, the loop's side (Database.write)", LOOP, ("Database.write",)),
    ("    the first response's HTTP call (_tell_queued)", LOOP, ANSWER),
    ("the job's first step (JobEngine._step)", LOOP, ("JobEngine._step", "Steps.run", "Steps.submit", *SUBMIT)),
    ("  submit to the studio (adapter + httpx)", LOOP, SUBMIT),
    ("  status edit (StatusMessages.show)", LOOP, ("StatusMessages.show",)),
    ("  the submitted row's update, the loop's side", LOOP, ("Steps.submitted",)),
    ("event loop idle in select (as sampled)", LOOP, ("EpollSelector.select",)),
    ("create's transaction (reserve + insert + balance)", DB, ("JobCreator.create.<locals>.write",)),
    ("  quota reservation and balance (QuotaLedger.reserve_and_left_in)", DB, ("QuotaLedger.reserve_and_left_in",)),
    ("  job row insert (JobStore.insert)", DB, ("JobStore.insert",)),
    ("  queue position (JobStore.queue_position_in)", DB, ("JobStore.queue_position_in",)),
    ("slot claim + inputs (Steps.submit's claim)", DB, ("Steps.submit.<locals>.claim",)),
    ("submitted row's update (Steps.submitted)", DB, ("Steps.submitted.<locals>.<lambda>",)),
    ("reads (Database.read)", DB, ("Database.read.<locals>.<lambda>",)),
]


class Sample(NamedTuple):
    thread: str
    names: set[str]  # the qualified names of the functions on the stack
    callback: str  # what the event loop was running: the frame under Handle._run (or the innermost frame)
    hits: int


def read_samples(path: Path) -> list[Sample]:
    """py-spy's raw (collapsed) format: `thread (tid): name;frame (file:line);... count` per line."""
    samples = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        thread, *frames = stack.split(";")
        names = [frame.rsplit(" (", 1)[0] for frame in frames]
        at = names.index("Handle._run") + 1 if "Handle._run" in names else len(names) - 1
        callback = names[at] if 0 <= at < len(names) else "Handle._run itself"
        samples.append(Sample(thread.split(": ", 1)[-1], set(names), callback, int(count)))
    return samples


def sampled_breakdown(path: Path, commands: int, loop_cpu_s: float, other_cpu_s: float) -> str:
    samples = read_samples(path)
    per_thread = {LOOP: 0, DB: 0}
    for sample in samples:
        for key in per_thread:
            if key in sample.thread:
                per_thread[key] += sample.hits
    cpu = {LOOP: loop_cpu_s, DB: other_cpu_s}
    lines = [
        f"  bot process, py-spy: {per_thread[LOOP]} samples on the event loop's thread ({loop_cpu_s:.2f} s CPU), "
        f"{per_thread[DB]} on aiosqlite's ({other_cpu_s:.2f} s CPU, all other threads); per command:"
    ]
    current = ""
    for label, where, wanted in SAMPLED_PARTS:
        if where != current:
            current = where
            lines.append("   event loop's thread:" if where == LOOP else "   aiosqlite's thread (the database):")
        hits = sum(x.hits for x in samples if where in x.thread and not x.names.isdisjoint(wanted))
        share = hits / per_thread[where] if per_thread[where] else 0.0
        ms = cpu[where] * share / commands * 1000
        lines.append(f"     {label:<56} {ms:6.2f} ms  ({share:5.1%} of the thread)")
    # The loop's samples in none of the top-level parts, by the callback the loop was running.
    top_level = {
        name for label, where, names in SAMPLED_PARTS if where == LOOP and not label.startswith(" ") for name in names
    }
    rest: Counter[str] = Counter()
    for x in samples:
        if LOOP in x.thread and x.names.isdisjoint(top_level):
            rest[x.callback] += x.hits
    total_rest = sum(rest.values())
    if per_thread[LOOP]:
        ms = loop_cpu_s * total_rest / per_thread[LOOP] / commands * 1000
        lines.append(f"   the loop's other samples: {ms:.2f} ms per command, by the callback the loop ran:")
        for callback, n in rest.most_common(8):
            ms = loop_cpu_s * n / per_thread[LOOP] / commands * 1000
            lines.append(f"     {callback[:56]:<56} {ms:6.2f} ms  ({n / per_thread[LOOP]:5.1%} of the thread)")
    return "\n".join(lines)
