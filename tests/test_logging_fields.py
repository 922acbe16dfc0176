"""Structured logs: every record of the ``argos_async`` logger carries the ``argos_*`` extra
fields, which a JSON formatter (python-json-logger here) turns into keys, with no email, user
id or key among them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from pythonjsonlogger.json import JsonFormatter
from support import FAST, client_for

from argos_async._hooks import LOG_FIELDS
from argos_async.testing import ArgosEmulator, DropConnection, FaultPlan, Status

pytestmark = pytest.mark.anyio

LIST = "/v3/submission"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The ``argos_async`` logger, at DEBUG, written as JSON lines."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("argos_async")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_every_record_is_json_with_the_argos_fields_and_no_personal_data(
    json_log: io.StringIO,
) -> None:
    plan = FaultPlan(
        [
            Status(503, at=1, path=LIST),
            DropConnection(at=2, path=LIST),
            Status(413, at=3, path=LIST),
        ]
    )

    def broken(event: object) -> None:
        raise RuntimeError("a hook bug")

    async with ArgosEmulator(submissions=400, seed=3, faults=plan) as emu:
        email = emu.dataset.heavy_email
        async with client_for(emu, FAST, event_hooks={"retry": [broken]}) as argos:
            items = [s async for s in argos.iter_submissions(email=email, page_size=4)]
        key = emu.api_key
        sent = len(emu.requests)
    assert items
    records = lines(json_log)
    assert records
    for record in records:
        assert set(LOG_FIELDS) <= set(record), record
    text = json_log.getvalue()
    assert email.partition("@")[0] not in text
    assert key not in text

    masked = email[0] + "***@" + email.partition("@")[2]
    debug = [r for r in records if r["levelname"] == "DEBUG" and r["message"].startswith("GET")]
    assert len(debug) == sent  # one per attempt
    assert [r["argos_attempt"] for r in debug[:3]] == [1, 2, 3]
    assert [r["argos_status"] for r in debug[:4]] == [503, None, 413, 200]
    assert all(r["argos_path"] == LIST for r in debug)
    assert all(r["argos_params"]["email"] == masked for r in debug)
    assert all(r["argos_elapsed_ms"] >= 0 for r in debug)
    assert all(r["argos_request_id"] for r in debug if r["argos_status"] is not None)

    retries = [r for r in records if "; retry " in r["message"]]
    first, second = retries[:2]
    assert (first["argos_status"], first["argos_attempt"], first["argos_reason"]) == (
        503,
        1,
        "ServerError",
    )
    assert first["argos_request_id"] == debug[0]["argos_request_id"]
    assert first["argos_params"]["email"] == masked
    assert first["argos_wait_ms"] >= 0
    assert first["argos_elapsed_ms"] >= 0
    assert (second["argos_status"], second["argos_attempt"]) == (None, 2)
    assert second["argos_reason"] == "APIConnectionError"

    (halved,) = [r for r in records if "too large" in r["message"]]
    assert (halved["argos_status"], halved["argos_path"]) == (413, LIST)
    assert halved["argos_request_id"] == debug[2]["argos_request_id"]

    hook = [r for r in records if "event hook" in r["message"]]
    assert len(hook) == 2  # the two retries: WARNING, then DEBUG
    assert hook[0]["levelname"] == "WARNING"
    assert "a hook bug" in hook[0]["exc_info"]
    assert hook[0]["argos_params"]["email"] == masked


async def test_a_lookup_failing_after_its_retries_logs_each_retry_with_its_attempt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    plan = FaultPlan([Status(500, path=LIST)])
    caplog.set_level(logging.WARNING, logger="argos_async")
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        sid = emu.dataset.ids[0]
        async with client_for(emu, FAST, max_retries=2) as argos:
            with pytest.raises(Exception, match="500"):
                await argos.get_submission(sid)
    records = [r for r in caplog.records if r.name == "argos_async"]
    assert [r.__dict__["argos_attempt"] for r in records] == [1, 2]
    assert {r.__dict__["argos_status"] for r in records} == {500}
    assert {r.__dict__["argos_path"] for r in records} == {LIST}
    assert records[0].__dict__["argos_params"] == {"submission_id": sid}
