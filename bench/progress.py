"""Progress lines on stderr while the bench runs (it takes minutes); results go to stdout."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


class Progress:
    def __init__(self, stream=None, quiet: bool = False) -> None:  # type: ignore[no-untyped-def]
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.started = time.monotonic()
        self.section = "bench"

    def say(self, message: str) -> None:
        if self.quiet:
            return
        elapsed = time.monotonic() - self.started
        print(f"[{elapsed:6.0f}s] {self.section}: {message}", file=self.stream, flush=True)

    def counter(self, what: str, total: int, steps: int = 5) -> Callable[[int], None]:
        """A callback that reports `done/total what` about `steps` times, and at the end."""
        every = max(1, total // steps)
        started = time.monotonic()

        def report(done: int) -> None:
            if done % every == 0 or done == total:
                rate = done / max(time.monotonic() - started, 1e-9)
                self.say(f"{done}/{total} {what} ({rate:.1f}/s)")

        return report
