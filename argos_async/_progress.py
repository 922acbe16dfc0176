"""A one-line progress display on a terminal: items, pages, rate, retries, ETA."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO


class Progress:
    """Redraws one status line at most ``per_second`` times a second.

    Counts, rate and elapsed time are this run's. ``fraction`` is of the whole job, and
    ``fraction_before`` is what earlier runs had done when this one started (a resumed job):
    the ETA extrapolates from what this run did in its own time.

    Disabled (``enabled=False``, e.g. when stderr is not a terminal) it draws nothing, but
    the counts are still kept.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        enabled: bool,
        per_second: float = 10.0,
        fraction_before: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.items = 0
        self.pages = 0
        self.retries = 0
        self.fraction: float | None = None
        self.fraction_before = fraction_before
        self._stream = stream
        self._enabled = enabled
        self._interval = 1.0 / per_second
        self._clock = clock
        self._started = clock()
        self._drawn_at = float("-inf")
        self._width = 0

    @property
    def elapsed(self) -> float:
        return self._clock() - self._started

    def update(
        self, *, items: int, pages: int, retries: int = 0, fraction: float | None = None
    ) -> None:
        """Sets the counts (totals so far); ``fraction`` of the work done, when it is known."""
        self.items, self.pages, self.retries, self.fraction = items, pages, retries, fraction
        now = self._clock()
        if self._enabled and now - self._drawn_at >= self._interval:
            self._drawn_at = now
            self._draw()

    def close(self) -> None:
        """Draws the final state and ends the line."""
        if self._enabled:
            self._draw()
            self._stream.write("\n")
            self._stream.flush()

    def note(self, text: str) -> None:
        """Writes ``text`` on a line of its own above the status line, which is then drawn
        again, rather than run into it."""
        drawn = self._enabled and self._width > 0
        if drawn:
            self._stream.write("\r" + " " * self._width + "\r")
            self._width = 0
        self._stream.write(text + "\n")
        if drawn:
            self._draw()
        self._stream.flush()

    def rate(self) -> float:
        elapsed = self.elapsed
        return self.items / elapsed if elapsed > 0 else 0.0

    def eta(self) -> float | None:
        """Seconds left at this run's pace, or None before there is a pace to go by."""
        fraction = self.fraction
        if fraction is None or not 0 < fraction < 1:
            return None
        done_here = fraction - self.fraction_before
        if done_here <= 0:
            return None
        return self.elapsed * (1 - fraction) / done_here

    def line(self) -> str:
        text = (
            f"{counted(self.items, 'item', 'items')} · {counted(self.pages, 'page', 'pages')} · "
            f"{self.rate():,.0f} items/s · {counted(self.retries, 'retry', 'retries')} · "
            f"{self.elapsed:.1f} s"
        )
        if self.fraction is not None:
            text = f"{self.fraction:6.1%} · " + text
            eta = self.eta()
            if eta is not None:
                text += f" · ETA {eta:.0f} s"
        return text

    def _draw(self) -> None:
        text = self.line()
        # Pad over the previous, possibly longer, line.
        self._stream.write("\r" + text.ljust(self._width))
        self._width = len(text)
        self._stream.flush()


class _NoteHandler(logging.Handler):
    def __init__(self, progress: Progress, level: int) -> None:
        super().__init__(level)
        self._progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._progress.note(f"argos-async: {self.format(record)}")
        except Exception:
            self.handleError(record)


@contextmanager
def showing_log(progress: Progress, level: int = logging.WARNING) -> Iterator[None]:
    """While the block runs, the ``argos_async`` logger's records of ``level`` and above (a
    retry, with its reason and wait) are written as notes above the progress line."""
    logger = logging.getLogger("argos_async")
    handler = _NoteHandler(progress, level)
    logger.addHandler(handler)
    # Records below the logger's own level never reach a handler: let those of ``level`` in
    # for the block's length (a --verbose export shows INFO with no logging configured).
    previous = logger.level
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def counted(n: int, one: str, many: str) -> str:
    """``1 retry``, ``2 retries``: a count that reads naturally."""
    return f"{n:,} {one if n == 1 else many}"
