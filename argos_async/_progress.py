"""A one-line progress display on a terminal: items, pages, rate, elapsed (and ETA if known)."""

from __future__ import annotations

import time
from typing import TextIO


class Progress:
    """Counts items and pages and redraws one status line at most ``per_second`` times a second.

    Disabled (``enabled=False``, e.g. when stderr is not a terminal) it only counts, so the
    summary is still right.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        enabled: bool,
        total: int | None = None,
        per_second: float = 10.0,
    ) -> None:
        self.items = 0
        self.pages = 0
        self._stream = stream
        self._enabled = enabled
        self._total = total
        self._interval = 1.0 / per_second
        self._started = time.monotonic()
        self._drawn_at = float("-inf")
        self._width = 0

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def advance(self, items: int, pages: int = 1) -> None:
        self.items += items
        self.pages += pages
        now = time.monotonic()
        if self._enabled and now - self._drawn_at >= self._interval:
            self._drawn_at = now
            self._draw()

    def close(self) -> None:
        """Draws the final state and ends the line."""
        if self._enabled:
            self._draw()
            self._stream.write("\n")
            self._stream.flush()

    def line(self) -> str:
        elapsed = self.elapsed
        rate = self.items / elapsed if elapsed > 0 else 0.0
        text = (
            f"{self.items:,} items · {self.pages:,} pages · {rate:,.0f} items/s · {elapsed:.1f} s"
        )
        if self._total:
            done = min(self.items / self._total, 1.0)
            text = f"{done:6.1%} " + text
            if rate > 0 and self.items < self._total:
                text += f" · ETA {(self._total - self.items) / rate:.0f} s"
        return text

    def _draw(self) -> None:
        text = self.line()
        # Pad over the previous, possibly longer, line.
        self._stream.write("\r" + text.ljust(self._width))
        self._width = len(text)
        self._stream.flush()
