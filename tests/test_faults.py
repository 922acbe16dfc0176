"""Fault injection over real loopback HTTP, spoken to with a plain aiohttp client."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from email.utils import parsedate_to_datetime

import aiohttp
import msgspec
import pytest
from support import REPO, serve_process, wait_until

from argos_async.testing import (
    ArgosEmulator,
    Delay,
    DropConnection,
    Fault,
    FaultPlan,
    Mixed,
    QuotaExceeded,
    RecordedResponse,
    Redirect,
    RepeatKey,
    Status,
    TruncateBody,
)
from argos_async.testing.__main__ import main as serve_main

pytestmark = pytest.mark.anyio

SMALL = 300
LIST = "/v3/submission"
APPLICANT = "/v3/submission/applicant"
HTTP_DATE = re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT")


class Reply(msgspec.Struct, frozen=True):
    """What the client saw: status, headers, body, or the error reading the body raised."""

    status: int
    headers: dict[str, str]
    body: bytes
    error: str | None = None


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def fetch(
    http: aiohttp.ClientSession,
    emu: ArgosEmulator,
    path: str = LIST,
    params: Mapping[str, str] | None = None,
    **kwargs: object,
) -> Reply:
    """One GET; a body cut off is reported in `error` instead of raised."""
    headers = {"x-api-key": emu.api_key}
    query = {"count": "1"} if params is None else params
    async with http.get(
        emu.url + path,
        params=query,
        headers=headers,
        allow_redirects=False,
        **kwargs,
    ) as resp:
        seen = {k.lower(): v for k, v in resp.headers.items()}
        try:
            body = await resp.read()
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as exc:
            return Reply(resp.status, seen, b"", type(exc).__name__)
        return Reply(resp.status, seen, body)


def served(plan: FaultPlan | Fault, **kwargs: object) -> ArgosEmulator:
    if isinstance(plan, Fault):
        plan = FaultPlan([plan])
    return ArgosEmulator(SMALL, seed=7, faults=plan, **kwargs)  # type: ignore[arg-type]


def outcomes(emu: ArgosEmulator) -> list[tuple[int, int, str | None]]:
    return [(r.index, r.status, r.fault) for r in emu.responses]


# -- each kind ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (429, "Too Many Requests"),
        (500, "Internal server error"),
        (502, "Bad Gateway"),
        (503, "Service Unavailable"),
        (504, "Endpoint request timed out"),
        (413, "Request Entity Too Large"),
        (400, "Invalid Query String parameters"),
        (403, "Forbidden"),
    ],
)
async def test_status_sends_the_gateway_message(
    http: aiohttp.ClientSession, status: int, message: str
) -> None:
    async with served(Status(status=status, at=1)) as emu:
        first = await fetch(http, emu)
        second = await fetch(http, emu)
    assert first.status == status
    assert msgspec.json.decode(first.body) == {"message": message}
    assert first.headers["content-type"].startswith("application/json")
    assert first.headers["x-amzn-requestid"]
    assert "retry-after" not in first.headers
    assert second.status == 200


async def test_status_with_own_message_and_quota(http: aiohttp.ClientSession) -> None:
    plan = FaultPlan([Status(status=500, message="boom", at=1), QuotaExceeded(at=2)])
    async with served(plan) as emu:
        custom = await fetch(http, emu)
        quota = await fetch(http, emu)
    assert (custom.status, msgspec.json.decode(custom.body)) == (500, {"message": "boom"})
    assert (quota.status, msgspec.json.decode(quota.body)) == (429, {"message": "Limit Exceeded"})
    assert "retry-after" not in quota.headers


async def test_retry_after_in_seconds(http: aiohttp.ClientSession) -> None:
    plan = FaultPlan(
        [
            Status(status=429, retry_after=1, at=1),
            Status(status=429, retry_after=2.0, at=2),
            Status(status=503, retry_after=0.25, at=3),
            Status(status=429, retry_after=1e-5, at=4),
        ]
    )
    async with served(plan) as emu:
        values = [(await fetch(http, emu)).headers["retry-after"] for _ in range(4)]
    assert values == ["1", "2", "0.25", "0.00001"]


@pytest.mark.parametrize("retry_after", [0.0, 1.2, 3.0])
async def test_retry_after_as_http_date_is_never_earlier(
    http: aiohttp.ClientSession, retry_after: float
) -> None:
    async with served(Status(status=429, retry_after=retry_after, http_date=True)) as emu:
        before = time.time()
        reply = await fetch(http, emu)
        after = time.time()
    value = reply.headers["retry-after"]
    assert HTTP_DATE.fullmatch(value), value
    when = parsedate_to_datetime(value).timestamp()
    assert when >= before + retry_after
    assert when <= after + retry_after + 1


async def test_drop_connection_cuts_the_body(http: aiohttp.ClientSession) -> None:
    async with served(DropConnection(at=1)) as emu:
        dropped = await fetch(http, emu)
        after = await fetch(http, emu)
        assert outcomes(emu) == [(0, 200, "DropConnection"), (1, 200, None)]
        assert emu.in_flight == 0
    assert dropped.status == 200
    assert int(dropped.headers["content-length"]) > 100
    assert dropped.error in ("ClientPayloadError", "ServerDisconnectedError")
    assert after.status == 200
    assert after.error is None


async def test_truncated_body_is_http_complete_but_not_json(http: aiohttp.ClientSession) -> None:
    plan = FaultPlan(
        [TruncateBody(at=1), TruncateBody(path=APPLICANT, fraction=0.25, at=1)],
    )
    params = {"count": "10"}
    async with served(plan) as emu:
        cut = await fetch(http, emu, params=params)
        whole = await fetch(http, emu, params=params)
        applicant = emu.dataset.shared_applicant_ids[0]
        cut_applicant = await fetch(http, emu, APPLICANT, {"applicant_id": applicant})
        whole_applicant = await fetch(http, emu, APPLICANT, {"applicant_id": applicant})
    for short, full, fraction in [(cut, whole, 0.5), (cut_applicant, whole_applicant, 0.25)]:
        assert short.status == 200
        assert short.error is None
        assert int(short.headers["content-length"]) == len(short.body)
        assert short.body == full.body[: int(len(full.body) * fraction)]
        with pytest.raises(msgspec.DecodeError):
            msgspec.json.decode(short.body)
        msgspec.json.decode(full.body)


async def test_delay_slows_the_response_down(http: aiohttp.ClientSession) -> None:
    async with served(Delay(0.3, at=1)) as emu:
        start = time.monotonic()
        slow = await fetch(http, emu)
        middle = time.monotonic()
        fast = await fetch(http, emu)
        end = time.monotonic()
        assert outcomes(emu) == [(0, 200, "Delay"), (1, 200, None)]
    assert slow.status == fast.status == 200
    assert msgspec.json.decode(slow.body) == msgspec.json.decode(fast.body)
    assert middle - start >= 0.3
    assert end - middle < 0.3


async def test_delay_ends_when_the_client_gives_up(http: aiohttp.ClientSession) -> None:
    async with served(Delay(seconds=30, at=1)) as emu:
        with pytest.raises(asyncio.TimeoutError):
            await fetch(http, emu, timeout=aiohttp.ClientTimeout(total=0.2))
        await wait_until(lambda: emu.in_flight == 0)
        assert (await fetch(http, emu)).status == 200
        # The abandoned request was never answered.
        assert outcomes(emu) == [(1, 200, None)]


async def test_delay_ends_when_the_server_closes(http: aiohttp.ClientSession) -> None:
    emu = served(Delay(seconds=30))
    await emu.start()
    try:
        pending = asyncio.ensure_future(fetch(http, emu))
        await wait_until(lambda: emu.in_flight == 1)
        start = time.monotonic()
        await emu.close()
        assert time.monotonic() - start < 0.3
        with pytest.raises(aiohttp.ClientError):
            await pending
        assert emu.in_flight == 0
    finally:
        await emu.close()


async def test_redirect_keeps_path_and_query(http: aiohttp.ClientSession) -> None:
    plan = FaultPlan(
        [
            Redirect(location="http://127.0.0.1:9/", at=1),
            Redirect("http://localhost:9", 308, path=APPLICANT),
        ]
    )
    async with served(plan) as emu:
        moved = await fetch(http, emu, params={"count": "5", "email": "a+b@example.com"})
        permanent = await fetch(http, emu, APPLICANT, {"applicant_id": "x"})
        assert [r.fault for r in emu.responses] == ["Redirect", "Redirect"]
    assert moved.status == 307
    assert moved.headers["location"] == (
        "http://127.0.0.1:9/v3/submission?count=5&email=a%2Bb@example.com"
    )
    assert permanent.status == 308
    assert (
        permanent.headers["location"] == "http://localhost:9/v3/submission/applicant?applicant_id=x"
    )


# -- selection, probability, determinism -------------------------------------------------------


async def statuses(
    http: aiohttp.ClientSession, emu: ArgosEmulator, n: int, path: str = LIST
) -> list[int]:
    params = {"applicant_id": "x"} if path == APPLICANT else None
    return [(await fetch(http, emu, path, params)).status for _ in range(n)]


async def test_probability_zero_never_fires_and_one_always(http: aiohttp.ClientSession) -> None:
    async with served(Status(status=503, probability=0.0)) as emu:
        assert await statuses(http, emu, 40) == [200] * 40
    async with served(Status(status=503, probability=1.0)) as emu:
        assert await statuses(http, emu, 40) == [503] * 40


async def test_scripted_faults_do_not_draw(http: aiohttp.ClientSession) -> None:
    """A probability-1 fault leaves the generator alone: the random fault beside it fires
    on the same requests as without it."""
    random_fault = Status(status=500, probability=0.5)
    scripted = Status(status=502, path=APPLICANT)
    runs = []
    for plan in (FaultPlan([random_fault], seed=4), FaultPlan([scripted, random_fault], seed=4)):
        async with served(plan) as emu:
            seen = []
            for _ in range(30):
                seen += await statuses(http, emu, 1)
                assert await statuses(http, emu, 1, APPLICANT) == [
                    502 if plan.faults[0] is scripted else 200
                ]
            runs.append(seen)
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 500}


def test_validation() -> None:
    bad: list[Callable[[], object]] = [
        lambda: Status(status=503, probability=-0.1),
        lambda: Status(status=503, probability=1.5),
        lambda: Status(status=200),
        lambda: Status(status=429, http_date=True),
        lambda: Status(status=429, retry_after=-1),
        lambda: TruncateBody(fraction=1.0),
        lambda: Delay(seconds=-1),
        lambda: Redirect(location="http://127.0.0.1:9", status=200),
        lambda: Mixed(rate=1.5),
        lambda: RepeatKey(back=0),
    ]
    for make in bad:
        with pytest.raises(ValueError):  # noqa: PT011
            make()


async def mixed_run(
    http: aiohttp.ClientSession, plan: FaultPlan, n: int
) -> list[tuple[RecordedResponse, Reply]]:
    """`n` list requests in turn: what the emulator recorded and what the client saw of each."""
    async with served(plan) as emu:
        replies = [await fetch(http, emu) for _ in range(n)]
        assert [r.index for r in emu.responses] == list(range(n))
        for sent, arrived in zip(emu.responses, emu.requests, strict=True):
            assert sent.sent_at >= arrived.received_at
        return list(zip(emu.responses, replies, strict=True))


def kind_of(sent: RecordedResponse, reply: Reply) -> str | None:
    """The fault kind of one exchange, as `Mixed` lists them (None for a normal one)."""
    if sent.fault == "Status":
        retry_after = reply.headers.get("retry-after")
        if retry_after is None:
            return str(reply.status)
        return "429-date" if HTTP_DATE.fullmatch(retry_after) else f"429-{retry_after}"
    return sent.fault


async def test_same_seed_same_faults(http: aiohttp.ClientSession) -> None:
    runs = []
    for seed in (11, 11, 12):
        exchanges = await mixed_run(http, FaultPlan.mixed(0.5, seed=seed), 200)
        runs.append([(sent.status, kind_of(sent, reply)) for sent, reply in exchanges])
    first, again, other = runs
    assert first == again
    assert first != other
    assert len({kind for _, kind in first}) > 5


async def test_mixed_rate_and_kinds(http: aiohttp.ClientSession) -> None:
    n = 1000
    exchanges = await mixed_run(http, FaultPlan.mixed(0.2, seed=1, retry_after=2), n)
    kinds = Counter(kind_of(sent, reply) for sent, reply in exchanges)
    fired = n - kinds.pop(None)
    assert 0.15 * n <= fired <= 0.25 * n
    assert set(kinds) == {
        *("429", "429-2", "429-date", "500", "502", "503", "504"),
        *("DropConnection", "TruncateBody"),
    }
    for sent, reply in exchanges:
        assert sent.status == reply.status
        if sent.fault == "DropConnection":
            assert reply.status == 200
            assert reply.error is not None
        elif sent.fault == "TruncateBody":
            assert reply.status == 200
            assert reply.error is None
            with pytest.raises(msgspec.DecodeError):
                msgspec.json.decode(reply.body)
        elif sent.fault is None:
            assert reply.status == 200
            msgspec.json.decode(reply.body)


async def test_mixed_on_a_path_leaves_lists_alone(http: aiohttp.ClientSession) -> None:
    async with served(FaultPlan.mixed(1.0, path=APPLICANT)) as emu:
        assert await statuses(http, emu, 10) == [200] * 10
        for _ in range(10):
            await fetch(http, emu, APPLICANT, {"applicant_id": "x"})
        assert all(r.fault is not None for r in emu.responses[10:])


# -- recording ---------------------------------------------------------------------------------


async def test_responses_are_recorded_with_the_fault(http: aiohttp.ClientSession) -> None:
    plan = FaultPlan([Status(503, at=2), RepeatKey(at=(1, 3))])
    async with served(plan) as emu:
        first = await fetch(http, emu, params={"count": "5"})
        await fetch(http, emu, params={"count": "5"})
        await fetch(http, emu, params={"count": "5"})
        async with http.get(emu.url + LIST, headers={"x-api-key": "wrong"}) as resp:
            await resp.read()
        # RepeatKey had nothing to repeat on the first page: a normal response.
        assert outcomes(emu) == [
            (0, 200, None),
            (1, 503, "Status"),
            (2, 200, "RepeatKey"),
            (3, 403, None),
        ]
        times = [r.sent_at for r in emu.responses]
        assert times == sorted(times)
        assert all(r.sent_at >= emu.requests[r.index].received_at for r in emu.responses)
        emu.reset_stats()
        assert emu.responses == []
        assert emu.requests == []
    assert msgspec.json.decode(first.body)["nextpageKey"]


# -- command line ------------------------------------------------------------------------------


def test_parse_spec() -> None:
    plan = FaultPlan.parse("503=0.05,drop=0.02,slow=0.01:2,429-retry-after=0.1:1.5", seed=3)
    assert plan.seed == 3
    assert plan.faults == (
        Status(status=503, probability=0.05),
        DropConnection(probability=0.02),
        Delay(seconds=2.0, probability=0.01),
        Status(status=429, retry_after=1.5, probability=0.1),
    )
    plan = FaultPlan.parse("429=1,quota=0,500=0.5,502=0.5,504=0.5,truncate=0.5")
    assert [type(f).__name__ for f in plan.faults] == [
        *("Status", "QuotaExceeded", "Status", "Status", "Status", "TruncateBody"),
    ]
    mixed = FaultPlan.parse("mixed=0.2", seed=9)
    assert mixed.faults == (Mixed(0.2),)
    assert FaultPlan.parse("mixed=0.3:1.5").faults == (Mixed(0.3, 1.5),)
    assert repr(mixed) == "FaultPlan([Mixed(rate=0.2)], seed=9)"


def test_parse_spec_expresses_every_fault_kind() -> None:
    spec = ",".join(
        [
            *("400=0.1", "403=0.1", "413=0.1"),
            "429-retry-date=0.1:3",
            "503-retry-after=0.1:0.5",
            "503-retry-date=0.1:2",
            "quota=0.1",
            "drop=0.1",
            "truncate=0.1",
            "truncate=0.1:0.25",
            "slow=0.1:1.5",
            "repeat-key=0.1",
            "repeat-key=0.1:2",
            "redirect=0.1:http://127.0.0.1:9",
        ]
    )
    assert FaultPlan.parse(spec).faults == (
        Status(status=400, probability=0.1),
        Status(status=403, probability=0.1),
        Status(status=413, probability=0.1),
        Status(status=429, retry_after=3.0, http_date=True, probability=0.1),
        Status(status=503, retry_after=0.5, probability=0.1),
        Status(status=503, retry_after=2.0, http_date=True, probability=0.1),
        QuotaExceeded(probability=0.1),
        DropConnection(probability=0.1),
        TruncateBody(probability=0.1),
        TruncateBody(fraction=0.25, probability=0.1),
        Delay(seconds=1.5, probability=0.1),
        RepeatKey(probability=0.1),
        RepeatKey(back=2, probability=0.1),
        Redirect(location="http://127.0.0.1:9", probability=0.1),
    )
    # Every kind the plan has, besides Mixed (mixed=) and the base class, has a spec.
    kinds = {type(f).__name__ for f in FaultPlan.parse(spec).faults}
    assert kinds == {"Status", "QuotaExceeded", "DropConnection", "TruncateBody", "Delay"} | {
        "RepeatKey",
        "Redirect",
    }


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "mixed",
        "mixed=abc",
        "mixed=1.5",
        "503=0.1,mixed=0.2",
        "slow=0.1",
        "503=0.1:2",
        "418=0.1",
        "drop=-1",
        "drop=nan",
        "drop=2",
        "503=0.1,,drop=0.1",
        "drop=0.1:2",
        "429-retry-date=0.1",
        "503-retry-after=0.1:soon",
        "504-retry-after=0.1:2",
        "truncate=0.1:1",
        "repeat-key=0.1:0",
        "repeat-key=0.1:x",
        "redirect=0.1",
        "redirect=0.1:ftp://127.0.0.1:9",
        "redirect=0.1:http://127.0.0.1:9/v3/submission",
    ],
)
def test_bad_spec_is_a_usage_error(spec: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        serve_main(["serve", "--faults", spec])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err
    assert "--faults" in err


def test_serve_cli_with_faults() -> None:
    faults = ("--faults", "mixed=0.2", "--fault-seed", "3")
    with serve_process("--submissions", "200", "--api-key", "cli-key", *faults) as (_, line):
        match = re.fullmatch(
            r"Argos emulator listening on (http://127\.0\.0\.1:\d+) \(200 submissions, api key:"
            r" cli-key, faults: FaultPlan\(\[Mixed\(rate=0\.2\)\], seed=3\)\)\n",
            line,
        )
        assert match, line
        url = match.group(1)

        async def requests() -> list[int | str]:
            seen: list[int | str] = []
            async with aiohttp.ClientSession() as session:
                for _ in range(40):
                    async with session.get(
                        url + LIST, headers={"x-api-key": "cli-key"}, params={"count": "1"}
                    ) as resp:
                        try:
                            await resp.read()
                            seen.append(resp.status)
                        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError):
                            seen.append("cut")
            return seen

        seen = asyncio.run(asyncio.wait_for(requests(), 10))
        assert 200 in seen
        assert set(seen) != {200}


def test_serve_cli_with_a_retry_after_date_and_a_repeated_key() -> None:
    faults = ("--faults", "429-retry-date=0.5:30,repeat-key=1")
    with serve_process("--submissions", "50", "--api-key", "cli-key", *faults) as (_, line):
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+) ", line)
        assert match, line
        assert "http_date=True" in line
        assert "RepeatKey(" in line

        async def requests() -> list[Reply]:
            """List requests, each after the key of the last page that came back."""
            replies = []
            params = {"count": "1"}
            async with aiohttp.ClientSession() as session:
                for _ in range(12):
                    async with session.get(
                        match.group(1) + LIST, headers={"x-api-key": "cli-key"}, params=params
                    ) as resp:
                        headers = {k.lower(): v for k, v in resp.headers.items()}
                        replies.append(Reply(resp.status, headers, await resp.read()))
                    if resp.status == 200:
                        key = msgspec.json.decode(replies[-1].body)["nextpageKey"]
                        params = {
                            "count": "1",
                            "nextpage_id": key["id"],
                            "nextpage_date": key["created_at"],
                        }
            return replies

        replies = asyncio.run(asyncio.wait_for(requests(), 10))
        limited = [r for r in replies if r.status == 429]
        assert limited
        for reply in limited:
            assert HTTP_DATE.fullmatch(reply.headers["retry-after"])
            assert parsedate_to_datetime(reply.headers["retry-after"]).timestamp() > time.time()
        keys = [msgspec.json.decode(r.body)["nextpageKey"] for r in replies if r.status == 200]
        # From the second page on, every page repeats the key of the page before it.
        assert len(keys) >= 3
        assert all(key == keys[0] for key in keys)


def test_serve_cli_rejects_a_bad_spec() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "argos_async.testing", "serve", "--faults", "teapot=0.1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2, done.stderr
    assert "--faults" in done.stderr
    assert "teapot" in done.stderr
