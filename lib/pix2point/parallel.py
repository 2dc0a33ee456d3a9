"""Fan-out of per-item work (per scene, per shard) as Ray tasks, with a progress bar."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import ray
from tqdm import tqdm

Item = TypeVar("Item")
Result = TypeVar("Result")


def map_tasks(
    fn: Callable[..., Result],
    items: Sequence[Item],
    *,
    desc: str,
    num_cpus: float = 1,
    **shared: Any,
) -> list[Result]:
    """`[fn(item, **shared) for item in items]`, each call a Ray task; results keep the order of `items`.

    `shared` arguments are put in the object store once rather than copied into every task. A task
    that raises makes this raise the same error (Ray wraps it with the remote traceback).
    """
    remote_fn = ray.remote(num_cpus=num_cpus, max_retries=0)(fn)
    shared_refs = {name: ray.put(value) for name, value in shared.items()}
    refs = [remote_fn.remote(item, **shared_refs) for item in items]
    index_of = {ref: i for i, ref in enumerate(refs)}
    results: list[Any] = [None] * len(refs)
    pending = list(refs)
    with tqdm(total=len(refs), desc=desc, unit="task", leave=False) as progress:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                results[index_of[ref]] = ray.get(ref)
                progress.update(1)
    return results


def cluster_cpus() -> int:
    """CPUs the connected Ray cluster offers (at least 1)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))
