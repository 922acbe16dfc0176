"""The export command, run as a user runs it: a subprocess."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

import aiohttp
import anyio
import msgspec
import pytest
from support import wait_until

from argos_async._progress import Progress, showing_log
from argos_async.testing import ArgosEmulator, Dataset, FaultPlan, Status

EXPORT = [sys.executable, "-m", "argos_async", "export"]


def run_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARGOS_")}
    env.update(extra)
    return env


def ids_in(path: Path) -> list[str]:
    return [json.loads(line)["submission_id"] for line in path.read_bytes().splitlines()]


def recorded_length(out: Path) -> int:
    """The output length the checkpoint beside ``out`` accounts for (0 without one)."""
    try:
        return int(
            json.loads((out.parent / (out.name + ".ckpt")).read_bytes())["extra"]["output_bytes"]
        )
    except FileNotFoundError:
        return 0


async def export(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    with anyio.fail_after(60):
        return await anyio.run_process([*EXPORT, *args], env=env, check=False)


@pytest.mark.anyio
async def test_demo_export_writes_every_item_once_byte_exact(tmp_path: Path) -> None:
    out = tmp_path / "demo.jsonl"
    result = await anyio.run_process(
        [*EXPORT, "--demo", "--demo-submissions", "3000", "--out", str(out), "--progress"],
        env=run_env(),
        check=False,
    )
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    ids = ids_in(out)
    assert sorted(ids) == sorted(Dataset.generate(3000, 7).ids)
    summary = re.search(
        r"Exported 3,000 submissions in 365 pages in \d+\.\d s "
        r"\([\d,]+ items/s, ([\d,]+) retries\)",
        stderr,
    )
    assert summary, stderr
    assert int(summary[1].replace(",", "")) > 0  # the demo's faults were met and retried
    assert "\r" in stderr  # the progress line was drawn
    assert "items/s" in stderr
    assert "retries" in stderr
    assert "100.0%" in stderr
    # Lines are the server's bytes: compact JSON with the wire names.
    first = out.read_bytes().splitlines()[0]
    assert first.startswith(b'{"')
    assert b'"submission_id":' in first
    checkpoint = json.loads((tmp_path / "demo.jsonl.ckpt").read_bytes())
    assert checkpoint["extra"]["output_bytes"] == out.stat().st_size
    assert len(checkpoint["done"]) == 365


@pytest.mark.anyio
async def test_export_from_an_account_named_by_the_environment(tmp_path: Path) -> None:
    out = tmp_path / "account.jsonl"
    key_file = tmp_path / "key"
    async with ArgosEmulator(submissions=1_500, seed=3) as emu:
        key_file.write_text(emu.api_key + "\n")
        result = await anyio.run_process(
            [
                *EXPORT,
                *("--start-date", "2025-06-01", "--end-date", "2025-07-15"),
                *("--email", emu.dataset.heavy_email, "--request-type", "kyc"),
                *("--shards", "3", "--page-size", "5"),
                *("--api-key-file", str(key_file), "--out", str(out)),
            ],
            env=run_env(ARGOS_BASE_URL=emu.url),
            check=False,
        )
        expected = emu.dataset.expected_ids(
            email=emu.dataset.heavy_email, start_date=date(2025, 6, 1), end_date=date(2025, 7, 15)
        )
        queries = [r.query for r in emu.requests]
    assert result.returncode == 0, result.stderr.decode()
    assert sorted(ids_in(out)) == sorted(expected)
    assert expected
    assert {(q["email"], q["request_type"], q["count"]) for q in queries} == {
        (emu.dataset.heavy_email, "kyc", "5")
    }
    assert len({q["start_date"] for q in queries}) == 45
    assert emu.api_key not in result.stderr.decode() + result.stdout.decode()


@pytest.mark.anyio
async def test_api_error_exits_1_with_its_message_and_never_echoes_the_key(
    tmp_path: Path,
) -> None:
    async with ArgosEmulator(submissions=10, seed=1) as emu:
        result = await anyio.run_process(
            [*EXPORT, "--out", str(tmp_path / "x.jsonl")],
            env=run_env(ARGOS_API_KEY="wrong-key-123", ARGOS_BASE_URL=emu.url),
            check=False,
        )
    stderr = result.stderr.decode()
    assert result.returncode == 1
    assert "403 Forbidden" in stderr
    # A refused key is refused again on a resume: the key is what to fix, and where it is set.
    assert "API key was refused" in stderr
    assert "ARGOS_API_KEY" in stderr
    assert "--resume" not in stderr
    assert "wrong-key-123" not in stderr + result.stdout.decode()


async def test_another_api_error_exits_1_and_says_how_to_resume(tmp_path: Path) -> None:
    plan = FaultPlan([Status(400, path="/v3/submission")])
    async with ArgosEmulator(submissions=10, seed=1, faults=plan) as emu:
        result = await anyio.run_process(
            [*EXPORT, "--out", str(tmp_path / "x.jsonl")],
            env=run_env(ARGOS_API_KEY=emu.api_key, ARGOS_BASE_URL=emu.url),
            check=False,
        )
    stderr = result.stderr.decode()
    assert result.returncode == 1
    assert "400 " in stderr
    assert "--resume" in stderr


def run(args: list[str], **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*EXPORT, *args], env=run_env(**env), capture_output=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--demo", "--page-size", "0"], "--page-size"),
        (["--demo", "--shards", "0"], "--shards"),
        (["--demo", "--start-date", "2025-13-01"], "--start-date"),
        (["--demo", "--start-date", "20250201", "--end-date", "2025-01-01"], "--end-date"),
        (["--demo", "--resume", "--overwrite"], "--resume and --overwrite exclude"),
        ([], "set ARGOS_API_KEY"),
        (["--api-key-file", "/nonexistent/key"], "--api-key-file"),
        (["--base-url", "http://example.com"], "--base-url"),
        (["--base-url", "http://127.0.0.1:99999"], "--base-url"),
        (["--page-size", "x"], "--page-size"),  # one of argparse's own
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    key = {} if "ARGOS_API_KEY" in message else {"ARGOS_API_KEY": "k"}
    result = run([*args, "--out", str(tmp_path / "x.jsonl")], **key)
    assert result.returncode == 2
    stderr = result.stderr.decode()
    # One format for every usage error, the library's own checks included: the export's
    # usage, then "argos-async export: error: " and the option by its name on the command line.
    assert stderr.startswith("usage: argos-async export "), stderr
    last = stderr.splitlines()[-1]
    assert last.startswith("argos-async export: error: "), stderr
    assert message in last, stderr
    assert "Traceback" not in stderr


def test_a_bad_argos_base_url_is_a_usage_error_naming_the_variable(tmp_path: Path) -> None:
    result = run(["--out", str(tmp_path / "x.jsonl")], ARGOS_API_KEY="k", ARGOS_BASE_URL="ftp://x")
    assert result.returncode == 2
    assert "argos-async export: error: ARGOS_BASE_URL: base_url must be" in result.stderr.decode()
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.anyio
async def test_base_url_points_the_export_at_another_origin(tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    async with ArgosEmulator(submissions=30, seed=1) as emu:
        result = await anyio.run_process(
            [*EXPORT, "--out", str(out), "--base-url", emu.url],
            env=run_env(ARGOS_API_KEY=emu.api_key),
            check=False,
        )
        assert len(emu.requests) >= 1
    assert result.returncode == 0, result.stderr.decode()
    assert sorted(ids_in(out)) == sorted(emu.dataset.ids)


def test_help_names_the_environment_and_every_exit_code() -> None:
    result = run(["--help"])
    assert result.returncode == 0
    text = result.stdout.decode()
    for needle in ("ARGOS_API_KEY", "ARGOS_BASE_URL", "--base-url", "exit codes:"):
        assert needle in text
    for code in ("0", "1", "2", "130"):
        assert f"\n  {code} " in text, code


def test_an_existing_output_is_never_overwritten_by_accident(tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    out.write_text("precious\n")
    result = run(["--demo", "--demo-submissions", "10", "--out", str(out)])
    assert result.returncode == 2
    assert "--resume" in result.stderr.decode()
    assert out.read_text() == "precious\n"


def test_a_checkpoint_for_other_arguments_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    first = run(
        ["--demo", "--demo-submissions", "200", "--end-date", "2025-01-31", "--out", str(out)]
    )
    assert first.returncode == 0, first.stderr.decode()
    again = run(
        [
            "--demo",
            "--demo-submissions",
            "200",
            "--end-date",
            "2025-02-28",
            "--resume",
            "--out",
            str(out),
        ]
    )
    assert again.returncode == 2
    assert "other arguments" in again.stderr.decode()
    assert "end_date" in again.stderr.decode()


@pytest.mark.anyio
async def test_killed_ten_times_at_random_and_resumed_ends_with_every_id_once(
    tmp_path: Path,
) -> None:
    out = tmp_path / "export.jsonl"
    rng = random.Random(20261128)
    args = [
        *EXPORT, "--start-date", "2025-01-01", "--end-date", "2025-12-31",
        "--shards", "4", "--page-size", "4", "--out", str(out), "--resume",
    ]  # fmt: skip
    # About 2,500 pages at 10 ms each over 4 shards: at least 6 s of waiting for the server
    # however fast the machine, while ten runs killed within 0.8 s of their start give it
    # less than that, and the aimed runs below stop within their first pages: every kill
    # lands mid-job.
    async with ArgosEmulator(submissions=10_000, seed=21, latency=0.01) as emu:
        env = run_env(ARGOS_API_KEY=emu.api_key, ARGOS_BASE_URL=emu.url)
        kills = 0
        ahead: list[bool] = []

        def lines_ahead() -> bool:
            # Lines past the checkpoint's length: what the resume must cut off.
            return out.exists() and out.stat().st_size > recorded_length(out)

        # Ten kills at random moments. The window between a page's lines and its checkpoint
        # is a millisecond or so, which they may all miss: then up to ten more, each aimed at
        # it (the moment lines are seen past the checkpoint).
        while kills < 10 or (not any(ahead) and kills < 20):
            process = await anyio.open_process(args, env=env)
            started = time.monotonic()
            with anyio.move_on_after(rng.uniform(0.2, 0.8) if kills < 10 else 0.8):
                if kills < 10:
                    await process.wait()
                # Polled: the state is another process's files, nothing signals it.
                while kills >= 10 and process.returncode is None and not lines_ahead():  # noqa: ASYNC110
                    await anyio.sleep(0.0002)
            if process.returncode is not None:
                assert process.stderr is not None
                problem = b""
                with contextlib.suppress(anyio.EndOfStream):
                    problem = await process.stderr.receive()
                await process.aclose()
                pytest.fail(f"an export ended before its kill ({process.returncode}): {problem!r}")
            process.send_signal(signal.SIGKILL)
            await process.wait()
            await process.aclose()
            kills += 1
            assert time.monotonic() - started < 30
            ahead.append(lines_ahead())
        final = await anyio.run_process(args, env=env, check=False)
        assert final.returncode == 0, final.stderr.decode()
        expected = sorted(emu.dataset.ids)
    counts = Counter(ids_in(out))
    assert kills >= 10
    assert any(ahead), "no kill left lines past the checkpoint: the truncation went untested"
    assert set(counts.values()) == {1}, [i for i, n in counts.items() if n > 1][:5]
    assert sorted(counts) == expected


def test_progress_line_counts_and_estimates() -> None:
    stream = io.StringIO()
    progress = Progress(stream, enabled=True, per_second=1e9)
    progress.update(items=40, pages=1, retries=3, fraction=0.25)
    progress.update(items=50, pages=2, retries=3, fraction=0.5)
    progress.close()
    text = stream.getvalue()
    assert "50 items · 2 pages" in text
    assert "3 retries" in text
    assert "50.0%" in text
    assert "ETA" in text
    assert text.endswith("\n")

    quiet = io.StringIO()
    counting = Progress(quiet, enabled=False)
    counting.update(items=5, pages=1)
    counting.close()
    assert quiet.getvalue() == ""
    assert (counting.items, counting.pages) == (5, 1)


def test_a_log_line_is_written_above_the_progress_line_not_into_it() -> None:
    stream = io.StringIO()
    progress = Progress(stream, enabled=True, per_second=1e9)
    progress.update(items=40, pages=1, retries=0)
    with showing_log(progress):
        logging.getLogger("argos_async").warning("GET /v3/submission: 503; retry 1 of 5")
        logging.getLogger("argos_async").info("not shown: below WARNING")
    logging.getLogger("argos_async").warning("not shown: after the block")
    progress.close()
    # What a terminal shows: each \r starts the line over, each \n keeps it.
    screen = [line.split("\r")[-1].rstrip() for line in stream.getvalue().split("\n")]
    assert screen[0] == "argos-async: GET /v3/submission: 503; retry 1 of 5"
    assert screen[1].startswith("40 items · 1 page ·")
    assert "not shown" not in stream.getvalue()


@pytest.mark.anyio
async def test_retries_during_an_export_are_noted_on_lines_of_their_own(tmp_path: Path) -> None:
    out = tmp_path / "noted.jsonl"
    plan = FaultPlan([Status(503, at={2, 5})])
    async with ArgosEmulator(submissions=500, seed=3, faults=plan) as emu:
        env = run_env(ARGOS_API_KEY=emu.api_key, ARGOS_BASE_URL=emu.url)
        span = ["--start-date", "2025-01-01", "--end-date", "2025-01-31"]
        result = await export([*span, "--shards", "1", "--progress", "--out", str(out)], env)
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    screen = [line.split("\r")[-1] for line in stderr.split("\n")]
    notes = [line for line in screen if "503" in line]
    assert len(notes) == 2, screen
    assert all(line.startswith("argos-async: GET /v3/submission: 503") for line in notes)


class _Listing(msgspec.Struct):
    items: list[msgspec.Raw] = msgspec.field(name="Items")
    next_key: object = msgspec.field(name="nextpageKey", default=None)


@pytest.mark.anyio
async def test_every_line_is_the_bytes_the_server_sent_for_that_item(tmp_path: Path) -> None:
    out = tmp_path / "exact.jsonl"
    span = ["--start-date", "2025-03-01", "--end-date", "2025-03-10"]
    async with ArgosEmulator(submissions=3_000, seed=3) as emu:
        env = run_env(ARGOS_API_KEY=emu.api_key, ARGOS_BASE_URL=emu.url)
        result = await export([*span, "--shards", "3", "--page-size", "7", "--out", str(out)], env)
        # The same items as the server renders them in one listing of the whole span.
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{emu.url}/v3/submission",
                params={"start_date": "2025-03-01", "end_date": "2025-03-10", "count": "2000"},
                headers={"x-api-key": emu.api_key},
            ) as response,
        ):
            listing = msgspec.json.decode(await response.read(), type=_Listing)
    assert result.returncode == 0, result.stderr.decode()
    assert listing.next_key is None
    served = {msgspec.json.decode(raw)["submission_id"]: bytes(raw) for raw in listing.items}
    lines = out.read_bytes().splitlines()
    assert len(lines) == len(served) > 50
    for line in lines:
        assert line == served[json.loads(line)["submission_id"]]
    assert re.search(
        rf"Exported {len(served)} submissions in \d+ pages in \d+\.\d s ", (result.stderr.decode())
    )


@pytest.mark.anyio
async def test_export_by_userid_without_a_range_lists_one_window_and_shows_no_eta(
    tmp_path: Path,
) -> None:
    out = tmp_path / "user.jsonl"
    async with ArgosEmulator(submissions=3_000, seed=3, latency=0.002) as emu:
        userid = "qa_runner_2"
        env = run_env(ARGOS_API_KEY=emu.api_key, ARGOS_BASE_URL=emu.url)
        result = await export(
            ["--userid", userid, "--page-size", "3", "--progress", "--out", str(out)], env
        )
        queries = [r.query for r in emu.requests]
        expected = emu.dataset.expected_ids(userid=userid)
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    assert len(expected) > 6
    assert ids_in(out) == expected  # one listing: in server order
    assert all(q["userid"] == userid and "start_date" not in q for q in queries)
    assert len(queries) >= len(expected) / 3
    assert userid not in stderr  # a user id is personal data
    assert "items/s" in stderr
    assert "ETA" not in stderr  # no range, no way to tell how far along it is
    assert "%" not in stderr


@pytest.mark.anyio
async def test_a_known_range_shows_an_eta(tmp_path: Path) -> None:
    out = tmp_path / "range.jsonl"
    async with ArgosEmulator(submissions=3_000, seed=3, latency=0.01) as emu:
        env = run_env(ARGOS_API_KEY=emu.api_key, ARGOS_BASE_URL=emu.url)
        result = await export(
            [
                *("--start-date", "2025-01-01", "--end-date", "2025-03-01"),
                *("--shards", "2", "--page-size", "5", "--progress", "--out", str(out)),
            ],
            env,
        )
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    etas = [int(seconds) for seconds in re.findall(r"ETA (\d+) s", stderr)]
    assert etas, stderr
    assert all(0 <= seconds < 60 for seconds in etas)


@pytest.mark.anyio
async def test_a_failed_export_with_lines_added_since_resumes_to_every_id_once(
    tmp_path: Path,
) -> None:
    out = tmp_path / "export.jsonl"
    span = ["--start-date", "2025-01-01", "--end-date", "2025-03-31"]
    args = [*span, "--shards", "2", "--page-size", "10", "--out", str(out)]
    # A non-retryable answer to the 40th list request: the export stops there, exit 1.
    plan = FaultPlan([Status(400, at=[40])])
    async with ArgosEmulator(submissions=1_500, seed=5, faults=plan) as emu:
        env = run_env(ARGOS_API_KEY=emu.api_key, ARGOS_BASE_URL=emu.url)
        failed = await export(args, env)
        assert failed.returncode == 1, failed.stderr.decode()
        assert "--resume" in failed.stderr.decode()
        lines = out.read_bytes().splitlines(keepends=True)
        assert lines
        # What a crash or a careless hand could leave: a repeated line and a partial one.
        with out.open("ab") as file:
            file.write(lines[0] + lines[-1][:25])
        resumed = await export([*args, "--resume"], env)
        expected = emu.dataset.expected_ids(start_date="2025-01-01", end_date="2025-03-31")
    stderr = resumed.stderr.decode()
    assert resumed.returncode == 0, stderr
    counts = Counter(ids_in(out))
    assert set(counts.values()) == {1}
    assert sorted(counts) == sorted(expected)
    # The summary tells this run's count from what the file holds in all.
    summary = re.search(
        r"Resumed: exported ([\d,]+) submissions in [\d,]+ pages in \d+\.\d s this run .*; "
        r"\S+ now holds ([\d,]+) submissions in all",
        stderr,
    )
    assert summary, stderr
    this_run, in_all = (int(n.replace(",", "")) for n in summary.groups())
    assert 0 < this_run < in_all == len(expected)


@pytest.mark.anyio
async def test_a_failure_before_the_first_page_leaves_a_checkpoint_to_resume_from(
    tmp_path: Path,
) -> None:
    out = tmp_path / "x.jsonl"
    async with ArgosEmulator(submissions=100, seed=1, faults=FaultPlan([Status(400, at=1)])) as emu:
        env = run_env(ARGOS_API_KEY=emu.api_key, ARGOS_BASE_URL=emu.url)
        span = ["--start-date", "2025-01-01", "--end-date", "2025-01-31"]
        result = await export([*span, "--out", str(out)], env)
    assert result.returncode == 1, result.stderr.decode()
    # The checkpoint came first: an output never exists without one that accounts for it.
    assert out.read_bytes() == b""
    assert (out.parent / (out.name + ".ckpt")).exists()
    assert recorded_length(out) == 0


def test_resume_refuses_an_output_that_has_no_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    out.write_text("precious\n")
    result = run(["--demo", "--demo-submissions", "10", "--resume", "--out", str(out)])
    assert result.returncode == 2
    assert "no checkpoint" in result.stderr.decode()
    assert "--overwrite" in result.stderr.decode()
    assert out.read_text() == "precious\n"


def test_resume_refuses_an_output_shorter_than_its_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    demo = ["--demo", "--demo-submissions", "200", "--end-date", "2025-01-31", "--out", str(out)]
    first = run(demo)
    assert first.returncode == 0, first.stderr.decode()
    cut = out.read_bytes()[:-10]
    out.write_bytes(cut)
    again = run([*demo, "--resume"])
    assert again.returncode == 2
    assert "shorter than the checkpoint records" in again.stderr.decode()
    assert out.read_bytes() == cut  # left as it was


def test_an_unreadable_checkpoint_is_a_usage_error(tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    checkpoint = tmp_path / "a-directory"
    checkpoint.mkdir()
    args = ["--demo", "--demo-submissions", "10", "--checkpoint", str(checkpoint)]
    result = run([*args, "--resume", "--out", str(out)])
    assert result.returncode == 2
    assert "cannot be read" in result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()
    overwrite = run([*args, "--overwrite", "--out", str(out)])
    assert overwrite.returncode == 2
    assert "Traceback" not in overwrite.stderr.decode()


@pytest.mark.anyio
async def test_a_second_export_of_the_same_output_stops_at_once(tmp_path: Path) -> None:
    out = tmp_path / "export.jsonl"
    args = [
        *("--start-date", "2025-01-01", "--end-date", "2025-03-31"),
        *("--shards", "2", "--page-size", "2", "--out", str(out), "--resume"),
    ]
    async with ArgosEmulator(submissions=1_500, seed=6, latency=0.05) as emu:
        env = run_env(ARGOS_API_KEY=emu.api_key, ARGOS_BASE_URL=emu.url)
        first = await anyio.open_process([*EXPORT, *args], env=env)
        try:
            await wait_until(lambda: recorded_length(out) > 0, timeout=20)  # it is writing
            second = await export(args, env)
            assert first.returncode is None  # still running: the second had to stop
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
            await first.aclose()
        assert second.returncode == 2
        assert "another export" in second.stderr.decode()
        # The lock went with the killed process, and nothing of its work was lost.
        emu.latency = 0
        final = await export(args, env)
        expected = emu.dataset.expected_ids(start_date="2025-01-01", end_date="2025-03-31")
    assert final.returncode == 0, final.stderr.decode()
    assert Counter(ids_in(out)) == Counter(expected)


def test_the_eta_after_a_resume_goes_by_this_runs_pace() -> None:
    now = 100.0
    stream = io.StringIO()
    # Earlier runs did 90 %; this one does 5 % more in 10 s, so 5 % to go takes 10 s more.
    progress = Progress(
        stream, enabled=True, per_second=1e9, fraction_before=0.9, clock=lambda: now
    )
    now = 110.0
    progress.update(items=10, pages=1, fraction=0.95)
    assert progress.line().endswith("ETA 10 s")
    progress.update(items=10, pages=1, fraction=0.9)
    assert "ETA" not in progress.line()  # nothing done in this run yet: no pace to go by
