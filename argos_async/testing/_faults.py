"""Scripted fault injection for the emulator: a plan of faults, each selecting requests."""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from aiohttp import web

__all__ = ["Fault", "FaultContext", "FaultPlan", "FaultState", "ListPage", "RepeatKey"]

LIST_PATH = "/v3/submission"


@dataclass
class ListPage:
    """A list page as built, before it is encoded: faults may rewrite it."""

    items: list[bytes]
    """Each item already encoded as JSON."""
    next_key: dict[str, str] | None
    """The `nextpageKey` object, or None on the last page."""


@dataclass
class FaultState:
    """Per-emulator state of a plan: counters and what earlier responses carried."""

    rng: random.Random
    list_requests: int = 0
    path_requests: dict[str, int] = field(default_factory=dict)
    next_keys: list[dict[str, str] | None] = field(default_factory=list)
    """The `nextpageKey` of every list page sent, in order (None for a last page)."""


@dataclass(frozen=True)
class FaultContext:
    """What a fault sees about the request at hand."""

    path: str
    query: dict[str, str]
    list_index: int | None
    """1-based index among list requests (`/v3/submission` without submission_id), else None."""
    path_index: int
    """1-based index among requests to this path."""
    state: FaultState


@dataclass(frozen=True, kw_only=True)
class Fault:
    """Base of every fault: which requests it hits; subclasses override a hook.

    With `path` None the fault hits list requests only and `at` counts list requests;
    with a `path` it hits requests to that path and `at` counts those. `at` None hits all.
    """

    at: int | Collection[int] | None = None
    path: str | None = None

    def selects(self, ctx: FaultContext) -> bool:
        """True when this fault applies to the request described by `ctx`."""
        if self.path is None:
            if ctx.list_index is None:
                return False
            index = ctx.list_index
        else:
            if ctx.path != self.path:
                return False
            index = ctx.path_index
        if self.at is None:
            return True
        if isinstance(self.at, int):
            return index == self.at
        return index in self.at

    async def respond(self, request: web.Request, ctx: FaultContext) -> web.StreamResponse | None:
        """Answers the request instead of the emulator (or returns None to let it through)."""
        return None

    def rewrite_page(self, page: ListPage, ctx: FaultContext) -> ListPage:
        """Rewrites a list page after it is built and before it is sent."""
        return page


@dataclass(frozen=True, kw_only=True)
class RepeatKey(Fault):
    """Replaces a list page's nextpageKey with the one sent `back` list pages earlier.

    back=1 repeats the previous page's key (A, A); back=2 on the 3rd page gives A, B, A.
    Does nothing when there is no such earlier page, or when that page was a last page.
    """

    back: int = 1

    def __post_init__(self) -> None:
        if self.back < 1:
            raise ValueError("back must be >= 1")

    def rewrite_page(self, page: ListPage, ctx: FaultContext) -> ListPage:
        """Swaps in the earlier key."""
        history = ctx.state.next_keys
        if len(history) < self.back:
            return page
        earlier = history[-self.back]
        if earlier is None:
            return page
        return ListPage(items=page.items, next_key=dict(earlier))


class FaultPlan:
    """An ordered list of faults; each emulator keeps its own state for the plan."""

    def __init__(self, faults: Sequence[Fault], seed: int = 0) -> None:
        self.faults: tuple[Fault, ...] = tuple(faults)
        self.seed = seed

    def __repr__(self) -> str:
        return f"FaultPlan({list(self.faults)!r}, seed={self.seed})"

    def new_state(self) -> FaultState:
        """Fresh state for one emulator."""
        return FaultState(rng=random.Random(self.seed))

    def context(self, path: str, query: dict[str, str], state: FaultState) -> FaultContext:
        """Counts the request and describes it to the faults."""
        list_index = None
        if path == LIST_PATH and "submission_id" not in query:
            state.list_requests += 1
            list_index = state.list_requests
        state.path_requests[path] = path_index = state.path_requests.get(path, 0) + 1
        return FaultContext(path, query, list_index, path_index, state)

    async def respond(self, request: web.Request, ctx: FaultContext) -> web.StreamResponse | None:
        """The first selected fault's own response, if any."""
        for fault in self.faults:
            if fault.selects(ctx):
                response = await fault.respond(request, ctx)
                if response is not None:
                    return response
        return None

    def rewrite_page(self, page: ListPage, ctx: FaultContext) -> ListPage:
        """Applies every selected fault's page rewrite, then records the key sent."""
        for fault in self.faults:
            if fault.selects(ctx):
                page = fault.rewrite_page(page, ctx)
        ctx.state.next_keys.append(page.next_key)
        return page
