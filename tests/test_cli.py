"""The export command, run as a user runs it: a subprocess."""

from __future__ import annotations

import io
import json
import os
import sys
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


@pytest.mark.anyio
async def test_demo_export_writes_every_item_once_byte_exact(tmp_path: Path) -> None:
    out = tmp_path / "demo.jsonl"
    result = await anyio.run_process(
        [
            *EXPORT,
            "--demo",
            "--demo-submissions",
            "3000",
            "--page-size",
            "700",
            "--out",
            str(out),
            "--progress",
        ],
        env=run_env(),
        check=False,
    )
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    lines = out.read_bytes().splitlines()
    ids = [json.loads(line)["submission_id"] for line in lines]
    assert ids == Dataset.generate(3000, 7).expected_ids()
    assert "Exported 3,000 submissions in 5 pages" in stderr
    assert "\r" in stderr  # the progress line was drawn
    assert "items/s" in stderr
    # Lines are the server's bytes: compact JSON with the wire names.
    assert b'"submission_id":' in lines[0]
    assert b"\n" not in lines[0]


@pytest.mark.anyio
async def test_export_from_an_account_named_by_the_environment(tmp_path: Path) -> None:
    out = tmp_path / "account.jsonl"
    async with ArgosEmulator(submissions=1_500, seed=3) as emu:
        result = await anyio.run_process(
            [*EXPORT, "--start-date", "2025-06-01", "--page-size", "300", "--out", str(out)],
            env=run_env(ARGOS_API_KEY=emu.api_key, ARGOS_BASE_URL=emu.url),
            check=False,
        )
        expected = emu.dataset.expected_ids(start_date=date(2025, 6, 1))
        assert {r.query["start_date"] for r in emu.requests} == {"2025-06-01"}
    assert result.returncode == 0, result.stderr.decode()
    ids = [json.loads(line)["submission_id"] for line in out.read_bytes().splitlines()]
    assert ids == expected
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
    assert "wrong-key-123" not in stderr + result.stdout.decode()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--demo", "--page-size", "0"], "page-size"),
        (["--demo", "--start-date", "2025-13-01"], "start-date"),
        ([], "ARGOS_API_KEY"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    import subprocess

    result = subprocess.run(
        [*EXPORT, *args, "--out", str(tmp_path / "x.jsonl")],
        env=run_env(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr.decode()


def test_progress_line_counts_and_estimates() -> None:
    stream = io.StringIO()
    progress = Progress(stream, enabled=True, total=100, per_second=1e9)
    progress.advance(40)
    progress.advance(10)
    progress.close()
    text = stream.getvalue()
    assert "50 items · 2 pages" in text
    assert "50.0%" in text
    assert "ETA" in text
    assert text.endswith("\n")

    quiet = io.StringIO()
    counting = Progress(quiet, enabled=False)
    counting.advance(5)
    counting.close()
    assert quiet.getvalue() == ""
    assert (counting.items, counting.pages) == (5, 1)
