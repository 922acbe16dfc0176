"""Fault injection for the emulator: a plan of faults, each selecting requests.

Faults are scripted (`at`, `path`) and optionally random (`probability`, `Mixed`); every random
draw comes from the plan's seeded generator when a request is counted, so a plan gives the same
faults for the same seed and request order.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import uuid
from collections.abc import Collection, Sequence
from dataclasses import MISSING, dataclass, field, fields, replace
from http import HTTPStatus

from aiohttp import web

from ._http import error_response
from ._listing import ListPage
from ._wire import (
    JSON_CONTENT_TYPE,
    LIST_PATH,
    QUOTA_EXCEEDED,
    REQUEST_ID_HEADER,
    RETRY_AFTER_HEADER,
    RETRY_AFTER_STATUSES,
    STATUS_MESSAGES,
    Param,
    retry_after_date,
    retry_after_seconds,
)

__all__ = [
    "Delay",
    "DropConnection",
    "Fault",
    "FaultContext",
    "FaultPlan",
    "FaultState",
    "ListPage",
    "Mixed",
    "QuotaExceeded",
    "Redirect",
    "RepeatKey",
    "Status",
    "TruncateBody",
]

# What a dropped response sends before the connection goes: the start of a plausible list page.
_DROP_PARTIAL = b'{"Items":[{"submission_id":"'
_DROP_ANNOUNCED = 4096


@dataclass
class FaultState:
    """Per-emulator state of a plan: counters, the seeded generator, what earlier pages carried."""

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
    active: tuple[Fault, ...] = ()
    """The faults in force for this request (selected, drawn, resolved), in plan order."""
    fired: list[str] = field(default_factory=list, compare=False)
    """Class names of the faults that acted on this request, in order (see `mark`)."""

    def mark(self, fault: Fault) -> None:
        """Records that `fault` acted on this request (answered, rewrote, delayed)."""
        self.fired.append(type(fault).__name__)


@dataclass(frozen=True, kw_only=True, repr=False)
class Fault:
    """Base of every fault: which requests it hits; subclasses override a hook.

    With `path` None the fault hits list requests only and `at` counts list requests;
    with a `path` it hits requests to that path and `at` counts those. `at` None hits all.
    A selected request is hit only when a draw from the plan's generator is below
    `probability` (no draw is made when it is 1). These three are keyword-only; a subclass's
    own fields may be given by position, e.g. `Status(503, at=2)`.

    Hooks, called for the faults in force on a request, in plan order: `respond` (the first
    response returned answers the request), then for a normal answer `rewrite_page` (list
    pages) and `rewrite_body` (every 200 body).
    """

    at: int | Collection[int] | None = None
    path: str | None = None
    probability: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within 0..1")

    def __repr__(self) -> str:
        shown = []
        # A subclass's own fields first: they say what the fault is, `at`/`path` where.
        for f in sorted(fields(self), key=lambda f: f.name in _BASE_FIELDS):
            value = getattr(self, f.name)
            if f.repr and (f.default is MISSING or value != f.default):
                shown.append(f"{f.name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def selects(self, ctx: FaultContext) -> bool:
        """True when `at` and `path` pick the request described by `ctx` (no draw)."""
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

    def activate(self, ctx: FaultContext) -> Fault | None:
        """The fault in force for this request (this one, or one it stands for), or None.

        Called once per request, in arrival order: the place for random draws.
        """
        if not self.selects(ctx):
            return None
        if self.probability < 1.0 and ctx.state.rng.random() >= self.probability:
            return None
        return self

    async def respond(self, request: web.Request, ctx: FaultContext) -> web.StreamResponse | None:
        """Answers the request instead of the emulator (or returns None to let it through)."""
        return None

    def rewrite_page(self, page: ListPage, ctx: FaultContext) -> ListPage:
        """Rewrites a list page after it is built; return `page` itself to leave it alone."""
        return page

    def rewrite_body(self, body: bytes, ctx: FaultContext) -> bytes:
        """Rewrites the final body of a 200 response; return `body` itself to leave it alone."""
        return body


_BASE_FIELDS = frozenset(f.name for f in fields(Fault))


@dataclass(frozen=True, repr=False)
class RepeatKey(Fault):
    """Replaces a list page's nextpageKey with the one sent `back` list pages earlier.

    back=1 repeats the previous page's key (A, A); back=2 on the 3rd page gives A, B, A.
    Does nothing when there is no such earlier page, or when that page was a last page.
    """

    back: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
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


@dataclass(frozen=True, repr=False)
class Status(Fault):
    """Answers with `status` and `{"message": ...}` (a gateway-style default per status).

    With `retry_after` a Retry-After header: delay-seconds, or with `http_date` an HTTP-date
    of now + retry_after rounded up to a whole second (so never earlier than asked).
    """

    status: int
    message: str | None = None
    retry_after: float | None = None
    http_date: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 400 <= self.status <= 599:
            raise ValueError("status must be within 400..599")
        if self.retry_after is not None and not (
            math.isfinite(self.retry_after) and self.retry_after >= 0
        ):
            raise ValueError("retry_after must be a finite number >= 0")
        if self.http_date and self.retry_after is None:
            raise ValueError("http_date needs retry_after")

    async def respond(self, request: web.Request, ctx: FaultContext) -> web.StreamResponse | None:
        """The error response."""
        message = self.message
        if message is None:
            message = STATUS_MESSAGES.get(self.status) or _phrase(self.status)
        response = error_response(self.status, message)
        if self.retry_after is not None:
            response.headers[RETRY_AFTER_HEADER] = (
                retry_after_date(self.retry_after)
                if self.http_date
                else retry_after_seconds(self.retry_after)
            )
        return response


@dataclass(frozen=True, repr=False)
class QuotaExceeded(Fault):
    """The daily quota: 429 `{"message": "Limit Exceeded"}`, without Retry-After."""

    async def respond(self, request: web.Request, ctx: FaultContext) -> web.StreamResponse | None:
        """The 429 response."""
        return error_response(429, QUOTA_EXCEEDED)


@dataclass(frozen=True, repr=False)
class DropConnection(Fault):
    """Starts a 200 response announcing more bytes than it sends, then closes the connection.

    The client sees the headers and the start of a list page, then the body cut off.
    """

    async def respond(self, request: web.Request, ctx: FaultContext) -> web.StreamResponse | None:
        """Sends the partial response and drops the connection."""
        response = web.StreamResponse(
            status=200,
            headers={"Content-Type": JSON_CONTENT_TYPE, REQUEST_ID_HEADER: str(uuid.uuid4())},
        )
        response.content_length = _DROP_ANNOUNCED
        await response.prepare(request)
        await response.write(_DROP_PARTIAL)
        # Through the protocol rather than the transport alone, so aiohttp also stops serving
        # the connection: closing flushes what was written, then the client reads EOF early.
        request.protocol.force_close()
        return response


@dataclass(frozen=True, repr=False)
class TruncateBody(Fault):
    """The normal 200 response with its body cut to `fraction` of its length.

    Content-Length matches the cut body: complete at the HTTP level, broken JSON.
    """

    fraction: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.fraction < 1.0:
            raise ValueError("fraction must be within 0..1 (1 excluded)")

    def rewrite_body(self, body: bytes, ctx: FaultContext) -> bytes:
        """The first `fraction` of `body` (always at least one byte short)."""
        if not body:
            return body
        return body[: min(int(len(body) * self.fraction), len(body) - 1)]


@dataclass(frozen=True, repr=False)
class Delay(Fault):
    """Sleeps `seconds` before normal handling (or the next fault) goes on."""

    seconds: float

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (math.isfinite(self.seconds) and self.seconds >= 0):
            raise ValueError("seconds must be a finite number >= 0")

    async def respond(self, request: web.Request, ctx: FaultContext) -> web.StreamResponse | None:
        """Sleeps; cancelled with the request when the client leaves or the server closes."""
        await asyncio.sleep(self.seconds)
        ctx.mark(self)
        return None


@dataclass(frozen=True, repr=False)
class Redirect(Fault):
    """Answers with a redirect to the same path and query on another origin `location`."""

    location: str
    status: int = 307

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.status not in (301, 302, 303, 307, 308):
            raise ValueError("status must be a redirect status (301, 302, 303, 307, 308)")

    async def respond(self, request: web.Request, ctx: FaultContext) -> web.StreamResponse | None:
        """The redirect response, without a body."""
        target = self.location.rstrip("/") + request.path_qs
        return web.Response(status=self.status, headers={"Location": target})


@dataclass(frozen=True, repr=False)
class Mixed(Fault):
    """One random fault per selected request with total probability `rate`, spread evenly over
    `MIXED_KINDS`: 429 (plain, Retry-After seconds, Retry-After HTTP-date), 500, 502, 503,
    504, a dropped connection and a truncated body.

    A single draw u decides both: no fault when u >= rate, else kind number int(u / rate * 9).
    `retry_after` is the value the two Retry-After kinds send.
    """

    rate: float
    retry_after: float = 0.0
    kinds: tuple[Fault, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be within 0..1")
        if not (math.isfinite(self.retry_after) and self.retry_after >= 0):
            raise ValueError("retry_after must be a finite number >= 0")
        object.__setattr__(self, "kinds", mixed_kinds(self.retry_after))

    def activate(self, ctx: FaultContext) -> Fault | None:
        """The kind drawn for this request, or None."""
        if super().activate(ctx) is None:
            return None
        u = ctx.state.rng.random()
        if u >= self.rate:
            return None
        return self.kinds[min(int(u / self.rate * len(self.kinds)), len(self.kinds) - 1)]


def mixed_kinds(retry_after: float = 0.0) -> tuple[Fault, ...]:
    """The faults `Mixed` chooses from, in the order its draw maps onto."""
    return (
        Status(status=429),
        Status(status=429, retry_after=retry_after),
        Status(status=429, retry_after=retry_after, http_date=True),
        Status(status=500),
        Status(status=502),
        Status(status=503),
        Status(status=504),
        DropConnection(),
        TruncateBody(),
    )


# What each KIND of a --faults item takes after PROB: (the name of its argument, required).
_SPEC_KINDS: dict[str, tuple[str | None, bool]] = {
    **{str(status): (None, False) for status in STATUS_MESSAGES},
    **{
        f"{status}-retry-{form}": ("SECONDS", True)
        for status in RETRY_AFTER_STATUSES
        for form in ("after", "date")
    },
    "quota": (None, False),
    "drop": (None, False),
    "truncate": ("FRACTION", False),
    "slow": ("SECONDS", True),
    "repeat-key": ("BACK", False),
    "redirect": ("URL", True),
}


class FaultPlan:
    """An ordered list of faults; each emulator keeps its own state (and generator) for it."""

    def __init__(self, faults: Sequence[Fault], seed: int = 0) -> None:
        self.faults: tuple[Fault, ...] = tuple(faults)
        self.seed = seed

    def __repr__(self) -> str:
        return f"FaultPlan({list(self.faults)!r}, seed={self.seed})"

    @classmethod
    def mixed(
        cls,
        rate: float,
        *,
        seed: int = 0,
        retry_after: float = 0.0,
        path: str | None = None,
    ) -> FaultPlan:
        """A plan giving each list request (or each request to `path`) one random fault with
        probability `rate`, spread evenly over the kinds of `Mixed`."""
        return cls([Mixed(rate=rate, retry_after=retry_after, path=path)], seed=seed)

    @classmethod
    def parse(cls, spec: str, *, seed: int = 0) -> FaultPlan:
        """A plan from a command-line spec; raises ValueError on a bad one.

        `mixed=RATE[:RETRY_AFTER]`, or a comma list of `KIND=PROB[:ARG]`, each item drawing on
        its own, in order, on list requests. KIND is one of: a status (400, 403, 413, 429,
        500, 502, 503, 504); 429-retry-after, 429-retry-date, 503-retry-after, 503-retry-date
        (`=PROB:SECONDS`, Retry-After as delay-seconds or as an HTTP-date); quota (the daily
        429); drop; truncate (`=PROB[:FRACTION]`, default 0.5); slow (`=PROB:SECONDS`);
        repeat-key (`=PROB[:BACK]`, default 1); redirect (`=PROB:URL`, a 307 to that origin).
        """
        items = [item.strip() for item in spec.split(",")]
        if not spec.strip() or not all(items):
            raise ValueError(f"empty item in {spec!r}")
        faults: list[Fault] = []
        for item in items:
            kind, sep, value = item.partition("=")
            kind = kind.strip()
            if not sep:
                raise ValueError(f"{item!r} is not KIND=PROB")
            prob_text, colon, argument = value.partition(":")
            if kind == "mixed":
                if len(items) > 1:
                    raise ValueError("mixed= cannot be combined with other items")
                retry_after = _number(argument, "retry-after seconds") if colon else 0.0
                return cls.mixed(_number(prob_text, "rate"), seed=seed, retry_after=retry_after)
            if kind not in _SPEC_KINDS:
                known = ", ".join(("mixed", *_SPEC_KINDS))
                raise ValueError(f"unknown fault kind {kind!r} (known: {known})")
            probability = _number(prob_text, "probability")
            takes, required = _SPEC_KINDS[kind]
            if (colon and takes is None) or (required and not colon):
                form = f"{kind}=PROB" if takes is None else f"{kind}=PROB:{takes}"
                raise ValueError(f"{item!r}: expected {form}")
            faults.append(_spec_fault(kind, probability, argument if colon else None))
        return cls(faults, seed=seed)

    def new_state(self) -> FaultState:
        """Fresh state for one emulator."""
        return FaultState(rng=random.Random(self.seed))

    def context(self, path: str, query: dict[str, str], state: FaultState) -> FaultContext:
        """Counts the request, decides which faults are in force for it, and describes it."""
        list_index = None
        if path == LIST_PATH and Param.SUBMISSION_ID not in query:
            state.list_requests += 1
            list_index = state.list_requests
        state.path_requests[path] = path_index = state.path_requests.get(path, 0) + 1
        ctx = FaultContext(path, query, list_index, path_index, state)
        active = [f for f in (fault.activate(ctx) for fault in self.faults) if f is not None]
        return replace(ctx, active=tuple(active))

    async def respond(self, request: web.Request, ctx: FaultContext) -> web.StreamResponse | None:
        """The first response a fault in force answers with, if any."""
        for fault in ctx.active:
            response = await fault.respond(request, ctx)
            if response is not None:
                ctx.mark(fault)
                return response
        return None

    def rewrite_page(self, page: ListPage, ctx: FaultContext) -> ListPage:
        """Applies every page rewrite in force, then records the key sent."""
        for fault in ctx.active:
            rewritten = fault.rewrite_page(page, ctx)
            if rewritten is not page:
                ctx.mark(fault)
                page = rewritten
        ctx.state.next_keys.append(page.next_key)
        return page

    def rewrite_body(self, body: bytes, ctx: FaultContext) -> bytes:
        """Applies every body rewrite in force to a 200 response's body."""
        for fault in ctx.active:
            rewritten = fault.rewrite_body(body, ctx)
            if rewritten is not body:
                ctx.mark(fault)
                body = rewritten
        return body


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} {text!r} must be a finite number >= 0")
    return value


def _spec_fault(kind: str, probability: float, argument: str | None) -> Fault:
    if kind == "quota":
        return QuotaExceeded(probability=probability)
    if kind == "drop":
        return DropConnection(probability=probability)
    if kind == "truncate":
        fraction = 0.5 if argument is None else _number(argument, "fraction")
        return TruncateBody(fraction=fraction, probability=probability)
    if kind == "repeat-key":
        back = 1 if argument is None else _whole(argument, "back")
        return RepeatKey(back=back, probability=probability)
    # The kinds below that take an argument require one: parse() has checked it is there.
    if kind == "slow":
        return Delay(seconds=_number(argument or "", "seconds"), probability=probability)
    if kind == "redirect":
        location = argument or ""
        if not re.fullmatch(r"https?://[^/?#\s]+/?", location):
            raise ValueError(f"redirect target {location!r} is not an origin like http://HOST:PORT")
        return Redirect(location=location, probability=probability)
    status, _, form = kind.partition("-retry-")
    if form:
        seconds = _number(argument or "", "seconds")
        return Status(
            status=int(status),
            retry_after=seconds,
            http_date=form == "date",
            probability=probability,
        )
    return Status(status=int(kind), probability=probability)


def _whole(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a whole number") from None
