"""The one place that talks HTTP: an aiohttp session that sends a GET and returns the answer.

It knows nothing about pages or models; it returns ``(status, headers, body)`` and turns
aiohttp's exceptions into ours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import NamedTuple

import aiohttp

from . import __version__
from .errors import APIConnectionError, APITimeoutError

USER_AGENT = f"argos-async/{__version__}"


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
        timeout: float,
        max_connections: int,
    ) -> None:
        self._base_url = base_url
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def _open(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running loop, rather than in __init__.
        if self._closed:
            raise RuntimeError("the client is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                base_url=self._base_url,
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                timeout=self._timeout,
                headers={"user-agent": USER_AGENT, "accept": "application/json"},
                # Proxies from the environment would see the key; opt in explicitly if needed.
                trust_env=False,
            )
        return self._session

    async def get(self, path: str, params: Mapping[str, str]) -> Response:
        """Sends one GET; never follows a redirect (a redirect could carry the key away)."""
        session = self._open()
        try:
            async with session.get(
                path,
                params=params,
                headers={"x-api-key": self._api_key},
                allow_redirects=False,
            ) as response:
                body = await response.read()
                return Response(response.status, response.headers, body)
        except asyncio.TimeoutError:
            raise APITimeoutError(f"GET {path} timed out") from None
        except aiohttp.ClientError as exc:
            # aiohttp's message may name the URL and so the query's email: keep only the kind.
            raise APIConnectionError(f"GET {path} failed: {type(exc).__name__}") from None

    async def aclose(self) -> None:
        """Closes the connection pool; safe to call twice."""
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
