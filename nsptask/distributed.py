"""Small helpers for running the same code on one process or under ``accelerate launch``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["main_process_first", "is_main_process"]


@contextmanager
def main_process_first(desc: str = "work") -> Iterator[None]:
    """Let the main process run the block first (e.g. a ``datasets.map`` that fills the cache) while the
    others wait, then let them run it (they hit the cache). A no-op on a single process."""
    from accelerate import PartialState

    state = PartialState()
    if state.num_processes <= 1:
        yield
        return
    with state.main_process_first():
        yield


def is_main_process() -> bool:
    """True on the main process (or when not distributed)."""
    from accelerate import PartialState

    return PartialState().is_main_process
