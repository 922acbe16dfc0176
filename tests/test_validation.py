"""Bad input, over every public method: a clear error naming the argument, and no request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest

from argos_async import ArgosClient
from argos_async.testing import ArgosEmulator

pytestmark = pytest.mark.anyio

# The client is typed Any here: these calls break its signatures on purpose.
Call = Callable[[Any], Any]


def listing(error: type[Exception], **kwargs: Any) -> list[tuple[Call, type[Exception], str]]:
    """One bad argument, for both listing methods; the error must name it."""
    (name,) = kwargs

    def call_with(method: str) -> Call:
        return lambda client: getattr(client, method)(**kwargs)

    return [(call_with(m), error, name) for m in ("iter_pages", "iter_submissions")]


def options(error: type[Exception], **kwargs: Any) -> list[tuple[Call, type[Exception], str]]:
    """One bad option, on a view and on a second client: the error must name it."""
    (name,) = kwargs

    def new_client(client: Any) -> Any:
        return ArgosClient(api_key="k", base_url=client.base_url, **kwargs)

    return [(lambda client: client.with_options(**kwargs), error, name), (new_client, error, name)]


def backfill(error: type[Exception], **kwargs: Any) -> tuple[Call, type[Exception], str]:
    """One bad argument for backfill over a valid range (unless the range is what is bad)."""
    (name,) = kwargs
    arguments = {"start_date": "2024-01-01", "end_date": "2024-01-03", **kwargs}
    return (lambda client: client.backfill(**arguments), error, name)


BAD: list[tuple[Call, type[Exception], str]] = [
    *listing(ValueError, page_size=0),
    *listing(ValueError, page_size=2001),
    *listing(TypeError, page_size="10"),
    *listing(TypeError, page_size=10.5),
    *listing(ValueError, max_items=-1),
    *listing(TypeError, max_items="5"),
    *listing(ValueError, request_type="passport"),
    *listing(ValueError, email=""),
    *listing(ValueError, userid="   "),
    *listing(ValueError, start_date="2024-02-30"),
    *listing(ValueError, start_date="yesterday"),
    *listing(ValueError, end_date="2024/01/01"),
    *listing(ValueError, cursor="not-a-cursor"),
    (
        lambda c: c.iter_submissions(start_date="2024-03-02", end_date="2024-03-01"),
        ValueError,
        "end_date",
    ),
    (
        lambda c: c.iter_pages(start_date="2024-03-02", end_date="2024-03-01"),
        ValueError,
        "end_date",
    ),
    (lambda c: c.iter_pages(start_date=datetime(2024, 1, 1)), TypeError, "start_date"),
    (lambda c: c.iter_pages(email=42), TypeError, "email"),
    (lambda c: c.get_submission(""), ValueError, "submission_id"),
    (lambda c: c.get_submission(None), TypeError, "submission_id"),
    (lambda c: c.get_submission(123), TypeError, "submission_id"),
    (lambda c: c.get_submission("abc", request_type="all"), ValueError, "request_type"),
    (lambda c: c.get_applicant_submissions(""), ValueError, "applicant_id"),
    (lambda c: c.get_applicant_submissions(["a"]), TypeError, "applicant_id"),
    (lambda c: c.batch_get_submissions(["a"], concurrency=0), ValueError, "concurrency"),
    (lambda c: c.batch_get_submissions(["a"], concurrency="8"), TypeError, "concurrency"),
    (lambda c: c.batch_get_submissions("abc"), TypeError, "ids"),
    (lambda c: c.batch_get_submissions(42), TypeError, "ids"),
    (lambda c: c.batch_get_submissions(["a"], buffer=-1), ValueError, "buffer"),
    (lambda c: c.batch_get_submissions(["a"], ordered="yes"), TypeError, "ordered"),
    (lambda c: c.batch_get_submissions(["a"], fail_fast=1), TypeError, "fail_fast"),
    (lambda c: c.batch_get_submissions(["a"], request_type="x"), ValueError, "request_type"),
    (lambda c: c.batch_get_by_email(["a@example.com"], concurrency=0), ValueError, "concurrency"),
    (lambda c: c.batch_get_by_email(["a@example.com"], page_size=0), ValueError, "page_size"),
    (lambda c: c.batch_get_by_email(["a@example.com"], page_size=2001), ValueError, "page_size"),
    (lambda c: c.batch_get_by_email(["a@example.com"], page_size="10"), TypeError, "page_size"),
    (
        lambda c: c.batch_get_by_email(["a@example.com"], request_type="x"),
        ValueError,
        "request_type",
    ),
    (lambda c: c.batch_get_by_email("a@example.com"), TypeError, "emails"),
    (lambda c: c.batch_get_applicants(None), TypeError, "applicant_ids"),
    (lambda c: c.batch_get_applicants(["a"], concurrency=0), ValueError, "concurrency"),
    (lambda c: c.batch_get_applicants(["a"], concurrency=-1), ValueError, "concurrency"),
    backfill(ValueError, page_size=0),
    backfill(ValueError, page_size=2001),
    backfill(TypeError, page_size="10"),
    backfill(ValueError, start_date="2024-02-30"),
    backfill(ValueError, end_date="2024/01/05"),
    (lambda c: c.backfill("2024-03-02", "2024-03-01"), ValueError, "end_date"),
    (lambda c: c.backfill(None, "2024-03-01"), ValueError, "end_date"),
    (lambda c: c.backfill(20240101), TypeError, "start_date"),
    backfill(ValueError, request_type="x"),
    backfill(ValueError, email=""),
    backfill(TypeError, userid=7),
    backfill(ValueError, window_days=0),
    (lambda c: c.backfill(None, window_days=0), ValueError, "window_days"),
    backfill(ValueError, shards=0),
    backfill(TypeError, checkpoint=5),
    # Options are validated once, where they are set: the constructor or with_options.
    *options(ValueError, prefetch=2),
    *options(ValueError, deadline=0),
    *options(ValueError, deadline=-1.5),
    *options(ValueError, timeout=0),
    *options(ValueError, timeout=-1),
    *options(ValueError, max_retries=-1),
    *options(TypeError, max_retries=1.5),
    *options(TypeError, deadline="2"),
    *options(ValueError, backoff_base=0),
    *options(ValueError, backoff_max=float("inf")),
    *options(ValueError, max_retry_after=-1),
    *options(TypeError, prefetch=True),
]


@pytest.mark.parametrize(("call", "error", "name"), BAD)
@pytest.mark.argos_emulator(submissions=5, seed=1)
async def test_bad_arguments_raise_naming_the_argument_and_send_nothing(
    call: Call,
    error: type[Exception],
    name: str,
    argos_emulator: ArgosEmulator,
    argos_client: ArgosClient,
) -> None:
    with pytest.raises(error, match=name):
        result = call(argos_client)
        if isinstance(result, Awaitable):
            await result
    assert argos_emulator.requests == []
