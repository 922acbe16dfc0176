"""``ArgosClient``: the public face. Validates arguments, then hands work to the layers below."""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator
from contextlib import aclosing
from datetime import date, datetime, timezone
from types import TracebackType

from . import _protocol as protocol
from ._pagination import paginate
from ._transport import Transport
from .models import ApplicantSubmission, Page, PageKey, Submission

DateArg = date | str | None


class ArgosClient:
    """An async session with the Argos KYC REST API v3 over one aiohttp connection pool.

    Use it as an async context manager (or call :meth:`aclose`)::

        async with ArgosClient(api_key="...") as argos:
            async for sub in argos.iter_submissions(start_date=date(2024, 1, 1)):
                ...

    ``api_key`` and ``base_url`` default to the ``ARGOS_API_KEY`` and ``ARGOS_BASE_URL``
    environment variables; ``base_url`` then to the API's current host. ``timeout`` bounds
    each request in seconds. ``prefetch`` (0 or 1) is how many pages a listing reads ahead
    while the caller works on the current one. ``date_format`` is how dates are sent: the
    current documentation's ``"YYYY-MM-DD"`` or the original's ``"YYYYMMDD"``.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 60.0,
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
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self._prefetch = protocol.check_prefetch(prefetch)
        self._date_format = protocol.check_date_format(date_format)
        protocol.check_int("max_connections", max_connections, minimum=1)
        self._transport = Transport(
            base_url=self.base_url,
            api_key=api_key,
            timeout=float(timeout),
            max_connections=max_connections,
        )

    def __repr__(self) -> str:
        # Never the key.
        return f"ArgosClient(base_url={self.base_url!r})"

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
        self, submission_id: str, *, request_type: str | None = None
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
        body = await self._get(protocol.SUBMISSION_PATH, params)
        return protocol.decode_single(body, submission_id)

    async def get_applicant_submissions(self, applicant_id: str) -> list[ApplicantSubmission]:
        """The approved submissions judged to be the same person as ``applicant_id``."""
        protocol.check_text("applicant_id", applicant_id)
        body = await self._get(protocol.APPLICANT_PATH, {"applicant_id": applicant_id})
        return protocol.decode_applicants(body)

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
    ) -> AsyncGenerator[Page, None]:
        """Pages of submissions matching the filters, fetched lazily, in the server's order.

        Arguments are checked now, before any request. ``page_size`` is the API's ``count``
        (1..2000). ``cursor`` (a ``Page.cursor`` of an earlier listing with the same
        filters) resumes right after that page. ``max_items`` stops the listing after that
        many items. Close the iterator (``contextlib.aclosing``) or run it to the end to
        release the read-ahead request at once.
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

        async def fetch(after: PageKey | None, count: int) -> Page:
            body = await self._get(
                protocol.SUBMISSION_PATH, query.params(after, count), query.personal_values()
            )
            return protocol.decode_page(body, query.fingerprint)

        return paginate(
            fetch,
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
        )
        return _flatten(pages)

    # -----------------------------------------------------------------------------------------

    async def _get(
        self, path: str, params: dict[str, str], personal_values: tuple[str, ...] = ()
    ) -> bytes:
        response = await self._transport.get(path, params)
        if response.status != 200:
            raise protocol.error_from_response(
                response.status,
                response.headers,
                response.body,
                now=datetime.now(timezone.utc),
                personal_values=personal_values,
            )
        return response.body


async def _flatten(pages: AsyncGenerator[Page, None]) -> AsyncGenerator[Submission, None]:
    async with aclosing(pages):
        async for page in pages:
            for item in page.items:
                yield item
