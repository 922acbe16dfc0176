"""The export as a module (no argparse), its planner, and the command line's stops, chatter
levels and finished exports."""

from __future__ import annotations

import json
import signal
import sys
from collections import Counter
from datetime import date
from pathlib import Path

import anyio
import msgspec
import pytest
from support import FAST, REPO, client_for, wait_until

import argos_async._cli as cli
from argos_async._export import ExportRefused, ExportRequest, _write_lines, run_export
from argos_async._plan import plan_backfill
from argos_async.testing import ArgosEmulator, FaultPlan, Status

pytestmark = pytest.mark.anyio

EXPORT = [sys.executable, "-m", "argos_async", "export"]
YEAR = ["--start-date", "2025-01-01", "--end-date", "2025-12-31"]


def ids_in(path: Path) -> list[str]:
    return [json.loads(line)["submission_id"] for line in path.read_bytes().splitlines()]


def env_for(emu: ArgosEmulator) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "ARGOS_API_KEY": emu.api_key, "ARGOS_BASE_URL": emu.url}


async def export(*args: str, env: dict[str, str]) -> tuple[int, str]:
    with anyio.fail_after(90):
        done = await anyio.run_process([*EXPORT, *args], env=env, cwd=REPO, check=False)
    stderr = done.stderr.decode()
    assert "Traceback" not in stderr, stderr
    return done.returncode, stderr


# ---------------------------------------------------------------------------------------------
# The planner: pure, and the one place a backfill's arguments are checked.


def test_the_planner_checks_and_cuts_without_a_client() -> None:
    plan = plan_backfill("20250227", None, shards=3, window_days=2, today=date(2025, 3, 4))
    assert [w.name for w in plan.windows] == ["2025-02-27", "2025-03-01", "2025-03-03"]
    assert plan.windows[-1].end == date(2025, 3, 4)
    assert plan.shards == 3
    assert plan.checkpoint_arguments()["end_date"] == "2025-03-04"
    for bad, name in [
        ({"shards": 0}, "shards"),
        ({"page_size": 2001}, "page_size"),
        ({"request_type": "kycc"}, "request_type"),
        ({"window_days": 0}, "window_days"),
    ]:
        with pytest.raises(ValueError, match=name):
            plan_backfill("2025-01-01", "2025-01-02", **bad)  # type: ignore[arg-type]


def test_the_cli_checks_its_arguments_without_building_a_client(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def no_client(*args: object, **kwargs: object) -> None:
        raise AssertionError("a client was built to check arguments")

    monkeypatch.setattr(cli, "ArgosClient", no_client)
    monkeypatch.setenv("ARGOS_API_KEY", "k")
    out = str(tmp_path / "x.jsonl")
    for args, option in [
        (["--shards", "0"], "--shards"),
        (["--start-date", "2025-02-02", "--end-date", "2025-02-01"], "--end-date"),
    ]:
        with pytest.raises(SystemExit) as stopped:
            cli.main(["export", "--out", out, *args])
        assert stopped.value.code == 2
        assert option in capsys.readouterr().err.splitlines()[-1]
    assert not (tmp_path / "x.jsonl").exists()


# ---------------------------------------------------------------------------------------------
# run_export, driven directly.


async def test_run_export_writes_every_item_once_and_a_resume_of_it_says_complete(
    tmp_path: Path,
) -> None:
    out = tmp_path / "x.jsonl"
    plan = plan_backfill("2025-01-01", "2025-12-31", page_size=50)
    seen: list[int] = []
    async with (
        ArgosEmulator(submissions=1_500, seed=3) as emu,
        client_for(emu, FAST) as argos,
    ):
        result = await run_export(
            argos, plan, ExportRequest(out), progress=lambda now: seen.append(now.stats.items)
        )
        sent = len(emu.requests)
        again = await run_export(argos, plan, ExportRequest(out, resume=True))
        assert len(emu.requests) == sent  # a finished export sends nothing more
        with pytest.raises(ExportRefused, match="exists"):
            await run_export(argos, plan, ExportRequest(out))
        expected = sorted(emu.dataset.ids)
    assert sorted(ids_in(out)) == expected
    assert (result.items, result.total, result.resumed) == (1_500, 1_500, False)
    assert (seen[0], seen[-1]) == (0, 1_500)
    assert (again.already_complete, again.total, again.items) == (True, 1_500, 0)
    assert json.loads(result.checkpoint.read_bytes())["extra"]["complete"] is True


async def test_run_export_after_a_failure_resumes_to_every_item_once(tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    plan = plan_backfill("2025-01-01", "2025-12-31", page_size=40, shards=2)
    faults = FaultPlan([Status(400, at=9)])
    async with (
        ArgosEmulator(submissions=1_000, seed=8, faults=faults) as emu,
        client_for(emu, FAST) as argos,
    ):
        with pytest.raises(Exception, match="400"):
            await run_export(argos, plan, ExportRequest(out))
        assert out.stat().st_size > 0
        result = await run_export(argos, plan, ExportRequest(out, resume=True))
        expected = sorted(emu.dataset.ids)
    counts = Counter(ids_in(out))
    assert set(counts.values()) == {1}
    assert sorted(counts) == expected
    assert (result.resumed, result.total) == (True, 1_000)
    assert 0 < result.items < 1_000


# ---------------------------------------------------------------------------------------------
# The command line: stops, chatter, finished exports.


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
async def test_a_signal_stops_cleanly_on_a_line_of_its_own_and_resume_finishes(
    tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    out = tmp_path / "x.jsonl"
    args = [*EXPORT, *YEAR, "--shards", "2", "--page-size", "5", "--out", str(out), "--progress"]
    async with ArgosEmulator(submissions=3_000, seed=9, latency=0.01) as emu:
        env = env_for(emu)
        with anyio.fail_after(60):
            async with await anyio.open_process(args, env=env, cwd=REPO) as process:
                # Mid-job: a few pages written, the progress line drawn.
                await wait_until(lambda: out.exists() and out.stat().st_size > 2_000, 30)
                process.send_signal(signum)
                returncode = await process.wait()
                assert process.stderr is not None
                stderr = (await process.stderr.receive(1 << 20)).decode()
        assert returncode == code, stderr
        assert "Traceback" not in stderr
        screen = [line.split("\r")[-1] for line in stderr.split("\n")]
        assert "argos-async: interrupted; run again with --resume to continue" in screen, stderr
        assert "\r" in stderr  # the progress line was there to be kept apart from
        resumed, resumed_err = await export(*YEAR, "--out", str(out), "--resume", env=env)
        expected = sorted(emu.dataset.ids)
    assert resumed == 0, resumed_err
    assert "Resumed: exported" in resumed_err
    counts = Counter(ids_in(out))
    assert set(counts.values()) == {1}
    assert sorted(counts) == expected


async def test_a_finished_export_says_it_keeps_its_checkpoint_and_resume_says_complete(
    tmp_path: Path,
) -> None:
    out = tmp_path / "x.jsonl"
    async with ArgosEmulator(submissions=300, seed=2) as emu:
        first, first_err = await export(*YEAR, "--out", str(out), env=env_for(emu))
        data = out.read_bytes()
        sent = len(emu.requests)
        again, again_err = await export(*YEAR, "--out", str(out), "--resume", env=env_for(emu))
        assert len(emu.requests) == sent
    assert first == 0, first_err
    assert f"kept {out}.ckpt: it records that the export is complete" in first_err
    assert again == 0, again_err
    assert f"{out} is complete (300 submissions)" in again_err
    assert out.read_bytes() == data


async def test_quiet_shows_no_retry_lines_and_verbose_shows_the_plan(tmp_path: Path) -> None:
    faults = FaultPlan([Status(503, at={2, 4})])
    runs: dict[str, str] = {}
    for mode in ("--quiet", "--verbose", None):
        out = tmp_path / f"{mode}.jsonl"
        async with ArgosEmulator(submissions=200, seed=4, faults=faults) as emu:
            args = [*YEAR, "--shards", "1", "--out", str(out)]
            code, stderr = await export(*args, *([mode] if mode else []), env=env_for(emu))
        assert code == 0, stderr
        assert len(ids_in(out)) == 200
        runs[str(mode)] = stderr
    assert "503" not in runs["--quiet"]
    assert "kept" not in runs["--quiet"]
    assert runs["--quiet"].count("\n") == 1  # the summary alone
    assert runs["None"].count("GET /v3/submission: 503") == 2
    assert runs["--verbose"].count("GET /v3/submission: 503") == 2
    assert "exporting 365 windows with 1 shard from http://127.0.0.1:" in runs["--verbose"]


async def test_a_resume_without_end_date_keeps_the_range_it_was_started_with(
    tmp_path: Path,
) -> None:
    # Started with no --end-date ("until today"), resumed another day: the range is the one
    # the checkpoint was made for, not one that now ends later.
    out = tmp_path / "x.jsonl"
    async with ArgosEmulator(submissions=400, seed=5, faults=FaultPlan([Status(400, at=4)])) as emu:
        code, _ = await export(
            "--start-date", "2025-01-01", "--end-date", "2025-06-30", "--out", str(out),
            env=env_for(emu),
        )  # fmt: skip
        assert code == 1
        code, stderr = await export(
            "--start-date", "2025-01-01", "--out", str(out), "--resume", env=env_for(emu)
        )
        async with client_for(emu, FAST) as argos:
            listed = argos.iter_submissions(start_date="2025-01-01", end_date="2025-06-30")
            expected = sorted([s.submission_id async for s in listed])
    assert code == 0, stderr
    assert sorted(ids_in(out)) == expected


def test_gathered_writes_put_every_line_in_order_across_many_chunks(tmp_path: Path) -> None:
    # More lines than one writev takes (1024 buffers, a line and its newline each), of
    # several kinds: bytes and msgspec.Raw views into one body.
    body = msgspec.json.encode({"Items": [{"n": n, "pad": "x" * (n % 50)} for n in range(3_000)]})
    raw = msgspec.json.decode(body, type=dict[str, msgspec.Raw])["Items"]
    items = msgspec.json.decode(raw, type=list[msgspec.Raw])
    path = tmp_path / "lines"
    with path.open("wb", buffering=0) as file:
        _write_lines(file.fileno(), items)
        _write_lines(file.fileno(), [b'{"last":true}'])
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    assert lines[:-2] == [bytes(item) for item in items]
    assert lines[-2] == b'{"last":true}'
