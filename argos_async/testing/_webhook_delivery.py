"""How the emulator's webhooks reach a receiver: one aiohttp session and one sender task,
owned by the emulator (opened by its `start`, closed by its `close`), that POST each event's
body in turn, retry, apply the delivery faults, and record every attempt.

A change never waits for a receiver: `WebhookSender.send` queues the change's events and
returns, so the request that made the change (an admin `PATCH`) is answered at once. Events
are queued after the change is applied: a receiver that looks the submission up when its
webhook arrives finds it changed.

Retries: a delivery that gets no 2xx answer (another status, a refused connection, no answer
within `timeout` seconds) is tried again after `backoff` seconds, then twice that, and so on,
`attempts` tries in all; then the sender gives up on it and goes on with the next event.
Redirects are not followed: a 3xx is a failed attempt.

The body's bytes are made in one place, `encode_body` (plain JSON by default), when an event
is queued: a duplicate sends the very same bytes, and a mode that encrypts bodies replaces
that one function.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import aiohttp
import msgspec

from ._http import is_loopback
from ._webhook_faults import FaultKind, WebhookFaults
from ._wire import JSON_CONTENT_TYPE

__all__ = ["EncodeBody", "RecordedWebhook", "WebhookSender", "plain_json", "webhook_target"]

Outcome = Literal["delivered", "failed", "timeout", "error", "dropped", "cancelled"]

EncodeBody = Callable[[Mapping[str, Any]], bytes]
"""Makes a webhook's body bytes from its payload."""

_USER_AGENT: Final = "argos-emulator-webhooks"


def plain_json(payload: Mapping[str, Any]) -> bytes:
    """The payload as compact JSON: what the provider sends without secure transmission."""
    return msgspec.json.encode(payload)


def webhook_target(url: str | None, *, any_host: bool = False) -> str | None:
    """`url` checked: an http(s) URL, on a loopback host unless `any_host` (ValueError)."""
    if url is None:
        return None
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"webhook_url must be an http:// or https:// URL, not {url!r}")
    if not any_host and not is_loopback(parts.hostname):
        raise ValueError(
            f"the emulator only sends webhooks to loopback hosts, not {parts.hostname!r}"
            " (webhook_any_host=True allows others)"
        )
    return url


@dataclass(frozen=True)
class RecordedWebhook:
    """One delivery attempt of a webhook, or an event a fault dropped."""

    trigger: str
    """The payload's `webhook_trigger`, e.g. "approved"."""
    submission_id: str
    """The submission the event is about."""
    event: int
    """The event's number: 1-based, in the order the emulator made its events."""
    attempt: int
    """1-based try of this delivery; 0 for a dropped event."""
    outcome: Outcome
    """"delivered" (a 2xx), "failed" (another status), "timeout" (no answer in time),
    "error" (no connection, or it broke), "dropped" (a fault: never sent), "cancelled" (the
    emulator closed during the attempt)."""
    status: int | None
    """The receiver's status; None without an answer."""
    duplicate: bool
    """True for the second delivery of the same body (a `duplicate` fault)."""
    faults: tuple[FaultKind, ...]
    """The delivery faults that acted on this event, in `KINDS` order ("reorder" only when a
    later event did go out first)."""
    body: bytes
    """The bytes sent (for a dropped event, the bytes it would have sent)."""
    payload: dict[str, Any]
    """The payload `body` was made from."""
    started_at: float
    """`time.monotonic()` when the attempt began."""
    ended_at: float
    """`time.monotonic()` when it ended (answer read, timeout, error)."""
    error: str | None = None
    """For "timeout" and "error", the exception: e.g. "ClientConnectorError: ..."."""


@dataclass
class _Event:
    number: int
    payload: dict[str, Any]
    body: bytes
    faults: list[FaultKind] = field(default_factory=list)


class WebhookSender:
    """Queues webhook events and delivers them from one task; `sent` records every attempt.

    With `url` None it sends nothing and starts no task. Events made while it is not running
    (before `start`, after `close`) are not sent.
    """

    def __init__(
        self,
        url: str | None,
        *,
        faults: WebhookFaults | None = None,
        timeout: float = 5.0,
        attempts: int = 3,
        backoff: float = 0.5,
        any_host: bool = False,
        encode_body: EncodeBody = plain_json,
    ) -> None:
        if not timeout > 0:
            raise ValueError("webhook_timeout must be > 0")
        if attempts < 1:
            raise ValueError("webhook_attempts must be >= 1")
        if not backoff >= 0:
            raise ValueError("webhook_backoff must be >= 0")
        self.url = webhook_target(url, any_host=any_host)
        self.faults = faults
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.encode_body = encode_body
        self.sent: list[RecordedWebhook] = []
        self._made = 0
        self._rng = None if faults is None else faults.new_state()
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._events: deque[_Event] = deque()
        self._pending = 0
        self._flushing = 0
        self._wake = asyncio.Event()
        self._done = asyncio.Event()

    @property
    def running(self) -> bool:
        """Whether events are being delivered (a URL is set and the sender started)."""
        return self._task is not None

    async def start(self) -> None:
        """Opens the session and starts the sender task (nothing without a URL)."""
        if self.url is None or self._task is not None:
            return
        # Made on the loop that runs them: a restarted emulator may be on another one.
        self._wake, self._done = asyncio.Event(), asyncio.Event()
        self._done.set()
        self._session = aiohttp.ClientSession(headers={"User-Agent": _USER_AGENT})
        self._task = asyncio.create_task(self._run(), name="argos-emulator-webhooks")

    async def close(self) -> None:
        """Stops the sender (an attempt in flight is recorded "cancelled"; events still
        queued are not sent) and closes the session."""
        task, self._task = self._task, None
        session, self._session = self._session, None
        try:
            if task is not None:
                task.cancel()
                await asyncio.wait({task})
        finally:
            self._events.clear()
            self._pending = 0
            self._done.set()
            if session is not None:
                await session.close()

    def send(self, payloads: Iterable[dict[str, Any]]) -> None:
        """Queues one event per payload, in order, and returns at once."""
        if self._task is None:
            return
        for payload in payloads:
            self._made += 1
            faults: list[FaultKind] = []
            if self.faults is not None and self._rng is not None:
                faults.extend(self.faults.decide(self._made, self._rng))
            self._events.append(_Event(self._made, payload, self.encode_body(payload), faults))
            self._pending += 1
        if self._pending:
            self._done.clear()
            self._wake.set()

    async def idle(self, timeout: float | None = 30.0) -> None:
        """Returns once every queued event is delivered or given up (a held-back event goes
        out at once); `asyncio.TimeoutError` after `timeout` seconds."""
        if self._task is None:
            return
        self._flushing += 1
        self._wake.set()
        try:
            await asyncio.wait_for(self._done.wait(), timeout)
        finally:
            self._flushing -= 1

    # -- the sender task ------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        held: _Event | None = None
        held_until = 0.0
        hold = 0.0 if self.faults is None else self.faults.hold_seconds
        while True:
            if self._events:
                event = self._events.popleft()
                if "reorder" in event.faults and held is None:
                    held, held_until = event, loop.time() + hold
                    continue
                if "reorder" in event.faults:
                    event.faults.remove("reorder")  # one event is held back at a time
                await self._deliver(event)
                if held is not None and "drop" not in event.faults:
                    # Only an event that went out overtakes the held one: after a dropped one
                    # it waits on, for the next or until its hold ends.
                    earlier, held = held, None
                    await self._deliver(earlier)
                continue
            if held is not None and (self._flushing or loop.time() >= held_until):
                alone, held = held, None
                alone.faults.remove("reorder")  # nothing came to overtake it
                await self._deliver(alone)
                continue
            self._wake.clear()
            if held is None:
                await self._wake.wait()
            else:
                with suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), held_until - loop.time())

    async def _deliver(self, event: _Event) -> None:
        try:
            if "drop" in event.faults:
                now = time.monotonic()
                self._record(event, 0, "dropped", None, False, now, now)
                return
            if "delay" in event.faults and self.faults is not None:
                await asyncio.sleep(self.faults.delay_seconds)
            await self._attempts(event, duplicate=False)
            if "duplicate" in event.faults:
                await self._attempts(event, duplicate=True)
        finally:
            self._pending -= 1
            if self._pending <= 0:
                self._pending = 0
                self._done.set()

    async def _attempts(self, event: _Event, *, duplicate: bool) -> None:
        session = self._session
        url = self.url
        assert session is not None  # running
        assert url is not None
        headers = {"Content-Type": JSON_CONTENT_TYPE}
        for attempt in range(1, self.attempts + 1):
            started = time.monotonic()
            status: int | None = None
            error: str | None = None
            outcome: Outcome
            try:
                async with session.post(
                    url,
                    data=event.body,
                    headers=headers,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                ) as response:
                    await response.read()
                    status = response.status
                outcome = "delivered" if 200 <= status < 300 else "failed"
            except asyncio.TimeoutError as exc:
                outcome, error = "timeout", _describe(exc)
            except asyncio.CancelledError:
                self._record(event, attempt, "cancelled", None, duplicate, started)
                raise
            except Exception as exc:
                # Whatever breaks one delivery (no connection, a reset, a bad answer) must not
                # end the sender: the next event still goes out.
                outcome, error = "error", _describe(exc)
            self._record(event, attempt, outcome, status, duplicate, started, error=error)
            if outcome == "delivered":
                return
            if attempt < self.attempts:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))

    def _record(
        self,
        event: _Event,
        attempt: int,
        outcome: Outcome,
        status: int | None,
        duplicate: bool,
        started: float,
        ended: float | None = None,
        *,
        error: str | None = None,
    ) -> None:
        self.sent.append(
            RecordedWebhook(
                trigger=str(event.payload.get("webhook_trigger")),
                submission_id=str(event.payload.get("submission_id")),
                event=event.number,
                attempt=attempt,
                outcome=outcome,
                status=status,
                duplicate=duplicate,
                faults=tuple(event.faults),
                body=event.body,
                payload=event.payload,
                started_at=started,
                ended_at=time.monotonic() if ended is None else ended,
                error=error,
            )
        )


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return type(exc).__name__ + (f": {text}" if text else "")
