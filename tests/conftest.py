"""Shared fixtures: the anyio runner on asyncio, a guard against leaked tasks, and a PostgreSQL
server for the tests that load into one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from pg import PostgresServer, postgres_server
from support import wait_until


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class _AsyncioErrorLog(logging.Handler):
    """Collects what asyncio logs at ERROR: destroyed pending tasks, unretrieved exceptions."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(autouse=True)
def asyncio_error_log() -> Iterator[_AsyncioErrorLog]:
    handler = _AsyncioErrorLog()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
    assert not handler.messages, f"asyncio logged errors: {handler.messages}"


@pytest.fixture(autouse=True)
async def no_leaked_tasks(anyio_backend: str) -> AsyncIterator[None]:
    """Fails a test that leaves tasks running once it and its fixtures are done.

    Autouse fixtures are set up first and torn down last, so this check runs after the
    test's emulator and client have been closed.
    """
    yield

    def others() -> list[asyncio.Task[object]]:
        return [t for t in asyncio.all_tasks() if not t.done() and not _is_runner_task(t)]

    await wait_until(
        lambda: not others(),
        timeout=0.5,
        message=lambda: f"tasks left running after the test: {others()}",
    )


def _is_runner_task(task: asyncio.Task[object]) -> bool:
    """anyio's pytest runner keeps tasks of its own that run tests and fixtures."""
    return asyncio.current_task() is task or "_call_in_runner_task" in repr(task.get_coro())


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session (see ``pg.py``)."""
    with postgres_server() as server:
        yield server
