"""Where the bot's event-loop thread spends the burst, per command, from the worker's cProfile file.

cProfile counts a coroutine's time per resumption: a coroutine's cumulative time is what the loop's thread
spent inside it (and what it awaited without suspending), not the time it waited. So each part below is
on-CPU time of that thread, divided by the commands in the burst. The database's own work runs on
aiosqlite's thread and is not in this profile (the bench prints that thread's CPU apart: all threads minus
the loop's thread).
"""

from __future__ import annotations

import pstats
from pathlib import Path

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
