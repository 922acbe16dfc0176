"""The export command, run as a user runs it: a subprocess."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

import anyio
import pytest

from argos_async._progress import Progress
from argos_async.testing import ArgosEmulator, Dataset

EXPORT = [sys.executable, "-m", "argos_async", "export"]


def run_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARGOS_")}
    env.update(extra)
    return env


def ids_in(path: Path) -> list[str]:
    return [json.loads(line)["submission_id"] for line in path.read_bytes().splitlines()]


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
    assert "Exported 3,000 submissions in 365 pages" in stderr
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
    assert "--resume" in stderr
    assert "wrong-key-123" not in stderr + result.stdout.decode()


def run(args: list[str], **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*EXPORT, *args], env=run_env(**env), capture_output=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--demo", "--page-size", "0"], "page-size"),
        (["--demo", "--shards", "0"], "shards"),
        (["--demo", "--start-date", "2025-13-01"], "start-date"),
        (["--demo", "--resume", "--overwrite"], "exclude"),
        ([], "ARGOS_API_KEY"),
        (["--api-key-file", "/nonexistent/key"], "api-key-file"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = run([*args, "--out", str(tmp_path / "x.jsonl")])
    assert result.returncode == 2
    assert message in result.stderr.decode()


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
    # About 2,500 pages, some 10 s of work: ten kills within a second of each start (imports
    # take half of that) cannot finish it, so every kill lands mid-job.
    async with ArgosEmulator(submissions=10_000, seed=21, latency=0.005) as emu:
        env = run_env(ARGOS_API_KEY=emu.api_key, ARGOS_BASE_URL=emu.url)
        kills = 0
        while kills < 10:
            process = await anyio.open_process(args, env=env)
            moment = rng.uniform(0.2, 1.0)
            started = time.monotonic()
            with anyio.move_on_after(moment):
                await process.wait()
            if process.returncode is not None:
                break  # it finished before the kill: nothing more to interrupt
            process.send_signal(signal.SIGKILL)
            await process.wait()
            await process.aclose()
            kills += 1
            assert time.monotonic() - started < 30
        final = await anyio.run_process(args, env=env, check=False)
        assert final.returncode == 0, final.stderr.decode()
        expected = sorted(emu.dataset.ids)
    counts = Counter(ids_in(out))
    assert kills == 10
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
