"""The pytest plugin: its fixtures used directly here, and in a user's suite run by pytester."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest

from argos_async import ArgosClient, AuthenticationError, NotFoundError, ServerError
from argos_async.pytest_plugin import DEFAULT_CLIENT_OPTIONS
from argos_async.testing import ArgosEmulator, FaultPlan, QuotaExceeded, Status

pytest_plugins = ["pytester"]

pytestmark = [pytest.mark.anyio, pytest.mark.argos_emulator(submissions=400, seed=5)]


async def test_the_client_is_bound_to_the_running_emulator(
    argos_client: ArgosClient, argos_emulator: ArgosEmulator
) -> None:
    assert argos_client.base_url == argos_emulator.url
    sub_id = argos_emulator.dataset.ids[3]
    sub = await argos_client.get_submission(sub_id)
    assert sub.submission_id == sub_id
    with pytest.raises(NotFoundError):
        await argos_client.get_submission("not-a-real-id")
    assert [r.query.get("submission_id") for r in argos_emulator.requests] == [
        sub_id,
        "not-a-real-id",
    ]


async def test_the_module_marker_configures_the_emulator(
    argos_client: ArgosClient, argos_emulator: ArgosEmulator
) -> None:
    assert len(argos_emulator.dataset) == 400
    assert argos_emulator.dataset.seed == 5
    ids = [s.submission_id async for s in argos_client.iter_submissions(page_size=150)]
    assert ids == argos_emulator.dataset.expected_ids()


@pytest.mark.argos_emulator(seed=6, faults=FaultPlan([Status(503, at=1), Status(500, at=2)]))
async def test_a_test_marker_adds_to_the_module_marker_and_wins_on_conflicts(
    argos_client: ArgosClient, argos_emulator: ArgosEmulator
) -> None:
    assert len(argos_emulator.dataset) == 400  # from the module's marker
    assert argos_emulator.dataset.seed == 6  # the test's marker wins
    ids = [s.submission_id async for s in argos_client.iter_submissions()]
    assert ids == argos_emulator.dataset.expected_ids()
    assert argos_client.stats.retries == 2
    assert [r.status for r in argos_emulator.responses] == [503, 500, 200]


@pytest.mark.argos_client(max_retries=0)
@pytest.mark.argos_emulator(faults=FaultPlan([Status(502, at=1)]))
async def test_the_client_marker_overrides_the_defaults(argos_client: ArgosClient) -> None:
    with pytest.raises(ServerError) as caught:
        await argos_client.iter_submissions().__anext__()
    assert caught.value.status == 502


@pytest.mark.argos_client(api_key="not-the-key")
async def test_the_client_marker_can_replace_the_key(argos_client: ArgosClient) -> None:
    with pytest.raises(AuthenticationError):
        await argos_client.get_submission("anything")


def test_default_client_options_retry_fast() -> None:
    assert DEFAULT_CLIENT_OPTIONS["backoff_base"] <= 0.01
    with pytest.raises(TypeError):
        DEFAULT_CLIENT_OPTIONS["backoff_base"] = 1  # type: ignore[index]


class TestOptionFixtures:
    @pytest.fixture
    def argos_emulator_options(self) -> dict[str, object]:
        return {"submissions": 60, "start": date(2024, 1, 1), "api_key": "fixed-test-key"}

    @pytest.fixture
    def argos_client_options(self) -> dict[str, object]:
        return {"max_retries": 1}

    async def test_option_fixtures_apply_and_markers_override_them(
        self, argos_client: ArgosClient, argos_emulator: ArgosEmulator
    ) -> None:
        # The module's marker (submissions=400) overrides the fixture's 60; the rest applies.
        assert len(argos_emulator.dataset) == 400
        assert argos_emulator.dataset.start == date(2024, 1, 1)
        assert argos_emulator.api_key == "fixed-test-key"
        sub = await argos_client.get_submission(argos_emulator.dataset.ids[0])
        assert sub.submission_id == argos_emulator.dataset.ids[0]

    @pytest.mark.argos_emulator(faults=FaultPlan([QuotaExceeded(at=1)]))
    async def test_quota_is_not_retried(self, argos_client: ArgosClient) -> None:
        with pytest.raises(Exception, match="Limit Exceeded"):
            await argos_client.iter_submissions().__anext__()


class _Seen:
    client: ArgosClient | None = None
    emulator: ArgosEmulator | None = None


@pytest.fixture
async def closed_afterwards() -> AsyncIterator[_Seen]:
    """Set up before the plugin's fixtures (it comes first in the test's arguments), so torn
    down after them: checks they were closed."""
    seen = _Seen()
    yield seen
    assert seen.emulator is not None
    assert seen.client is not None
    with pytest.raises(RuntimeError, match="not running"):
        _ = seen.emulator.url
    with pytest.raises(RuntimeError, match="closed"):
        await seen.client.get_submission("x")


async def test_the_fixtures_are_closed_after_the_test(
    closed_afterwards: _Seen, argos_client: ArgosClient, argos_emulator: ArgosEmulator
) -> None:
    closed_afterwards.client = argos_client
    closed_afterwards.emulator = argos_emulator
    await argos_client.get_submission(argos_emulator.dataset.ids[0])


# ---------------------------------------------------------------------------------------------
# A user's test suite, run in a separate pytest process.

USER_CONFTEST = """
import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
"""

USER_TESTS = """
import pytest

from argos_async import ArgosClient, NotFoundError, ServerError
from argos_async.testing import ArgosEmulator, FaultPlan, Status

pytestmark = [pytest.mark.anyio, pytest.mark.argos_emulator(submissions=300, seed=3)]


async def test_lookups(argos_client: ArgosClient, argos_emulator: ArgosEmulator) -> None:
    wanted = argos_emulator.dataset.ids[:3]
    async for result in argos_client.batch_get_submissions(wanted, ordered=True):
        assert result.unwrap().submission_id == result.key
    with pytest.raises(NotFoundError):
        await argos_client.get_submission("missing")


async def test_listing(argos_client: ArgosClient, argos_emulator: ArgosEmulator) -> None:
    ids = [s.submission_id async for s in argos_client.iter_submissions(page_size=40)]
    assert ids == argos_emulator.dataset.expected_ids()
    assert len(ids) == 300


@pytest.mark.argos_emulator(
    faults=FaultPlan([Status(503, at=1), Status(429, retry_after=0.01, at=2)])
)
async def test_faults_are_retried(
    argos_client: ArgosClient, argos_emulator: ArgosEmulator
) -> None:
    ids = [s.submission_id async for s in argos_client.iter_submissions(userid="qa_runner_1")]
    assert ids == argos_emulator.dataset.expected_ids(userid="qa_runner_1")
    assert argos_client.stats.retries == 2
    assert [r.status for r in argos_emulator.responses[:2]] == [503, 429]


@pytest.mark.argos_client(max_retries=0)
@pytest.mark.argos_emulator(faults=FaultPlan([Status(500, at=1)]))
async def test_custom_client_option(argos_client: ArgosClient) -> None:
    with pytest.raises(ServerError):
        [s async for s in argos_client.iter_submissions()]
"""


def run_user_suite(pytester: pytest.Pytester, tests: str) -> pytest.RunResult:
    pytester.makeconftest(USER_CONFTEST)
    pytester.makepyfile(test_user=tests)
    # A process of its own: the inner session runs its own event loops and plugins.
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-W", "error", "--strict-markers", "-q", timeout=120
    )


def test_a_users_suite_runs_with_the_plugin(pytester: pytest.Pytester) -> None:
    result = run_user_suite(pytester, USER_TESTS)
    result.assert_outcomes(passed=4)


def test_option_fixtures_in_a_users_suite(pytester: pytest.Pytester) -> None:
    tests = """
import pytest

from argos_async import ArgosClient
from argos_async.testing import ArgosEmulator

pytestmark = pytest.mark.anyio


@pytest.fixture
def argos_emulator_options() -> dict[str, object]:
    return {"submissions": 25, "seed": 8}


@pytest.fixture
def argos_client_options() -> dict[str, object]:
    return {"prefetch": 0, "page_size_is_not_a_client_option": None}


async def test_fixture_options(argos_emulator: ArgosEmulator) -> None:
    assert len(argos_emulator.dataset) == 25
    assert argos_emulator.dataset.seed == 8


@pytest.mark.argos_emulator(submissions=10)
async def test_marker_beats_fixture(argos_emulator: ArgosEmulator) -> None:
    assert len(argos_emulator.dataset) == 10


async def test_unknown_client_option_is_an_error(argos_client: ArgosClient) -> None:
    pass


@pytest.mark.argos_emulator(10)
async def test_positional_marker_arguments_are_refused(argos_emulator: ArgosEmulator) -> None:
    pass
"""
    result = run_user_suite(pytester, tests)
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*page_size_is_not_a_client_option*",
            "*argos_emulator takes keyword arguments only*",
        ]
    )


def test_the_markers_are_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--markers", "-p", "no:cacheprovider", timeout=60)
    result.stdout.fnmatch_lines(["@pytest.mark.argos_emulator(**kwargs):*", "*argos_client*"])
    assert result.ret == 0
