"""The FastAPI recipe end to end: ASGI app in process, ArgosClient over loopback to the emulator."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import msgspec
import pytest
from aiohttp import web
from fastapi import FastAPI
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from support import FAST, wait_until

from argos_async import ArgosClient, RawPage
from argos_async.testing import (
    ArgosEmulator,
    Delay,
    DropConnection,
    Fault,
    FaultContext,
    FaultPlan,
    QuotaExceeded,
    Status,
)
from examples.fastapi_app import DEFAULT_RETRY_AFTER, create_app

pytestmark = pytest.mark.anyio

HEAVY_USER = "qa_runner_1"
PATH = "/v3/submission"
APP_LOGGER = "examples.fastapi_app"


@dataclass(frozen=True, repr=False)
class Recorded(Fault):
    """Changes nothing; keeps every 200 body the emulator sends on ``path``, in order."""

    bodies: list[bytes] = field(default_factory=list)

    def rewrite_body(self, body: bytes, ctx: FaultContext) -> bytes:
        self.bodies.append(body)
        return body


@dataclass(frozen=True, repr=False)
class Body(Fault):
    """Answers with this 200 body instead of the emulator."""

    body: bytes = b""

    async def respond(self, request: web.Request, ctx: FaultContext) -> web.StreamResponse | None:
        return web.Response(body=self.body, content_type="application/json")


def items_in(body: bytes) -> list[bytes]:
    """The items of a response body, each as its bytes in the body."""
    envelope = msgspec.json.decode(body, type=dict[str, msgspec.Raw])
    return [bytes(raw) for raw in msgspec.json.decode(envelope["Items"], type=list[msgspec.Raw])]


def app_for(emu: ArgosEmulator, **client_options: Any) -> FastAPI:
    return create_app(
        api_key=emu.api_key,
        base_url=emu.url,
        client_options={**FAST, **client_options},
    )


@asynccontextmanager
async def running(
    app: FastAPI, sent: list[Message] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan started (as a server would), and an HTTP client for it;
    every ASGI message the app sends goes into ``sent`` too."""
    async with app.router.lifespan_context(app):
        asgi: ASGIApp = app if sent is None else recording(app, sent)
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


def recording(app: ASGIApp, sent: list[Message]) -> ASGIApp:
    async def recorded(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_and_record(message: Message) -> None:
            sent.append(message)
            await send(message)

        await app(scope, receive, send_and_record)

    return recorded


async def test_lookup_answers_with_the_item_exactly_as_the_api_sent_it() -> None:
    recorder = Recorded(path=PATH)
    async with (
        ArgosEmulator(submissions=2000, seed=9, faults=FaultPlan([recorder])) as emu,
        running(app_for(emu)) as http,
    ):
        item = emu.dataset.items[10]
        response = await http.get(f"/submissions/{item['submission_id']}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    [body] = recorder.bodies
    assert response.content == items_in(body)[0]
    assert response.json()["submission_id"] == item["submission_id"]
    # A Submission encoded again would add a null for every field the API left out.
    assert b"null" not in response.content


async def test_lookup_passes_an_odd_item_on_byte_for_byte() -> None:
    # Spacing, a newline, an escape, a trailing zero, another timestamp text and a field the
    # client does not know: decoded and encoded again, every one of them would change.
    item = (
        b'{ "submission_id" : "odd-1",\n  "name": "Jos\\u00e9", "score": 1.50,'
        b' "created_at": "2025-06-01 10:00:00+00:00", "kyc": {"result": "approved"},'
        b' "x_new_field": [1, {}] }'
    )
    plan = FaultPlan([Body(body=b'{"Items": [' + item + b"]}", path=PATH)])
    async with (
        ArgosEmulator(submissions=10, seed=9, faults=plan) as emu,
        running(app_for(emu)) as http,
    ):
        response = await http.get("/submissions/odd-1")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == item


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
async def test_ndjson_stream_has_every_submission_of_the_user_as_sent_in_server_order(
    page_size: int,
) -> None:
    recorder = Recorded(path=PATH)
    async with (
        ArgosEmulator(submissions=3000, seed=9, faults=FaultPlan([recorder])) as emu,
        running(app_for(emu)) as http,
    ):
        response = await http.get(
            f"/users/{HEAVY_USER}/submissions", params={"page_size": page_size}
        )
        expected = emu.dataset.expected_ids(userid=HEAVY_USER)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.content.endswith(b"\n")
    lines = response.content.splitlines()
    assert lines == [item for body in recorder.bodies for item in items_in(body)]
    items = [msgspec.json.decode(line) for line in lines]
    assert [item["submission_id"] for item in items] == expected
    assert len(expected) > 14
    assert len(recorder.bodies) == -(-len(expected) // page_size)
    assert {item["userid"] for item in items} == {HEAVY_USER}


async def test_ndjson_items_no_submission_could_be_built_from_still_come_as_sent() -> None:
    # A field of the wrong type would fail a decoded page; the listing builds no Submission.
    odd = b'{"submission_id":"odd-1","kyc":"not an object","created_at":7, "extra": 1.50}'
    # A pretty-printed item is the one change: made compact, to keep one item per line.
    pretty = b'{\n  "submission_id": "odd-2",\r\n  "kyc": {"result": "approved"}\n}'
    plan = FaultPlan([Body(body=b'{"Items": [' + odd + b", " + pretty + b"]}", path=PATH)])
    async with (
        ArgosEmulator(submissions=10, seed=9, faults=plan) as emu,
        running(app_for(emu)) as http,
    ):
        response = await http.get(f"/users/{HEAVY_USER}/submissions")
    assert response.status_code == 200
    assert response.content.split(b"\n") == [
        odd,
        b'{"submission_id":"odd-2","kyc":{"result":"approved"}}',
        b"",
    ]


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


@pytest.mark.parametrize(
    ("fault", "kind", "detail", "upstream_status"),  # detail: a pattern
    [
        pytest.param(
            # Page 2 and its one retry: the client gives up.
            Status(503, at={2, 3}),
            "ServerError",
            re.escape("Service Unavailable"),
            503,
            id="503-after-retries",
        ),
        pytest.param(
            # Never retried. The upstream names the user: the client masks it.
            Status(400, message=f"Invalid userid {HEAVY_USER}", at=2),
            "BadRequestError",
            re.escape("Invalid userid q***"),
            400,
            id="400-naming-the-user",
        ),
        pytest.param(
            # No answer, so no upstream status or request id.
            DropConnection(at={2, 3}),
            "APIConnectionError",
            "GET /v3/submission failed: (ClientPayloadError|ServerDisconnectedError)",
            None,
            id="connection-dropped",
        ),
    ],
)
async def test_a_failure_mid_stream_ends_the_body_with_an_error_line_and_logs_one_line(
    fault: Fault,
    kind: str,
    detail: str,
    upstream_status: int | None,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Page 1 is fetched before answering; page 2 fails once the body is streaming.
    recorder = Recorded(path=PATH)
    messages: list[Message] = []
    caplog.set_level(logging.DEBUG)
    async with (
        ArgosEmulator(submissions=3000, seed=9, faults=FaultPlan([fault, recorder])) as emu,
        running(app_for(emu, max_retries=1), messages) as http,
    ):
        response = await http.get(f"/users/{HEAVY_USER}/submissions", params={"page_size": 5})
    assert response.status_code == 200
    *items, error_line, end = response.content.split(b"\n")
    # The first page's items as sent, then the error line, then the body's last newline.
    assert items == items_in(recorder.bodies[0])
    assert len(items) == 5
    assert end == b""
    [(key, error)] = msgspec.json.decode(error_line).items()
    assert key == "error"
    assert list(error) == ["type", "detail", "upstream_status", "upstream_request_id"]
    assert error["type"] == kind
    assert re.fullmatch(detail, error["detail"])
    assert error["upstream_status"] == upstream_status
    if upstream_status is None:
        assert error["upstream_request_id"] is None
    else:
        assert isinstance(error["upstream_request_id"], str)
        assert error["upstream_request_id"]
    # What the service logged: every record but those of the test's own HTTP client.
    logged = [r for r in caplog.records if r.name.partition(".")[0] not in ("httpx", "httpcore")]
    for text in (error_line.decode(), *(r.getMessage() for r in logged)):
        assert HEAVY_USER not in text
        assert emu.api_key not in text
    # The response ended as a finished one does, not cut off.
    assert messages[0]["type"] == "http.response.start"
    assert messages[-1] == {"type": "http.response.body", "body": b"", "more_body": False}

    # One log line for the failure: the request (user id masked), the items out, the error.
    [record] = [r for r in logged if r.name == APP_LOGGER]
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert record.stack_info is None
    message = record.getMessage()
    assert "\n" not in message
    assert message.startswith("GET /users/q***/submissions failed after 5 items")
    assert re.search(f"{kind}: .*{detail}", message)
    # Nothing anywhere logged a traceback or printed one.
    assert all(r.exc_info is None for r in caplog.records)
    assert "Traceback" not in caplog.text
    assert "Traceback" not in capfd.readouterr().err


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
    """Wraps ``argos.iter_raw_pages`` so that each listing notes "open", then "closed" once it
    has been closed or run to its end."""
    states: list[str] = []
    original = argos.iter_raw_pages

    def iter_raw_pages(**kwargs: Any) -> AsyncGenerator[RawPage, None]:
        inner = original(**kwargs)

        async def tracked() -> AsyncGenerator[RawPage, None]:
            index = len(states)
            states.append("open")
            try:
                async with aclosing(inner):
                    async for page in inner:
                        yield page
            finally:
                states[index] = "closed"

        return tracked()

    monkeypatch.setattr(argos, "iter_raw_pages", iter_raw_pages)
    return states


def test_importing_argos_async_does_not_import_fastapi() -> None:
    code = "import argos_async, argos_async.testing, sys; assert 'fastapi' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()


def test_the_access_log_shows_user_ids_masked() -> None:
    create_app(api_key="k", base_url="http://127.0.0.1:9")  # installs the filter
    access = logging.getLogger("uvicorn.access")
    record = access.makeRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/users/qa_runner_1/submissions?page_size=100", "1.1", 200),
        None,
    )  # fmt: skip
    assert access.filter(record)
    line = record.getMessage()
    assert "qa_runner_1" not in line
    assert '"GET /users/q***/submissions?page_size=100 HTTP/1.1" 200' in line
    other = access.makeRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/submissions/abc123", "1.1", 404), None,
    )  # fmt: skip
    assert access.filter(other)
    assert "/submissions/abc123" in other.getMessage()
