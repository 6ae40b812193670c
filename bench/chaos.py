"""The job engine's reliability suite: jobs through the real engine while everything around it fails.

The real bot (a subprocess running Runtime, its real SQLite file) takes /studio jobs in all three execution
styles (sync, poll, callback) from a few dozen emulator members at random times, some of whom /cancel a
random job of theirs, while:
- the studio answers 500, 429 with Retry-After, too late (beyond the adapter's timeout), or drops the
  connection after reading the request, at random on creates, polls, cancels and downloads;
- Discord (the emulator) answers 500, drops the connection before acting, or acts and then drops it (the
  answer is lost), at random on every REST route but the start-up handshake;
- the bot is SIGKILLed `--restarts` times mid-flight and started again on the same data folder.

Then it waits (bounded) for every job to end and prints the jobs, the faults injected by kind, the restarts
and the invariants with their counts; it exits 1 if any invariant is violated. The invariants:
- stuck: a job not in a final state at the end;
- submitted twice: two creates the studio accepted for one job (the prompt carries the job's tag);
- delivered twice: one result (or part of it, or one failure notice) in two messages, channel/DM/followups;
- charged and refunded; neither charged nor refunded (ended, credits > 0): the ledger's entries per job;
- ledger balances differ from the balances re-derived from its entries;
- (+) ended but never delivered: delivery still pending at the end;
- (+) settled against its outcome: a success refunded or a failure charged;
- (+) slot limit exceeded: more poll-studio jobs at the studio at once than the engine's limit.
With `--keep DIR` the data folder stays, with the bot's log and messages.json (what was posted, every
message request, every command's answer) for the post-mortem. `--seed` fixes the plan and the fault draws'
random streams; which request meets which fault still depends on timing, so runs are alike, not identical.

    .venv/bin/python bench/chaos.py [--jobs 200] [--restarts 5] [--seed N] [--fault-rate 0.15]

Loopback only; a run takes a few minutes at most on 2 cores (jobs start over 0.25 s each, then up to
`--final-wait` seconds for the last ones to end).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydantic import ValidationError

from bench.chaos_scenario import ChaosConfig, ChaosReport, run_chaos


def format_report(report: ChaosReport) -> str:
    cfg = report.config
    lines = [
        f"chaos: seed {cfg.seed}, fault rate {cfg.fault_rate}, {cfg.members} members, "
        f"studio faults {','.join(cfg.studio_kinds)}, discord faults {','.join(cfg.discord_kinds)}",
        f"  jobs {report.jobs} (commands dispatched {report.invoked}, not dispatched {report.not_dispatched}, "
        f"never acknowledged {report.unanswered}, made no job {report.lost_commands}; "
        f"cancels pressed {report.cancels})",
        "  outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(report.statuses.items())),
        "  deliveries: " + ", ".join(f"{k} {v}" for k, v in sorted(report.deliveries.items())),
        f"  restarts (SIGKILL) {report.restarts}",
        f"  faults injected {sum(report.faults.values())}:",
    ]
    lines += [f"    {kind:<28} {n}" for kind, n in sorted(report.faults.items())]
    lines.append(f"  errors that reached the bot's handler: {len(report.unexpected)}")
    lines += [f"    {line[:200]}" for line in report.unexpected[:5]]
    lines.append(
        f"  longest event-loop stall: bot {report.bot_stall_s:.1f} s (if over 1 s), bench {report.bench_stall_s:.1f} s"
    )
    lines.append(f"  poll studio: at most {report.slot_peak} jobs at once (limit {cfg.slot_limit})")
    lines.append("  invariants (each must be 0; (+) beyond the brief's list):")
    for inv in report.invariants:
        mark = "ok  " if inv.count == 0 else "FAIL"
        lines.append(
            f"    {mark} {inv.name}: {inv.count}" + (f"  e.g. {'; '.join(inv.examples)}" if inv.examples else "")
        )
    lines.append(f"  settled in {report.settle_s:.1f} s after the last start; whole run {report.wall_s:.1f} s")
    if cfg.keep_dir is not None:
        lines.append(f"  data folder and bot log kept in {cfg.keep_dir}")
    verdict = (
        "VIOLATIONS: " + ", ".join(f"{k} {v}" for k, v in report.violations.items())
        if report.violations
        else "all invariants hold"
    )
    lines.append(f"  {verdict}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> ChaosConfig:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fault-rate", type=float, default=0.15)
    parser.add_argument("--members", type=int, default=30)
    parser.add_argument("--spread", type=float, default=None, help="seconds over which jobs start (0.25 s a job)")
    parser.add_argument("--final-wait", type=float, default=60.0, help="bound on the wait for jobs to end")
    parser.add_argument(
        "--studio-faults",
        default="500,429,slow,drop",
        help="kinds: 500,429,slow,drop; also garbage (a 200 with a body that is no image / bad JSON)",
    )
    parser.add_argument("--discord-faults", default="500,drop,lost", help="kinds: 500,drop,lost")
    parser.add_argument("--keep", type=Path, default=None, help="keep the data folder and the bot's log here")
    parser.add_argument("--log-level", default="WARNING")
    ns = parser.parse_args(argv)
    try:
        return make_config(ns)
    except ValidationError as exc:
        parser.error(str(exc))


def make_config(ns: argparse.Namespace) -> ChaosConfig:
    return ChaosConfig(
        jobs=ns.jobs,
        restarts=ns.restarts,
        seed=ns.seed,
        fault_rate=ns.fault_rate,
        members=ns.members,
        spread_s=ns.spread,
        final_wait_s=ns.final_wait,
        studio_kinds=tuple(k for k in ns.studio_faults.split(",") if k),
        discord_kinds=tuple(k for k in ns.discord_faults.split(",") if k),
        keep_dir=ns.keep,
        log_level=ns.log_level,
    )


def main() -> None:
    # The bench's own servers see clients vanish mid-request all the time (that is the point): not news.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    logging.getLogger("tests.emulator.gateway").setLevel(logging.ERROR)
    config = parse_args()
    report = asyncio.run(asyncio.wait_for(run_chaos(config), config.time_budget()))
    print(format_report(report))
    sys.exit(1 if report.violations else 0)


if __name__ == "__main__":
    main()
