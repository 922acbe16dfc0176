"""``ArgosClient``: the public face. Validates arguments, then hands work to the layers below."""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Iterable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import date, datetime, timezone
from types import TracebackType
from typing import NamedTuple, TypeVar

from . import _protocol as protocol
from ._backfill import Backfill, Window, windows_between
from ._checkpoint import Checkpoint
from ._fanout import Batch, Keys
from ._pagination import Fetched, paginate
from ._retry import Retrier, RetryBudget, RetryPolicy
from ._transport import Transport
from .errors import APIStatusError
from .models import ApplicantSubmission, Page, PageKey, Submission

DateArg = date | str | None
T = TypeVar("T")
V = TypeVar("V")


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
    each attempt, ``deadline``
    (if set) a whole call with all its attempts and waits; each method takes ``timeout``,
    ``deadline`` and ``max_retries`` to override them per call. ``max_requests_per_second``
    spaces out the client's requests. ``retry_budget`` is a pool of retry tokens shared by all
    calls (each retry costs 5, a retry after a timeout 10, each success pays back), so that an
    outage does not multiply a bulk job's load; ``None`` removes it. Bodies above
    ``max_response_bytes`` fail with ``ResponseTooLargeError``.

    ``prefetch`` (0 or 1) is how many pages a listing reads ahead while the caller works on
    the current one. ``date_format`` is how dates are sent: the current documentation's
    ``"YYYY-MM-DD"`` or the original's ``"YYYYMMDD"``.
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
        date_format: protocol.DateFormat = "YYYY-MM-DD",
        max_connections: int = 100,
    ) -> None:
        if api_key is None:
            api_key = os.environ.get("ARGOS_API_KEY")
            if not api_key:
                raise ValueError("api_key is required: pass api_key= or set ARGOS_API_KEY")
        api_key = protocol.check_text("api_key", api_key)
        if base_url is None:
            base_url = os.environ.get("ARGOS_BASE_URL") or protocol.DEFAULT_BASE_URL
        self.base_url = protocol.check_base_url(base_url)
        self._defaults = _CallOptions(
            timeout=protocol.check_seconds("timeout", timeout),
            deadline=protocol.check_optional_seconds("deadline", deadline),
            max_retries=protocol.check_int("max_retries", max_retries, minimum=0),
        )
        policy = RetryPolicy(
            backoff_base=protocol.check_seconds("backoff_base", backoff_base),
            backoff_max=protocol.check_seconds("backoff_max", backoff_max),
            max_retry_after=protocol.check_seconds("max_retry_after", max_retry_after),
        )
        rate = protocol.check_optional_seconds("max_requests_per_second", max_requests_per_second)
        budget = (
            None
            if retry_budget is None
            else RetryBudget(protocol.check_int("retry_budget", retry_budget, minimum=0))
        )
        self._retrier = Retrier(policy, budget=budget, max_requests_per_second=rate)
        self._prefetch = protocol.check_prefetch(prefetch)
        self._date_format = protocol.check_date_format(date_format)
        self._transport = Transport(
            base_url=self.base_url,
            api_key=api_key,
            max_connections=protocol.check_int("max_connections", max_connections, minimum=1),
            max_response_bytes=protocol.check_int(
                "max_response_bytes", max_response_bytes, minimum=1
            ),
        )

    def __repr__(self) -> str:
        # Never the key.
        return f"ArgosClient(base_url={self.base_url!r})"

    @property
    def stats(self) -> ClientStats:
        """How many requests this client has sent and how many of them were retries."""
        return ClientStats(requests=self._retrier.attempts, retries=self._retrier.retries)

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
        """Closes the connection pool. The client cannot be used afterwards."""
        await self._transport.aclose()

    # -----------------------------------------------------------------------------------------
    # Single lookups.

    async def get_submission(
        self,
        submission_id: str,
        *,
        request_type: str | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
        max_retries: int | None = None,
    ) -> Submission:
        """The submission with this id, with every field a single lookup returns.

        Raises ``NotFoundError`` when the API answers with an empty ``Items`` list.
        ``request_type`` (``"kyc"``, ``"aml"``, ``"data"``, ``"others"``) limits the fields.
        """
        protocol.check_text("submission_id", submission_id)
        params = {"submission_id": submission_id}
        kind = protocol.check_request_type(request_type)
        if kind is not None:
            params["request_type"] = kind
        options = self._options(timeout, deadline, max_retries)

        def decode(body: bytes) -> Submission:
            return protocol.decode_single(body, submission_id)

        return await self._call(protocol.SUBMISSION_PATH, params, decode, options)

    async def get_applicant_submissions(
        self,
        applicant_id: str,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        max_retries: int | None = None,
    ) -> list[ApplicantSubmission]:
        """The approved submissions judged to be the same person as ``applicant_id``."""
        protocol.check_text("applicant_id", applicant_id)
        options = self._options(timeout, deadline, max_retries)
        return await self._call(
            protocol.APPLICANT_PATH,
            {"applicant_id": applicant_id},
            protocol.decode_applicants,
            options,
        )

    # -----------------------------------------------------------------------------------------
    # Listings.

    def iter_pages(
        self,
        *,
        email: str | None = None,
        userid: str | None = None,
        start_date: DateArg = None,
        end_date: DateArg = None,
        request_type: str | None = None,
        page_size: int = protocol.MAX_PAGE_SIZE,
        max_items: int | None = None,
        cursor: str | None = None,
        prefetch: int | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
        max_retries: int | None = None,
    ) -> AsyncGenerator[Page, None]:
        """Pages of submissions matching the filters, fetched lazily, in the server's order.

        Arguments are checked now, before any request. ``page_size`` is the API's ``count``
        (1..2000). ``cursor`` (a ``Page.cursor`` of an earlier listing with the same
        filters) resumes right after that page. ``max_items`` stops the listing after that
        many items. ``timeout``, ``deadline`` and ``max_retries`` apply to each page's request.
        A page the server refuses as too large (413) is asked for again with half the
        ``count``, down to 1; the smaller size is kept for the rest of the listing. Close the
        iterator (``contextlib.aclosing``) or run it to the end to release the read-ahead
        request at once.
        """
        query = protocol.ListQuery.build(
            email=email,
            userid=userid,
            start_date=start_date,
            end_date=end_date,
            request_type=request_type,
            page_size=page_size,
            date_format=self._date_format,
        )
        limit = protocol.check_max_items(max_items)
        ahead = self._prefetch if prefetch is None else protocol.check_prefetch(prefetch)
        start = None if cursor is None else protocol.decode_cursor(cursor, query.fingerprint)
        options = self._options(timeout, deadline, max_retries)

        def scan(body: bytes) -> Fetched:
            return Fetched(body, *protocol.scan_page(body))

        async def fetch(after: PageKey | None, count: int) -> Fetched:
            return await self._call(
                protocol.SUBMISSION_PATH,
                query.params(after, count),
                scan,
                options,
                query.personal_values(),
            )

        def decode(fetched: Fetched) -> Page:
            return protocol.decode_page(fetched.body, query.fingerprint)

        return paginate(
            fetch,
            decode,
            page_size=query.page_size,
            start=start,
            start_cursor=cursor,
            max_items=limit,
            prefetch=ahead,
        )

    def iter_submissions(
        self,
        *,
        email: str | None = None,
        userid: str | None = None,
        start_date: DateArg = None,
        end_date: DateArg = None,
        request_type: str | None = None,
        page_size: int = protocol.MAX_PAGE_SIZE,
        max_items: int | None = None,
        cursor: str | None = None,
        prefetch: int | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
        max_retries: int | None = None,
    ) -> AsyncGenerator[Submission, None]:
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
            prefetch=prefetch,
            timeout=timeout,
            deadline=deadline,
            max_retries=max_retries,
        )
        return _flatten(pages)

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
        request_type: str | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
        max_retries: int | None = None,
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
        cancels the requests in flight. The other arguments are those of
        :meth:`get_submission`.
        """
        protocol.check_request_type(request_type)
        options = self._options(timeout, deadline, max_retries)

        async def fetch(submission_id: str) -> Submission:
            return await self.get_submission(
                submission_id,
                request_type=request_type,
                timeout=options.timeout,
                deadline=options.deadline,
                max_retries=options.max_retries,
            )

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
        request_type: str | None = None,
        page_size: int = protocol.MAX_PAGE_SIZE,
        timeout: float | None = None,
        deadline: float | None = None,
        max_retries: int | None = None,
    ) -> Batch[list[Submission]]:
        """Every submission of each email address, following pagination per address.

        Each result's value is a ``list[Submission]`` (empty for an address with none).
        Takes the arguments of :meth:`batch_get_submissions`; ``page_size`` and the per-call
        options apply to each page request. Pages are not read ahead here, so no more than
        ``concurrency`` requests are ever in flight.
        """
        protocol.check_request_type(request_type)
        protocol.check_page_size(page_size)
        options = self._options(timeout, deadline, max_retries)

        async def fetch(email: str) -> list[Submission]:
            pages = self.iter_pages(
                email=email,
                request_type=request_type,
                page_size=page_size,
                prefetch=0,
                timeout=options.timeout,
                deadline=options.deadline,
                max_retries=options.max_retries,
            )
            async with aclosing(pages):
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
        timeout: float | None = None,
        deadline: float | None = None,
        max_retries: int | None = None,
    ) -> Batch[list[ApplicantSubmission]]:
        """:meth:`get_applicant_submissions` for many applicant ids; each value is a list.

        Takes the arguments of :meth:`batch_get_submissions`.
        """
        options = self._options(timeout, deadline, max_retries)

        async def fetch(applicant_id: str) -> list[ApplicantSubmission]:
            return await self.get_applicant_submissions(
                applicant_id,
                timeout=options.timeout,
                deadline=options.deadline,
                max_retries=options.max_retries,
            )

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
        limit = protocol.check_int("concurrency", concurrency, minimum=1)
        return Batch(
            keys,
            fetch,
            argument=argument,
            concurrency=limit,
            buffer=limit if buffer is None else protocol.check_int("buffer", buffer, minimum=0),
            ordered=protocol.check_bool("ordered", ordered),
            fail_fast=protocol.check_bool("fail_fast", fail_fast),
            dedupe=protocol.check_bool("dedupe", dedupe),
        )

    # -----------------------------------------------------------------------------------------
    # Backfill.

    def backfill(
        self,
        start_date: DateArg,
        end_date: DateArg = None,
        *,
        shards: int = 8,
        page_size: int = protocol.MAX_PAGE_SIZE,
        checkpoint: str | os.PathLike[str] | None = None,
        email: str | None = None,
        userid: str | None = None,
        request_type: str | None = None,
        window_days: int = 1,
        prefetch: int | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
        max_retries: int | None = None,
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
        other arguments are those of :meth:`iter_pages`, applied to each window.
        """
        # Checked even where unused (no start_date): a bad argument is an error wherever.
        days = protocol.check_int("window_days", window_days, minimum=1)
        if start_date is None:
            if end_date is not None:
                raise ValueError("end_date needs a start_date")
            windows = [Window("all", None, None)]
        else:
            first = protocol.to_date("start_date", start_date)
            last = protocol.to_date("end_date", end_date) or datetime.now(timezone.utc).date()
            assert first is not None
            if last < first:
                raise ValueError(f"end_date ({last}) is before start_date ({first})")
            windows = windows_between(first, last, days)
        query = protocol.ListQuery.build(
            email=email, userid=userid, request_type=request_type, page_size=page_size
        )
        shard_count = protocol.check_int("shards", shards, minimum=1, maximum=256)
        ahead = self._prefetch if prefetch is None else protocol.check_prefetch(prefetch)
        options = self._options(timeout, deadline, max_retries)
        saved = None
        if checkpoint is not None:
            if not isinstance(checkpoint, (str, os.PathLike)):
                raise TypeError(f"checkpoint must be a file path, got {type(checkpoint).__name__}")
            arguments = {
                "start_date": windows[0].start.isoformat() if windows[0].start else None,
                "end_date": windows[-1].end.isoformat() if windows[-1].end else None,
                "window_days": window_days,
                # Digests, not the values: the file should not hold personal data.
                "filters": query.fingerprint,
            }
            saved = Checkpoint.load_or_new(checkpoint, arguments)

        def list_window(window: Window, cursor: str | None) -> AsyncGenerator[Page, None]:
            return self.iter_pages(
                email=query.email,
                userid=query.userid,
                start_date=window.start,
                end_date=window.end,
                request_type=query.request_type,
                page_size=query.page_size,
                cursor=cursor,
                prefetch=ahead,
                timeout=options.timeout,
                deadline=options.deadline,
                max_retries=options.max_retries,
            )

        return Backfill(windows, list_window, shards=shard_count, checkpoint=saved)

    # -----------------------------------------------------------------------------------------

    def _options(
        self, timeout: float | None, deadline: float | None, max_retries: int | None
    ) -> _CallOptions:
        defaults = self._defaults
        return _CallOptions(
            timeout=defaults.timeout
            if timeout is None
            else protocol.check_seconds("timeout", timeout),
            deadline=(
                defaults.deadline
                if deadline is None
                else protocol.check_seconds("deadline", deadline)
            ),
            max_retries=(
                defaults.max_retries
                if max_retries is None
                else protocol.check_int("max_retries", max_retries, minimum=0)
            ),
        )

    async def _call(
        self,
        path: str,
        params: dict[str, str],
        decode: Callable[[bytes], T],
        options: _CallOptions,
        personal_values: tuple[str, ...] = (),
    ) -> T:
        """One call: attempts (retried as the policy says) of GET, status check and decoding;
        decoding is part of an attempt so that a body cut off in transit is sent for again."""

        async def attempt(timeout: float, number: int) -> T:
            response = await self._transport.get(path, params, timeout=timeout, attempt=number)
            if response.status != 200:
                raise protocol.error_from_response(
                    response.status,
                    response.headers,
                    response.body,
                    now=datetime.now(timezone.utc),
                    personal_values=personal_values,
                )
            try:
                return decode(response.body)
            except APIStatusError as error:
                # Decoding sees only the body: a lookup that matched nothing (a 200 with empty
                # Items) gets the response's request id here, like every other error.
                if error.request_id is None:
                    error.request_id = protocol.header(response.headers, "x-amzn-RequestId")
                raise

        return await self._retrier.call(
            attempt,
            what=f"GET {path}",
            attempt_timeout=options.timeout,
            deadline=options.deadline,
            max_retries=options.max_retries,
        )


@dataclass(frozen=True)
class ClientStats:
    """Counts since the client was created: requests sent (every attempt) and retries."""

    requests: int
    retries: int


class _CallOptions(NamedTuple):
    timeout: float
    deadline: float | None
    max_retries: int


async def _flatten(pages: AsyncGenerator[Page, None]) -> AsyncGenerator[Submission, None]:
    async with aclosing(pages):
        async for page in pages:
            for item in page.items:
                yield item
