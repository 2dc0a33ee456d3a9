"""Helpers for tests that start a `pix2point` process and signal it."""

import signal


def sigint_as_in_a_terminal() -> None:
    """`preexec_fn` for a child that a test interrupts: SIGINT back to its default disposition. A shell without
    job control starts background commands with SIGINT ignored (bash: "asynchronous commands ignore SIGINT"),
    a Python started so never raises KeyboardInterrupt, and the test would measure how it was launched."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
