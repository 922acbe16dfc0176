"""Hostile servers and odd input: a typed error every time, never a crash, a group or a loss.

The hostile answers are faults defined here and served by the emulator over loopback HTTP.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import msgspec
import pytest
from aiohttp import web
from support import FAST, REPO, client_for, serve_process

from argos_async import (
    ArgosClient,
    AuthenticationError,
    BadRequestError,
    CheckpointError,
    NotFoundError,
    PaginationError,
    ResponseDecodeError,
    ServerError,
)
from argos_async._plan import windows_between
from argos_async._progress import Progress
from argos_async._protocol.query import Position, encode_cursor
from argos_async.models import PageKey
from argos_async.testing import ArgosEmulator, Dataset, FaultPlan, Status
from argos_async.testing._faults import Fault, FaultContext
from argos_async.testing._listing import ListPage

pytestmark = pytest.mark.anyio

PATH = "/v3/submission"
DEEP = b"[" * 1000 + b"]" * 1000  # 2 kB that msgspec will not decode: nested past its limit


@dataclass(frozen=True, repr=False)
class Body(Fault):
    """Answers with this body and status instead of the emulator."""

    body: bytes = b""
    status: int = 200

    async def respond(self, request: web.Request, ctx: FaultContext) -> web.StreamResponse | None:
        return web.Response(body=self.body, status=self.status, content_type="application/json")


def deep_item(submission_id: str) -> bytes:
    return b'{"Items":[{"submission_id":"' + submission_id.encode() + b'","x":' + DEEP + b"}]}"


# ---------------------------------------------------------------------------------------------
# One error, never a group.


@pytest.mark.parametrize("run", range(5))
async def test_every_shard_failing_at_once_raises_one_api_error_not_a_group(run: int) -> None:
    # The emulator's latency lets all eight shards' first requests be in flight at once, so
    # their 403s come back together: the case that used to surface as an ExceptionGroup.
    async with (
        ArgosEmulator(submissions=2_000, seed=run, latency=0.02) as emu,
        client_for(emu, api_key="wrong") as argos,
    ):
        with pytest.raises(AuthenticationError):
            async for _ in argos.backfill("2025-01-01", "2025-03-01", shards=8):
                pass
        assert len(emu.requests) >= 2


def test_the_cli_says_a_refused_key_in_one_line_and_exits_1(tmp_path: Path) -> None:
    with serve_process("--submissions", "500") as (_, line):
        url = line.split()[4]  # "Argos emulator listening on URL (...)"
        done = subprocess.run(
            [
                sys.executable, "-m", "argos_async", "export",
                "--out", str(tmp_path / "out.jsonl"), "--start-date", "2025-01-01",
                "--end-date", "2025-03-01", "--shards", "8",
            ],
            cwd=REPO,
            env={"ARGOS_API_KEY": "wrong", "ARGOS_BASE_URL": url, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "ExceptionGroup" not in done.stderr
    assert len([line for line in done.stderr.splitlines() if line.strip()]) == 1, done.stderr


# ---------------------------------------------------------------------------------------------
# Bodies nested past msgspec's depth limit.


async def test_deep_nesting_is_a_decode_error_on_every_path() -> None:
    sid = "deep-1"
    lookups: list[tuple[Fault, Callable[[ArgosClient], Awaitable[object]]]] = [
        (Body(body=deep_item(sid), path=PATH), lambda a: a.get_submission(sid)),
        (
            Body(body=b'[{"submission_id":"a","x":' + DEEP + b"}]", path=f"{PATH}/applicant"),
            lambda a: a.get_applicant_submissions("x"),
        ),
    ]
    for fault, call in lookups:
        async with (
            ArgosEmulator(submissions=5, seed=1, faults=FaultPlan([fault])) as emu,
            client_for(emu, FAST) as argos,
        ):
            with pytest.raises(ResponseDecodeError, match="nests too deeply"):
                await call(argos)
    plan = FaultPlan([Body(body=deep_item(sid))])  # list requests only
    async with (
        ArgosEmulator(submissions=5, seed=1, faults=plan) as emu,
        client_for(emu, FAST) as argos,
    ):
        for listing in (argos.iter_submissions, argos.iter_pages):
            with pytest.raises(ResponseDecodeError, match="nests too deeply"):
                async for _ in listing(page_size=10):
                    pass


async def test_a_deeply_nested_error_body_is_the_status_error_with_its_excerpt() -> None:
    plan = FaultPlan([Body(body=DEEP, status=500, path=PATH)])
    async with (
        ArgosEmulator(submissions=50, seed=1, faults=plan) as emu,
        client_for(emu, FAST, max_retries=1) as argos,
    ):
        with pytest.raises(ServerError) as info:
            await argos.get_submission(emu.dataset.ids[0])
    assert info.value.status == 500
    assert info.value.body.startswith("[[[[")
    assert len(info.value.body) <= 500


async def test_a_deeply_nested_answer_fails_its_own_key_in_a_batch() -> None:
    ids = list(Dataset.generate(50, 1).ids[:10])
    poisoned = ids[3]

    @dataclass(frozen=True, repr=False)
    class DeepFor(Fault):
        async def respond(
            self, request: web.Request, ctx: FaultContext
        ) -> web.StreamResponse | None:
            if ctx.query.get("submission_id") != poisoned:
                return None
            return web.Response(body=deep_item(poisoned), content_type="application/json")

    plan = FaultPlan([DeepFor(path=PATH)])
    async with (
        ArgosEmulator(submissions=50, seed=1, faults=plan) as emu,
        client_for(emu, FAST) as argos,
    ):
        results = {r.key: r async for r in argos.batch_get_submissions(ids)}
    assert set(results) == set(ids)
    assert isinstance(results[poisoned].error, ResponseDecodeError)
    assert all(results[i].ok for i in ids if i != poisoned)


# ---------------------------------------------------------------------------------------------
# A lookup answered with other submissions.


def items(*ids: str) -> bytes:
    return msgspec.json.encode({"Items": [{"submission_id": i} for i in ids]})


async def test_an_answer_without_the_id_asked_for_is_a_decode_error() -> None:
    plan = FaultPlan([Body(body=items("someone-else"), path=PATH)])
    async with (
        ArgosEmulator(submissions=5, seed=1, faults=plan) as emu,
        client_for(emu, FAST) as argos,
    ):
        with pytest.raises(ResponseDecodeError, match="'a'"):
            await argos.get_submission("a")


async def test_of_several_items_the_one_asked_for_is_given() -> None:
    plan = FaultPlan([Body(body=items("x", "a", "y"), path=PATH)])
    async with (
        ArgosEmulator(submissions=5, seed=1, faults=plan) as emu,
        client_for(emu, FAST) as argos,
    ):
        sub = await argos.get_submission("a")
    assert sub.submission_id == "a"


async def test_not_found_does_not_read_like_an_http_status() -> None:
    async with ArgosEmulator(submissions=5, seed=1) as emu, client_for(emu, FAST) as argos:
        with pytest.raises(NotFoundError) as info:
            await argos.get_submission("no-such-id")
    assert str(info.value).startswith("no submission with id 'no-such-id'")
    assert info.value.status == 200


# ---------------------------------------------------------------------------------------------
# A page id handed out twice.


@dataclass(frozen=True, repr=False)
class SameIdNewDate(Fault):
    """Every next key after the first names the first page's id again, with a new date."""

    def rewrite_page(self, page: ListPage, ctx: FaultContext) -> ListPage:
        if page.next_key is None or not ctx.state.next_keys:
            return page
        first = next(key for key in ctx.state.next_keys if key is not None)
        moved = f"2025-06-{len(ctx.state.next_keys) % 28 + 1:02d}T00:00:00.000Z"
        return ListPage(items=page.items, next_key={"id": first["id"], "created_at": moved})


async def test_a_page_id_repeated_with_another_date_stops_the_listing() -> None:
    plan = FaultPlan([SameIdNewDate()])
    async with (
        ArgosEmulator(submissions=3_000, seed=2, faults=plan) as emu,
        client_for(emu, FAST) as argos,
    ):
        with pytest.raises(PaginationError, match="repeated page key") as info:
            async for _ in argos.iter_pages(page_size=10):
                pass
        assert len(emu.requests) <= 3
    assert info.value.cursor is not None  # resumable from the last page delivered


# ---------------------------------------------------------------------------------------------
# Dates at the end of the calendar.


def test_windows_reaching_past_the_calendar_stop_at_its_last_day() -> None:
    assert windows_between(date.max, date.max, 1)[0].end == date.max
    (only,) = windows_between(date(9999, 1, 1), date.max, 10**9)
    assert (only.start, only.end) == (date(9999, 1, 1), date.max)
    assert len(windows_between(date(9999, 12, 1), date.max, 7)) == 5


async def test_a_backfill_on_the_last_day_of_the_calendar_runs() -> None:
    async with ArgosEmulator(submissions=5, seed=1) as emu, client_for(emu, FAST) as argos:
        assert [s async for s in argos.backfill("9999-12-31", "9999-12-31")] == []
        huge = argos.backfill("2025-01-01", "9999-12-31", window_days=10**9)
        assert huge.stats.windows == 1


# ---------------------------------------------------------------------------------------------
# Keys and URLs refused at construction.


@pytest.mark.parametrize(
    "key",
    ["k\r\nX-Injected: y", "k\ny", "k\0y", "k\x7fy", "k\ty", "ключ-секрет", " k", "k "],
)
def test_a_key_that_cannot_be_a_header_is_refused_at_construction_unechoed(key: str) -> None:
    with pytest.raises(ValueError, match="api_key") as info:
        ArgosClient(api_key=key, base_url="http://127.0.0.1:8080")
    if len(key.strip()) > 1:
        assert key.strip() not in str(info.value)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:0", "http://127.0.0.1:99999", "http://127.0.0.1:abc", "http://[::1]:"]
)
def test_a_base_url_with_an_impossible_port_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        ArgosClient(api_key="k", base_url=url)


@pytest.mark.parametrize("content", ["secret\r\nX: y\n", "sec\0ret"])
def test_the_cli_refuses_a_key_file_that_cannot_be_a_header(tmp_path: Path, content: str) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(content)
    done = subprocess.run(
        [
            sys.executable, "-m", "argos_async", "export", "--out", str(tmp_path / "o.jsonl"),
            "--api-key-file", str(key_file),
        ],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--api-key-file" in done.stderr
    assert "Traceback" not in done.stderr
    # Not even a part of the key in the message (the usage above it names --secure-transmission).
    assert "sec" not in done.stderr.partition("error:")[2]
    assert not (tmp_path / "o.jsonl").exists()


# ---------------------------------------------------------------------------------------------
# Logging.


def test_an_application_that_never_configured_logging_sees_nothing_on_stderr() -> None:
    code = """
import asyncio
from argos_async import ArgosClient
from argos_async.testing import ArgosEmulator, FaultPlan, Status

async def main():
    plan = FaultPlan([Status(503, at=1, path="/v3/submission")])
    async with ArgosEmulator(submissions=5, seed=1, faults=plan) as emu:
        async with ArgosClient(api_key=emu.api_key, base_url=emu.url, backoff_base=0.001) as a:
            await a.get_submission(emu.dataset.ids[0])
        assert len(emu.requests) == 2  # a retry happened, and its warning was logged
    print("done")

asyncio.run(main())
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"
    assert done.stderr == ""


def test_the_library_logger_has_a_null_handler() -> None:
    handlers = logging.getLogger("argos_async").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


# ---------------------------------------------------------------------------------------------
# Checkpoints, checked before the first request.

YEAR = ("2025-01-01", "2025-12-31")


async def test_a_checkpoint_in_a_missing_directory_fails_before_any_request(
    tmp_path: Path,
) -> None:
    async with ArgosEmulator(submissions=50, seed=1) as emu, client_for(emu, FAST) as argos:
        with pytest.raises(CheckpointError, match=r"no-such-dir.*not a directory"):
            argos.backfill(*YEAR, checkpoint=tmp_path / "no-such-dir" / "b.ckpt")
        assert emu.requests == []


async def half_done_checkpoint(emu: ArgosEmulator, path: Path) -> dict[str, Any]:
    """A real checkpoint of a backfill stopped after a few pages; returns its document."""
    async with client_for(emu, FAST) as argos:
        pages = 0
        # One window ("all", no dates), so that it is half done when the loop stops.
        async with argos.backfill(None, shards=1, page_size=5, checkpoint=path).pages() as it:
            async for _ in it:
                pages += 1
                if pages == 3:
                    break
    document: dict[str, Any] = msgspec.json.decode(path.read_bytes())
    assert document["cursors"]  # a window is half done
    return document


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda cursors, name: {name: "ac1.not-base64-json!"}, "unusable cursor"),
        (lambda cursors, name: {name: "garbage"}, "unusable cursor"),
        (
            lambda cursors, name: {name: encode_cursor(Position(PageKey("x", "y")), "0" * 16)},
            "other filters",
        ),
        (lambda cursors, name: {"1999-01-01": cursors[name]}, "window '1999-01-01'"),
    ],
    ids=["damaged", "not a cursor", "other filters", "unknown window"],
)
async def test_a_damaged_cursor_in_a_checkpoint_fails_before_any_request(
    tmp_path: Path, damage: Callable[[dict[str, str], str], dict[str, str]], problem: str
) -> None:
    path = tmp_path / "b.ckpt"
    async with ArgosEmulator(submissions=300, seed=1) as emu:
        document = await half_done_checkpoint(emu, path)
        (name,) = document["cursors"]
        document["cursors"] = damage(document["cursors"], name)
        path.write_bytes(msgspec.json.encode(document))
        emu.reset_stats()
        async with client_for(emu, FAST) as argos:
            with pytest.raises(CheckpointError, match=problem):
                argos.backfill(None, shards=1, page_size=5, checkpoint=path)
        assert emu.requests == []


# ---------------------------------------------------------------------------------------------
# The export command, through every failure it documents: a message and an exit code, never a
# traceback, and never a byte of OUT lost.

EXPORT = [sys.executable, "-m", "argos_async", "export"]
RANGE = ["--page-size", "10", "--shards", "1"]  # one window: half done when a 400 stops it


async def export(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [*EXPORT, *args], env={"PATH": "/usr/bin:/bin", **env}, cwd=REPO, check=False
        )
    assert b"Traceback" not in done.stderr, done.stderr.decode()
    return done


def env_for(emu: ArgosEmulator) -> dict[str, str]:
    return {"ARGOS_API_KEY": emu.api_key, "ARGOS_BASE_URL": emu.url}


async def half_done_export(emu: ArgosEmulator, out: Path) -> Path:
    """OUT and its checkpoint from an export that a 400 stopped after five pages."""
    done = await export("--out", str(out), *RANGE, env=env_for(emu))
    assert done.returncode == 1, done.stderr
    assert out.stat().st_size > 0
    return out.with_name(out.name + ".ckpt")


def edit_checkpoint(path: Path, edit: Callable[[dict[str, Any]], object]) -> None:
    """Changes the checkpoint file in place, as a person with an editor would."""
    document: dict[str, Any] = msgspec.json.decode(path.read_bytes())
    edit(document)
    path.write_bytes(msgspec.json.encode(document))


DAMAGED_COUNTS: list[object] = ["abc", None, [], -5, 1.5, True]


@pytest.mark.parametrize("field", ["output_bytes", "output_items"])
@pytest.mark.parametrize("value", DAMAGED_COUNTS, ids=[repr(v) for v in DAMAGED_COUNTS])
async def test_a_hand_edited_count_in_the_checkpoint_exits_2_and_out_is_untouched(
    tmp_path: Path, field: str, value: object
) -> None:
    out = tmp_path / "out.jsonl"
    async with ArgosEmulator(submissions=400, seed=1, faults=FaultPlan([Status(400, at=6)])) as emu:
        checkpoint = await half_done_export(emu, out)
        before = out.read_bytes()
        edit_checkpoint(checkpoint, lambda document: document["extra"].update({field: value}))
        done = await export("--out", str(out), *RANGE, "--resume", env=env_for(emu))
    assert done.returncode == 2, done.stderr
    assert field.encode() in done.stderr
    assert out.read_bytes() == before


@pytest.mark.parametrize(
    "cursor", ["garbage", "ac1.bm90LWpzb24", encode_cursor(Position(PageKey("x", "y")), "0" * 16)]
)
async def test_a_hand_edited_cursor_in_the_checkpoint_exits_2_and_out_is_untouched(
    tmp_path: Path, cursor: str
) -> None:
    out = tmp_path / "out.jsonl"
    async with ArgosEmulator(submissions=400, seed=1, faults=FaultPlan([Status(400, at=6)])) as emu:
        checkpoint = await half_done_export(emu, out)
        before = out.read_bytes()

        def replace_cursor(document: dict[str, Any]) -> None:
            (name,) = document["cursors"]
            document["cursors"][name] = cursor

        edit_checkpoint(checkpoint, replace_cursor)
        requests_before = len(emu.requests)
        done = await export("--out", str(out), *RANGE, "--resume", env=env_for(emu))
        assert len(emu.requests) == requests_before  # refused before any request
    assert done.returncode == 2, done.stderr
    assert b"cursor" in done.stderr
    assert out.read_bytes() == before


async def test_a_run_that_cannot_create_its_checkpoint_leaves_no_out_behind(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.jsonl"
    async with ArgosEmulator(submissions=50, seed=1) as emu:
        done = await export(
            "--out", str(out), "--checkpoint", str(tmp_path / "missing" / "x.ckpt"), *RANGE,
            env=env_for(emu),
        )  # fmt: skip
        assert emu.requests == []
    assert done.returncode == 2, done.stderr
    assert b"not a directory" in done.stderr
    assert not out.exists()


@pytest.mark.parametrize("device", ["/dev/null", "/dev/full"])
async def test_an_output_that_is_not_a_regular_file_exits_2(device: str) -> None:
    async with ArgosEmulator(submissions=50, seed=1) as emu:
        done = await export("--out", device, "--overwrite", *RANGE, env=env_for(emu))
        assert emu.requests == []
    assert done.returncode == 2, done.stderr
    assert b"not a regular file" in done.stderr


# ---------------------------------------------------------------------------------------------
# An email the query sent, echoed back by the server in another encoding.

ECHOES: dict[str, Callable[[str], str]] = {
    "as sent": lambda v: v,
    "%40": lambda v: v.replace("@", "%40"),
    "percent-encoded": lambda v: quote(v, safe=""),
    "\\u0040": lambda v: v.replace("@", "\\u0040"),
    "JSON-escaped": lambda v: json.dumps(v)[1:-1],
    "&#64;": lambda v: v.replace("@", "&#64;"),
}


@dataclass(frozen=True, repr=False)
class Echo(Fault):
    """A 400 whose message echoes the query's email in one encoding."""

    encode: Callable[[str], str] = ECHOES["as sent"]

    async def respond(self, request: web.Request, ctx: FaultContext) -> web.StreamResponse | None:
        echoed = self.encode(ctx.query.get("email", ""))
        body = '{"message": "no such user ' + echoed + '", "echo": "' + echoed + '"}'
        return web.Response(status=400, body=body.encode(), content_type="application/json")


@pytest.mark.parametrize("encoding", list(ECHOES))
@pytest.mark.parametrize("email", ["홍길동@example.com", "ana@bücher.de", "ana.silva@example.x"])
async def test_an_email_echoed_in_any_encoding_is_masked_in_messages_bodies_reprs_and_logs(
    email: str, encoding: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="argos_async")
    plan = FaultPlan([Echo(encode=ECHOES[encoding])])
    async with (
        ArgosEmulator(submissions=5, seed=1, faults=plan) as emu,
        client_for(emu, FAST) as argos,
    ):
        with pytest.raises(BadRequestError) as info:
            async for _ in argos.iter_submissions(email=email):
                pass
    error = info.value
    seen = [str(error), error.message, error.body, repr(error), caplog.text]
    local = email.split("@")[0]
    for text in seen:
        for leak in (email, ECHOES[encoding](email), local[1:], json.dumps(local[1:])[1:-1]):
            assert leak not in text, (leak, text)
    assert "***" in error.message


# ---------------------------------------------------------------------------------------------
# What reaches the wire is what the client counts and spaces.


@dataclass(frozen=True, repr=False)
class Hangup(Fault):
    """Closes the connection without an answer (as a server does with an idle keep-alive one)."""

    async def respond(self, request: web.Request, ctx: FaultContext) -> web.StreamResponse | None:
        assert request.transport is not None
        request.transport.close()
        return web.Response(status=204)


async def test_a_connection_closed_before_the_answer_is_retried_counted_and_spaced() -> None:
    plan = FaultPlan([Hangup(path=PATH, at=range(1, 400, 2))])  # every other request
    async with (
        ArgosEmulator(submissions=50, seed=1, faults=plan) as emu,
        client_for(emu, FAST, max_requests_per_second=20) as argos,
    ):
        for submission_id in emu.dataset.ids[:10]:
            await argos.get_submission(submission_id)
        stats = argos.stats
        arrivals = sorted(r.received_at for r in emu.requests)
    # aiohttp's own resend (once, at once, uncounted) would have doubled what the server saw
    # behind the client's back, and sent it within a millisecond or two.
    assert len(arrivals) == stats.requests == 20
    assert stats.retries == 10
    # Spaced by the limiter, 50 ms apart (within half: the server's clock sees scheduling
    # noise); aiohttp's resends would make every other gap a millisecond or two.
    gaps = sorted(b - a for a, b in itertools.pairwise(arrivals))
    assert gaps[len(gaps) // 2] >= 0.5 / 20
    assert arrivals[-1] - arrivals[0] >= 19 * 0.5 / 20


# ---------------------------------------------------------------------------------------------
# A server that sends more items than `count` asked for.

OVERFULL_IDS = [f"s{n:03d}" for n in range(40)]


@dataclass(frozen=True, repr=False)
class IgnoresCount(Fault):
    """Serves OVERFULL_IDS eight a page, whatever `count` asks for."""

    async def respond(self, request: web.Request, ctx: FaultContext) -> web.StreamResponse | None:
        after = ctx.query.get("nextpage_id")
        start = 0 if after is None else OVERFULL_IDS.index(after) + 1
        ids = OVERFULL_IDS[start : start + 8]
        page: dict[str, Any] = {"Items": [{"submission_id": i} for i in ids]}
        if start + 8 < len(OVERFULL_IDS):
            page["nextpageKey"] = {"id": ids[-1], "created_at": f"2025-01-01T00:00:{start:02d}Z"}
        return web.Response(body=msgspec.json.encode(page), content_type="application/json")


@pytest.mark.parametrize("max_items", [5, 12])
async def test_max_items_holds_against_a_server_that_sends_more_than_count(max_items: int) -> None:
    async with (
        ArgosEmulator(submissions=5, seed=1, faults=FaultPlan([IgnoresCount()])) as emu,
        client_for(emu, FAST) as argos,
    ):
        first = [
            s.submission_id async for s in argos.iter_submissions(page_size=10, max_items=max_items)
        ]
        assert first == OVERFULL_IDS[:max_items]
        pages = [p async for p in argos.iter_pages(page_size=10, max_items=max_items)]
        cursor = pages[-1].cursor
        assert cursor is not None
        rest = [s.submission_id async for s in argos.iter_submissions(page_size=10, cursor=cursor)]
    assert first + rest == OVERFULL_IDS  # resumed at the first item not delivered


# ---------------------------------------------------------------------------------------------
# Every failure the export documents (README "Backfill and CLI", --help): its exit code and a
# message, never a traceback.

Setup = Callable[[Path, ArgosEmulator], Awaitable[tuple[list[str], dict[str, str]]]]


def plain(args: list[str], env: str = "emulator") -> Setup:
    async def setup(tmp: Path, emu: ArgosEmulator) -> tuple[list[str], dict[str, str]]:
        chosen = {"emulator": env_for(emu), "none": {}, "wrong key": {**env_for(emu)}}[env]
        if env == "wrong key":
            chosen["ARGOS_API_KEY"] = "wrong"
        return [a.replace("TMP", str(tmp)) for a in args], chosen

    return setup


def after_a_half_done_export(edit: Callable[[Path, Path], None], *args: str) -> Setup:
    async def setup(tmp: Path, emu: ArgosEmulator) -> tuple[list[str], dict[str, str]]:
        out = tmp / "out.jsonl"
        checkpoint = await half_done_export(emu, out)
        edit(out, checkpoint)
        return ["--out", str(out), *RANGE, *args], env_for(emu)

    return setup


def _truncate(out: Path, checkpoint: Path) -> None:
    out.write_bytes(out.read_bytes()[:10])


def _drop_checkpoint(out: Path, checkpoint: Path) -> None:
    checkpoint.unlink()


def _other_arguments(out: Path, checkpoint: Path) -> None:
    edit_checkpoint(checkpoint, lambda document: document["arguments"].update(filters="0" * 16))


def _garble(out: Path, checkpoint: Path) -> None:
    checkpoint.write_bytes(b"{not json")


def _keep(out: Path, checkpoint: Path) -> None:
    pass


FAILURES: dict[str, tuple[Callable[[], Setup], int, bytes]] = {
    "no key": (lambda: plain(["--out", "TMP/o.jsonl"], env="none"), 2, b"ARGOS_API_KEY"),
    "key file missing": (
        lambda: plain(["--out", "TMP/o.jsonl", "--api-key-file", "TMP/nope"], env="none"),
        2,
        b"--api-key-file",
    ),
    "page size 0": (lambda: plain(["--out", "TMP/o.jsonl", "--page-size", "0"]), 2, b"page-size"),
    "bad date": (
        lambda: plain(["--out", "TMP/o.jsonl", "--start-date", "2025-13-01"]),
        2,
        b"start-date",
    ),
    "end before start": (
        lambda: plain(
            ["--out", "TMP/o.jsonl", "--start-date", "2025-02-01", "--end-date", "20250101"]
        ),
        2,
        b"end-date",
    ),
    "the last day of the calendar": (
        lambda: plain(["--out", "TMP/o.jsonl", "--start-date", "9999-12-31"]),
        2,
        b"end-date",
    ),
    "not a regular file": (lambda: plain(["--out", "/dev/null", "--overwrite"]), 2, b"regular"),
    "no such directory": (lambda: plain(["--out", "TMP/nope/o.jsonl"]), 2, b"--out"),
    "refused key": (lambda: plain(["--out", "TMP/o.jsonl"], env="wrong key"), 1, b"refused"),
    "API error": (lambda: after_a_half_done_export(_keep, "--resume"), 1, b"--resume"),
    "OUT exists": (lambda: after_a_half_done_export(_keep), 2, b"--overwrite"),
    "OUT shorter than its checkpoint": (
        lambda: after_a_half_done_export(_truncate, "--resume"),
        2,
        b"shorter",
    ),
    "OUT without a checkpoint": (
        lambda: after_a_half_done_export(_drop_checkpoint, "--resume"),
        2,
        b"no checkpoint",
    ),
    "checkpoint for other arguments": (
        lambda: after_a_half_done_export(_other_arguments, "--resume"),
        2,
        b"other arguments",
    ),
    "damaged checkpoint": (lambda: after_a_half_done_export(_garble, "--resume"), 2, b"damaged"),
}


@pytest.mark.parametrize("case", list(FAILURES))
async def test_every_documented_failure_ends_with_its_exit_code_and_a_message(
    tmp_path: Path, case: str
) -> None:
    make, code, message = FAILURES[case]
    # Every request past the fifth fails with a 400, so a half done export stays half done.
    async with ArgosEmulator(
        submissions=400, seed=1, faults=FaultPlan([Status(400, at=range(6, 10**6))])
    ) as emu:
        args, env = await make()(tmp_path, emu)
        done = await export(*args, env=env)  # asserts that no traceback reached stderr
    assert done.returncode == code, done.stderr
    assert message in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    if code == 2:  # argparse's form: the export's usage, then one line that says what is wrong
        assert lines[0].startswith(b"usage: argos-async export "), done.stderr
        assert lines[-1].startswith(b"argos-async export: error: "), done.stderr
        assert message in lines[-1]
    else:
        assert 1 <= len(lines) <= 3, done.stderr  # a message, not a dump


def test_counts_read_naturally_in_the_progress_line() -> None:
    progress = Progress(io.StringIO(), enabled=False)
    progress.update(items=1, pages=1, retries=1)
    assert progress.line().startswith("1 item · 1 page · ")
    assert " · 1 retry · " in progress.line()
    progress.update(items=2_000, pages=2, retries=3)
    assert progress.line().startswith("2,000 items · 2 pages · ")
    assert " · 3 retries · " in progress.line()
