"""The pure layer, table by table: validation, query building, cursors, status to error."""

from __future__ import annotations

import base64
from datetime import date, datetime, timezone
from typing import Any

import msgspec
import pytest

from argos_async import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PayloadTooLargeError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
)
from argos_async._protocol.checks import check_base_url
from argos_async._protocol.masking import mask_email, mask_text
from argos_async._protocol.query import ListQuery, Position, decode_cursor, encode_cursor
from argos_async._protocol.status import error_from_response, parse_retry_after
from argos_async._retry import server_wait
from argos_async.models import PageKey

NOW = datetime(2026, 11, 28, 15, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"page_size": 0}, ValueError, "page_size"),
        ({"page_size": 2001}, ValueError, "page_size"),
        ({"page_size": "10"}, TypeError, "page_size"),
        ({"page_size": True}, TypeError, "page_size"),
        ({"page_size": 10.0}, TypeError, "page_size"),
        ({"start_date": "2024-13-01"}, ValueError, "start_date"),
        ({"start_date": "01/02/2024"}, ValueError, "start_date"),
        ({"end_date": "2024-02-30"}, ValueError, "end_date"),
        ({"start_date": 20240101}, TypeError, "start_date"),
        ({"start_date": datetime(2024, 1, 1)}, TypeError, "start_date"),
        ({"start_date": "2024-02-02", "end_date": "2024-02-01"}, ValueError, "end_date"),
        ({"request_type": "kyc,aml"}, ValueError, "request_type"),
        ({"request_type": "KYC"}, ValueError, "request_type"),
        ({"request_type": 1}, TypeError, "request_type"),
        ({"email": ""}, ValueError, "email"),
        ({"email": "  "}, ValueError, "email"),
        ({"email": b"a@example.com"}, TypeError, "email"),
        ({"userid": 42}, TypeError, "userid"),
    ],
)
def test_list_query_rejects_bad_arguments_by_name(
    kwargs: dict[str, Any], error: type[Exception], names: str
) -> None:
    with pytest.raises(error, match=names):
        ListQuery.build(**kwargs)


def test_validation_messages_do_not_echo_emails() -> None:
    with pytest.raises(TypeError) as info:
        ListQuery.build(email=["ana@example.com"])
    assert "ana@" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "date_format", "expected"),
    [
        ({}, "YYYY-MM-DD", {"count": "2000"}),
        ({"page_size": 1}, "YYYY-MM-DD", {"count": "1"}),
        (
            {"start_date": date(2024, 1, 5), "end_date": "2024-02-01"},
            "YYYY-MM-DD",
            {"count": "2000", "start_date": "2024-01-05", "end_date": "2024-02-01"},
        ),
        (
            {"start_date": "20240105", "end_date": date(2024, 2, 1)},
            "YYYYMMDD",
            {"count": "2000", "start_date": "20240105", "end_date": "20240201"},
        ),
        (
            {"email": "a+b@example.com", "userid": "u1", "request_type": "aml"},
            "YYYY-MM-DD",
            {"count": "2000", "email": "a+b@example.com", "userid": "u1", "request_type": "aml"},
        ),
    ],
)
def test_list_query_params(kwargs: dict[str, Any], date_format: Any, expected: Any) -> None:
    query = ListQuery.build(date_format=date_format, **kwargs)
    assert query.params(None, query.page_size) == expected


def test_next_page_key_is_sent_verbatim() -> None:
    query = ListQuery.build(page_size=10)
    key = PageKey(id="gt7rcxx9l1o12345", created_at="2022-04-07T00:30:35.919Z")
    params = query.params(key, 7)
    assert params["nextpage_id"] == "gt7rcxx9l1o12345"
    assert params["nextpage_date"] == "2022-04-07T00:30:35.919Z"
    assert params["count"] == "7"


def test_cursor_round_trip_and_refusals() -> None:
    query = ListQuery.build(email="ana@example.com", start_date="2024-01-01")
    key = PageKey(id="abc", created_at="2024-03-01T00:00:00.000Z")
    cursor = encode_cursor(Position(key), query.fingerprint)
    assert cursor.startswith("ac1.")
    assert "ana" not in cursor  # the token holds a digest of the filters, not the filters
    assert decode_cursor(cursor, query.fingerprint) == Position(key)

    # Page size is not a filter: resuming with another page size is fine.
    same_filters = ListQuery.build(email="ana@example.com", start_date="2024-01-01", page_size=5)
    assert decode_cursor(cursor, same_filters.fingerprint) == Position(key)

    other = ListQuery.build(email="bob@example.com", start_date="2024-01-01")
    with pytest.raises(ValueError, match="other filters"):
        decode_cursor(cursor, other.fingerprint)
    with pytest.raises(ValueError, match="cursor"):
        decode_cursor("v0.abc", query.fingerprint)
    with pytest.raises(ValueError, match="damaged"):
        decode_cursor(cursor[:-3], query.fingerprint)
    with pytest.raises(ValueError, match="damaged"):
        decode_cursor("ac1.!!!", query.fingerprint)
    with pytest.raises(TypeError, match="cursor"):
        decode_cursor(123, query.fingerprint)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://rest-api.argosidentity.com", "https://rest-api.argosidentity.com"),
        ("https://rest-api.argosidentity.com/", "https://rest-api.argosidentity.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:8080/", "http://[::1]:8080"),
        ("http://localhost:9", "http://localhost:9"),
    ],
)
def test_base_url_accepted(url: str, expected: str) -> None:
    assert check_base_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://rest-api.argosidentity.com",
        "http://10.0.0.5:8080",
        "ftp://example.com",
        "rest-api.argosidentity.com",
        "https://rest-api.argosidentity.com/v3/submission",
        "https://user:pw@rest-api.argosidentity.com",
        "https://rest-api.argosidentity.com/?x=1",
    ],
)
def test_base_url_refused(url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        check_base_url(url)


@pytest.mark.parametrize(
    ("status", "body", "cls", "message"),
    [
        (
            400,
            b'{"message": "Invalid Query String parameters"}',
            BadRequestError,
            "Invalid Query String parameters",
        ),
        (403, b'{"message": "Forbidden"}', AuthenticationError, "Forbidden"),
        (
            403,
            b'{"Message": "User is not authorized to access this resource with an explicit deny"}',
            AuthenticationError,
            "explicit deny",
        ),
        (401, b'{"message": "Unauthorized"}', AuthenticationError, "Unauthorized"),
        (404, b'{"message": "Not Found"}', NotFoundError, "Not Found"),
        (413, b'{"message": "Request Entity Too Large"}', PayloadTooLargeError, "Too Large"),
        (429, b'{"message": "Too Many Requests"}', RateLimitError, "Too Many Requests"),
        (500, b'{"message": "Internal server error"}', ServerError, "Internal server error"),
        (502, b"<html>Bad Gateway</html>", ServerError, "<html>Bad Gateway</html>"),
        (504, b'{"message": "Endpoint request timed out"}', ServerError, "timed out"),
        (418, b"", APIStatusError, "(empty body)"),
        (400, b'{"errorCode": "invalid_payload",}', BadRequestError, "errorCode"),
        (400, b'{"errorCode": "invalid_payload"}', BadRequestError, "invalid_payload"),
    ],
)
def test_status_to_error(status: int, body: bytes, cls: type[Exception], message: str) -> None:
    headers = {"X-Amzn-RequestId": "req-123"}
    error = error_from_response(status, headers, body, now=NOW)
    assert type(error) is cls
    assert error.status == status
    assert message in error.message
    assert error.request_id == "req-123"
    assert str(error).startswith(f"{status} ")
    assert "req-123" in str(error)


def test_quota_429_is_its_own_error_and_says_when_it_resets() -> None:
    error = error_from_response(429, {}, b'{"message": "Limit Exceeded"}', now=NOW)
    assert isinstance(error, QuotaExceededError)
    assert isinstance(error, RateLimitError)
    assert "2026-11-29 00:00 UTC" in str(error)
    assert error.resets_at == datetime(2026, 11, 29, tzinfo=timezone.utc)
    # retry_after keeps its one meaning: the response's header, absent here.
    assert error.retry_after is None
    with_header = error_from_response(
        429, {"Retry-After": "60"}, b'{"message": "Limit Exceeded"}', now=NOW
    )
    assert isinstance(with_header, QuotaExceededError)
    assert with_header.retry_after == 60.0


def test_retry_after_is_read_into_rate_limit_errors() -> None:
    error = error_from_response(
        429, {"Retry-After": "3"}, b'{"message": "Too Many Requests"}', now=NOW
    )
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 3.0


@pytest.mark.parametrize(
    ("status", "headers", "body", "asked"),
    [
        (429, {"Retry-After": "3"}, b'{"message": "Too Many Requests"}', 3.0),
        (429, {"retry-after": "Sat, 28 Nov 2026 15:30:20 GMT"}, b"{}", 20.0),
        (429, {}, b'{"message": "Too Many Requests"}', None),
        # The daily quota says when it resets, but that is no wait to retry after.
        (429, {"Retry-After": "3"}, b'{"message": "Limit Exceeded"}', None),
        (503, {"Retry-After": "2.5"}, b'{"message": "Service Unavailable"}', 2.5),
        (503, {"Retry-After": "Sat, 28 Nov 2026 15:31:00 GMT"}, b"{}", 60.0),
        (503, {}, b'{"message": "Service Unavailable"}', None),
        # RFC 9110 gives Retry-After a meaning on 503 (and 429), not on other errors.
        (500, {"Retry-After": "2"}, b'{"message": "Internal server error"}', None),
        (502, {"Retry-After": "2"}, b"", None),
        (400, {"Retry-After": "2"}, b"", None),
    ],
)
def test_the_wait_a_server_asks_for(
    status: int, headers: dict[str, str], body: bytes, asked: float | None
) -> None:
    error = error_from_response(status, headers, body, now=NOW)
    # The retry loop waits exactly this (tests/test_retry_loop.py, on a fake clock).
    assert server_wait(error) == asked
    if status == 503:
        assert isinstance(error, ServerError)
        assert error.retry_after == asked


def test_server_wait_of_other_failures_is_none() -> None:
    assert server_wait(ValueError("x")) is None
    assert server_wait(APIStatusError("x", status=418)) is None


@pytest.mark.parametrize(
    "body",
    [
        b"x" * 185 + b" ana.silva@example.com rest",
        b'{"message": "' + b"x" * 185 + b' ana.silva@example.com rest"}',
        b"x" * 490 + b" ana.silva@example.com rest",
    ],
    ids=["text at the message cut", "message at its cut", "text at the excerpt cut"],
)
def test_masking_comes_before_any_cut(body: bytes) -> None:
    """An address cut in two by a length limit would no longer be recognized as one."""
    email = "ana.silva@example.com"
    for known in ((), (email,)):
        error = error_from_response(500, {}, body, now=NOW, personal_values=known)
        assert len(error.message) <= 200
        assert len(error.body) <= 500
        assert "ana.s" not in error.message
        assert "ana.s" not in error.body
        assert "a***@" in error.body


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", 5.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("Sat, 28 Nov 2026 15:30:10 GMT", 10.0),
        ("Sat, 28 Nov 2026 15:29:00 GMT", 0.0),
        ("soon", None),
        ("nan", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_error_messages_and_excerpts_mask_personal_data() -> None:
    body = (
        b'{"message": "no submissions for ana.silva@example.com (user user_777)", "detail": "'
        + b"x" * 2000
        + b'"}'
    )
    error = error_from_response(
        400, {}, body, now=NOW, personal_values=("ana.silva@example.com", "user_777")
    )
    assert "ana.silva" not in error.message
    assert "a***@example.com" in error.message
    assert "user_777" not in error.message
    assert "ana.silva" not in error.body
    assert len(error.body) <= 500


def test_mask_helpers() -> None:
    assert mask_email("ana.silva+kyc@example.com") == "a***@example.com"
    assert mask_text("mail bob@example.org now") == "mail b***@example.org now"
    assert mask_text("id 12345 here", known=["12345"]) == "id 1*** here"


def test_a_cursor_inside_a_page_round_trips_and_a_whole_page_one_keeps_its_old_form() -> None:
    query = ListQuery.build(start_date="2024-01-01")
    key = PageKey(id="abc", created_at="2024-03-01T00:00:00.000Z")
    for position in (Position(key, 3), Position(None, 5), Position(key)):
        assert decode_cursor(encode_cursor(position, query.fingerprint), query.fingerprint) == (
            position
        )
    # Cursors saved by earlier versions (three parts) still resume where they did.
    old = "ac1." + base64.urlsafe_b64encode(
        msgspec.json.encode([query.fingerprint, key.id, key.created_at])
    ).decode().rstrip("=")
    assert encode_cursor(Position(key), query.fingerprint) == old
    for damaged in ([query.fingerprint, "abc", None, 1], [query.fingerprint, None, None, -1]):
        token = base64.urlsafe_b64encode(msgspec.json.encode(damaged)).decode().rstrip("=")
        with pytest.raises(ValueError, match="damaged"):
            decode_cursor("ac1." + token, query.fingerprint)
