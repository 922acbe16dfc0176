"""pytest fixtures for code that uses argos_async: a running emulator and a client bound to it.

The plugin is registered through the ``pytest11`` entry point, so installing argos_async is
enough. Its fixtures are async and run under anyio's pytest plugin (installed with anyio): mark
the tests ``@pytest.mark.anyio`` and pin the backend to asyncio, since the emulator and the
client are aiohttp-based (without the pin, anyio also runs each test on trio when trio is
installed)::

    # conftest.py
    import pytest

    @pytest.fixture
    def anyio_backend() -> str:
        return "asyncio"

    # test_kyc.py
    import pytest
    from argos_async import ArgosClient
    from argos_async.testing import ArgosEmulator, FaultPlan, Status

    pytestmark = pytest.mark.anyio

    async def test_lookup(argos_client: ArgosClient, argos_emulator: ArgosEmulator) -> None:
        sub_id = argos_emulator.dataset.ids[0]
        sub = await argos_client.get_submission(sub_id)
        assert sub.submission_id == sub_id

    @pytest.mark.argos_emulator(submissions=500, faults=FaultPlan([Status(503, at=1)]))
    @pytest.mark.argos_client(max_retries=2)
    async def test_listing_survives_a_503(argos_client: ArgosClient) -> None:
        subs = [s async for s in argos_client.iter_submissions(start_date="2025-12-01")]
        assert subs
        assert argos_client.stats.retries == 1

Fixtures:

``argos_emulator``
    A started :class:`~argos_async.testing.ArgosEmulator`, closed after the test. Its keyword
    arguments come from the ``argos_emulator_options`` fixture (default ``{}``: the
    emulator's own defaults, 10,000 submissions with seed 7), updated by every
    ``@pytest.mark.argos_emulator(**kwargs)`` marker that applies to the test: module
    (``pytestmark``), then class, then the test itself, the closest one winning key by key.
``argos_client``
    An :class:`~argos_async.ArgosClient` with the emulator's ``api_key`` and ``base_url``,
    closed after the test. It retries quickly (:data:`DEFAULT_CLIENT_OPTIONS`) so fault tests
    take milliseconds; the ``argos_client_options`` fixture and
    ``@pytest.mark.argos_client(**kwargs)`` markers override any argument, the key and URL
    included (``@pytest.mark.argos_client(api_key="wrong")``, ``max_retries=0``).
``argos_emulator_options``, ``argos_client_options``
    Dicts of defaults for a whole directory or module: override them in a ``conftest.py`` or
    a test module::

        @pytest.fixture
        def argos_emulator_options() -> dict[str, object]:
            return {"submissions": 2_000, "seed": 11, "latency": 0.001}

Both fixtures are function-scoped: every test gets a fresh server, so request records
(``argos_emulator.requests``) and fault plans start over. Override ``argos_emulator`` itself to
point ``argos_client`` at an emulator built another way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from types import MappingProxyType
from typing import Any

import pytest

from ._client import ArgosClient
from .testing import ArgosEmulator

__all__ = [
    "DEFAULT_CLIENT_OPTIONS",
    "argos_client",
    "argos_client_options",
    "argos_emulator",
    "argos_emulator_options",
]

DEFAULT_CLIENT_OPTIONS: Mapping[str, Any] = MappingProxyType(
    {"backoff_base": 0.001, "backoff_max": 0.01}
)
"""What ``argos_client`` passes to ``ArgosClient`` unless told otherwise: fast retries."""

_EMULATOR_MARKER = "argos_emulator"
_CLIENT_MARKER = "argos_client"


def pytest_configure(config: pytest.Config) -> None:
    """Registers the markers, so that ``--strict-markers`` accepts them."""
    config.addinivalue_line(
        "markers",
        f"{_EMULATOR_MARKER}(**kwargs): keyword arguments for the ArgosEmulator of the "
        "argos_emulator fixture (submissions, seed, faults, latency, ...)",
    )
    config.addinivalue_line(
        "markers",
        f"{_CLIENT_MARKER}(**kwargs): keyword arguments for the ArgosClient of the "
        "argos_client fixture (max_retries, timeout, prefetch, ...)",
    )


@pytest.fixture
def argos_emulator_options() -> dict[str, Any]:
    """Keyword arguments for the ``argos_emulator`` fixture's ArgosEmulator; override to
    change them for a directory or a module (markers still override these)."""
    return {}


@pytest.fixture
def argos_client_options() -> dict[str, Any]:
    """Keyword arguments for the ``argos_client`` fixture's ArgosClient, over
    ``DEFAULT_CLIENT_OPTIONS``; override to change them (markers still override these)."""
    return {}


@pytest.fixture
async def argos_emulator(
    request: pytest.FixtureRequest,
    anyio_backend: object,
    argos_emulator_options: Mapping[str, Any],
) -> AsyncIterator[ArgosEmulator]:
    """A running ArgosEmulator, configured by ``argos_emulator_options`` and
    ``@pytest.mark.argos_emulator(...)``; closed after the test."""
    _require_asyncio(anyio_backend)
    options = {**argos_emulator_options, **_marker_options(request, _EMULATOR_MARKER)}
    async with ArgosEmulator(**options) as emulator:
        yield emulator


@pytest.fixture
async def argos_client(
    request: pytest.FixtureRequest,
    argos_emulator: ArgosEmulator,
    argos_client_options: Mapping[str, Any],
) -> AsyncIterator[ArgosClient]:
    """An ArgosClient bound to ``argos_emulator``, with fast retries by default, configured by
    ``argos_client_options`` and ``@pytest.mark.argos_client(...)``; closed after the test."""
    options: dict[str, Any] = {
        "api_key": argos_emulator.api_key,
        "base_url": argos_emulator.url,
        **DEFAULT_CLIENT_OPTIONS,
        **argos_client_options,
        **_marker_options(request, _CLIENT_MARKER),
    }
    async with ArgosClient(**options) as client:
        yield client


def _marker_options(request: pytest.FixtureRequest, name: str) -> dict[str, Any]:
    """The keyword arguments of every ``name`` marker on the test, the closest one winning."""
    merged: dict[str, Any] = {}
    # iter_markers yields the closest first (function, class, module): apply it last.
    for marker in reversed(list(request.node.iter_markers(name))):
        if marker.args:
            raise TypeError(
                f"@pytest.mark.{name} takes keyword arguments only, got {marker.args!r}"
            )
        merged.update(marker.kwargs)
    return merged


def _require_asyncio(anyio_backend: object) -> None:
    name = anyio_backend[0] if isinstance(anyio_backend, tuple) else anyio_backend
    if name != "asyncio":
        pytest.fail(
            f"argos_emulator runs on asyncio only, not {name!r}: define an anyio_backend "
            'fixture returning "asyncio"',
            pytrace=False,
        )
