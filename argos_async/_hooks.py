"""What a call shows of itself: the events of its attempts, the user's event hooks, the internal
observers (``argos_async.otel``), and the fields of the library's log records.

:class:`CallTrace` is the one place where events are made. ``ArgosClient._lookup`` makes one per
call, and only when someone listens (event hooks on the view, or an observer on the client):
with nobody listening no trace exists and the retry loop checks ``trace is not None`` and
nothing more. The retry loop (``Retrier.call``) feeds it as the call goes: an attempt sent, its
outcome, the decision to retry and the wait, a pause at the client's gate, the end.

Everything a trace hands out is fit to be recorded: query parameters are masked (emails and
user ids), the key is a header and never reaches this module.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final, Protocol, Union

import msgspec

from ._protocol.masking import masked_params
from ._protocol.wire import APPLICANT_PATH, REQUEST_ID_HEADER
from .errors import APIError, APIStatusError

logger = logging.getLogger("argos_async")

METHOD: Final = "GET"


# ---------------------------------------------------------------------------------------------
# The events.


class RequestEvent(msgspec.Struct, frozen=True):
    """An attempt is about to be sent (the ``"request"`` hook)."""

    operation: str
    """The logical call: ``"get_submission"``, ``"get_applicant_submissions"`` or
    ``"list_page"`` (one page of a listing)."""
    method: str
    """The HTTP method (always ``"GET"``)."""
    path: str
    """The request path, such as ``"/v3/submission"`` (no host, no query)."""
    params: Mapping[str, str]
    """The query parameters, emails and user ids masked (read-only)."""
    attempt: int
    """1 for the first attempt of the call, 2 for its first retry, and so on."""


class ResponseEvent(msgspec.Struct, frozen=True):
    """An attempt has ended, with an answer or without one (the ``"response"`` hook)."""

    operation: str
    """The logical call, as in :class:`RequestEvent`."""
    method: str
    """The HTTP method (always ``"GET"``)."""
    path: str
    """The request path, such as ``"/v3/submission"``."""
    params: Mapping[str, str]
    """The query parameters, emails and user ids masked (read-only)."""
    attempt: int
    """The attempt's number (1-based)."""
    status: int | None
    """The HTTP status; ``None`` when no answer came (connection error, timeout)."""
    elapsed: float
    """Seconds from sending to the outcome (for a 200, the body read and checked)."""
    request_id: str | None
    """The server's request id (``x-amzn-RequestId``), when it sent one."""
    error: Exception | None
    """What this attempt failed with (an ``APIError``; its message is masked), or ``None``."""


class RetryEvent(msgspec.Struct, frozen=True):
    """A failed attempt will be sent again after ``wait`` seconds (the ``"retry"`` hook)."""

    operation: str
    """The logical call, as in :class:`RequestEvent`."""
    method: str
    """The HTTP method (always ``"GET"``)."""
    path: str
    """The request path, such as ``"/v3/submission"``."""
    params: Mapping[str, str]
    """The query parameters, emails and user ids masked (read-only)."""
    attempt: int
    """The number of the attempt that failed; the next one is ``attempt + 1``."""
    wait: float
    """Seconds the call waits before the next attempt."""
    reason: str
    """Why it is retried: the failure's class name (``"RateLimitError"``, ``"ServerError"``,
    ``"APITimeoutError"``, ``"APIConnectionError"``, ``"ResponseDecodeError"``)."""
    retry_after: float | None
    """The wait the server asked for (``Retry-After``), which ``wait`` then is exactly;
    ``None`` when ``wait`` is the client's own backoff."""
    status: int | None
    """The failed attempt's HTTP status, if an answer came."""
    request_id: str | None
    """The failed attempt's request id, if the server sent one."""
    error: Exception
    """The failure (an ``APIError``; its message is masked)."""


Event = Union[RequestEvent, ResponseEvent, RetryEvent]  # noqa: UP007 (a runtime alias on 3.10)

EventHook = Callable[[Any], object]
"""A hook: called with the event; a coroutine function (or anything that returns an awaitable)
is awaited."""

HOOK_KINDS: Final = ("request", "response", "retry")


# ---------------------------------------------------------------------------------------------
# The user's hooks.


class Hooks:
    """The event hooks of a client or view, validated once.

    A hook that raises is logged (at WARNING, with its traceback, the first time; at DEBUG
    after that, so that a broken hook cannot flood the log) and the call goes on.
    """

    __slots__ = ("_failed", "request", "response", "retry")

    def __init__(
        self,
        request: tuple[EventHook, ...],
        response: tuple[EventHook, ...],
        retry: tuple[EventHook, ...],
    ) -> None:
        self.request = request
        self.response = response
        self.retry = retry
        self._failed: set[int] = set()

    @classmethod
    def build(cls, event_hooks: object) -> Hooks | None:
        """Checks ``event_hooks`` (``{"request": [...], "response": [...], "retry": [...]}``);
        ``None`` when it holds no hook at all."""
        if event_hooks is None:
            return None
        if not isinstance(event_hooks, Mapping):
            raise TypeError(
                "event_hooks must be a mapping of event kind to a list of callables, "
                f"got {type(event_hooks).__name__}"
            )
        kinds: dict[str, tuple[EventHook, ...]] = dict.fromkeys(HOOK_KINDS, ())
        for kind, hooks in event_hooks.items():
            if kind not in kinds:
                raise ValueError(
                    f"event_hooks has an unknown event kind {kind!r}; the kinds are "
                    + ", ".join(repr(k) for k in HOOK_KINDS)
                )
            plain = isinstance(hooks, (str, bytes)) or not isinstance(hooks, Iterable)
            if callable(hooks) or plain:
                raise TypeError(f"event_hooks[{kind!r}] must be a list of callables")
            checked = tuple(hooks)
            for index, hook in enumerate(checked):
                if not callable(hook):
                    raise TypeError(
                        f"event_hooks[{kind!r}][{index}] must be callable, "
                        f"got {type(hook).__name__}"
                    )
            kinds[kind] = checked
        if not any(kinds.values()):
            return None
        return cls(kinds["request"], kinds["response"], kinds["retry"])

    def as_dict(self) -> dict[str, list[EventHook]]:
        """The hooks as ``event_hooks=`` takes them."""
        return {"request": [*self.request], "response": [*self.response], "retry": [*self.retry]}

    async def fire(self, kind: str, hooks: Sequence[EventHook], event: Event) -> None:
        """Calls each hook with ``event``, awaiting what returns an awaitable; a hook's
        exception is logged, never raised (a cancellation is, of course)."""
        for hook in hooks:
            try:
                result = hook(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self._report(kind, hook, event)

    def _report(self, kind: str, hook: EventHook, event: Event) -> None:
        first = id(hook) not in self._failed
        self._failed.add(id(hook))
        name = getattr(hook, "__qualname__", None) or type(hook).__qualname__
        logger.log(
            logging.WARNING if first else logging.DEBUG,
            "the %s event hook %s raised; the call goes on%s",
            kind,
            name,
            " (its later failures are logged at DEBUG)" if first else "",
            exc_info=first,
            extra=event_fields(event),
        )


# ---------------------------------------------------------------------------------------------
# The internal seam: ``argos_async.otel`` is an observer.


class CallInfo(Protocol):
    """What an observer learns of a call when it starts."""

    operation: str
    method: str
    path: str
    params: Mapping[str, str]


class CallObserver(Protocol):
    """An observer's view of one call. Its methods are called in the call's own task, in
    order: ``request``, ``response``, maybe ``retry``, again; ``paused`` whenever the call
    waits at the client's pause gate; ``end`` exactly once, last."""

    def request(self, event: RequestEvent) -> None:
        """An attempt is about to be sent."""

    def response(self, event: ResponseEvent) -> None:
        """The attempt ended."""

    def retry(self, event: RetryEvent) -> None:
        """The attempt will be sent again after ``event.wait``."""

    def paused(self, seconds: float) -> None:
        """The call waited ``seconds`` at the pause gate a server's ``Retry-After`` closed."""

    def end(self, error: BaseException | None, attempts: int) -> None:
        """The call is over: ``error`` is what it raised (``None``: it succeeded)."""


class Observer(Protocol):
    """Something that watches every call of a client (and of its views)."""

    def start(self, call: CallInfo) -> CallObserver:
        """A call starts (nothing sent yet); returns what watches this call."""
        ...

    def items(self, count: int) -> None:
        """A listing delivered ``count`` items (a page)."""


# ---------------------------------------------------------------------------------------------
# One call's trace.


def operation_of(path: str, params: Mapping[str, str]) -> str:
    """The logical call a request belongs to."""
    if path == APPLICANT_PATH:
        return "get_applicant_submissions"
    return "get_submission" if "submission_id" in params else "list_page"


class CallTrace:
    """One call's events, made here and handed to its hooks and observers."""

    __slots__ = (
        "_hooks",
        "_watchers",
        "method",
        "operation",
        "params",
        "path",
        "request_id",
        "status",
    )

    def __init__(
        self,
        hooks: Hooks | None,
        observers: Sequence[Observer],
        path: str,
        params: Mapping[str, str],
    ) -> None:
        self._hooks = hooks
        self.method = METHOD
        self.path = path
        self.params: Mapping[str, str] = MappingProxyType(masked_params(params))
        self.operation = operation_of(path, params)
        self.status: int | None = None
        self.request_id: str | None = None
        watchers = []
        for observer in observers:
            try:
                watchers.append(observer.start(self))
            except Exception:
                _observer_failed("start", self)
        self._watchers: tuple[CallObserver, ...] = tuple(watchers)

    def received(self, status: int, headers: Mapping[str, str]) -> None:
        """The attempt's answer arrived (status line and headers)."""
        self.status = status
        self.request_id = headers.get(REQUEST_ID_HEADER)

    async def request(self, attempt: int) -> None:
        """Attempt ``attempt`` is about to be sent."""
        self.status = self.request_id = None
        event = RequestEvent(self.operation, self.method, self.path, self.params, attempt)
        for watcher in self._watchers:
            try:
                watcher.request(event)
            except Exception:
                _observer_failed("request", self)
        if self._hooks is not None and self._hooks.request:
            await self._hooks.fire("request", self._hooks.request, event)

    async def response(self, attempt: int, elapsed: float, error: APIError | None) -> None:
        """Attempt ``attempt`` ended after ``elapsed`` seconds, failing with ``error``."""
        status, request_id = self._outcome(error)
        event = ResponseEvent(
            self.operation,
            self.method,
            self.path,
            self.params,
            attempt,
            status,
            elapsed,
            request_id,
            error,
        )
        for watcher in self._watchers:
            try:
                watcher.response(event)
            except Exception:
                _observer_failed("response", self)
        if self._hooks is not None and self._hooks.response:
            await self._hooks.fire("response", self._hooks.response, event)

    async def retry(
        self, attempt: int, wait: float, error: APIError, retry_after: float | None
    ) -> None:
        """Attempt ``attempt`` failed with ``error``; the next one follows after ``wait``."""
        status, request_id = self._outcome(error)
        event = RetryEvent(
            self.operation,
            self.method,
            self.path,
            self.params,
            attempt,
            wait,
            type(error).__name__,
            retry_after,
            status,
            request_id,
            error,
        )
        for watcher in self._watchers:
            try:
                watcher.retry(event)
            except Exception:
                _observer_failed("retry", self)
        if self._hooks is not None and self._hooks.retry:
            await self._hooks.fire("retry", self._hooks.retry, event)

    def paused(self, seconds: float) -> None:
        """The call waited ``seconds`` at the client's pause gate."""
        for watcher in self._watchers:
            try:
                watcher.paused(seconds)
            except Exception:
                _observer_failed("paused", self)

    def end(self, error: BaseException | None, attempts: int) -> None:
        """The call is over."""
        for watcher in self._watchers:
            try:
                watcher.end(error, attempts)
            except Exception:
                _observer_failed("end", self)

    def _outcome(self, error: APIError | None) -> tuple[int | None, str | None]:
        if isinstance(error, APIStatusError):
            return error.status, error.request_id or self.request_id
        return self.status, self.request_id


def _observer_failed(step: str, trace: CallTrace) -> None:
    # An observer is ours (argos_async.otel); a bug in it must not break a call either.
    logger.warning(
        "an observer failed at %s; the call goes on",
        step,
        exc_info=True,
        extra=log_fields(trace.path, trace.params),
    )


# ---------------------------------------------------------------------------------------------
# Log records: every record of the ``argos_async`` logger carries these fields.

LOG_FIELDS: Final = (
    "argos_request_id",
    "argos_attempt",
    "argos_status",
    "argos_elapsed_ms",
    "argos_path",
    "argos_params",
)
"""The ``extra`` fields of every log record of the ``argos_async`` logger (``None`` when a
record has no value for one)."""


def log_fields(
    path: str | None = None,
    params: Mapping[str, str] | None = None,
    *,
    attempt: int | None = None,
    status: int | None = None,
    elapsed: float | None = None,
    request_id: str | None = None,
    masked: bool = True,
) -> dict[str, Any]:
    """The ``extra=`` of a log record: always every name of :data:`LOG_FIELDS`. ``params``
    are masked here unless ``masked`` says they already are."""
    if params is not None and not masked:
        params = masked_params(params)
    return {
        "argos_request_id": request_id,
        "argos_attempt": attempt,
        "argos_status": status,
        "argos_elapsed_ms": None if elapsed is None else round(elapsed * 1000, 3),
        "argos_path": path,
        "argos_params": None if params is None else dict(params),
    }


def event_fields(event: Event) -> dict[str, Any]:
    """:func:`log_fields` of an event."""
    return log_fields(
        event.path,
        event.params,
        attempt=event.attempt,
        status=getattr(event, "status", None),
        elapsed=getattr(event, "elapsed", None),
        request_id=getattr(event, "request_id", None),
    )


def error_fields(
    path: str | None,
    params: Mapping[str, str] | None,
    error: APIError,
    *,
    attempt: int | None,
    elapsed: float | None,
) -> dict[str, Any]:
    """:func:`log_fields` of a failed attempt (``params`` not masked yet)."""
    status = request_id = None
    if isinstance(error, APIStatusError):
        status, request_id = error.status, error.request_id
    return log_fields(
        path,
        params,
        attempt=attempt,
        status=status,
        elapsed=elapsed,
        request_id=request_id,
        masked=False,
    )
