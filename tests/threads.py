"""Test helper: what a function returns in other threads (for per-thread caches)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def in_two_threads(get: Callable[[], T]) -> list[T]:
    """``get()`` in two threads, one after the other; the results are kept alive by the list."""
    seen: list[T] = []
    threads = [threading.Thread(target=lambda: seen.append(get())) for _ in range(2)]
    for t in threads:
        t.start()
        t.join()
    return seen
