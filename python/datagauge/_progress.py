"""One console progress bar for every long job (embedding, sufficiency, the report).

tqdm when it is installed, otherwise a line on stderr rewritten at most five times a second;
or the caller's own ``callback(done, total)``; or nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Progress", "ProgressArg"]

#: What a ``progress=`` argument accepts: on/off, or a callable ``(done, total) -> None``.
ProgressArg = bool | Callable[[int, int], None]


class Progress:
    """Count `total` units of work; ``update(n)`` after each piece, ``close()`` at the end."""

    def __init__(self, progress: ProgressArg, total: int, *, desc: str, unit: str) -> None:
        self.total = total
        self.done: float = 0
        self.desc, self.unit = desc, unit
        self.callback: Callable[[int, int], None] | None = None
        self.bar: Any = None
        self.enabled = bool(progress)
        self._last = 0.0
        if callable(progress):
            self.callback = progress
        elif progress:
            try:
                from tqdm.auto import tqdm  # type: ignore[import-untyped,import-not-found,unused-ignore]
            except ImportError:  # a plain line on stderr instead
                pass
            else:
                self.bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr)

    def note(self, text: str) -> None:
        """Show what is being done now (tqdm's postfix; nothing on a plain line)."""
        if self.bar is not None:
            self.bar.set_postfix_str(text)

    def update(self, n: float = 1) -> None:
        """Count `n` more units done (a fraction moves the bar part of a unit)."""
        self.done += n
        if self.callback is not None:
            self.callback(round(self.done), self.total)
        elif self.bar is not None:
            self.bar.update(n)
        elif self.enabled:
            now = time.monotonic()
            if now - self._last > 0.2 or self.done >= self.total:
                self._last = now
                pct = 100.0 * self.done / max(self.total, 1)
                end = "\n" if self.done >= self.total else ""
                sys.stderr.write(
                    f"\r{self.desc}: {self.done:.3g}/{self.total} {self.unit}s ({pct:.0f}%){end}"
                )
                sys.stderr.flush()

    def to(self, position: float) -> None:
        """Move the bar to `position` units done (never backwards)."""
        if position > self.done:
            self.update(position - self.done)

    def part(self, start: float, width: float = 1.0) -> Callable[[int, int], None]:
        """A ``callback(done, total)`` for a sub-job: moves the bar from `start` over `width`
        units as the sub-job reports its own progress (the report's sections use it)."""

        def callback(done: int, total: int) -> None:
            self.to(start + width * min(done / max(total, 1), 1.0))

        return callback

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
