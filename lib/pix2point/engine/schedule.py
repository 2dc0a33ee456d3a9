"""Running a DAG's nodes side by side: each node on its own thread as soon as the nodes it needs are done,
the ready node heading the longest chain first.

Threads, not processes: a stage spends its time in Ray (tasks, Train workers) or in native code, and the
engine's locks, stores and Ray connection are this process's. The threads are daemons, so Ctrl-C ends the
run at once (a killed stage leaves nothing that counts: artefacts.py), not after the running stages.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

log = logging.getLogger(__name__)

Result = TypeVar("Result")


def run_when_ready(order: Sequence[str], needs: Mapping[str, Sequence[str]], work: Callable[[str], Result],
                   max_parallel: int | None = None) -> dict[str, Result]:
    """`{name: work(name)}` for every name of `order`, each started once all of `needs[name]` (names of
    `order`) have returned, at most `max_parallel` at once (None: every ready one). Ready ones start in
    critical-path order (`critical_path_first`), so under a limit the chain the run waits longest for goes first.

    When a `work` raises, nothing new starts; the running ones finish (their results are kept where they
    write them) and then the first error is raised, with a note naming the node it came from.
    """
    results: dict[str, Result] = {}
    pending = critical_path_first(order, needs)
    running: set[str] = set()
    finished: queue.Queue[tuple[str, Result | None, BaseException | None]] = queue.Queue()
    failure: tuple[str, BaseException] | None = None
    while True:
        if failure is None:
            for name in [name for name in pending if all(need in results for need in needs[name])]:
                if max_parallel is not None and len(running) >= max_parallel:
                    break
                pending.remove(name)
                running.add(name)
                threading.Thread(target=_call, args=(work, name, finished), name=f"stage-{name}", daemon=True).start()
        if not running:
            break
        name, result, error = finished.get()
        running.discard(name)
        if error is None:
            results[name] = result
        elif failure is None:
            failure = (name, error)
            if running:
                log.error("%s failed; waiting for %s to finish, starting nothing else", name, ", ".join(sorted(running)))
    if failure is None and pending:
        raise ValueError(f"{', '.join(pending)} need(s) something outside the run: {dict(needs)}")
    if failure is not None:
        name, error = failure
        error.add_note(f"stage {name!r} failed" + (f"; not started: {', '.join(pending)}" if pending else ""))
        raise error
    return results


def critical_path_first(order: Sequence[str], needs: Mapping[str, Sequence[str]]) -> list[str]:
    """`order` sorted by the number of nodes on the longest chain that depends on each (most first), ties in
    `order`: the list scheduler's classic priority (Graham; HLFET), with every node counted as one unit of time
    because a stage's cost is not known before it runs."""
    dependents: dict[str, list[str]] = {name: [] for name in order}
    for name in order:
        for need in needs[name]:
            dependents.setdefault(need, []).append(name)
    depth: dict[str, int] = {}

    def chain(name: str) -> int:
        if name not in depth:
            depth[name] = max((1 + chain(after) for after in dependents.get(name, ())), default=0)
        return depth[name]

    return sorted(order, key=lambda name: -chain(name))


def _call(work: Callable[[str], Result], name: str, finished: queue.Queue) -> None:
    try:
        finished.put((name, work(name), None))
    except BaseException as error:  # noqa: BLE001 (handed to the scheduling thread, which raises it)
        finished.put((name, None, error))
