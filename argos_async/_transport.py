"""The one place that talks HTTP: an aiohttp session that sends one GET and returns the answer.

It knows nothing about pages, models or retries: it sends one attempt and returns
``(status, headers, body)``, turning aiohttp's exceptions into ours. It sends nothing on its
own: aiohttp would send a GET again, once and at once, when the connection is reset or closed
before the answer (RFC 9112's remedy for a keep-alive connection the server closed meanwhile),
unseen by the client's counts, its rate limiter and its retry budget. That resend is switched
off, so the failure comes up as a failed attempt and the retry loop decides, counts and spaces
the next one like any other.

Its session is the one place the library meets aiohttp's tracing: the caller's
``trace_configs`` are handed to it, and the trace configs that OpenTelemetry's aiohttp
instrumentation adds to every session (when an application switches it on globally) are made
to record this session's URLs with emails and user ids masked (:func:`mask_instrumented_urls`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any, Final, NamedTuple
from urllib.parse import quote

import aiohttp
from yarl import URL

from ._hooks import log_fields
from ._protocol.masking import masked_params
from ._protocol.wire import API_KEY_HEADER, REQUEST_ID_HEADER
from ._version import __version__
from .errors import APIConnectionError, APITimeoutError, ResponseTooLargeError

USER_AGENT = f"argos-async/{__version__}"

logger = logging.getLogger("argos_async")


# Values made only of RFC 3986's unreserved characters (ids, counts) need no quoting.
_UNRESERVED: Final = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch


@functools.lru_cache(maxsize=64)
def _timeout(seconds: float) -> aiohttp.ClientTimeout:
    # Most calls share one timeout: build its object once, not per request.
    return aiohttp.ClientTimeout(total=seconds)


class Response(NamedTuple):
    """What came back: the status, the headers (case-insensitive) and the whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Transport:
    """Owns one ``aiohttp.ClientSession`` (one connection pool) for one API origin."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        max_connections: int,
        max_response_bytes: int,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
    ) -> None:
        self._base_url = base_url
        self._trace_configs = list(trace_configs)
        self._api_key = api_key
        self._max_connections = max_connections
        self._max_response_bytes = max_response_bytes
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def _open(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running loop, rather than in __init__.
        if self._closed:
            raise RuntimeError("the client is closed")
        if self._session is None:
            session = aiohttp.ClientSession(
                base_url=self._base_url,
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                # The key is a session header rather than a per-request one (aiohttp merges
                # those on every request): every request of this session goes to base_url,
                # and redirects are never followed, so it reaches no other host.
                headers={
                    "user-agent": USER_AGENT,
                    "accept": "application/json",
                    API_KEY_HEADER: self._api_key,
                },
                # Proxies from the environment would see the key; opt in explicitly if needed.
                trust_env=False,
                trace_configs=self._trace_configs or None,
            )
            mask_instrumented_urls(session)
            # aiohttp's own switch for its resend: private, so set only where it exists (it
            # does from aiohttp 3.9 on; tests/test_hostile.py shows that it takes effect).
            if hasattr(session, "_retry_connection"):
                session._retry_connection = False
            self._session = session
        return self._session

    async def get(
        self,
        path: str,
        params: Mapping[str, str],
        *,
        timeout: float,
        attempt: int = 1,
        shown: Mapping[str, str] | None = None,
    ) -> Response:
        """Sends one GET bounded by ``timeout`` seconds. Never follows a redirect: the key
        must not travel to another host. ``shown`` is what the log line shows in place of
        ``params`` (masked too): with secure transmission, the parameters before encryption."""
        session = self._open()
        if shown is None:
            shown = params
        started = time.perf_counter()
        # Kept once they arrive, so that a body cut off still logs the response's request id.
        received: Mapping[str, str] | None = None
        try:
            async with session.get(
                self._url(path, params),
                allow_redirects=False,
                timeout=_timeout(timeout),
            ) as response:
                received = response.headers
                body = await self._read(response)
                result = Response(response.status, response.headers, body)
        except asyncio.TimeoutError:
            self._log(path, shown, "timeout", started, attempt, received)
            raise APITimeoutError(f"GET {path} timed out after {timeout:.3g} s") from None
        except aiohttp.ClientError as exc:
            self._log(path, shown, type(exc).__name__, started, attempt, received)
            # aiohttp's message may name the URL and so the query's email: keep only the kind.
            raise APIConnectionError(f"GET {path} failed: {type(exc).__name__}") from None
        except ResponseTooLargeError:
            self._log(path, shown, "oversized", started, attempt, received)
            raise
        self._log(path, shown, result.status, started, attempt, result.headers)
        return result

    def _url(self, path: str, params: Mapping[str, str]) -> URL:
        # Encoded here, once, into a URL aiohttp takes as it is: with params= it would join the
        # path to the base and encode the query again on every request.
        query = "&".join(
            f"{name}={value if _UNRESERVED(value) else quote(value, safe='')}"
            for name, value in params.items()
        )
        return URL(f"{self._base_url}{path}?{query}", encoded=True)

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        cap = self._max_response_bytes
        # A compressed body's length says nothing about its size once decompressed.
        if response.content_length is not None and "Content-Encoding" not in response.headers:
            if response.content_length > cap:
                raise ResponseTooLargeError(
                    f"the response announces {response.content_length:,} bytes, over the "
                    f"client's max_response_bytes of {cap:,}"
                )
            return await response.read()
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_any():
            size += len(chunk)
            if size > cap:
                raise ResponseTooLargeError(
                    f"the response passed the client's max_response_bytes of {cap:,}"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _log(
        path: str,
        params: Mapping[str, str],
        outcome: int | str,
        started: float,
        attempt: int,
        headers: Mapping[str, str] | None,
    ) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            elapsed = time.perf_counter() - started
            request_id = headers.get(REQUEST_ID_HEADER) if headers is not None else None
            shown = masked_params(params)
            logger.debug(
                "GET %s %s -> %s in %.1f ms (attempt %d, request id %s)",
                path,
                shown,
                outcome,
                elapsed * 1000,
                attempt,
                request_id or "-",
                extra=log_fields(
                    path,
                    shown,
                    attempt=attempt,
                    status=outcome if isinstance(outcome, int) else None,
                    elapsed=elapsed,
                    request_id=request_id,
                ),
            )

    async def aclose(self) -> None:
        """Closes the connection pool; safe to call twice."""
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


# ---------------------------------------------------------------------------------------------
# OpenTelemetry's aiohttp instrumentation, when an application switches it on for every session.

_INSTRUMENTED: Final = "_is_instrumented_by_opentelemetry"
"""The mark ``opentelemetry-instrumentation-aiohttp-client`` puts on the trace config it adds
to every ``ClientSession`` once ``AioHttpClientInstrumentor().instrument()`` has run."""


def masked_url(url: URL) -> URL:
    """``url`` with the values of its ``email``, ``userid`` and ``data`` (secure transmission's
    encrypted parameters) masked."""
    query = url.query
    if "email" not in query and "userid" not in query and "data" not in query:
        return url
    return url.with_query(masked_params(url.query))


def mask_instrumented_urls(session: aiohttp.ClientSession) -> None:
    """Makes the instrumentation's spans of ``session`` record URLs masked.

    Its trace config reads its URL filter from each request's context object (made by the
    config's context factory, a fresh config per session); the factory of this session's
    config is wrapped to set a filter that masks first, then applies the application's own
    ``url_filter``, if it gave one. Nothing changes for the application's other sessions.
    """
    for config in session.trace_configs:
        factory = getattr(config, "_trace_config_ctx_factory", None)
        if getattr(config, _INSTRUMENTED, False) and factory is not None:
            config._trace_config_ctx_factory = _masking_factory(factory)  # type: ignore[assignment]


def _masking_factory(factory: Callable[..., SimpleNamespace]) -> Callable[..., SimpleNamespace]:
    filters: dict[int, Callable[[URL], str]] = {}

    def make(**kwargs: Any) -> SimpleNamespace:
        ctx = factory(**kwargs)
        own = getattr(ctx, "url_filter", None)
        masking = filters.get(id(own))
        if masking is None:
            masking = filters[id(own)] = _masking_filter(own)
        ctx.url_filter = masking
        return ctx

    return make


def _masking_filter(own: object) -> Callable[[URL], str]:
    if callable(own):
        return lambda url: str(own(masked_url(url)))
    return lambda url: str(masked_url(url))
