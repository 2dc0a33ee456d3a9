"""A failed stage, told by its root cause: the user's exception inside Ray's and Ray Train's wrappers."""

from __future__ import annotations

from pix2point.engine.pipeline import PipelineError

# Attributes through which Ray wraps the exception that started it: RayTaskError.cause (a task or actor raised),
# Ray Train v2's WorkerGroupError.worker_failures (rank -> exception) and ControllerError.controller_failure.
_WRAPPER_ATTRIBUTES = ("cause", "controller_failure")


class StageFailed(PipelineError):
    """Stage `stage` (artefact key `key`) raised; `__cause__` is what it raised, `str()` its root cause."""

    def __init__(self, stage: str, key: str, error: BaseException):
        self.stage, self.key, self.root = stage, key, root_cause(error)
        super().__init__(f"stage {stage} failed: {describe(self.root)}")


def root_cause(error: BaseException) -> BaseException:
    """The innermost exception: through Ray's wrappers, a worker group's first failing rank and `raise ... from`."""
    seen: set[int] = set()
    while id(error) not in seen:
        seen.add(id(error))
        inner = _wrapped(error)
        if inner is None:
            return error
        error = inner
    return error


def describe(error: BaseException) -> str:
    """`Type: first line of the message`, plus the file it concerns when the message does not name it
    (OSError.filename, or a note a caller added with `add_note`, e.g. map_tasks' item)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    where = [str(name) for name in (getattr(error, "filename", None), getattr(error, "filename2", None))
             if name and str(name) not in text]
    where += [note for note in getattr(error, "__notes__", ()) if note not in text]
    return "; ".join([text, *where])


def _wrapped(error: BaseException) -> BaseException | None:
    failures = getattr(error, "worker_failures", None)
    if isinstance(failures, dict) and failures:
        return failures[min(failures)]
    for attribute in _WRAPPER_ATTRIBUTES:
        inner = getattr(error, attribute, None)
        if isinstance(inner, BaseException):
            return inner
    # `raise Friendly(...) from low_level` in project code names the problem better than its cause: only Ray's
    # own exception types are looked through.
    return error.__cause__ if type(error).__module__.startswith("ray.") else None
