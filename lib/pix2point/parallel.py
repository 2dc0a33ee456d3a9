"""Fan-out of per-item work (per scene, per shard) as Ray tasks, with a progress bar.

Each task also reports the Ray node it ran on; a caller that wants to know where work ran (the engine,
for a stage's manifest) opens `counting_task_nodes()` around the calls.

Ray is imported where a task starts, not here: the engine and the stage modules import this module, and
`pix2point status` must not pay for (or print the warnings of) Ray.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from tqdm import tqdm

from pix2point import stage_progress

Item = TypeVar("Item")
Result = TypeVar("Result")

_tasks_per_node: ContextVar[Counter[str] | None] = ContextVar("tasks_per_node", default=None)


@contextmanager
def counting_task_nodes() -> Iterator[Counter[str]]:
    """Within the block, every `map_tasks` task adds one to the count of the Ray node id it ran on."""
    counts: Counter[str] = Counter()
    token = _tasks_per_node.set(counts)
    try:
        yield counts
    finally:
        _tasks_per_node.reset(token)


def map_tasks(
    fn: Callable[..., Result],
    items: Sequence[Item],
    *,
    desc: str,
    num_cpus: float = 1,
    num_gpus: float = 0,
    **shared: Any,
) -> list[Result]:
    """`[fn(item, **shared) for item in items]`, each call a Ray task of `num_cpus` CPUs and `num_gpus` GPUs;
    results keep the order of `items`.

    `shared` arguments are put in the object store once rather than copied into every task. A task
    that raises makes this raise the same error (Ray wraps it with the remote traceback).
    """
    import ray

    remote_fn = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=0)(_reporting_node(fn))
    shared_refs = {name: ray.put(value) for name, value in shared.items()}
    refs = [remote_fn.remote(item, **shared_refs) for item in items]
    index_of = {ref: i for i, ref in enumerate(refs)}
    results: list[Any] = [None] * len(refs)
    counts = _tasks_per_node.get()
    pending = list(refs)
    with tqdm(total=len(refs), desc=desc, unit="task", leave=False) as progress:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                node_id, results[index_of[ref]] = ray.get(ref)
                if counts is not None:
                    counts[node_id] += 1
                progress.update(1)
                stage_progress.report(progress.n, len(refs), "tasks")
    return results


def _reporting_node(fn: Callable[..., Result]) -> Callable[..., tuple[str, Result]]:
    def task(item, **shared):
        import ray

        try:
            return ray.get_runtime_context().get_node_id(), fn(item, **shared)
        except Exception as error:
            # The item (often the file being read) is what a user needs to find the problem.
            error.add_note(f"in task {fn.__name__}({_short(repr(item))})")
            raise

    # Ray names the task after the function (dashboard, `ray list tasks`): keep the stage's name.
    task.__name__ = task.__qualname__ = fn.__name__
    return task


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else f"{text[:limit]}..."


def check_gpus(param: str, per_task: float) -> None:
    """ValueError naming `param` when a task asks for more GPUs than the whole Ray cluster has: Ray would
    otherwise keep it pending for ever."""
    import ray

    available = ray.cluster_resources().get("GPU", 0)
    if per_task > available:
        raise ValueError(f"{param}={per_task} but the Ray cluster has {available:g} GPUs")


def ray_connected() -> bool:
    """Whether this process is connected to a Ray cluster (ray.init has run)."""
    import ray

    return ray.is_initialized()


def cluster_cpus() -> int:
    """CPUs the connected Ray cluster offers (at least 1)."""
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))
