"""``ArgosClient``: the public face. Validates arguments once, then hands work to the layers
below through two internal paths, one for lookups (:meth:`ArgosClient._lookup`) and one for
listings (:meth:`ArgosClient._pages`), which take already validated queries and options."""

from __future__ import annotations

import enum
import logging
import os
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from contextlib import aclosing
from datetime import date, datetime, timezone
from types import TracebackType
from typing import Final, TypeVar

import aiohttp
import msgspec

from ._backfill import Backfill
from ._checkpoint import Checkpoint
from ._fanout import Batch, Keys
from ._hooks import CallTrace, EventHook, Hooks, Observer, log_fields
from ._options import DEFAULT_OPTIONS, RequestOptions
from ._pagination import Fetched, paginate
from ._plan import BackfillPlan, Window, plan_backfill
from ._protocol import checks
from ._protocol.decoding import (
    decode_applicants,
    decode_page,
    decode_single,
    raw_page,
    raw_single,
    scan_page,
)
from ._protocol.query import START, ListQuery, Position, decode_cursor
from ._protocol.secure import SecureChannel, SecureTransmission, open_channel
from ._protocol.status import error_from_response, header
from ._protocol.wire import (
    APPLICANT_PATH,
    DEFAULT_BASE_URL,
    MAX_PAGE_SIZE,
    REQUEST_ID_HEADER,
    SUBMISSION_PATH,
    DateFormat,
    RequestTypeName,
)
from ._retry import Retrier, RetryBudget
from ._stream import Stream
from ._transport import Transport
from .errors import APIStatusError, CheckpointError
from .models import ApplicantSubmission, Page, PageKey, RawPage, RequestType, Submission

DateArg = date | str | None
RequestTypeArg = RequestTypeName | RequestType | None
T = TypeVar("T")
V = TypeVar("V")
P = TypeVar("P", Page, RawPage)

_BuildPage = Callable[[Fetched, str, int, int, "Position | None"], P]
"""Makes the caller's page of a fetched one (the fingerprint, its items ``first`` to
``first + count``, where its cursor resumes): Structs or a ``RawPage``."""


class _Unset(enum.Enum):
    UNSET = enum.auto()


UNSET: Final = _Unset.UNSET
"""``with_options``' default: keep the client's value (``None`` is a value for ``deadline``)."""


class _Shared(msgspec.Struct, frozen=True):
    """What a client and all its ``with_options`` views share."""

    transport: Transport
    retrier: Retrier
    date_format: DateFormat
    observers: list[Observer] = msgspec.field(default_factory=list)
    """What watches every call of the client and its views (``argos_async.otel``)."""
    secure: SecureChannel | None = None
    """The cipher of secure transmission, when it is on."""


class ArgosClient:
    """An async session with the Argos KYC REST API v3 over one aiohttp connection pool.

    Use it as an async context manager (or call :meth:`aclose`)::

        async with ArgosClient(api_key="...") as argos:
            async for sub in argos.iter_submissions(start_date=date(2024, 1, 1)):
                ...

    ``api_key`` and ``base_url`` default to the ``ARGOS_API_KEY`` and ``ARGOS_BASE_URL``
    environment variables; ``base_url`` then to the API's current host.

    Failures that may pass (500/502/503/504, 429 "Too Many Requests", connection errors, bodies
    cut off, timeouts) are retried up to ``max_retries`` times with exponential backoff and full
    jitter starting at ``backoff_base`` seconds (at most ``backoff_max``). A ``Retry-After``
    on a 429 or a 503 is honoured exactly and pauses every request of the client (for at most
    ``max_retry_after`` seconds); a call asked to wait longer fails at once. ``timeout`` bounds
    each attempt, ``deadline`` (if set) a whole call with all its attempts and waits (in a
    listing, each page's request). ``max_requests_per_second`` spaces out the client's
    requests. ``retry_budget`` is a pool of retry tokens shared by all calls (each retry costs
    5, a retry after a timeout 10, each success pays back), so that an outage does not multiply
    a bulk job's load; ``None`` removes it. Bodies above ``max_response_bytes`` fail with
    ``ResponseTooLargeError``.

    ``prefetch`` (0 or 1) is how many pages a listing reads ahead while the caller works on
    the current one. ``date_format`` is how dates are sent: the current documentation's
    ``"YYYY-MM-DD"`` or the original's ``"YYYYMMDD"``.

    ``event_hooks`` (``{"request": [...], "response": [...], "retry": [...]}``) are called
    with a ``RequestEvent`` before each attempt, a ``ResponseEvent`` after it and a
    ``RetryEvent`` before each wait for a retry; plain functions and coroutine functions
    both work, and a hook that raises is logged, never raised. ``trace_configs`` are
    ``aiohttp.TraceConfig`` objects for the client's session, as aiohttp takes them.

    ``secure_transmission`` speaks the provider's encrypted mode, for a project that has it
    switched on: ``True`` keys it with the API key, ``SecureTransmission(secret_key=...)``
    with the project's dedicated secret key. Every request then sends its parameters
    encrypted as the one query parameter ``data``, and every 200 answer is decrypted before it
    is read; an answer that does not decrypt raises ``DecryptionError``, never retried. It
    needs the extra ``secure`` (``cryptography``). Hooks, logs and spans show the parameters
    the call asked for, masked as always, never the encrypted ``data``.

    For other options on some calls, :meth:`with_options` gives a view of the same client.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 60.0,
        deadline: float | None = None,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_retry_after: float = 60.0,
        max_requests_per_second: float | None = None,
        retry_budget: int | None = 500,
        max_response_bytes: int = 64 * 1024 * 1024,
        prefetch: int = 1,
        date_format: DateFormat = "YYYY-MM-DD",
        max_connections: int = 100,
        event_hooks: Mapping[str, Sequence[EventHook]] | None = None,
        trace_configs: Sequence[aiohttp.TraceConfig] | None = None,
        secure_transmission: bool | SecureTransmission = False,
    ) -> None:
        if api_key is None:
            api_key = os.environ.get("ARGOS_API_KEY")
            if not api_key:
                raise ValueError("api_key is required: pass api_key= or set ARGOS_API_KEY")
        api_key = checks.check_api_key(api_key)
        if base_url is None:
            base_url = os.environ.get("ARGOS_BASE_URL") or DEFAULT_BASE_URL
        self.base_url = checks.check_base_url(base_url)
        secure = open_channel(secure_transmission, api_key)
        self._options = DEFAULT_OPTIONS.replace(
            timeout=timeout,
            deadline=deadline,
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            max_retry_after=max_retry_after,
            prefetch=prefetch,
        )
        hooks = Hooks.build(event_hooks)
        rate = checks.check_optional_seconds("max_requests_per_second", max_requests_per_second)
        budget = (
            None
            if retry_budget is None
            else RetryBudget(checks.check_int("retry_budget", retry_budget, minimum=0))
        )
        transport = Transport(
            base_url=self.base_url,
            api_key=api_key,
            max_connections=checks.check_int("max_connections", max_connections, minimum=1),
            max_response_bytes=checks.check_int(
                "max_response_bytes", max_response_bytes, minimum=1
            ),
            trace_configs=_check_trace_configs(trace_configs),
        )
        self._shared = _Shared(
            transport=transport,
            retrier=Retrier(budget=budget, max_requests_per_second=rate),
            date_format=checks.check_date_format(date_format),
            secure=secure,
        )
        self._hooks = hooks
        self._owns_pool = True

    def with_options(
        self,
        *,
        timeout: float | _Unset = UNSET,
        deadline: float | _Unset | None = UNSET,
        max_retries: int | _Unset = UNSET,
        backoff_base: float | _Unset = UNSET,
        backoff_max: float | _Unset = UNSET,
        max_retry_after: float | _Unset = UNSET,
        prefetch: int | _Unset = UNSET,
        event_hooks: Mapping[str, Sequence[EventHook]] | _Unset | None = UNSET,
    ) -> ArgosClient:
        """A view of this client with other options for the calls made through it.

        The view shares everything else with its client: the connection pool, the 429 pause,
        the rate limiter, the retry budget and ``stats``. It is cheap (no I/O), so a view per
        request is fine: ``await argos.with_options(deadline=2.0).get_submission(sid)``.
        Arguments are validated like the constructor's; ``deadline=None`` removes the
        deadline. ``event_hooks`` replaces the client's hooks for the calls made through the
        view (``None`` or ``{}``: none); OpenTelemetry instrumentation
        (``argos_async.otel.instrument``) belongs to the client and covers every view. A view
        does not own the pool: closing a view (or leaving ``async with`` on it) does nothing,
        closing the client closes it for every view.
        """
        given = {
            name: value
            for name, value in (
                ("timeout", timeout),
                ("deadline", deadline),
                ("max_retries", max_retries),
                ("backoff_base", backoff_base),
                ("backoff_max", backoff_max),
                ("max_retry_after", max_retry_after),
                ("prefetch", prefetch),
            )
            if value is not UNSET
        }
        hooks = self._hooks if isinstance(event_hooks, _Unset) else Hooks.build(event_hooks)
        view = object.__new__(ArgosClient)
        view.base_url = self.base_url
        view._shared = self._shared
        view._options = self._options.replace(**given)
        view._hooks = hooks
        view._owns_pool = False
        return view

    @property
    def options(self) -> RequestOptions:
        """The options this client (or view) sends its calls with."""
        return self._options

    @property
    def event_hooks(self) -> dict[str, list[EventHook]]:
        """This client's (or view's) event hooks, as ``event_hooks=`` takes them (a copy)."""
        if self._hooks is None:
            return {"request": [], "response": [], "retry": []}
        return self._hooks.as_dict()

    def __repr__(self) -> str:
        # Never the key.
        return f"ArgosClient(base_url={self.base_url!r})"

    @property
    def stats(self) -> ClientStats:
        """How many requests this client (and its views) sent, and how many were retries."""
        retrier = self._shared.retrier
        return ClientStats(requests=retrier.attempts, retries=retrier.retries)

    async def __aenter__(self) -> ArgosClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the connection pool; the client and its views cannot be used afterwards.
        On a view, does nothing."""
        if self._owns_pool:
            await self._shared.transport.aclose()

    # -----------------------------------------------------------------------------------------
    # Single lookups.

    async def get_submission(
        self, submission_id: str, *, request_type: RequestTypeArg = None
    ) -> Submission:
        """The submission with this id, with every field a single lookup returns.

        Raises ``NotFoundError`` when the API answers with an empty ``Items`` list.
        ``request_type`` (``"kyc"``, ``"aml"``, ``"data"``, ``"others"``) limits the fields.
        """
        checks.check_text("submission_id", submission_id)
        kind = checks.check_request_type(request_type)
        return await self._get_submission(submission_id, kind, self._options)

    async def get_raw_submission(
        self, submission_id: str, *, request_type: RequestTypeArg = None
    ) -> msgspec.Raw:
        """The submission with this id as the JSON the API sent for it, byte for byte, with
        no ``Submission`` built: for services that pass the API's answer on, or archive it.

        Checks and errors are those of :meth:`get_submission` (``NotFoundError`` for none);
        ``bytes(raw)`` gives the bytes.
        """
        checks.check_text("submission_id", submission_id)
        kind = checks.check_request_type(request_type)
        params = _lookup_params(submission_id, kind)

        def decode(body: bytes) -> msgspec.Raw:
            return raw_single(body, submission_id)

        return await self._lookup(SUBMISSION_PATH, params, decode, self._options)

    async def get_applicant_submissions(self, applicant_id: str) -> list[ApplicantSubmission]:
        """The approved submissions judged to be the same person as ``applicant_id``."""
        checks.check_text("applicant_id", applicant_id)
        return await self._get_applicants(applicant_id, self._options)

    # -----------------------------------------------------------------------------------------
    # Listings.

    def iter_pages(
        self,
        *,
        email: str | None = None,
        userid: str | None = None,
        start_date: DateArg = None,
        end_date: DateArg = None,
        request_type: RequestTypeArg = None,
        page_size: int = MAX_PAGE_SIZE,
        max_items: int | None = None,
        cursor: str | None = None,
    ) -> Stream[Page]:
        """Pages of submissions matching the filters, fetched lazily, in the server's order.

        Arguments are checked now, before any request. ``page_size`` is the API's ``count``
        (1..2000). ``cursor`` (a ``Page.cursor`` of an earlier listing with the same
        filters) resumes right after that page. ``max_items`` stops the listing after that
        many items. The client's ``timeout``, ``deadline`` and ``max_retries`` apply to each
        page's request. A page the server refuses as too large (413) is asked for again with
        half the ``count``, down to 1; the smaller size is kept for the rest of the listing.
        Use it in ``async with`` (or run it to the end) to release the read-ahead request the
        moment you stop.
        """
        return self._listing(
            _decoded_page,
            email=email,
            userid=userid,
            start_date=start_date,
            end_date=end_date,
            request_type=request_type,
            page_size=page_size,
            max_items=max_items,
            cursor=cursor,
        )

    def iter_raw_pages(
        self,
        *,
        email: str | None = None,
        userid: str | None = None,
        start_date: DateArg = None,
        end_date: DateArg = None,
        request_type: RequestTypeArg = None,
        page_size: int = MAX_PAGE_SIZE,
        max_items: int | None = None,
        cursor: str | None = None,
    ) -> Stream[RawPage]:
        """:meth:`iter_pages` for archiving: each page's items as the JSON the API sent,
        byte for byte, with no ``Submission`` built.

        Takes the same arguments and follows the listing the same way: the envelope, the next
        key and the item count are checked, cursors resume, a server that loops is stopped.
        Its cursors and :meth:`iter_pages`' are interchangeable.
        """
        return self._listing(
            _raw_page,
            email=email,
            userid=userid,
            start_date=start_date,
            end_date=end_date,
            request_type=request_type,
            page_size=page_size,
            max_items=max_items,
            cursor=cursor,
        )

    def _listing(
        self,
        build: _BuildPage[P],
        *,
        email: str | None,
        userid: str | None,
        start_date: DateArg,
        end_date: DateArg,
        request_type: RequestTypeArg,
        page_size: int,
        max_items: int | None,
        cursor: str | None,
    ) -> Stream[P]:
        query = ListQuery.build(
            email=email,
            userid=userid,
            start_date=start_date,
            end_date=end_date,
            request_type=request_type,
            page_size=page_size,
            date_format=self._shared.date_format,
        )
        limit = checks.check_max_items(max_items)
        start = START if cursor is None else decode_cursor(cursor, query.fingerprint)
        pages = self._pages(query, self._options, build, limit=limit, start=start, cursor=cursor)
        return Stream(pages)

    def iter_submissions(
        self,
        *,
        email: str | None = None,
        userid: str | None = None,
        start_date: DateArg = None,
        end_date: DateArg = None,
        request_type: RequestTypeArg = None,
        page_size: int = MAX_PAGE_SIZE,
        max_items: int | None = None,
        cursor: str | None = None,
    ) -> Stream[Submission]:
        """Submissions matching the filters, one at a time, pulled a page at a time.

        Takes the arguments of :meth:`iter_pages`; never holds more than the current page
        and the one being read ahead.
        """
        pages = self.iter_pages(
            email=email,
            userid=userid,
            start_date=start_date,
            end_date=end_date,
            request_type=request_type,
            page_size=page_size,
            max_items=max_items,
            cursor=cursor,
        )
        return Stream(_flatten(pages))

    # -----------------------------------------------------------------------------------------
    # Fan-out.

    def batch_get_submissions(
        self,
        ids: Keys,
        *,
        concurrency: int = 16,
        ordered: bool = False,
        fail_fast: bool = False,
        buffer: int | None = None,
        dedupe: bool = True,
        request_type: RequestTypeArg = None,
    ) -> Batch[Submission]:
        """Looks up many submissions, at most ``concurrency`` at a time; results stream back.

        ``ids`` is any iterable or async iterable, read lazily: a million ids never become a
        million tasks or results. Each result is a ``BatchResult(key, value, error)``; a
        missing id carries ``NotFoundError`` and does not stop the batch. ``fail_fast=True``
        raises the first error instead and cancels the rest: the first to arrive, or with
        ``ordered=True`` the first in input order, once every result before it has been
        yielded. ``ordered=True`` delivers in input order, holding at most ``buffer`` finished
        results (default: ``concurrency``) while an earlier one is still running, so no more
        than ``buffer + 1`` lookups run ahead of the caller; unordered, ``buffer`` is how many
        results may wait for the caller. With ``dedupe`` (the default), a repeated id is
        fetched and answered once, at its first occurrence (the batch remembers every id it
        has seen); turn it off for inputs known to be unique. A key that is not a non-empty
        str gets a ``TypeError``/``ValueError`` result of its own. Iterate the batch directly,
        or inside ``async with`` to release it the moment the block ends; leaving early
        cancels the requests in flight. The client's options apply to each lookup; the
        batch's own are validated once, however many ids follow.
        """
        kind = checks.check_request_type(request_type)
        options = self._options

        def fetch(submission_id: str) -> Awaitable[Submission]:
            return self._get_submission(submission_id, kind, options)

        return self._batch("ids", ids, fetch, concurrency, ordered, fail_fast, buffer, dedupe)

    def batch_get_raw_submissions(
        self,
        ids: Keys,
        *,
        concurrency: int = 16,
        ordered: bool = False,
        fail_fast: bool = False,
        buffer: int | None = None,
        dedupe: bool = True,
        request_type: RequestTypeArg = None,
    ) -> Batch[msgspec.Raw]:
        """:meth:`batch_get_submissions` with each value the submission's JSON as the API
        sent it (:meth:`get_raw_submission`), no ``Submission`` built; the same arguments."""
        kind = checks.check_request_type(request_type)
        options = self._options

        def fetch(submission_id: str) -> Awaitable[msgspec.Raw]:
            params = _lookup_params(submission_id, kind)

            def decode(body: bytes) -> msgspec.Raw:
                return raw_single(body, submission_id)

            return self._lookup(SUBMISSION_PATH, params, decode, options)

        return self._batch("ids", ids, fetch, concurrency, ordered, fail_fast, buffer, dedupe)

    def batch_get_by_email(
        self,
        emails: Keys,
        *,
        concurrency: int = 16,
        ordered: bool = False,
        fail_fast: bool = False,
        buffer: int | None = None,
        dedupe: bool = True,
        request_type: RequestTypeArg = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Batch[list[Submission]]:
        """Every submission of each email address, following pagination per address.

        Each result's value is a ``list[Submission]`` (empty for an address with none).
        Takes the arguments of :meth:`batch_get_submissions`; ``page_size`` and the client's
        options apply to each page request. Pages are not read ahead here, so no more than
        ``concurrency`` requests are ever in flight.
        """
        base = ListQuery.build(
            request_type=request_type, page_size=page_size, date_format=self._shared.date_format
        )
        options = msgspec.structs.replace(self._options, prefetch=0)

        async def fetch(email: str) -> list[Submission]:
            query = msgspec.structs.replace(base, email=email)
            async with aclosing(self._pages(query, options, _decoded_page)) as pages:
                return [item async for page in pages for item in page.items]

        return self._batch("emails", emails, fetch, concurrency, ordered, fail_fast, buffer, dedupe)

    def batch_get_applicants(
        self,
        applicant_ids: Keys,
        *,
        concurrency: int = 16,
        ordered: bool = False,
        fail_fast: bool = False,
        buffer: int | None = None,
        dedupe: bool = True,
    ) -> Batch[list[ApplicantSubmission]]:
        """:meth:`get_applicant_submissions` for many applicant ids; each value is a list.

        Takes the arguments of :meth:`batch_get_submissions`.
        """
        options = self._options

        def fetch(applicant_id: str) -> Awaitable[list[ApplicantSubmission]]:
            return self._get_applicants(applicant_id, options)

        return self._batch(
            "applicant_ids", applicant_ids, fetch, concurrency, ordered, fail_fast, buffer, dedupe
        )

    @staticmethod
    def _batch(
        argument: str,
        keys: object,
        fetch: Callable[[str], Awaitable[V]],
        concurrency: object,
        ordered: object,
        fail_fast: object,
        buffer: object,
        dedupe: object,
    ) -> Batch[V]:
        if isinstance(keys, (str, bytes)) or not isinstance(keys, (Iterable, AsyncIterable)):
            raise TypeError(
                f"{argument} must be an iterable or async iterable of str, "
                f"got {type(keys).__name__}"
            )
        limit = checks.check_int("concurrency", concurrency, minimum=1)
        return Batch(
            keys,
            fetch,
            argument=argument,
            concurrency=limit,
            buffer=limit if buffer is None else checks.check_int("buffer", buffer, minimum=0),
            ordered=checks.check_bool("ordered", ordered),
            fail_fast=checks.check_bool("fail_fast", fail_fast),
            dedupe=checks.check_bool("dedupe", dedupe),
        )

    # -----------------------------------------------------------------------------------------
    # Backfill.

    def backfill(
        self,
        start_date: DateArg,
        end_date: DateArg = None,
        *,
        shards: int = 8,
        page_size: int = MAX_PAGE_SIZE,
        checkpoint: str | os.PathLike[str] | None = None,
        email: str | None = None,
        userid: str | None = None,
        request_type: RequestTypeArg = None,
        window_days: int = 1,
    ) -> Backfill:
        """Every submission created from ``start_date`` to ``end_date`` (inclusive; default
        today, UTC), pulled as ``shards`` parallel listings of day windows and merged into one
        stream: ``async for sub in argos.backfill(...)``, or ``.pages()`` for whole pages.

        Windows of ``window_days`` days are taken from one queue, so a busy window never
        leaves a shard idle. Memory stays bounded by ``shards`` x ``page_size`` x (1 +
        read-ahead) however long the range: a shard waits until the caller takes its page.
        Each submission comes exactly once, in no particular order across windows.

        With ``checkpoint`` (a file path), the position of every window is saved atomically
        after each page the caller has finished; running the same backfill again with the same
        file resumes each window where it stopped and skips finished ones. A checkpoint made
        for other arguments (range, window size, filters), damaged or unreadable raises
        ``CheckpointError`` (a ``ValueError``) before any request. One checkpoint serves one
        backfill at a time. ``start_date=None`` lists everything as a single window. The
        other arguments are those of :meth:`iter_pages`, applied to each window, with the
        client's options.
        """
        plan = plan_backfill(
            start_date,
            end_date,
            shards=shards,
            page_size=page_size,
            email=email,
            userid=userid,
            request_type=request_type,
            window_days=window_days,
            date_format=self._shared.date_format,
        )
        return self._backfill_of(plan, checkpoint)

    def _backfill_of(
        self, plan: BackfillPlan, checkpoint: str | os.PathLike[str] | None
    ) -> Backfill:
        """The backfill of a checked plan, resumed from ``checkpoint`` if that file exists."""
        query, options = plan.query, self._options
        saved = None
        if checkpoint is not None:
            if not isinstance(checkpoint, (str, os.PathLike)):
                raise TypeError(f"checkpoint must be a file path, got {type(checkpoint).__name__}")
            saved = Checkpoint.load_or_new(checkpoint, plan.checkpoint_arguments())
            _check_positions(saved, plan.windows, query)

        def list_window(window: Window, cursor: str | None, build: _BuildPage[P]) -> Stream[P]:
            window_query = query.between(window.start, window.end)
            start = START if cursor is None else decode_cursor(cursor, window_query.fingerprint)
            return Stream(self._pages(window_query, options, build, start=start, cursor=cursor))

        return Backfill(
            plan.windows,
            lambda window, cursor: list_window(window, cursor, _decoded_page),
            lambda window, cursor: list_window(window, cursor, _raw_page),
            shards=plan.shards,
            checkpoint=saved,
        )

    # -----------------------------------------------------------------------------------------
    # The two internal paths: arguments and options are validated by now.

    async def _get_submission(
        self, submission_id: str, request_type: str | None, options: RequestOptions
    ) -> Submission:
        params = _lookup_params(submission_id, request_type)

        def decode(body: bytes) -> Submission:
            return decode_single(body, submission_id)

        return await self._lookup(SUBMISSION_PATH, params, decode, options)

    async def _get_applicants(
        self, applicant_id: str, options: RequestOptions
    ) -> list[ApplicantSubmission]:
        params = {"applicant_id": applicant_id}
        return await self._lookup(APPLICANT_PATH, params, decode_applicants, options)

    def _pages(
        self,
        query: ListQuery,
        options: RequestOptions,
        build: _BuildPage[P],
        *,
        limit: int | None = None,
        start: Position = START,
        cursor: str | None = None,
    ) -> AsyncGenerator[P, None]:
        """The one listing path: ``query`` page by page from ``start`` (the position inside
        ``cursor``), read ahead as ``options.prefetch`` says, each page made by ``build``
        (decoded into Structs, or raw)."""
        personal = query.personal_values()

        async def fetch(after: PageKey | None, count: int) -> Fetched:
            params = query.params(after, count)
            return await self._lookup(SUBMISSION_PATH, params, _scan, options, personal)

        observers = self._shared.observers

        def decode(fetched: Fetched, first: int, count: int, resume: Position | None) -> P:
            page = build(fetched, query.fingerprint, first, count, resume)
            if observers:
                _delivered(observers, count)
            return page

        return paginate(
            fetch,
            decode,
            page_size=query.page_size,
            start=start,
            start_cursor=cursor,
            max_items=limit,
            prefetch=options.prefetch,
        )

    async def _lookup(
        self,
        path: str,
        params: dict[str, str],
        decode: Callable[[bytes], T],
        options: RequestOptions,
        personal_values: tuple[str, ...] = (),
    ) -> T:
        """The one lookup path: attempts (retried as the options say) of GET, status check and
        decoding; decoding is part of an attempt so that a body cut off in transit is sent
        for again."""
        shared = self._shared
        transport, secure = shared.transport, shared.secure
        # Made once per call: every attempt sends the same ciphertext (ECB has no IV).
        sent = params if secure is None else secure.seal_params(params)
        # The one check of "is anyone listening?" per call: with no hooks and no observer,
        # no trace is made and the retry loop only sees `trace is None`.
        trace = (
            None
            if self._hooks is None and not shared.observers
            else CallTrace(self._hooks, shared.observers, path, params)
        )

        async def attempt(timeout: float, number: int) -> T:
            response = await transport.get(
                path, sent, timeout=timeout, attempt=number, shown=params
            )
            if trace is not None:
                trace.received(response.status, response.headers)
            body = response.body
            if response.status != 200:
                raise error_from_response(
                    response.status,
                    response.headers,
                    body if secure is None else secure.open_error_body(body),
                    now=datetime.now(timezone.utc),
                    personal_values=personal_values,
                )
            try:
                return decode(body if secure is None else secure.open_body(body))
            except APIStatusError as error:
                # Decoding sees only the body: a lookup that matched nothing (a 200 with empty
                # Items) gets the response's request id here, like every other error.
                if error.request_id is None:
                    error.request_id = header(response.headers, REQUEST_ID_HEADER)
                raise

        return await shared.retrier.call(
            attempt, what=_WHAT[path], options=options, trace=trace, path=path, params=params
        )

    def _observe(self, observer: Observer) -> None:
        """Adds ``observer`` to the client's (for ``argos_async.otel``)."""
        self._shared.observers.append(observer)

    def _unobserve(self, observer: Observer) -> None:
        """Removes ``observer``, if it is there."""
        observers = self._shared.observers
        if observer in observers:
            observers.remove(observer)


_WHAT: Final = {path: f"GET {path}" for path in (SUBMISSION_PATH, APPLICANT_PATH)}


def _check_positions(saved: Checkpoint, windows: list[Window], query: ListQuery) -> None:
    """Every window a checkpoint names is one of this backfill's, and every cursor it holds
    resumes that window's listing: a damaged file fails now, not after data was delivered."""
    by_name = {window.name: window for window in windows}
    for name in [*saved.done, *saved.cursors]:
        if name not in by_name:
            raise CheckpointError(f"checkpoint {saved.path} names a window {name!r} it cannot have")
    for name, cursor in saved.cursors.items():
        window = by_name[name]
        try:
            decode_cursor(cursor, query.between(window.start, window.end).fingerprint)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(
                f"checkpoint {saved.path} holds an unusable cursor for window {name}: {exc}"
            ) from None


def _delivered(observers: list[Observer], count: int) -> None:
    for observer in observers:
        try:
            observer.items(count)
        except Exception:
            logging.getLogger("argos_async").warning(
                "an observer failed counting items; the listing goes on",
                exc_info=True,
                extra=log_fields(SUBMISSION_PATH),
            )


def _check_trace_configs(trace_configs: object) -> list[aiohttp.TraceConfig]:
    if trace_configs is None:
        return []
    if isinstance(trace_configs, aiohttp.TraceConfig) or not isinstance(trace_configs, Iterable):
        raise TypeError("trace_configs must be a list of aiohttp.TraceConfig")
    checked = list(trace_configs)
    for index, config in enumerate(checked):
        if not isinstance(config, aiohttp.TraceConfig):
            raise TypeError(
                f"trace_configs[{index}] must be an aiohttp.TraceConfig, "
                f"got {type(config).__name__}"
            )
    return checked


def _scan(body: bytes) -> Fetched:
    return Fetched(body, *scan_page(body))


def _lookup_params(submission_id: str, request_type: str | None) -> dict[str, str]:
    params = {"submission_id": submission_id}
    if request_type is not None:
        params["request_type"] = request_type
    return params


def _decoded_page(
    fetched: Fetched, fingerprint: str, first: int, count: int, resume: Position | None
) -> Page:
    return decode_page(fetched.body, fingerprint, first=first, count=count, resume=resume)


def _raw_page(
    fetched: Fetched, fingerprint: str, first: int, count: int, resume: Position | None
) -> RawPage:
    body, next_key, items = fetched
    return raw_page(body, next_key, items, fingerprint, first=first, count=count, resume=resume)


class ClientStats(msgspec.Struct, frozen=True):
    """Counts since the client was created: requests sent (every attempt) and retries."""

    requests: int
    retries: int


async def _flatten(pages: Stream[Page]) -> AsyncGenerator[Submission, None]:
    async with pages:
        async for page in pages:
            for item in page.items:
                yield item
