"""What goes wrong between the emulator and a webhook receiver, on purpose: the provider
documents neither retries nor ordering, and says webhooks may be delayed or lost, so a
receiver must survive duplicates, reordering, lost and late events.

Like the fault plans of `_faults`, the faults select events by number (1-based, in the order
the emulator made them) or at random, drawing from a seeded generator as each event is made:
the same seed and the same changes give the same faults.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection
from dataclasses import dataclass, fields
from typing import Final, Literal

from ._faults import _number

__all__ = ["KINDS", "FaultKind", "WebhookFaults"]

FaultKind = Literal["drop", "duplicate", "reorder", "delay"]
"""The name of a webhook fault, as `RecordedWebhook.faults` lists it."""

KINDS: Final[tuple[FaultKind, ...]] = ("drop", "duplicate", "reorder", "delay")
"""Every kind, in the order each event's draws are made (and faults are listed)."""

# What each KIND of a --webhook-faults item takes after PROB: the field its argument sets.
_SPEC_ARGUMENTS: Final[dict[str, str | None]] = {
    "drop": None,
    "duplicate": None,
    "reorder": "hold_seconds",
    "delay": "delay_seconds",
}


@dataclass(frozen=True, repr=False)
class WebhookFaults:
    """Delivery faults of the emulator's webhooks, e.g.
    `WebhookFaults(duplicate=0.2, reorder=0.2, drop=0.1, delay=0.05, seed=1)`, or by event
    number: `WebhookFaults(drop={2}, duplicate={1, 3})`.

    Each kind takes a probability (every event draws for it) or a collection of event
    numbers (1-based, in the order the emulator made the events; no draw decides them):

    - `drop`: the event is never sent; recorded with outcome "dropped".
    - `duplicate`: the same body is delivered twice, one delivery after the other (each with
      its own retries); the second is recorded with `duplicate` True.
    - `reorder`: the event is held back and delivered right after the next one, so the later
      event arrives first; if no next event comes within `hold_seconds` (or a test awaits
      `webhooks_idle`), it goes out alone. An event that comes while another is held is not
      held itself.
    - `delay`: the event waits `delay_seconds` before it is sent (the events after it wait
      too: one sender delivers them in turn).

    A dropped event meets no other fault. Every event makes four draws from the generator
    seeded by `seed`, one per kind, whatever the kinds are set to: turning one kind on or off
    leaves the others' picks for a seed as they were.
    """

    drop: float | Collection[int] = 0.0
    duplicate: float | Collection[int] = 0.0
    reorder: float | Collection[int] = 0.0
    delay: float | Collection[int] = 0.0
    delay_seconds: float = 1.0
    hold_seconds: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        for kind in KINDS:
            object.__setattr__(self, kind, _selector(kind, getattr(self, kind)))
        for name in ("delay_seconds", "hold_seconds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0")

    def __repr__(self) -> str:
        shown = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) != f.default
        ]
        return f"WebhookFaults({', '.join(shown)})"

    @classmethod
    def parse(cls, spec: str, *, seed: int = 0) -> WebhookFaults:
        """Faults from a command-line spec, a comma list of `KIND=PROB[:ARG]`: drop,
        duplicate, reorder (`=PROB[:HOLD_SECONDS]`), delay (`=PROB[:SECONDS]`); e.g.
        `duplicate=0.2,reorder=0.2:0.5,drop=0.1,delay=0.05:2`. Raises ValueError on a bad one."""
        items = [item.strip() for item in spec.split(",")]
        if not spec.strip() or not all(items):
            raise ValueError(f"empty item in {spec!r}")
        values: dict[str, float] = {}
        for item in items:
            kind, sep, value = (part.strip() for part in item.partition("="))
            if not sep:
                raise ValueError(f"{item!r} is not KIND=PROB")
            if kind not in _SPEC_ARGUMENTS:
                raise ValueError(f"unknown webhook fault {kind!r} (known: {', '.join(KINDS)})")
            if kind in values:
                raise ValueError(f"{kind} given twice")
            prob_text, colon, argument = value.partition(":")
            values[kind] = _number(prob_text, "probability")
            takes = _SPEC_ARGUMENTS[kind]
            if colon:
                if takes is None:
                    raise ValueError(f"{item!r}: expected {kind}=PROB")
                values[takes] = _number(argument, "seconds")
        return cls(**values, seed=seed)

    def new_state(self) -> random.Random:
        """A fresh generator, for one emulator."""
        return random.Random(self.seed)

    def decide(self, number: int, rng: random.Random) -> tuple[FaultKind, ...]:
        """The kinds that hit event `number` (1-based), in `KINDS` order; draws from `rng`."""
        draws = [rng.random() for _ in KINDS]
        hit: list[FaultKind] = []
        for kind, u in zip(KINDS, draws, strict=True):
            selector = getattr(self, kind)
            if number in selector if isinstance(selector, frozenset) else u < selector:
                hit.append(kind)
        return ("drop",) if "drop" in hit else tuple(hit)


def _selector(kind: str, value: object) -> float | frozenset[int]:
    if isinstance(value, (int, float)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{kind} must be a probability within 0..1 or event numbers")
        return float(value)
    if not isinstance(value, Collection) or isinstance(value, str):
        raise TypeError(f"{kind} must be a probability or a collection of event numbers")
    numbers = frozenset(value)
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in numbers):
        raise ValueError(f"{kind}: event numbers are whole numbers >= 1")
    return numbers
