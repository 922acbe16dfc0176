"""A one-line progress display on a terminal: items, pages, rate, retries, ETA."""

from __future__ import annotations

import time
from typing import TextIO


class Progress:
    """Redraws one status line at most ``per_second`` times a second.

    Disabled (``enabled=False``, e.g. when stderr is not a terminal) it draws nothing, but
    ``summary()`` still works.
    """

    def __init__(self, stream: TextIO, *, enabled: bool, per_second: float = 10.0) -> None:
        self.items = 0
        self.pages = 0
        self.retries = 0
        self.fraction: float | None = None
        self._stream = stream
        self._enabled = enabled
        self._interval = 1.0 / per_second
        self._started = time.monotonic()
        self._drawn_at = float("-inf")
        self._width = 0

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def update(
        self, *, items: int, pages: int, retries: int = 0, fraction: float | None = None
    ) -> None:
        """Sets the counts (totals so far); ``fraction`` of the work done, when it is known."""
        self.items, self.pages, self.retries, self.fraction = items, pages, retries, fraction
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

    def rate(self) -> float:
        elapsed = self.elapsed
        return self.items / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        elapsed = self.elapsed
        text = (
            f"{self.items:,} items · {self.pages:,} pages · {self.rate():,.0f} items/s · "
            f"{self.retries:,} retries · {elapsed:.1f} s"
        )
        if self.fraction is not None:
            text = f"{self.fraction:6.1%} · " + text
            if 0 < self.fraction < 1:
                text += f" · ETA {elapsed * (1 - self.fraction) / self.fraction:.0f} s"
        return text

    def _draw(self) -> None:
        text = self.line()
        # Pad over the previous, possibly longer, line.
        self._stream.write("\r" + text.ljust(self._width))
        self._width = len(text)
        self._stream.flush()
