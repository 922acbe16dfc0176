"""ArgosClient's single lookups, configuration and error mapping, against the emulator."""

from __future__ import annotations

import logging
import re
import socket
import traceback
from typing import Any

import pytest
from support import client_for

from argos_async import (
    DEFAULT_BASE_URL,
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    ArgosClient,
    AuthenticationError,
    BadRequestError,
    KycResult,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
)
from argos_async.testing import (
    ArgosEmulator,
    Delay,
    DropConnection,
    FaultPlan,
    Redirect,
    Status,
)

pytestmark = pytest.mark.anyio


@pytest.mark.argos_emulator(submissions=300, seed=21)
async def test_get_submission_returns_the_full_single_form(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    wanted = next(
        item
        for item in argos_emulator.dataset.items
        if item["kyc"].get("attempts") and "aml" in item
    )
    sub = await argos_client.get_submission(wanted["submission_id"])
    kyc_only = await argos_client.get_submission(wanted["submission_id"], request_type="kyc")
    assert argos_emulator.requests[0].query == {"submission_id": wanted["submission_id"]}
    assert sub.submission_id == wanted["submission_id"]
    assert sub.email == wanted["email"]
    assert sub.kyc is not None
    assert sub.kyc.result == wanted["kyc"]["result"]
    assert len(sub.kyc.attempts) == len(wanted["kyc"]["attempts"])  # single lookups only
    assert sub.aml is not None
    assert sub.aml.current_status == wanted["aml"]["currentstatus"]
    assert sub.created_at is not None
    assert (
        sub.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        == (wanted["created_at"])
    )
    assert kyc_only.kyc is not None
    assert kyc_only.data is None
    assert kyc_only.email is None


@pytest.mark.argos_emulator(submissions=300, seed=21)
async def test_list_items_lack_the_single_only_fields(argos_client: ArgosClient) -> None:
    subs = [s async for s in argos_client.iter_submissions()]
    assert all(s.kyc is None or not s.kyc.attempts for s in subs)
    assert any(s.kyc is not None and s.kyc.result == KycResult.APPROVED for s in subs)


@pytest.mark.argos_emulator(submissions=10, seed=1)
async def test_unknown_submission_is_not_found_with_the_responses_request_id(
    caplog: pytest.LogCaptureFixture, argos_client: ArgosClient
) -> None:
    caplog.set_level(logging.DEBUG, logger="argos_async")
    with pytest.raises(NotFoundError, match="zzzzzzzzzzzzzzzz") as info:
        await argos_client.get_submission("zzzzzzzzzzzzzzzz")
    error = info.value
    assert error.status == 200
    assert error.request_id is not None
    assert re.fullmatch(r"[0-9a-f-]{36}", error.request_id)
    assert f"(request id {error.request_id})" in str(error)
    # The same id as the DEBUG line of that request: the one the emulator sent.
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert " -> 200 in " in line
    assert line.endswith(f" ms (attempt 1, request id {error.request_id})")


@pytest.mark.argos_emulator(submissions=2_000, seed=13)
async def test_applicant_submissions(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    applicant_id = argos_emulator.dataset.shared_applicant_ids[0]
    expected = argos_emulator.dataset.for_applicant(applicant_id)
    dupes = await argos_client.get_applicant_submissions(applicant_id)
    nobody = await argos_client.get_applicant_submissions("no-such-applicant")
    assert argos_emulator.requests[0].path == "/v3/submission/applicant"
    assert argos_emulator.requests[0].query == {"applicant_id": applicant_id}
    assert len(dupes) >= 2
    assert [d.submission_id for d in dupes] == [e["submission_id"] for e in expected]
    assert {d.email for d in dupes} == {e["email"] for e in expected}
    assert nobody == []


@pytest.mark.argos_emulator(submissions=10, seed=1)
@pytest.mark.argos_client(api_key="not-the-key")
async def test_wrong_key_is_an_authentication_error_with_a_request_id(
    argos_client: ArgosClient,
) -> None:
    with pytest.raises(AuthenticationError) as info:
        await argos_client.get_submission("abc")
    assert info.value.status == 403
    assert info.value.message == "Forbidden"
    assert info.value.request_id
    assert "not-the-key" not in str(info.value)


@pytest.mark.argos_emulator(submissions=10, seed=1, ip_allowlist=["192.0.2.10"])
async def test_ip_not_allow_listed_is_an_authentication_error_with_its_reason(
    argos_client: ArgosClient,
) -> None:
    with pytest.raises(AuthenticationError, match="explicit deny") as info:
        await argos_client.get_submission("abc")
    assert info.value.status == 403


@pytest.mark.argos_emulator(submissions=50, seed=1, response_byte_limit=200)
async def test_a_single_response_over_the_server_limit_is_payload_too_large(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    with pytest.raises(PayloadTooLargeError) as info:
        await argos_client.get_submission(argos_emulator.dataset.ids[0])
    assert len(argos_emulator.requests) == 1  # a 413 is not retried as it is
    assert info.value.status == 413


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_connection_refused_is_a_connection_error_after_the_retries() -> None:
    async with ArgosClient(
        api_key="k", base_url=f"http://127.0.0.1:{free_port()}", backoff_base=0.001
    ) as argos:
        with pytest.raises(APIConnectionError, match="GET /v3/submission") as info:
            await argos.with_options(max_retries=2).get_submission("abc")
    assert info.value.attempts == 3


@pytest.mark.argos_emulator(submissions=50, seed=1)
async def test_key_travels_only_in_the_header(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    key = argos_emulator.api_key
    await argos_client.get_submission(argos_emulator.dataset.ids[0])
    async for _ in argos_client.iter_submissions(page_size=10, max_items=30):
        pass
    assert key not in repr(argos_client)
    for request in argos_emulator.requests:
        assert request.headers["x-api-key"] == key
        assert key not in str(request.query)
        assert key not in request.path


SECRET = "sk-live-Zq8xVt3RmP0aLkW7"
ERROR_KINDS = ["403", "429 over the cap", "dropped", "timeout", "refused", "redirect", "not found"]


@pytest.mark.parametrize("kind", ERROR_KINDS)
async def test_no_error_shows_the_key(kind: str) -> None:
    """Neither the message, the repr, the body excerpt nor the formatted traceback (with its
    chained causes) of any error the client raises holds the key."""
    faults = {
        "429 over the cap": Status(429, retry_after=600, path="/v3/submission"),
        "dropped": DropConnection(path="/v3/submission"),
        "timeout": Delay(5.0, path="/v3/submission"),
    }
    async with ArgosEmulator(submissions=10, seed=1, api_key=SECRET) as other:
        fault = faults.get(kind)
        if kind == "redirect":
            fault = Redirect(other.url, path="/v3/submission")
        plan = FaultPlan([] if fault is None else [fault])
        async with ArgosEmulator(submissions=10, seed=1, api_key=SECRET, faults=plan) as emu:
            key = "wrong-" + SECRET if kind == "403" else SECRET
            url = f"http://127.0.0.1:{free_port()}" if kind == "refused" else emu.url
            async with ArgosClient(
                api_key=key, base_url=url, timeout=0.2, max_retries=1, backoff_base=0.001
            ) as argos:
                with pytest.raises(APIError) as info:
                    await argos.get_submission(
                        "zzzzzzzzzzzzzzzz" if kind == "not found" else emu.dataset.ids[0]
                    )
    error = info.value
    expected: type[APIError] = {
        "403": AuthenticationError,
        "429 over the cap": RateLimitError,
        "dropped": APIConnectionError,
        "timeout": APITimeoutError,
        "refused": APIConnectionError,
        "redirect": APIStatusError,
        "not found": NotFoundError,
    }[kind]
    assert isinstance(error, expected)
    shown = [str(error), repr(error), "".join(traceback.format_exception(error))]
    if isinstance(error, APIStatusError):
        shown += [error.body, error.message]
    for text in shown:
        assert SECRET not in text
        assert SECRET[3:12] not in text  # not even a piece of it


async def test_error_bodies_echoing_the_query_are_masked() -> None:
    async with ArgosEmulator(submissions=300, seed=9) as emu:
        email = emu.dataset.heavy_email
        userid = emu.dataset.for_email(email)[0]["userid"]
    # The body echoes the queried user id and an email address. Emails are masked wherever
    # they appear; a user id only where the client knows it is one: the query's.
    plan = FaultPlan([Status(400, message=f"no access to submissions of {userid} ({email})")])
    async with (
        ArgosEmulator(submissions=300, seed=9, faults=plan) as emu,
        client_for(emu) as argos,
    ):
        with pytest.raises(BadRequestError) as info:
            async for _ in argos.iter_submissions(userid=userid, page_size=10):
                pass
    error = info.value
    for text in (error.message, error.body, str(error), repr(error)):
        assert userid not in text
        assert email not in text
    assert (
        error.message == f"no access to submissions of {userid[0]}*** ({email[0]}***@example.com)"
    )
    assert f"{userid[0]}***" in error.body
    assert f"{email[0]}***@example.com" in error.body


def test_configuration_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARGOS_API_KEY", "env-key")
    monkeypatch.setenv("ARGOS_BASE_URL", "http://127.0.0.1:9999/")
    client = ArgosClient()
    assert client.base_url == "http://127.0.0.1:9999"
    assert "env-key" not in repr(client)

    monkeypatch.delenv("ARGOS_BASE_URL")
    assert ArgosClient().base_url == DEFAULT_BASE_URL == "https://rest-api.argosidentity.com"

    monkeypatch.delenv("ARGOS_API_KEY")
    with pytest.raises(ValueError, match="api_key"):
        ArgosClient()


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"base_url": "http://example.com"}, ValueError, "base_url"),
        ({"timeout": 0}, ValueError, "timeout"),
        ({"timeout": "5"}, TypeError, "timeout"),
        ({"deadline": -1}, ValueError, "deadline"),
        ({"max_retries": -1}, ValueError, "max_retries"),
        ({"backoff_base": 0}, ValueError, "backoff_base"),
        ({"max_retry_after": float("inf")}, ValueError, "max_retry_after"),
        ({"max_requests_per_second": 0}, ValueError, "max_requests_per_second"),
        ({"retry_budget": -5}, ValueError, "retry_budget"),
        ({"max_response_bytes": 0}, ValueError, "max_response_bytes"),
        ({"prefetch": 2}, ValueError, "prefetch"),
        ({"date_format": "DD.MM.YYYY"}, ValueError, "date_format"),
        ({"max_connections": 0}, ValueError, "max_connections"),
        ({"api_key": ""}, ValueError, "api_key"),
    ],
)
def test_client_options_are_validated(
    kwargs: dict[str, Any], error: type[Exception], name: str
) -> None:
    options: dict[str, Any] = {"api_key": "k", **kwargs}
    with pytest.raises(error, match=name):
        ArgosClient(**options)


@pytest.mark.argos_emulator(submissions=10, seed=1)
async def test_bad_arguments_fail_before_any_request(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    with pytest.raises(ValueError, match="page_size"):
        argos_client.iter_submissions(page_size=0)
    with pytest.raises(TypeError, match="page_size"):
        argos_client.iter_pages(page_size="10")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="end_date"):
        argos_client.iter_submissions(start_date="2025-02-02", end_date="2025-02-01")
    with pytest.raises(ValueError, match="max_items"):
        argos_client.iter_submissions(max_items=-1)
    with pytest.raises(ValueError, match="request_type"):
        await argos_client.get_submission("abc", request_type="everything")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="submission_id"):
        await argos_client.get_submission("")
    with pytest.raises(TypeError, match="applicant_id"):
        await argos_client.get_applicant_submissions(7)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cursor"):
        argos_client.iter_submissions(cursor="garbage")
    assert argos_emulator.requests == []


async def test_a_closed_client_refuses_work() -> None:
    argos = ArgosClient(api_key="k", base_url="http://127.0.0.1:1")
    await argos.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await argos.get_submission("abc")
