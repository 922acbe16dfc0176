"""``WebhookInbox``: webhooks in as hints, submission ids out, a batch at a time, to a
function that makes them true (usually ``fetch_truth``: a lookup through the API).

Why this shape. Argos signs nothing and may lose, repeat or reorder deliveries, so a webhook
only says "look at this submission again". The endpoint must answer at once (a slow answer
makes the sender retry, and so repeat), so ``accept`` is synchronous and does no I/O: it
parses, drops a delivery seen before, and adds the submission id to a *pending set*. One
drain task takes up to ``batch_size`` pending ids at a time and awaits ``deliver(ids)``; ids
are a set, so a burst of a thousand webhooks about ten submissions is ten lookups, and one
deliver at a time means a burst never becomes more concurrent calls than deliver makes itself.

Every bound says what happens at it instead of dropping silently: a full pending set raises
``InboxFullError`` (the endpoint answers 503, the sender retries later); a failed deliver puts
its ids back, each with a time before which it is not tried again (its own backoff), while
the drain goes on with the ids that are ready: one submission the API keeps refusing does not
hold up the others. An id that failed ``max_attempts`` deliveries in a row is given up with an
ERROR record (the scheduled reconciliation, which every webhook consumer needs anyway, catches
it); ids still pending at exit are reported in ``pending``.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime
from types import TracebackType
from typing import Final

import anyio
import backoff
import msgspec

from .._protocol import checks
from .._protocol.masking import mask_id, mask_text
from .._protocol.secure import SecureChannel
from .._tasks import stop
from ..errors import DeliveryError, InboxFullError
from ._events import (
    ApprovedWebhook,
    InjectionWebhook,
    RejectedWebhook,
    SubmitWebhook,
    UpdatedWebhook,
    WebhookEvent,
    WebhookKycResult,
    _as_bytes,
    _Misfit,
    _parse_sealed,
)

logger = logging.getLogger("argos_async")

Deliver = Callable[[list[str]], Awaitable[None]]
"""What an inbox hands its batches to: ``async def deliver(submission_ids: list[str])``."""

MAX_ID_LENGTH: Final = 256
"""Longer "submission ids" are not fetched: no Argos id comes near it, and a forged body
could make each one a request."""

_SHOWN_IDS: Final = 5


class WebhookInbox:
    """Takes webhooks as hints and hands their submission ids, in batches, to ``deliver``.

    ::

        async with ArgosClient() as argos, WebhookInbox(fetch_truth(argos, upsert)) as inbox:
            ...  # in the endpoint: inbox.accept(await request.body()), then answer 202

    - ``deliver(ids)``: makes ``ids`` true (see ``fetch_truth``). One call at a time; when it
      raises, its ids are tried again after a backoff (a ``DeliveryError`` names the ones
      that failed: only those go back) while the other ids go on at once.
    - ``batch_size``: ids per ``deliver`` call at most.
    - ``max_pending``: distinct ids waiting at most; one more raises ``InboxFullError``. Ids
      put back after a failure may exceed it by up to a batch.
    - ``remember``: how many deliveries are kept to recognise a repeated one (the oldest go
      first; about 150 bytes each, so about 15 MB at the default; no personal data). 0: none.
    - ``max_attempts``: failed deliveries in a row after which an id is given up (logged at
      ERROR, counted in ``abandoned``).
    - ``backoff_base``, ``backoff_max``: how long an id that failed waits before it is tried
      again (backoff's exponential delay with full jitter, growing with the id's failures in
      a row, reset by a delivery of it that succeeds). Ids that fail in one call with as many
      failures in a row share one wait, so they come back as one batch.
    - ``close_timeout``: seconds the exit spends delivering what is pending.
    - ``sleep``, ``clock``: how the inbox waits for a retry (``asyncio.sleep``) and reads the
      time its retries are due on (``time.monotonic``). Tests pass a fake pair, a sleep that
      moves the fake clock on; a sleep that returns in full counts as the time having passed.
    - ``key``: for a project with secure transmission on, the key its webhooks are encrypted
      with (the API key, or the project's secret key): bodies are opened with it, as
      ``parse(body, key=key)`` does. Kept out of every repr and message. Without
      ``cryptography`` (the extra ``secure``), the inbox is not made: ``ImportError``.

    Counters, as attributes: ``accepted`` (events that added an id or found it pending),
    ``duplicates`` (deliveries seen before), ``ignored`` (events without a usable submission
    id), ``lenient`` (bodies taken by their header alone, see ``accept``, also counted in one
    of those three), ``delivered`` (ids handed to ``deliver`` that it made true),
    ``failures`` (deliver calls that failed, whole or in part), ``abandoned`` (ids given up).

    Everything runs on the event loop that entered the inbox: call ``accept`` from it (an
    ``async def`` endpoint), not from a worker thread.
    """

    def __init__(
        self,
        deliver: Deliver,
        *,
        batch_size: int = 100,
        max_pending: int = 10_000,
        remember: int = 100_000,
        max_attempts: int = 8,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        close_timeout: float = 10.0,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        key: str | None = None,
    ) -> None:
        for name, function in (("deliver", deliver), ("sleep", sleep), ("clock", clock)):
            if not callable(function):
                raise TypeError(
                    f"{name} must be {'a callable' if name == 'clock' else 'an async callable'}, "
                    f"got {type(function).__name__}"
                )
        self._deliver = deliver
        self._batch_size = checks.check_int("batch_size", batch_size, minimum=1)
        self._max_pending = checks.check_int("max_pending", max_pending, minimum=1)
        self._remember = checks.check_int("remember", remember, minimum=0)
        self._max_attempts = checks.check_int("max_attempts", max_attempts, minimum=1)
        self._backoff_base = checks.check_seconds("backoff_base", backoff_base)
        self._backoff_max = checks.check_seconds("backoff_max", backoff_max)
        self._close_timeout = checks.check_seconds("close_timeout", close_timeout)
        self._sleep = sleep
        self._clock = clock
        key = checks.check_optional_text("key", key)
        # Made once, here: a missing `cryptography` fails at startup, not once per webhook.
        self._channel = None if key is None else SecureChannel(key)
        self._pending: dict[str, None] = {}  # a set that keeps arrival order
        self._delivering: tuple[str, ...] = ()
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._attempts: dict[str, int] = {}  # failed deliveries in a row
        self._due: dict[str, float] = {}  # pending ids that failed: not tried before this time
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.accepted = 0
        self.lenient = 0
        self.duplicates = 0
        self.ignored = 0
        self.delivered = 0
        self.failures = 0
        self.abandoned = 0

    @property
    def pending(self) -> tuple[str, ...]:
        """The ids accepted and not delivered yet (the batch in delivery first), in order,
        those waiting for a retry among them. After the exit: what was left undelivered."""
        waiting = tuple(self._pending)
        return tuple(s for s in self._delivering if s not in self._pending) + waiting

    def accept(self, event_or_body: WebhookEvent | bytes | bytearray | memoryview | str) -> bool:
        """Takes one webhook (its body, or an event ``parse`` made); True when it adds its
        submission to the pending set (or finds it there), False for a delivery seen before
        or an event without a usable ``submission_id``. Never waits, never does I/O.

        A delivery is the same as one seen before when its submission, trigger and time are:
        the time the event states (``updated``: ``update_time``; ``submit``, ``approved``,
        ``rejected``: ``kyc_result.updated_at``, else ``kyc_result_at``, else
        ``pending_at``; ``injection``: ``action.created_at``), or, for events that state
        none (``created``, ``retry``, ``aml``, ``aml_monitor``, ``delete``, unknown ones) or
        a placeholder, the body's bytes.

        An event about a submission whose delivery is under way adds it again: the lookup
        may have been answered before the change it reports. One about a submission waiting
        for its retry leaves it waiting.

        A body ``parse`` refuses only for a field of another type than documented (``cf`` as
        a string, say) is still a hint: its ``webhook_trigger`` and ``submission_id`` are
        taken as they are, the repeat check uses its bytes, and it counts in ``lenient`` as
        well (logged at DEBUG, without its data).

        Raises ``WebhookDecodeError`` for a body ``parse`` refuses otherwise (answer 400): not
        JSON, not an object, no string ``webhook_trigger``; with a ``key``, a body that does
        not decrypt with it too,
        ``InboxFullError`` when ``max_pending`` ids already wait (answer 503: nothing was
        kept, a later delivery of the same event is accepted), ``RuntimeError`` once the
        inbox has closed or when called from another thread than the inbox's loop.
        """
        if self._closed:
            raise RuntimeError("the webhook inbox is closed")
        self._check_thread()
        if isinstance(event_or_body, WebhookEvent):
            event: WebhookEvent | _Misfit = event_or_body
        else:
            event = _parse_sealed(_as_bytes(event_or_body), self._channel)
        lenient = isinstance(event, _Misfit)
        if isinstance(event, _Misfit):
            # The trigger is a known one and the message names a path and a type, no value.
            logger.debug(
                "webhook inbox: %s webhook taken by its header: %s", event.trigger, event.error
            )
        sid = event.submission_id
        if not _usable(sid):
            self.ignored += 1
            self.lenient += lenient
            return False
        assert isinstance(sid, str)
        seen = _delivery_key(event, sid)
        if seen in self._seen:
            self._seen.move_to_end(seen)
            self.duplicates += 1
            self.lenient += lenient
            return False
        if sid not in self._pending:
            if len(self._pending) >= self._max_pending:
                raise InboxFullError(self._max_pending)
            self._pending[sid] = None
            self._idle.clear()
            self._wake.set()
        if self._remember:
            self._seen[seen] = None
            if len(self._seen) > self._remember:
                self._seen.popitem(last=False)
        self.accepted += 1
        self.lenient += lenient
        return True

    async def join(self) -> None:
        """Waits until no id is pending or in delivery (ids given up count as done). Ids
        waiting for a retry are pending: join waits for them too, at most until each is
        delivered or given up (at worst about ``max_attempts`` waits of ``backoff_max``).

        Raises ``RuntimeError`` when the inbox is not running, and what stopped its drain
        task if that ever failed (a bug: deliver's own errors are retried)."""
        task = self._task
        if task is None or self._closed:
            raise RuntimeError("the webhook inbox is not running: use `async with`")
        idle = asyncio.ensure_future(self._idle.wait())
        try:
            await asyncio.wait({idle, task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await stop(idle)
        if task.done():
            task.result()

    async def __aenter__(self) -> WebhookInbox:
        if self._task is not None or self._closed:
            raise RuntimeError("a webhook inbox runs once")
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._drain(), name="argos_async webhook inbox")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task = self._task
        assert task is not None
        try:
            # Cancelled (a shutdown that cannot wait): no flush, the ids stay in `pending`.
            if exc_type is None or not issubclass(exc_type, asyncio.CancelledError):
                with anyio.move_on_after(self._close_timeout):
                    await self.join()
        finally:
            self._closed = True
            await stop(task)
            left = self.pending
            if left:
                logger.warning(
                    "webhook inbox closed with %d submissions not delivered (%s): the "
                    "scheduled reconciliation will find their changes",
                    len(left),
                    _shown(left),
                )

    def _check_thread(self) -> None:
        if self._loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not self._loop:
            raise RuntimeError("WebhookInbox.accept must be called on the inbox's event loop")

    async def _drain(self) -> None:
        slept_until: float | None = None
        while True:
            self._wake.clear()  # set again by an id that comes from now on
            now = self._clock()
            if slept_until is not None:
                # A sleep that returned in full: its time has passed, whatever the clock
                # says (a fake sleep, or a loop that wakes a little early), so no spinning.
                now, slept_until = max(now, slept_until), None
            batch = self._take(now)
            if batch:
                await self._deliver_batch(batch)
            elif not self._pending:
                self._idle.set()
                await self._wake.wait()
            else:  # only ids waiting for their retry: until the first is due, or a new id
                due = min(self._due.values())
                if await self._pause(due - now):
                    slept_until = due

    async def _pause(self, seconds: float) -> bool:
        """Waits ``seconds``, or less if a new id comes; True when the time has passed."""
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            done, _ = await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await stop(woken)
            await stop(sleeper)
        if sleeper in done:
            sleeper.result()  # a sleep that failed is a bug: it ends the drain, join says so
            return True
        return False

    async def _deliver_batch(self, batch: tuple[str, ...]) -> None:
        try:
            await self._deliver(list(batch))
        except Exception as exc:  # deliver's failure: retried, never the drain's end
            failed = _failed_ids(batch, exc)
            reason = _reason(exc, batch)
        else:
            failed, reason = (), ""
        self._delivering = ()
        self._settle(batch, failed)
        if failed:
            self.failures += 1
            self._put_back(failed, reason)

    def _take(self, now: float) -> tuple[str, ...]:
        """Up to a batch of the pending ids that are due, in order."""
        due = self._due
        ready = (s for s in self._pending if s not in due or due[s] <= now)
        batch = tuple(itertools.islice(ready, self._batch_size))
        for sid in batch:
            del self._pending[sid]
            due.pop(sid, None)
        self._delivering = batch
        return batch

    def _settle(self, batch: tuple[str, ...], failed: tuple[str, ...]) -> None:
        failing = set(failed)
        for sid in batch:
            if sid not in failing:
                self._attempts.pop(sid, None)
        self.delivered += len(batch) - len(failing)

    def _put_back(self, failed: tuple[str, ...], reason: str) -> None:
        now = self._clock()
        retry: list[str] = []
        given_up: list[str] = []
        # One draw per count of failures: ids that failed together come back as one batch.
        waits: dict[int, float] = {}
        for sid in failed:
            attempts = self._attempts.get(sid, 0) + 1
            if attempts >= self._max_attempts:
                self._attempts.pop(sid, None)
                self._due.pop(sid, None)
                given_up.append(sid)
                continue
            self._attempts[sid] = attempts
            if attempts not in waits:
                waits[attempts] = self._delay(attempts)
            self._due[sid] = now + waits[attempts]
            retry.append(sid)
        logger.warning(
            "webhook inbox: %d submissions not delivered (%s): %s%s",
            len(failed),
            _shown(failed),
            reason,
            _retry_text(list(waits.values())),
        )
        if given_up:
            self.abandoned += len(given_up)
            logger.error(
                "webhook inbox: gave up %d submissions after %d failed deliveries (%s): the "
                "scheduled reconciliation must find their changes",
                len(given_up),
                self._max_attempts,
                _shown(given_up),
            )
        # Behind the ids that failed before them, ahead of those that came since: once due,
        # each keeps its turn.
        retrying = set(retry)
        again = {s: None for s in self._pending if s in self._due and s not in retrying}
        again.update(dict.fromkeys(s for s in retry if s not in self._pending))
        again.update(self._pending)
        self._pending = again

    def _delay(self, failures: int) -> float:
        """The wait after an id's ``failures``-th failed delivery in a row."""
        delays = backoff.expo(base=2, factor=self._backoff_base, max_value=self._backoff_max)
        next(delays)  # backoff's generators start with a bare yield
        delay: float = next(itertools.islice(delays, failures - 1, None))
        return backoff.full_jitter(delay)


def _usable(sid: object) -> bool:
    return isinstance(sid, str) and bool(sid.strip()) and len(sid) <= MAX_ID_LENGTH


def _kyc_time(kyc: WebhookKycResult | None) -> datetime | None:
    if kyc is None:
        return None
    return kyc.updated_at or kyc.kyc_result_at or kyc.pending_at


def _event_time(event: WebhookEvent) -> datetime | None:
    """The time the event states it happened at, for the triggers that state one."""
    if isinstance(event, UpdatedWebhook):
        return event.update_time
    if isinstance(event, (SubmitWebhook, ApprovedWebhook, RejectedWebhook)):
        return _kyc_time(event.kyc_result)
    if isinstance(event, InjectionWebhook):
        return None if event.action is None else event.action.created_at
    return None


def _delivery_key(event: WebhookEvent | _Misfit, sid: str) -> bytes:
    """16 bytes that are equal for two deliveries of one event (see ``accept``)."""
    key = hashlib.blake2b(digest_size=16)
    key.update(sid.encode(errors="surrogatepass"))
    key.update(b"\x00" + event.trigger.encode(errors="surrogatepass") + b"\x00")
    if isinstance(event, _Misfit):
        key.update(b"body:" + event.raw)
        return key.digest()
    moment = _event_time(event)
    if moment is not None:
        key.update(b"at:" + moment.isoformat().encode())
    else:
        # An event built by hand has no body: its fields stand in for it.
        key.update(b"body:" + (event.raw or msgspec.json.encode(event)))
    return key.digest()


def _retry_text(waits: list[float]) -> str:
    if not waits:
        return ""
    low, high = min(waits), max(waits)
    if low == high:
        return f"; trying again in {low:.2f} s"
    return f"; trying again in {low:.2f} to {high:.2f} s"


def _failed_ids(batch: tuple[str, ...], exc: Exception) -> tuple[str, ...]:
    if isinstance(exc, DeliveryError):
        named = set(exc.submission_ids)
        return tuple(s for s in batch if s in named)
    return batch


def _reason(exc: Exception, batch: tuple[str, ...]) -> str:
    return f"{type(exc).__name__}: {mask_text(str(exc), batch)}"


def _shown(ids: tuple[str, ...] | list[str]) -> str:
    shown = ", ".join(mask_id(s) for s in ids[:_SHOWN_IDS])
    return shown + (", ..." if len(ids) > _SHOWN_IDS else "")
