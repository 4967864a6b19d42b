"""One store call in flight beside the pass: a batch of pushes commits while the next batch
is read and hashed. A first sync spends about as long waiting on its commits as reading
its files; with this, the two overlap.

At most one call is in flight and each is settled (its answer handed on, in the caller's
thread) before the next starts, so calls reach the store in order and the journal is only
ever written by the pass's own thread. Anything else that uses the store settles first:
the transports' connections are not shared between threads.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable


class InFlight:
    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._future: Future | None = None
        self._then: Callable[[Any], None] | None = None

    def start(self, call: Callable[[], Any], then: Callable[[Any], None]) -> None:
        """`call` in the background, once the call before it has settled; `then` gets its answer."""
        self.settle()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="syncd-store")
        self._future, self._then = self._pool.submit(call), then

    def settle(self) -> None:
        """Waits for the call in flight, if any, and hands its answer on (its error raised here)."""
        future, then = self._future, self._then
        if future is None:
            return
        self._future = self._then = None
        then(future.result())

    def __enter__(self) -> "InFlight":
        return self

    def __exit__(self, kind, error, trace) -> None:
        try:
            if error is None:
                self.settle()
            elif isinstance(error, Exception) and self._future is not None:
                # the pass is failing: what the store answered is still recorded, when it answered
                try:
                    self.settle()
                except Exception:
                    pass  # (the pass's own error is the one to raise)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
