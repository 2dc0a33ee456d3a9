"""Where a command's CPU time goes, by kind of process: training workers, Ray tasks by function, Ray's own
control plane (raylet, GCS, dashboard, Ray Train's controller actors), the driver.

    python bench/process_cpu.py [--every 2] [--out cpu.json] -- make run

Runs the command and, every `--every` seconds, reads each process's CPU ticks from /proc (Linux), adding what
a process used since the last look to its kind: its title when Ray names it, without the method an actor is
running (`ray::RayTrainWorker`, `ray::run_episode`, `ray::IDLE`), or a known program name (raylet, gcs_server,
dashboard, log_monitor), else the program. What a process uses between its last look and its exit is missed
(all of it for one that lives less than `--every`), so keep `--every` short against the command's length;
processes outside the command (other users) are counted too, so run it on a quiet machine. Ctrl-C stops the
command and prints what was counted so far.

Prints one line per kind: CPU seconds and share of the total, then the total and the command's wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from collections import Counter
from pathlib import Path

PROGRAMS = ("raylet", "gcs_server", "dashboard", "log_monitor", "monitor.py", "pix2point", "pytest")


def kind(pid: str) -> str | None:
    try:
        title = (Path("/proc") / pid / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None
    if title.startswith("ray::"):  # an actor's title ends with the method it runs: one kind per actor class
        name = title.split(" ")[0]
        head, dot, method = name.rpartition(".")
        return (head if dot and "(" not in method and ")" not in method else name)[:60]
    return next((name for name in PROGRAMS if name in title), title.split(" ")[0].rsplit("/", 1)[-1][:40] or "?")


def ticks() -> dict[tuple[str, int], int]:
    """(pid, start time) -> user + system ticks of every process now."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = (Path("/proc") / entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            found[(entry, int(fields[19]))] = int(fields[11]) + int(fields[12])
    return found


def sample(command: list[str], every: float) -> tuple[Counter, float]:
    hz = os.sysconf("SC_CLK_TCK")
    seen = ticks()  # what each process had used before the command: not counted
    totals: Counter = Counter()
    started = time.monotonic()
    process = subprocess.Popen(command)
    try:
        _follow(process, seen, totals, every, hz)
    except KeyboardInterrupt:
        process.wait()
    return totals, time.monotonic() - started


def _follow(process: subprocess.Popen, seen: dict, totals: Counter, every: float, hz: int) -> None:
    while True:
        done = process.poll() is not None
        now = ticks()
        for key, used in now.items():
            new = used - seen.get(key, 0)
            if new > 0:
                totals[kind(key[0]) or "?"] += new / hz
        seen = now
        if done:
            return
        time.sleep(every)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", type=float, default=2.0, help="seconds between two looks at /proc")
    parser.add_argument("--out", type=Path, help="also write {kind: CPU seconds} here as JSON")
    parser.add_argument("command", nargs="+", help="the command, after --")
    args = parser.parse_args()
    totals, wall = sample(args.command, args.every)
    total = sum(totals.values())
    for name, seconds in totals.most_common():
        if seconds >= 0.005 * total:
            print(f"{seconds:9.1f} CPU-s  {100 * seconds / total:5.1f} %  {name}")
    print(f"{total:9.1f} CPU-s in all, {wall:.1f} s wall ({total / wall:.2f} cores busy on average)")
    if args.out:
        args.out.write_text(json.dumps(dict(totals.most_common()), indent=1))


if __name__ == "__main__":
    main()
