"""The FastAPI recipe end to end: ASGI app in process, ArgosClient over loopback to the emulator."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from datetime import datetime
from typing import Any

import anyio
import httpx
import msgspec
import pytest
from fastapi import FastAPI
from starlette.requests import ClientDisconnect
from starlette.types import Message
from support import FAST, wait_until

from argos_async import ArgosClient, Page
from argos_async.testing import ArgosEmulator, Delay, FaultPlan, QuotaExceeded, Status
from examples.fastapi_app import DEFAULT_RETRY_AFTER, ListingInterrupted, create_app

pytestmark = pytest.mark.anyio

HEAVY_USER = "qa_runner_1"


def app_for(emu: ArgosEmulator, **client_options: Any) -> FastAPI:
    return create_app(
        api_key=emu.api_key,
        base_url=emu.url,
        client_options={**FAST, **client_options},
    )


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan started (as a server would), and an HTTP client for it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_lookup_returns_the_submission_as_json() -> None:
    async with ArgosEmulator(submissions=2000, seed=9) as emu, running(app_for(emu)) as http:
        item = emu.dataset.items[10]
        response = await http.get(f"/submissions/{item['submission_id']}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["submission_id"] == item["submission_id"]
    assert body["email"] == item["email"]
    assert body["userid"] == item.get("userid")
    assert parse_time(body["created_at"]) == parse_time(item["created_at"])
    assert body["kyc"]["result"] == item["kyc"]["result"]
    assert body["kyc"]["commentCode"] == item["kyc"].get("commentCode", [])
    # A single lookup's fields, under the API's own names.
    assert len(body["kyc"]["attempts"]) == len(item["kyc"].get("attempts", []))
    assert body["data"]["idType"] == item["data"]["idType"]


async def test_unknown_id_is_404() -> None:
    async with ArgosEmulator(submissions=100, seed=9) as emu, running(app_for(emu)) as http:
        response = await http.get("/submissions/nosuchsubmission")
    assert response.status_code == 404
    assert response.json()["error"] == "NotFoundError"
    assert "nosuchsubmission" in response.json()["detail"]
    assert emu.api_key not in response.text


async def test_blank_id_is_refused_before_any_request() -> None:
    async with ArgosEmulator(submissions=100, seed=9) as emu, running(app_for(emu)) as http:
        response = await http.get("/submissions/%20%20")
        assert response.status_code == 422
        assert emu.requests == []


@pytest.mark.parametrize("page_size", [2000, 7])
async def test_ndjson_stream_has_every_submission_of_the_user_in_server_order(
    page_size: int,
) -> None:
    async with ArgosEmulator(submissions=3000, seed=9) as emu, running(app_for(emu)) as http:
        response = await http.get(
            f"/users/{HEAVY_USER}/submissions", params={"page_size": page_size}
        )
        expected = emu.dataset.expected_ids(userid=HEAVY_USER)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.content.endswith(b"\n")
    lines = response.content.splitlines()
    items = [msgspec.json.decode(line) for line in lines]
    assert [item["submission_id"] for item in items] == expected
    assert len(expected) > 14
    assert {item["userid"] for item in items} == {HEAVY_USER}


async def test_a_user_without_submissions_gets_an_empty_stream() -> None:
    async with ArgosEmulator(submissions=300, seed=9) as emu, running(app_for(emu)) as http:
        response = await http.get("/users/nobody-at-all/submissions")
    assert response.status_code == 200
    assert response.content == b""


async def test_rate_limit_with_long_retry_after_is_503_with_retry_after() -> None:
    plan = FaultPlan([Status(429, retry_after=120, path="/v3/submission")])
    async with (
        ArgosEmulator(submissions=300, seed=9, faults=plan) as emu,
        running(app_for(emu)) as http,
    ):
        with anyio.fail_after(3):  # no request waits out the pause: each answers at once
            lookup = await http.get(f"/submissions/{emu.dataset.ids[0]}")
            # 120 s is over the client's max_retry_after: it gives up at once, no retry.
            assert len(emu.requests) == 1
            listing = await http.get(f"/users/{HEAVY_USER}/submissions")
    assert lookup.headers["retry-after"] == "120"
    # The client answers the listing from its own pause (capped at max_retry_after, longer
    # than the app's deadline) without asking the server again, and says so.
    assert 1 <= int(listing.headers["retry-after"]) <= 120
    assert len(emu.requests) == 1
    assert lookup.json()["error"] == "RateLimitError"
    assert listing.json()["error"] == "ClientPausedError"
    for response in (lookup, listing):
        assert response.status_code == 503
        assert emu.api_key not in response.text
    assert HEAVY_USER not in listing.text


async def test_fractional_retry_after_is_rounded_up() -> None:
    plan = FaultPlan([Status(429, retry_after=61.2, path="/v3/submission")])
    async with (
        ArgosEmulator(submissions=300, seed=9, faults=plan) as emu,
        running(app_for(emu)) as http,
    ):
        response = await http.get(f"/submissions/{emu.dataset.ids[0]}")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "62"


async def test_rate_limit_without_retry_after_is_503_with_the_default_wait() -> None:
    plan = FaultPlan([Status(429, path="/v3/submission")])
    async with (
        ArgosEmulator(submissions=300, seed=9, faults=plan) as emu,
        running(app_for(emu, max_retries=1)) as http,
    ):
        lookup = await http.get(f"/submissions/{emu.dataset.ids[0]}")
        assert len(emu.requests) == 2  # retried once with backoff before giving up
        listing = await http.get(f"/users/{HEAVY_USER}/submissions")
    assert all("retry-after" not in r.headers for r in emu.requests)
    for response in (lookup, listing):
        assert response.status_code == 503
        assert response.headers["retry-after"] == str(DEFAULT_RETRY_AFTER)
        assert response.json()["error"] == "RateLimitError"
        assert response.json()["detail"] == "Too Many Requests"


async def test_quota_exceeded_is_503() -> None:
    plan = FaultPlan([QuotaExceeded(path="/v3/submission")])
    async with (
        ArgosEmulator(submissions=300, seed=9, faults=plan) as emu,
        running(app_for(emu)) as http,
    ):
        response = await http.get(f"/submissions/{emu.dataset.ids[0]}")
        assert len(emu.requests) == 1  # never retried
    assert response.status_code == 503
    assert response.json()["error"] == "QuotaExceededError"
    # Until 00:00 UTC.
    assert 0 <= int(response.headers["retry-after"]) <= 86_400


async def test_server_errors_after_retries_are_502() -> None:
    plan = FaultPlan([Status(500, path="/v3/submission")])
    async with (
        ArgosEmulator(submissions=300, seed=9, faults=plan) as emu,
        running(app_for(emu, max_retries=3)) as http,
    ):
        response = await http.get(f"/submissions/{emu.dataset.ids[0]}")
        assert len(emu.requests) == 4
    assert response.status_code == 502
    assert response.json() == {"error": "ServerError", "detail": "Internal server error"} | {
        "upstream_request_id": response.json()["upstream_request_id"]
    }
    assert "retry-after" not in response.headers


@pytest.mark.parametrize("options", [{"timeout": 0.2}, {"deadline": 0.3}])
async def test_an_upstream_that_does_not_answer_in_time_is_504(options: dict[str, float]) -> None:
    plan = FaultPlan([Delay(5, path="/v3/submission")])
    async with (
        ArgosEmulator(submissions=300, seed=9, faults=plan) as emu,
        running(app_for(emu, max_retries=0, **options)) as http,
    ):
        with anyio.fail_after(3):
            lookup = await http.get(f"/submissions/{emu.dataset.ids[0]}")
            listing = await http.get(f"/users/{HEAVY_USER}/submissions")
        await wait_until(lambda: emu.in_flight == 0)
    for response in (lookup, listing):
        assert response.status_code == 504
        assert response.json()["error"] == "APITimeoutError"
        assert "retry-after" not in response.headers
        assert emu.api_key not in response.text
    assert HEAVY_USER not in listing.text


async def test_a_connection_error_is_502() -> None:
    async with ArgosEmulator(submissions=10, seed=9) as emu:
        app = app_for(emu, max_retries=1)
    # The emulator is gone: nothing listens on its port any more.
    async with running(app) as http:
        response = await http.get("/submissions/anything")
    assert response.status_code == 502
    assert response.json()["error"] == "APIConnectionError"


async def test_wrong_key_is_502_and_the_key_is_never_shown() -> None:
    async with ArgosEmulator(submissions=100, seed=9) as emu:
        app = create_app(api_key="sk-wrong-key-123", base_url=emu.url)
        async with running(app) as http:
            lookup = await http.get(f"/submissions/{emu.dataset.ids[0]}")
            listing = await http.get(f"/users/{HEAVY_USER}/submissions")
    for response in (lookup, listing):
        assert response.status_code == 502
        assert response.json()["error"] == "AuthenticationError"
        assert "sk-wrong-key-123" not in response.text
        assert emu.api_key not in response.text


async def test_configuration_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    async with ArgosEmulator(submissions=100, seed=9) as emu:
        monkeypatch.setenv("ARGOS_API_KEY", emu.api_key)
        monkeypatch.setenv("ARGOS_BASE_URL", emu.url)
        async with running(create_app()) as http:
            response = await http.get(f"/submissions/{emu.dataset.ids[0]}")
    assert response.status_code == 200


async def test_startup_fails_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARGOS_API_KEY", raising=False)
    app = create_app(base_url="http://127.0.0.1:9")
    with pytest.raises(ValueError, match="api_key"):
        async with app.router.lifespan_context(app):
            pass


async def test_one_client_per_app_closed_on_shutdown() -> None:
    async with ArgosEmulator(submissions=100, seed=9) as emu:
        app = app_for(emu)
        async with running(app) as http:
            argos = app.state.argos
            assert isinstance(argos, ArgosClient)
            for sub_id in emu.dataset.ids[:3]:
                assert (await http.get(f"/submissions/{sub_id}")).status_code == 200
            assert app.state.argos is argos
        assert not hasattr(app.state, "argos")
        with pytest.raises(RuntimeError, match="closed"):
            await argos.get_submission(emu.dataset.ids[0])


async def test_a_failure_mid_stream_aborts_the_response() -> None:
    # Page 1 is fetched before answering; page 2 fails once the body is streaming.
    plan = FaultPlan([Status(500, at=2)])
    async with (
        ArgosEmulator(submissions=3000, seed=9, faults=plan) as emu,
        running(app_for(emu, max_retries=0)) as http,
    ):
        with pytest.raises(ListingInterrupted, match="500"):
            await http.get(f"/users/{HEAVY_USER}/submissions", params={"page_size": 5})


@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
async def test_a_client_that_goes_away_closes_the_listing(
    spec_version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Driven at the ASGI level: the client goes away while the app is sending the first chunk
    and the next page is being read ahead. Before ASGI 2.4 the server reports it through
    ``receive``, from 2.4 on ``send`` raises OSError. The listing must be closed by the time
    the app returns, not later by the garbage collector's finalizer."""
    async with ArgosEmulator(submissions=3000, seed=9, latency=0.05) as emu:
        app = app_for(emu)
        async with app.router.lifespan_context(app):
            listings = track_listings(app.state.argos, monkeypatch)
            gone = anyio.Event()
            messages: list[Message] = []
            requested = False

            async def receive() -> Message:
                nonlocal requested
                if not requested:
                    requested = True
                    return {"type": "http.request", "body": b"", "more_body": False}
                await gone.wait()
                return {"type": "http.disconnect"}

            async def send(message: Message) -> None:
                if message["type"] == "http.response.body":
                    gone.set()
                    if spec_version == "2.4":
                        raise OSError("connection reset by peer")
                    await anyio.sleep_forever()  # a client that stopped reading
                messages.append(message)

            path = f"/users/{HEAVY_USER}/submissions"
            scope = {
                "type": "http",
                "asgi": {"version": "3.0", "spec_version": spec_version},
                "http_version": "1.1",
                "method": "GET",
                "scheme": "http",
                "path": path,
                "raw_path": path.encode(),
                "query_string": b"page_size=5",
                "root_path": "",
                "headers": [(b"host", b"test")],
                "client": ("127.0.0.1", 50000),
                "server": ("test", 80),
            }
            with anyio.fail_after(5):
                if spec_version == "2.4":
                    with pytest.raises(ClientDisconnect):
                        await app(scope, receive, send)
                else:
                    await app(scope, receive, send)
            assert listings == ["closed"]
            await wait_until(lambda: emu.in_flight == 0)
            assert len(emu.requests) <= 2  # the first page, and the one read ahead
    assert [m["type"] for m in messages] == ["http.response.start"]
    assert messages[0]["status"] == 200


async def test_a_finished_stream_closes_the_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    async with ArgosEmulator(submissions=3000, seed=9) as emu:
        app = app_for(emu)
        async with running(app) as http:
            listings = track_listings(app.state.argos, monkeypatch)
            response = await http.get(f"/users/{HEAVY_USER}/submissions", params={"page_size": 9})
            assert response.status_code == 200
            assert listings == ["closed"]


def track_listings(argos: ArgosClient, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Wraps ``argos.iter_pages`` so that each listing notes "open", then "closed" once it has
    been closed or run to its end."""
    states: list[str] = []
    original = argos.iter_pages

    def iter_pages(**kwargs: Any) -> AsyncGenerator[Page, None]:
        inner = original(**kwargs)

        async def tracked() -> AsyncGenerator[Page, None]:
            index = len(states)
            states.append("open")
            try:
                async with aclosing(inner):
                    async for page in inner:
                        yield page
            finally:
                states[index] = "closed"

        return tracked()

    monkeypatch.setattr(argos, "iter_pages", iter_pages)
    return states


def test_importing_argos_async_does_not_import_fastapi() -> None:
    code = "import argos_async, argos_async.testing, sys; assert 'fastapi' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
