"""The emulator's webhooks: what each change sends, that the API already shows the change
when the webhook arrives, retries and timeouts, and the delivery faults a receiver must
survive, against a real receiver on loopback."""

from __future__ import annotations

import asyncio
import functools
import re
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import aiohttp
import anyio.to_thread
import msgspec
import pytest
from aiohttp import web
from support import REPO, serve_process, wait_until

from argos_async.testing import ArgosEmulator, EmulatorAdmin, RecordedWebhook, WebhookFaults

pytestmark = pytest.mark.anyio

# The fields every documented payload carries, and those of a decision.
COMMON = {"webhook_trigger", "submission_id", "email", "userid", "tokenId", "cf"}
PERSONAL = {
    "age_group", "gender", "date_of_birth", "nationality", "full_name", "phoneNumber",
    "ssnNumber", "idType", "issuingCountry", "issueDate", "expireDate", "identityNumber",
    "documentNumber", "ipAddress", "additional_list",
}  # fmt: skip
# A decision's top-level personal fields: the key of the item's `data` each one is.
PERSONAL_FROM_DATA = {
    "gender": "gender",
    "date_of_birth": "date_of_birth",
    "nationality": "nationality",
    "idType": "idType",
    "issuingCountry": "idcard_issuingCountry",
    "issueDate": "idcard_issueDate",
    "expireDate": "idcard_expireDate",
    "identityNumber": "identityNumber",
    "documentNumber": "documentNumber",
    "ipAddress": "ip_address",
}


class Receiver:
    """A webhook receiver on loopback: records each body, answers the scripted `statuses`
    in turn (then 200), and while `gate` is clear holds every answer back.

    With `lookup` set to an emulator it also looks the submission up through the API as
    each webhook arrives, before answering: `found` is what the API served then."""

    def __init__(self, *, statuses: Sequence[int] = (), hold: bool = False) -> None:
        self.bodies: list[bytes] = []
        self.found: list[dict[str, Any] | None] = []
        self.lookup: ArgosEmulator | None = None
        self.gate = asyncio.Event()
        if not hold:
            self.gate.set()
        self.arrived = asyncio.Event()
        self.url = ""
        self._statuses = list(statuses)
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    @property
    def payloads(self) -> list[dict[str, Any]]:
        return [msgspec.json.decode(body) for body in self.bodies]

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.bodies.append(body)
        if self.lookup is not None and self._http is not None:
            sid = msgspec.json.decode(body)["submission_id"]
            async with self._http.get(
                self.lookup.url + "/v3/submission",
                params={"submission_id": sid},
                headers={"x-api-key": self.lookup.api_key},
            ) as response:
                items = (await response.json())["Items"]
            self.found.append(items[0] if items else None)
        self.arrived.set()
        await self.gate.wait()
        return web.Response(status=self._statuses.pop(0) if self._statuses else 200)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=0.5, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"
        self._http = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.gate.set()
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()


def _of_result(emu: ArgosEmulator, result: str, n: int = 1) -> list[str]:
    return [
        item["submission_id"]
        for item in emu.dataset.items
        if item["kyc"]["result"] == result and "attempts" in item["kyc"]
    ][:n]


def _shape(sent: list[RecordedWebhook]) -> list[tuple[int, int, str, int | None, bool]]:
    return [(r.event, r.attempt, r.outcome, r.status, r.duplicate) for r in sent]


async def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    """A blocking call (urllib) off the loop the emulator answers on."""
    return await anyio.to_thread.run_sync(functools.partial(function, *args, **kwargs))


# -- what each change sends -------------------------------------------------------------


async def test_each_change_sends_its_documented_webhook_once_the_api_shows_it() -> None:
    async with Receiver() as rx, ArgosEmulator(300, seed=5, webhook_url=rx.url) as emu:
        rx.lookup = emu
        pending, incomplete = _of_result(emu, "pending")[0], _of_result(emu, "incomplete")[0]
        states: list[dict[str, Any] | None] = []

        created = emu.create(
            email="new@example.com",
            userid="user-new",
            data={"cf1": "web", "cf2": "campaign-1", "ip_address": "127.0.*"},
        )
        states.append(created)
        await emu.webhooks_idle()
        states.append(emu.update(created["submission_id"], data={"full_name": "Ana Lima"}))
        await emu.webhooks_idle()
        states.append(emu.update(pending, kyc={"result": "approved"}))
        await emu.webhooks_idle()
        states.append(emu.update(incomplete, kyc={"result": "rejected"}))
        await emu.webhooks_idle()
        gone = emu.get(created["submission_id"])
        emu.delete(created["submission_id"])
        states.append(None)
        await emu.webhooks_idle()

        payloads = rx.payloads
        assert [p["webhook_trigger"] for p in payloads] == [
            "created", "updated", "approved", "rejected", "delete",
        ]  # fmt: skip
        # Sent once the change was applied: the receiver's lookup saw it.
        assert rx.found == states
        assert [(r.trigger, r.outcome, r.status) for r in emu.webhooks_sent] == [
            (p["webhook_trigger"], "delivered", 200) for p in payloads
        ]
        assert [r.body for r in emu.webhooks_sent] == rx.bodies

    made, updated, approved, rejected, deleted = payloads
    for payload, state in zip(payloads, [*states[:4], gone], strict=True):
        assert state is not None
        assert set(payload) >= COMMON
        assert payload["submission_id"] == state["submission_id"]
        assert payload["email"] == state["email"]
        assert payload["userid"] == state.get("userid")
        assert payload["tokenId"] is None  # the emulator's items carry none
        data = state["data"]
        assert payload["cf"] == {k: data.get(k) for k in ("cf1", "cf2", "cf3")}

    assert made["kyc_result"] == {"status": "incomplete"}
    assert made["cf"] == {"cf1": "web", "cf2": "campaign-1", "cf3": None}
    assert made["ipAddress"] == "127.0.*"
    assert made["userid"] == "user-new"

    after_update = states[1]
    assert after_update is not None
    assert updated["data"] == {
        "update": ["data.full_name"],
        "kyc_result": "incomplete",
        "pending_at": None,
        "reviewer": "system",
    }
    assert updated["update_time"] == after_update["updated_at"]
    assert re.fullmatch(r"\S+@\S+", updated["admin"])
    assert updated["full_name"] == "Ana Lima"

    for payload, state in ((approved, states[2]), (rejected, states[3])):
        assert state is not None
        assert set(payload) >= PERSONAL
        assert payload["kyc_result"]["status"] == state["kyc"]["result"]
        for key in ("updated_at", "created_at", "kyc_result_at", "pending_at", "reviewer"):
            assert payload["kyc_result"][key] == state.get(key), key
        for name, key in PERSONAL_FROM_DATA.items():
            assert payload[name] == state["data"].get(key), name
        assert payload["full_name"] == state["data"].get("full_name", state["data"]["name"])
        assert payload["duplicated_information"] == state.get("duplicated_information")
    assert approved["kyc_result"]["kyc_result_at"] is not None
    assert approved["applicant_id"] == (states[2] or {}).get("applicant_id")
    assert "applicant_id" not in rejected
    assert rejected["kyc_result"]["comment"] == (states[3] or {})["kyc"]["comment"]
    assert set(deleted) == COMMON


async def test_an_aml_result_alone_sends_aml_and_other_changes_send_updated() -> None:
    async with Receiver() as rx, ArgosEmulator(300, seed=5, webhook_url=rx.url) as emu:
        sid = _of_result(emu, "approved")[0]
        flagged = {"currentstatus": "Red Flag", "risk_level_summary": "High"}
        emu.update(sid, aml=flagged)
        emu.update(sid, kyc={"result": "approved"}, memo={"text": "checked"})
        await emu.webhooks_idle()
    aml, updated = rx.payloads
    assert aml["webhook_trigger"] == "aml"
    assert aml["aml_result"] == flagged
    # Approved already: no second `approved`, an `updated` naming what moved.
    assert updated["webhook_trigger"] == "updated"
    assert updated["data"]["update"] == ["memo"]


# -- delivery ---------------------------------------------------------------------------


async def test_the_admin_endpoint_answers_before_the_webhook_is_delivered() -> None:
    async with Receiver(hold=True) as rx, ArgosEmulator(100, seed=2, webhook_url=rx.url) as emu:
        admin = EmulatorAdmin(emu.url, emu.api_key)
        item = await _call(admin.create, email="later@example.com")
        assert item == emu.get(item["submission_id"])
        await asyncio.wait_for(rx.arrived.wait(), 10)
        # The receiver holds its answer: the PATCH is answered all the same.
        changed = await _call(admin.update, item["submission_id"], kyc={"result": "pending"})
        assert changed["kyc"]["result"] == "pending"
        assert emu.webhooks_sent == []  # no delivery has finished yet
        rx.gate.set()
        await emu.webhooks_idle()
    assert [(r.trigger, r.outcome) for r in emu.webhooks_sent] == [
        ("created", "delivered"),
        ("updated", "delivered"),
    ]


async def test_a_failing_receiver_is_retried_then_given_up() -> None:
    # Event 1: 500, 500, then 200. Event 2: three 500s, given up. Event 3: delivered at once.
    async with (
        Receiver(statuses=[500, 500, 200, 500, 500, 500]) as rx,
        ArgosEmulator(100, seed=2, webhook_url=rx.url, webhook_backoff=0.001) as emu,
    ):
        for sid in emu.dataset.ids[:3]:
            emu.update(sid, memo=None)
        await emu.webhooks_idle()
    assert _shape(emu.webhooks_sent) == [
        (1, 1, "failed", 500, False),
        (1, 2, "failed", 500, False),
        (1, 3, "delivered", 200, False),
        (2, 1, "failed", 500, False),
        (2, 2, "failed", 500, False),
        (2, 3, "failed", 500, False),
        (3, 1, "delivered", 200, False),
    ]
    assert [r.body for r in emu.webhooks_sent] == rx.bodies  # each try sends the same body


async def test_a_receiver_that_is_down_is_recorded_as_errors() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hook"
    async with ArgosEmulator(50, webhook_url=url, webhook_attempts=2, webhook_backoff=0) as emu:
        emu.update(emu.dataset.ids[0], memo=None)
        await emu.webhooks_idle()
    assert [(r.attempt, r.outcome, r.status) for r in emu.webhooks_sent] == [
        (1, "error", None),
        (2, "error", None),
    ]
    assert all(r.error and "Connect" in r.error for r in emu.webhooks_sent)


async def test_a_slow_receiver_is_timed_out() -> None:
    async with (
        Receiver(hold=True) as rx,
        ArgosEmulator(
            50, webhook_url=rx.url, webhook_timeout=0.2, webhook_attempts=2, webhook_backoff=0
        ) as emu,
    ):
        emu.update(emu.dataset.ids[0], memo=None)
        await emu.webhooks_idle()
        assert [(r.attempt, r.outcome, r.status) for r in emu.webhooks_sent] == [
            (1, "timeout", None),
            (2, "timeout", None),
        ]
        assert all(r.ended_at - r.started_at >= 0.2 * 0.9 for r in emu.webhooks_sent)
        assert len(rx.bodies) == 2  # it did arrive, twice; the answer never came in time


async def test_close_with_deliveries_pending_leaves_nothing_running() -> None:
    async with Receiver(hold=True) as rx:
        emu = ArgosEmulator(50, webhook_url=rx.url)
        await emu.start()
        for sid in emu.dataset.ids[:3]:
            emu.update(sid, memo=None)
        await asyncio.wait_for(rx.arrived.wait(), 10)
        await emu.close()
        # The attempt in flight is cut short; the two queued never go.
        assert [(r.event, r.outcome) for r in emu.webhooks_sent] == [(1, "cancelled")]
        emu.update(emu.dataset.ids[4], memo=None)  # not running: nothing queued
        await emu.webhooks_idle()
    assert len(emu.webhooks_sent) == 1
    # The conftest fixtures fail the test on a task left running or an unclosed session.


# -- delivery faults --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("faults", "arrival", "faulted"),
    [
        (WebhookFaults(drop={2}), [1, 3], {2: ("drop",)}),
        (WebhookFaults(duplicate={2}), [1, 2, 2, 3], {2: ("duplicate",)}),
        (WebhookFaults(reorder={1}), [2, 1, 3], {1: ("reorder",)}),
        # Nothing comes after the last event to overtake it: it goes out alone.
        (WebhookFaults(reorder={3}), [1, 2, 3], {}),
        # A dropped event overtakes nothing: the held one waits for the next that goes out.
        (WebhookFaults(reorder={1}, drop={2}), [3, 1], {1: ("reorder",), 2: ("drop",)}),
    ],
    ids=["drop", "duplicate", "reorder", "reorder-last", "reorder-past-a-drop"],
)
async def test_a_fault_by_event_number(
    faults: WebhookFaults, arrival: list[int], faulted: dict[int, tuple[str, ...]]
) -> None:
    async with (
        Receiver() as rx,
        ArgosEmulator(50, webhook_url=rx.url, webhook_faults=faults) as emu,
    ):
        ids = emu.dataset.ids[:3]
        for sid in ids:
            emu.update(sid, memo=None)
        await emu.webhooks_idle()
    assert [ids.index(p["submission_id"]) + 1 for p in rx.payloads] == arrival
    assert {r.event: r.faults for r in emu.webhooks_sent if r.faults} == faulted
    if faults.drop:
        (dropped,) = (r for r in emu.webhooks_sent if r.outcome == "dropped")
        assert (dropped.event, dropped.attempt, dropped.status) == (2, 0, None)
    if faults.duplicate:
        twice = [r for r in emu.webhooks_sent if r.event == 2]
        assert [r.duplicate for r in twice] == [False, True]
        assert twice[0].body == twice[1].body


async def test_a_delayed_event_waits_before_it_is_sent() -> None:
    faults = WebhookFaults(delay={1}, delay_seconds=0.2)
    async with (
        Receiver() as rx,
        ArgosEmulator(50, webhook_url=rx.url, webhook_faults=faults) as emu,
    ):
        queued = time.monotonic()
        for sid in emu.dataset.ids[:2]:
            emu.update(sid, memo=None)
        await emu.webhooks_idle()
    first, second = emu.webhooks_sent
    assert (first.event, first.faults, second.event, second.faults) == (1, ("delay",), 2, ())
    assert first.started_at - queued >= 0.2 * 0.9  # timers may fire a hair early
    assert len(rx.bodies) == 2


async def _seeded_run(faults: WebhookFaults) -> tuple[list[bytes], list[tuple[Any, ...]]]:
    """24 updates with these faults: the bodies as they arrived, and each record's shape."""
    async with (
        Receiver() as rx,
        ArgosEmulator(80, seed=6, webhook_url=rx.url, webhook_faults=faults) as emu,
    ):
        for sid in emu.dataset.ids[:24]:
            emu.update(sid, memo=None)
        await emu.webhooks_idle()
    records = [(*_shape([r])[0], r.faults) for r in emu.webhooks_sent]
    return rx.bodies, records


async def test_random_faults_are_the_same_for_a_seed() -> None:
    faults = WebhookFaults(
        drop=0.2, duplicate=0.2, reorder=0.2, delay=0.2, delay_seconds=0.01, seed=3
    )
    bodies, records = await _seeded_run(faults)
    assert (bodies, records) == await _seeded_run(faults)
    seen = {kind for record in records for kind in record[-1]}
    assert seen == {"drop", "duplicate", "reorder", "delay"}
    outcomes = {record[2] for record in records}
    assert outcomes == {"delivered", "dropped"}
    other_seed, _ = await _seeded_run(WebhookFaults(**{**_fields(faults), "seed": 4}))
    assert other_seed != bodies


def _fields(faults: WebhookFaults) -> dict[str, Any]:
    return {
        name: getattr(faults, name)
        for name in ("drop", "duplicate", "reorder", "delay", "delay_seconds", "hold_seconds")
    }


def test_each_kind_draws_on_its_own() -> None:
    def picks(faults: WebhookFaults) -> list[tuple[str, ...]]:
        rng = faults.new_state()
        return [faults.decide(n, rng) for n in range(1, 200)]

    both = picks(WebhookFaults(drop=0.1, duplicate=0.3, seed=9))
    alone = picks(WebhookFaults(drop=0.1, seed=9))
    assert ("drop",) in both
    assert ("duplicate",) in both
    # Turning duplicates on leaves the drops of the seed where they were.
    assert [p == ("drop",) for p in both] == [p == ("drop",) for p in alone]
    assert picks(WebhookFaults(drop={3}, delay=1.0))[2] == ("drop",)  # a drop meets nothing else
    assert picks(WebhookFaults(delay=1.0))[:2] == [("delay",), ("delay",)]


def test_faults_parse_and_refuse() -> None:
    parsed = WebhookFaults.parse("duplicate=0.2,reorder=0.2:0.5,drop=0.1,delay=0.05:2", seed=7)
    assert parsed == WebhookFaults(
        duplicate=0.2, reorder=0.2, drop=0.1, delay=0.05, delay_seconds=2, hold_seconds=0.5, seed=7
    )
    assert repr(WebhookFaults(drop={2})) == "WebhookFaults(drop=frozenset({2}))"
    for bad in ("", "drop", "drop=2", "drop=0.1:3", "lost=0.1", "drop=0.1,drop=0.2", "delay=x"):
        with pytest.raises(ValueError):  # noqa: PT011 (each spec has its own message)
            WebhookFaults.parse(bad)
    with pytest.raises(ValueError, match="whole numbers"):
        WebhookFaults(drop={0})
    with pytest.raises(TypeError):
        WebhookFaults(drop="1")  # type: ignore[arg-type]


# -- where webhooks may go, and serve ---------------------------------------------------


def test_only_loopback_receivers_by_default() -> None:
    with pytest.raises(ValueError, match=r"loopback hosts, not 'example\.com'"):
        ArgosEmulator(10, webhook_url="https://example.com/hook")
    with pytest.raises(ValueError, match="http"):
        ArgosEmulator(10, webhook_url="ftp://127.0.0.1/hook")
    with pytest.raises(ValueError, match="attempts"):
        ArgosEmulator(10, webhook_url="http://127.0.0.1/hook", webhook_attempts=0)
    for url in ("http://localhost:9/hook", "http://[::1]:9/hook", "https://127.0.0.2/"):
        ArgosEmulator(10, webhook_url=url)
    ArgosEmulator(10, webhook_url="https://example.com/hook", webhook_any_host=True)


def test_serve_refuses_a_remote_webhook_url_and_bad_faults() -> None:
    for args in (
        ["--webhook-url", "http://10.1.2.3/hook"],
        ["--webhook-url", "http://127.0.0.1/hook", "--webhook-faults", "lost=0.5"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "argos_async.testing", "serve", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 2, done.stderr
        assert re.search(r"--webhook-(url|faults): .*(loopback|unknown)", done.stderr)


async def test_serve_sends_webhooks_for_changes_from_another_process() -> None:
    async with Receiver() as rx:
        # Every webhook twice: a receiver of serve must survive duplicates too.
        args = ("--submissions", "200", "--api-key", "hook-key", "--webhook-url", rx.url)
        with serve_process(*args, "--webhook-faults", "duplicate=1") as (_, line):
            assert f", webhooks to {rx.url})" in line
            url = re.search(r"listening on (\S+)", line).group(1)  # type: ignore[union-attr]
            admin = EmulatorAdmin(url, "hook-key")
            sid = _of_result(ArgosEmulator(200), "incomplete")[0]
            await _call(admin.update, sid, kyc={"result": "rejected"})
            made = await _call(admin.create, email="cli@example.com")
            await wait_until(lambda: len(rx.bodies) >= 4, timeout=10)
    triggers = [(p["webhook_trigger"], p["submission_id"]) for p in rx.payloads]
    assert triggers == [("rejected", sid)] * 2 + [("created", made["submission_id"])] * 2
    assert rx.bodies[0] == rx.bodies[1]
