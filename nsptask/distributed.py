"""Small helpers for running the same code on one process or under ``accelerate launch``.

They import ``torch`` and ``accelerate`` only when a process group exists (or ``accelerate launch`` /
``torchrun`` set ``WORLD_SIZE``): building data in a single process never pays for those imports.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["main_process_first", "is_main_process", "is_distributed"]


def is_distributed() -> bool:
    """Whether this process is one of several (``WORLD_SIZE`` > 1, or an initialised process group)."""
    try:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            return True
    except ValueError:
        pass
    torch = sys.modules.get("torch")
    return bool(
        torch is not None
        and torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    )


@contextmanager
def main_process_first(desc: str = "work") -> Iterator[None]:
    """Let the main process run the block first (e.g. a ``datasets.map`` that fills the cache) while the
    others wait, then let them run it (they hit the cache). A no-op on a single process."""
    if not is_distributed():
        yield
        return
    from accelerate import PartialState

    state = PartialState()
    with state.main_process_first():
        yield


def is_main_process() -> bool:
    """True on the main process (or when not distributed)."""
    if not is_distributed():
        return True
    from accelerate import PartialState

    return PartialState().is_main_process
