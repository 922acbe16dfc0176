"""The webhook receiver recipe (``examples/webhook_receiver.py``) end to end: the app served over
loopback by aiohttp, webhooks POSTed to it (by the test, or by the emulator itself as its
submissions change), the truth fetched from the emulator over loopback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import msgspec
import pytest
from aiohttp import web
from asgi_server import serve_asgi
from fastapi import FastAPI
from mirror_support import (
    DAYS,
    START,
    Target,
    assert_mirrors,
    make_target,
    run_mirror,
    source_arguments,
)
from mirror_support import emulator as mirror_emulator
from starlette.types import ASGIApp, Receive, Scope, Send
from support import FAST

from argos_async import ArgosClient
from argos_async.testing import (
    ArgosEmulator,
    Fault,
    FaultContext,
    FaultPlan,
    Status,
    WebhookFaults,
)
from argos_async.webhooks import SubmissionTruth, WebhookInbox
from examples.webhook_receiver import (
    FULL_RETRY_AFTER,
    MAX_BODY_BYTES,
    create_app,
    create_mirror_app,
)

pytestmark = pytest.mark.anyio

PATH = "/v3/submission"
APP_LOGGER = "examples.webhook_receiver"


@dataclass(frozen=True, repr=False)
class Hold(Fault):
    """Holds every lookup of ``submission_id`` until ``release`` is set; ``arrived`` is set
    when the first one reaches the emulator."""

    submission_id: str = ""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def respond(self, request: web.Request, ctx: FaultContext) -> web.StreamResponse | None:
        if ctx.query.get("submission_id") == self.submission_id:
            self.arrived.set()
            await self.release.wait()
        return None


@dataclass(frozen=True, repr=False)
class Fail(Fault):
    """Answers the first ``times`` lookups of ``submission_id`` with ``status`` (every one:
    None); ``hits`` counts those it answered."""

    submission_id: str = ""
    status: int = 500
    times: int | None = None
    hits: list[str] = field(default_factory=list)

    async def respond(self, request: web.Request, ctx: FaultContext) -> web.StreamResponse | None:
        if ctx.query.get("submission_id") != self.submission_id:
            return None
        if self.times is not None and len(self.hits) >= self.times:
            return None
        self.hits.append(self.submission_id)
        return await Status(self.status).respond(request, ctx)


class Truths:
    """The app's ``on_truth``: every truth in the order it came, and ``order``, a log of
    what happened that the test adds to as well."""

    def __init__(self) -> None:
        self.got: list[SubmissionTruth] = []
        self.order: list[str] = []

    async def __call__(self, truth: SubmissionTruth) -> None:
        self.got.append(truth)
        self.order.append(f"truth {truth.submission_id}")

    def ids(self) -> list[str]:
        return [t.submission_id for t in self.got]


@dataclass
class Receiver:
    app: FastAPI
    url: str
    http: aiohttp.ClientSession

    @property
    def inbox(self) -> WebhookInbox:
        inbox: WebhookInbox = self.app.state.inbox
        return inbox

    async def post(self, body: bytes) -> tuple[int, Any, dict[str, str]]:
        async with self.http.post(self.url + "/webhooks", data=body) as response:
            return response.status, await response.json(), dict(response.headers)


@asynccontextmanager
async def receiving(app: FastAPI) -> AsyncIterator[Receiver]:
    """The app with its lifespan running, served on loopback, and a client to post with."""
    async with (
        app.router.lifespan_context(app),
        serve_asgi(app) as url,
        aiohttp.ClientSession() as http,
    ):
        yield Receiver(app, url, http)


class Deferred:
    """An ASGI app that forwards to ``app``, set once it can be made: the emulator needs the
    receiver's URL before the receiver can be given the emulator's."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "the receiver got a request before it was made"
        await self.app(scope, receive, send)


@asynccontextmanager
async def posted_to_by_the_emulator(
    make_app: Callable[[ArgosEmulator], FastAPI], **emulator_options: Any
) -> AsyncIterator[tuple[ArgosEmulator, Receiver]]:
    """An emulator that POSTs its webhooks to the app ``make_app`` makes for it."""
    deferred = Deferred()
    async with (
        serve_asgi(deferred) as url,
        ArgosEmulator(webhook_url=url + "/webhooks", **emulator_options) as emu,
    ):
        app = make_app(emu)
        deferred.app = app
        async with app.router.lifespan_context(app), aiohttp.ClientSession() as http:
            yield emu, Receiver(app, url, http)


def app_for(
    emu: ArgosEmulator,
    truths: Truths,
    *,
    inbox: dict[str, Any] | None = None,
    **client_options: Any,
) -> FastAPI:
    return create_app(
        truths,
        api_key=emu.api_key,
        base_url=emu.url,
        client_options={**FAST, **client_options},
        inbox_options={"backoff_base": 0.001, "backoff_max": 0.01, **(inbox or {})},
    )


def updated(sid: str, second: int = 0, **fields: Any) -> bytes:
    """An ``updated`` webhook about ``sid``, ``second`` seconds after 2025-06-01 00:00 UTC."""
    at = f"2025-06-01T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"
    return msgspec.json.encode(
        {"webhook_trigger": "updated", "submission_id": sid, "update_time": at, **fields}
    )


def lookups(emu: ArgosEmulator, sid: str | None = None) -> list[str]:
    found = [r.query["submission_id"] for r in emu.requests if "submission_id" in r.query]
    return found if sid is None else [s for s in found if s == sid]


async def test_a_webhook_is_acknowledged_before_its_lookup_completes() -> None:
    truths = Truths()
    async with ArgosEmulator(300, seed=5) as emu:
        sid = emu.dataset.ids[3]
        hold = Hold(path=PATH, submission_id=sid)
        emu.faults = FaultPlan([hold])
        async with receiving(app_for(emu, truths)) as receiver:
            # Bounded: an endpoint that waited for the lookup would never answer.
            with anyio.fail_after(10):
                status, answer, _ = await receiver.post(updated(sid))
            truths.order.append("acknowledged")
            await hold.arrived.wait()  # the lookup is at the API, and stays unanswered
            truths.order.append("looking up")
            hold.release.set()
            await receiver.inbox.join()
        async with ArgosClient(api_key=emu.api_key, base_url=emu.url) as argos:
            expected = await argos.get_raw_submission(sid)
    assert (status, answer) == (202, {"accepted": True})
    assert truths.order == ["acknowledged", "looking up", f"truth {sid}"]
    (truth,) = truths.got
    assert (truth.submission_id, truth.deleted, truth.raw) == (sid, False, expected)


async def test_a_repeated_delivery_is_fetched_once() -> None:
    truths = Truths()
    async with (
        ArgosEmulator(300, seed=5) as emu,
        receiving(app_for(emu, truths)) as receiver,
    ):
        sid = emu.dataset.ids[0]
        first = updated(sid, tokenId="t1")
        answers = [await receiver.post(first) for _ in range(3)]
        # The same event with its fields in another order: the same delivery.
        again = msgspec.json.encode(dict(reversed(list(msgspec.json.decode(first).items()))))
        answers.append(await receiver.post(again))
        await receiver.inbox.join()
        answers.append(await receiver.post(first))  # after its delivery, still a repeat
        await receiver.inbox.join()
        assert lookups(emu) == [sid]
    assert [(status, answer) for status, answer, _ in answers] == [(202, {"accepted": True})] + [
        (202, {"accepted": False})
    ] * 4
    assert truths.ids() == [sid]


async def test_a_burst_of_a_thousand_webhooks_about_fifty_submissions_is_fifty_lookups() -> None:
    truths = Truths()
    concurrency = 8
    async with ArgosEmulator(300, seed=5, latency=0.002) as emu:
        sentinel, *rest = emu.dataset.ids[:51]
        hold = Hold(path=PATH, submission_id=sentinel)
        emu.faults = FaultPlan([hold])
        async with receiving(app_for(emu, truths)) as receiver:
            # A delivery under way (held at the API) while the burst comes in.
            await receiver.post(updated(sentinel))
            await hold.arrived.wait()
            room = asyncio.Semaphore(20)

            async def post(i: int) -> int:
                async with room:
                    status, _, _ = await receiver.post(updated(rest[i % 50], second=i))
                    return status

            statuses = await asyncio.gather(*(post(i) for i in range(1000)))
            assert sorted(set(receiver.inbox.pending)) == sorted([sentinel, *rest])
            hold.release.set()
            await receiver.inbox.join()
            inbox = receiver.inbox
        looked_up = lookups(emu)
        most = emu.max_in_flight
    assert statuses == [202] * 1000
    assert sorted(looked_up) == sorted([sentinel, *rest])  # each one once
    assert 1 < most <= concurrency
    assert sorted(truths.ids()) == sorted([sentinel, *rest])
    assert (inbox.accepted, inbox.duplicates) == (1001, 0)


async def test_a_429_pauses_the_lookups_then_everything_is_delivered() -> None:
    truths = Truths()
    pause = 1.0
    async with ArgosEmulator(300, seed=5) as emu:
        sentinel, *rest = emu.dataset.ids[:21]
        hold = Hold(path=PATH, submission_id=sentinel)
        # The second lookup (the first of the batch of 20) is throttled.
        emu.faults = FaultPlan([hold, Status(429, retry_after=pause, path=PATH, at=2)])
        async with receiving(app_for(emu, truths)) as receiver:
            await receiver.post(updated(sentinel))
            await hold.arrived.wait()
            for i, sid in enumerate(rest):
                await receiver.post(updated(sid, second=i))
            hold.release.set()
            await receiver.inbox.join()
        throttled = next(r for r in emu.responses if r.status == 429)
        after = [r for r in emu.requests if r.index > throttled.index]
    assert sorted(truths.ids()) == sorted([sentinel, *rest])  # each once
    assert len(truths.got) == 21
    # Lookups sent before the client read the 429 went through; every later one waited. (Half
    # the pause is the client's time to read the 429: generous on a busy machine.)
    late = [r for r in after if r.received_at > throttled.sent_at + pause / 2]
    assert late
    assert all(r.received_at >= throttled.sent_at + pause for r in late)
    assert len([r for r in after if "submission_id" in r.query]) == 20  # 19 others + 1 retry


async def test_a_delete_webhook_is_a_deletion_only_when_the_api_confirms_it() -> None:
    truths = Truths()
    async with (
        ArgosEmulator(300, seed=5) as emu,
        receiving(app_for(emu, truths)) as receiver,
    ):
        gone, forged = emu.dataset.ids[:2]
        emu.delete(gone)
        for sid in (gone, forged):
            body = msgspec.json.encode({"webhook_trigger": "delete", "submission_id": sid})
            assert (await receiver.post(body))[:2] == (202, {"accepted": True})
        await receiver.inbox.join()
        async with ArgosClient(api_key=emu.api_key, base_url=emu.url) as argos:
            still_there = await argos.get_raw_submission(forged)
    by_id = {t.submission_id: t for t in truths.got}
    assert by_id[gone] == SubmissionTruth(gone, None, deleted=True)
    assert by_id[forged] == SubmissionTruth(forged, still_there, deleted=False)


async def test_a_body_that_is_no_webhook_is_a_400_that_shows_none_of_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    truths = Truths()
    broken = b'{"webhook_trigger": "approved", "email": "ana.silva@example.com", "full_name": "ANA'
    async with (
        ArgosEmulator(300, seed=5) as emu,
        receiving(app_for(emu, truths)) as receiver,
    ):
        answers = [
            await receiver.post(broken),
            await receiver.post(b'{"email": "ana.silva@example.com"}'),
            await receiver.post(b"[1, 2]"),
        ]
        assert emu.requests == []
    for status, answer, _ in answers:
        assert status == 400
        assert answer["error"] == "WebhookDecodeError"
        assert "ana" not in str(answer).lower()
    assert "not valid JSON" in answers[0][1]["detail"]
    assert "ana.silva" not in caplog.text
    assert "ANA" not in caplog.text
    assert "webhook refused" in caplog.text  # the log was captured
    assert truths.got == []


async def test_a_webhook_about_no_submission_is_acknowledged_and_ignored() -> None:
    truths = Truths()
    async with (
        ArgosEmulator(300, seed=5) as emu,
        receiving(app_for(emu, truths)) as receiver,
    ):
        answer = await receiver.post(b'{"webhook_trigger": "aml_monitor", "records": []}')
        await receiver.inbox.join()
        assert emu.requests == []
    assert answer[:2] == (202, {"accepted": False})


async def test_a_body_too_large_is_a_413() -> None:
    truths = Truths()
    async with (
        ArgosEmulator(300, seed=5) as emu,
        receiving(app_for(emu, truths)) as receiver,
    ):
        padding = "x" * MAX_BODY_BYTES
        answer = await receiver.post(updated(emu.dataset.ids[0], padding=padding))
        assert receiver.inbox.pending == ()
    assert answer[:2] == (413, {"error": "PayloadTooLarge"})


async def test_a_full_inbox_is_a_503_and_the_same_event_is_taken_later() -> None:
    truths = Truths()
    async with ArgosEmulator(300, seed=5) as emu:
        ids = emu.dataset.ids[:4]
        hold = Hold(path=PATH, submission_id=ids[0])
        emu.faults = FaultPlan([hold])
        async with receiving(app_for(emu, truths, inbox={"max_pending": 2})) as receiver:
            await receiver.post(updated(ids[0]))
            await hold.arrived.wait()  # in delivery; two more fill the pending set
            assert [(await receiver.post(updated(sid)))[0] for sid in ids[1:3]] == [202, 202]
            status, answer, headers = await receiver.post(updated(ids[3]))
            hold.release.set()
            await receiver.inbox.join()
            again = await receiver.post(updated(ids[3]))
            await receiver.inbox.join()
    assert (status, answer["error"]) == (503, "InboxFullError")
    assert headers["Retry-After"] == str(FULL_RETRY_AFTER)
    assert again[:2] == (202, {"accepted": True})
    assert truths.ids()[:3] == ids[:3]
    assert sorted(truths.ids()) == sorted(ids)


async def test_a_delivery_that_fails_once_is_retried_and_delivered_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="argos_async")
    truths = Truths()
    plan = FaultPlan([Status(500, path=PATH, at=1)])
    async with (
        ArgosEmulator(300, seed=5, faults=plan) as emu,
        receiving(app_for(emu, truths, max_retries=0)) as receiver,
    ):
        sid = emu.dataset.ids[0]
        await receiver.post(updated(sid))
        await receiver.inbox.join()
        assert lookups(emu) == [sid, sid]
        inbox = receiver.inbox
    assert truths.ids() == [sid]
    assert (inbox.failures, inbox.delivered) == (1, 1)
    assert "1 submissions not delivered" in caplog.text
    assert sid not in caplog.text
    assert emu.api_key not in caplog.text


async def test_the_inbox_delivers_what_is_pending_at_shutdown() -> None:
    truths = Truths()
    async with ArgosEmulator(300, seed=5) as emu:
        ids = emu.dataset.ids[:5]
        async with receiving(app_for(emu, truths)) as receiver:
            for i, sid in enumerate(ids):
                await receiver.post(updated(sid, second=i))
            inbox = receiver.inbox
        # The lifespan has ended: the inbox delivered first, then the client closed.
        assert inbox.pending == ()
    assert sorted(truths.ids()) == sorted(ids)


# -- webhooks the emulator sends -----------------------------------------------------------------


def _with_result(emu: ArgosEmulator, result: str) -> list[str]:
    return [
        item["submission_id"]
        for item in emu.dataset.items
        if (item.get("kyc") or {}).get("result") == result
    ]


async def test_the_emulators_own_webhooks_keep_a_store_current() -> None:
    truths = Truths()
    store: dict[str, SubmissionTruth] = {}

    async def upsert(truth: SubmissionTruth) -> None:
        await truths(truth)
        store[truth.submission_id] = truth

    async with posted_to_by_the_emulator(
        lambda emu: create_app(
            upsert, api_key=emu.api_key, base_url=emu.url, client_options=dict(FAST)
        ),
        submissions=300,
        seed=5,
    ) as (emu, receiver):
        pending, approved = _with_result(emu, "pending")[0], _with_result(emu, "approved")[0]
        memo, gone = [s for s in emu.dataset.ids if s not in (pending, approved)][:2]
        emu.update(pending, kyc={"result": "approved"})
        emu.update(approved, aml={"currentstatus": "Red Flag", "risk_level_summary": "High"})
        emu.update(memo, memo={"text": "checked by phone"})
        emu.delete(gone)
        new = emu.create(email="new.applicant@example.com")["submission_id"]
        await emu.webhooks_idle()
        await receiver.inbox.join()
        async with ArgosClient(api_key=emu.api_key, base_url=emu.url) as argos:
            now = {
                sid: await argos.get_raw_submission(sid) for sid in (pending, approved, memo, new)
            }
        sent = [(w.trigger, w.outcome, w.status) for w in emu.webhooks_sent]
    assert sent == [
        ("approved", "delivered", 202),
        ("aml", "delivered", 202),
        ("updated", "delivered", 202),
        ("delete", "delivered", 202),
        ("created", "delivered", 202),
    ]
    assert {sid: truth.raw for sid, truth in store.items() if not truth.deleted} == now
    assert store[gone] == SubmissionTruth(gone, None, deleted=True)
    assert sorted(truths.ids()) == sorted([pending, approved, memo, gone, new])  # once each


async def test_repeated_reordered_and_lost_webhooks_from_the_emulator() -> None:
    truths = Truths()
    faults = WebhookFaults(duplicate={1, 2}, reorder={3}, drop={5})
    async with posted_to_by_the_emulator(
        lambda emu: app_for(emu, truths), submissions=300, seed=5, webhook_faults=faults
    ) as (emu, receiver):
        ids = list(emu.dataset.ids[:5])
        for sid in ids:
            emu.update(sid, memo={"text": "seen"})
        await emu.webhooks_idle()
        await receiver.inbox.join()
        inbox = receiver.inbox
        delivered = [w.submission_id for w in emu.webhooks_sent if w.outcome == "delivered"]
        looked_up = lookups(emu)
    assert delivered == [ids[0], ids[0], ids[1], ids[1], ids[3], ids[2]]  # 3 after 4, 5 lost
    # Each delivered submission fetched once, the repeats dropped; the lost one is left to
    # the scheduled reconciliation.
    assert sorted(looked_up) == sorted(ids[:4])
    assert inbox.duplicates == 2
    assert ids[4] not in truths.ids()


async def test_encrypted_webhooks_are_opened_with_the_key() -> None:
    truths = Truths()
    async with posted_to_by_the_emulator(
        lambda emu: app_for(emu, truths, inbox={"key": emu.api_key}, secure_transmission=True),
        submissions=300,
        seed=5,
        secure_transmission=True,
    ) as (emu, receiver):
        sid = emu.dataset.ids[0]
        emu.update(sid, memo={"text": "sealed"})
        await emu.webhooks_idle()
        await receiver.inbox.join()
        (webhook,) = emu.webhooks_sent
        # A plain body is not what this project sends: refused, as a forged one would be.
        plain = await receiver.post(updated(sid, second=1))
    assert webhook.body.startswith(b'{"data":')
    assert (webhook.outcome, webhook.status) == ("delivered", 202)
    assert truths.ids() == [sid]
    assert truths.got[0].raw is not None
    assert msgspec.json.decode(truths.got[0].raw)["memo"]["text"] == "sealed"
    assert plain[0] == 400
    assert "not encrypted" in plain[1]["detail"]


# -- the mirror variant -------------------------------------------------------------------------


@pytest.fixture
def duckdb_target(tmp_path: Path) -> Target:
    return make_target("duckdb", tmp_path, None)


async def test_the_mirror_variant_refreshes_what_the_emulators_webhooks_point_at(
    duckdb_target: Target,
) -> None:
    def mirror_app(emu: ArgosEmulator) -> FastAPI:
        return create_mirror_app(duckdb_target.pipeline(), source_arguments(emu))

    async with posted_to_by_the_emulator(
        mirror_app, submissions=300, seed=11, start=START, days=DAYS
    ) as (emu, receiver):
        await run_mirror(duckdb_target, emu)
        changed, gone = emu.dataset.ids[-2:]
        emu.reset_stats()
        emu.update(changed, aml={"currentstatus": "Red Flag", "risk_level_summary": "High"})
        emu.delete(gone)
        new = emu.create(email="new.applicant@example.com")["submission_id"]
        await emu.webhooks_idle()
        await receiver.inbox.join()
        rows = duckdb_target.rows()
        assert sorted(lookups(emu)) == sorted([changed, gone, new])
        assert [r for r in emu.requests if "start_date" in r.query] == []
        assert [w.status for w in emu.webhooks_sent] == [202] * 3
    assert rows[changed]["aml_status"] == "Red Flag"
    assert rows[gone]["deleted"] is True
    assert rows[new]["kyc_result"] == "incomplete"


async def test_the_mirror_variant_runs_the_schedule_and_the_refreshes_one_at_a_time(
    duckdb_target: Target,
) -> None:
    async with mirror_emulator() as emu:
        sid = emu.dataset.ids[0]
        pipeline = duckdb_target.pipeline()
        app = create_mirror_app(pipeline, source_arguments(emu), reconcile_every=3600)
        async with receiving(app) as receiver:
            await receiver.post(updated(sid))
            await receiver.inbox.join()
        listing = [r for r in emu.requests if "start_date" in r.query]
        refresh = [r for r in emu.requests if r.query.get("submission_id") == sid]
        assert_mirrors(duckdb_target, emu)
    # The first scheduled run (a full backfill) held the lock; the refresh came after it.
    assert listing
    assert len(refresh) == 1
    assert max(r.received_at for r in listing) < refresh[0].received_at


async def test_the_mirror_variant_drops_a_forged_id_and_refreshes_the_rest_of_its_batch(
    duckdb_target: Target,
) -> None:
    forged = "forged-submission-id"
    async with mirror_emulator() as emu:
        await run_mirror(duckdb_target, emu)
        real = emu.dataset.ids[-1]
        emu.update(real, aml={"currentstatus": "Red Flag", "risk_level_summary": "High"})
        refuse = Fail(path=PATH, submission_id=forged, status=400)
        emu.faults = FaultPlan([refuse])
        app = create_mirror_app(duckdb_target.pipeline(), source_arguments(emu))
        async with receiving(app) as receiver:
            # Accepted in one go: the two are one batch, one refresh.
            receiver.inbox.accept(updated(real))
            receiver.inbox.accept(updated(forged))
            await receiver.inbox.join()
            inbox = receiver.inbox
        rows = duckdb_target.rows()
        assert lookups(emu, real) == [real]
    assert rows[real]["aml_status"] == "Red Flag"
    assert forged not in rows
    # Neither failed nor given up: the forged one was dropped by the refresh itself.
    assert (inbox.delivered, inbox.failures, inbox.abandoned) == (2, 0, 0)
    assert refuse.hits == [forged]


async def test_the_mirror_variant_tries_again_only_the_ids_whose_refresh_failed(
    duckdb_target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="argos_async")
    async with mirror_emulator() as emu:
        await run_mirror(duckdb_target, emu)
        changed, failing = emu.dataset.ids[-2:]
        for sid in (changed, failing):
            emu.update(sid, aml={"currentstatus": "Red Flag", "risk_level_summary": "High"})
        emu.reset_stats()
        once = Fail(path=PATH, submission_id=failing, status=500, times=1)
        emu.faults = FaultPlan([once])
        arguments = source_arguments(emu, client_options={**FAST, "max_retries": 0})
        app = create_mirror_app(
            duckdb_target.pipeline(),
            arguments,
            inbox_options={"backoff_base": 0.001, "backoff_max": 0.01},
        )
        async with receiving(app) as receiver:
            receiver.inbox.accept(updated(changed))
            receiver.inbox.accept(updated(failing))
            await receiver.inbox.join()
            inbox = receiver.inbox
        rows = duckdb_target.rows()
        asked = {sid: len(lookups(emu, sid)) for sid in (changed, failing)}
    # The first refresh wrote `changed`; only `failing` went back, and the next one wrote it.
    assert asked == {changed: 1, failing: 2}
    assert (inbox.delivered, inbox.failures, inbox.abandoned) == (2, 1, 0)
    assert rows[changed]["aml_status"] == rows[failing]["aml_status"] == "Red Flag"
    assert "1 submissions not delivered (" in caplog.text
    assert "DeliveryError: 1 of 2 submissions not refreshed: ServerError" in caplog.text
    assert failing not in caplog.text
