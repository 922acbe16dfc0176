"""Crash safety: a mirror killed by SIGKILL at any point, then run again, leaves every
submission exactly once in the table, with its latest state.

The mirror runs in a process of its own (``mirror_child.py``) against an emulator served by
another (``serve``); the test changes submissions from outside through the emulator's admin
endpoint, before the killed run and between it and the next, as the provider would. Kill
points are dlt's progress hooks (mid-extract, before normalize, before load, mid-load,
after load) plus, for the command itself, random moments.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import dlt
import pytest
from mirror_support import Target, assert_table_holds
from support import REPO, serve_process

from argos_async.testing import Dataset, EmulatorAdmin

SUBMISSIONS = 1200
SEED = 7  # serve's default
KEY = "crash-test-key"
CHILD = Path(__file__).with_name("mirror_child.py")
DATA = Dataset.generate(SUBMISSIONS, SEED)
"""What the served emulator holds as generated (the same arguments, the same data)."""
LAG_START = date(2025, 12, 28)
"""A run after the first lists 2025-12-28..31 again and looks up the open ones before."""


def _result(item: dict[str, Any]) -> str | None:
    result: str | None = (item.get("kyc") or {}).get("result")
    return result


def _old(results: tuple[str, ...]) -> list[str]:
    return [
        i["submission_id"]
        for i in DATA.items
        if _result(i) in results and date.fromisoformat(i["created_at"][:10]) < LAG_START
    ]


def _recent() -> list[str]:
    return [
        i["submission_id"]
        for i in DATA.items
        if date.fromisoformat(i["created_at"][:10]) >= LAG_START
    ]


@dataclass
class World:
    """The served emulator, and what the test changed in it."""

    url: str
    admin: EmulatorAdmin
    key_file: Path
    deleted: dict[str, dict[str, Any]]
    changed: set[str]

    def served(self) -> dict[str, dict[str, Any]]:
        """Every submission as the emulator serves it now."""
        now = dict(zip(DATA.ids, DATA.items, strict=True))
        for sid in self.changed:
            item = self.admin.get(sid)
            assert item is not None
            now[sid] = item
        for sid in self.deleted:
            del now[sid]
        return now

    def decide(self, sid: str, result: str) -> None:
        self.admin.update(sid, kyc={"result": result})
        self.changed.add(sid)

    def delete(self, sid: str) -> None:
        item = self.admin.get(sid)
        assert item is not None
        self.admin.delete(sid)
        self.deleted[sid] = item
        self.changed.discard(sid)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One emulator for the module; each test changes submissions of its own."""
    with serve_process("--submissions", str(SUBMISSIONS), "--api-key", KEY) as (_, line):
        match = re.search(r"listening on (\S+)", line)
        assert match is not None, line
        key_file = tmp_path_factory.mktemp("key") / "key"
        key_file.write_text(KEY)
        yield World(match.group(1), EmulatorAdmin(match.group(1), KEY), key_file, {}, set())


def _child(
    world: World, where: Path, kill_at: str | None = None, refresh: list[str] | None = None
) -> dict[str, Any] | None:
    """Runs the mirror into ``where`` (a refresh of ``refresh`` when given); None when it was
    killed at ``kill_at`` as asked."""
    command = [sys.executable, str(CHILD), world.url, str(world.key_file)]
    command += [str(where / "argos.duckdb"), str(where / "pipelines")]
    if kill_at:
        command += ["--kill-at", kill_at]
    if refresh:
        command += ["--refresh", ",".join(refresh)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=180)
    if kill_at:
        assert f"KILL {kill_at}" in done.stderr, done.stderr[-3000:]
        assert done.returncode == -9, done.stderr[-3000:]
        return None
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def _target(where: Path) -> Target:
    return Target("duckdb", str(where / "argos.duckdb"), where / "pipelines")


def _pending(where: Path) -> bool:
    pipeline = dlt.attach("argos_mirror", pipelines_dir=str(where / "pipelines"))
    return bool(pipeline.has_pending_data)


def _schedule(where: Path) -> dict[str, Any]:
    """The mirror's state in the pipeline's working directory."""
    pipeline = dlt.attach("argos_mirror", pipelines_dir=str(where / "pipelines"))
    state: dict[str, Any] = pipeline.state["sources"]["argos"]["resources"]["submissions"]
    return state


def _restored_schedule(where: Path, scratch: Path) -> dict[str, Any]:
    """The mirror's state as the destination holds it: what a new machine would restore."""
    scratch.mkdir()
    shutil.copy(where / "argos.duckdb", scratch / "argos.duckdb")
    pipeline = _target(scratch).pipeline()
    pipeline.sync_destination()
    state: dict[str, Any] = pipeline.state["sources"]["argos"]["resources"]["submissions"]
    return state


def _assert_no_duplicates(where: Path) -> None:
    target = _target(where)
    if not (where / "argos.duckdb").exists():
        return
    ((tables,),) = target.query(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'submissions'"
    )
    if tables:
        ((rows, ids),) = target.query(
            "SELECT count(*), count(DISTINCT submission_id) FROM kyc.submissions"
        )
        assert rows == ids


@pytest.fixture(scope="module")
def first_mirror(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database and working directory after a clean first run (before any test changed
    anything), copied by each scenario."""
    where = tmp_path_factory.mktemp("first")
    result = _child(world, where)
    assert result is not None
    assert result["new"] == result["rows"] == SUBMISSIONS
    return where


# Where each kill lands, and whether it leaves a load package for the next run to finish.
LATER_RUN_KILLS = [
    ("Extract:1", False),  # mid-extract: nothing committed, the state as before
    ("Normalize:0", True),  # extracted (the state saved locally), nothing normalized
    ("Load:0", True),  # normalized, nothing loaded
    ("Load:1", True),  # one job loaded, the others not
]


@pytest.mark.parametrize(("kill_at", "leaves_package"), LATER_RUN_KILLS)
def test_a_later_run_killed_then_run_again_mirrors_every_submission_once(
    kill_at: str, leaves_package: bool, world: World, first_mirror: Path, tmp_path: Path
) -> None:
    shutil.copytree(first_mirror, tmp_path, dirs_exist_ok=True)
    # Submissions of this test's own (the emulator is the module's).
    mine = 4 * [k for k, _ in LATER_RUN_KILLS].index(kill_at)
    pending, incomplete = _old(("pending",))[mine:], _old(("incomplete",))[mine:]
    world.decide(pending[0], "approved")
    world.decide(incomplete[0], "rejected")
    world.decide(_recent()[mine // 4], "rejected")
    world.delete(pending[1])
    _child(world, tmp_path, kill_at)
    assert _pending(tmp_path) is leaves_package
    _assert_no_duplicates(tmp_path)
    # Decisions that arrive while the mirror is down.
    world.decide(pending[2], "rejected")
    world.decide(incomplete[2], "rejected")
    world.delete(incomplete[1])
    result = _child(world, tmp_path)
    assert result is not None
    assert_table_holds(_target(tmp_path), world.served(), world.deleted)
    assert result["resumed"] is leaves_package
    assert result["rows"] == SUBMISSIONS
    assert result["deleted_rows"] == len(world.deleted)
    assert not _pending(tmp_path)


REFRESH_KILLS = [
    ("Extract:1", False),  # the changed row handed to dlt, the deleted one not yet
    ("Load:0", True),  # both normalized, nothing loaded
]


@pytest.mark.parametrize(("kill_at", "leaves_package"), REFRESH_KILLS)
def test_a_refresh_killed_then_run_again_leaves_the_schedule_and_every_row_once(
    kill_at: str, leaves_package: bool, world: World, first_mirror: Path, tmp_path: Path
) -> None:
    shutil.copytree(first_mirror, tmp_path, dirs_exist_ok=True)
    schedule = _schedule(tmp_path)
    # Old open ones of this test's own: the scheduled runs of the other tests find them too.
    mine = 20 + 2 * [k for k, _ in REFRESH_KILLS].index(kill_at)
    decided, gone = _old(("pending",))[mine : mine + 2]
    world.decide(decided, "approved")
    world.delete(gone)
    _child(world, tmp_path, kill_at, refresh=[decided, gone])
    assert _pending(tmp_path) is leaves_package
    _assert_no_duplicates(tmp_path)
    result = _child(world, tmp_path, refresh=[decided, gone])
    assert result is not None
    assert result["resumed"] is leaves_package
    rows = _target(tmp_path).rows()
    assert len(rows) == SUBMISSIONS
    assert rows[decided]["kyc_result"] == "approved"
    assert rows[gone]["deleted"] is True
    # A refresh counts the rows of its own submissions, not the table's.
    assert (result["rows"], result["deleted_rows"], result["refresh_failed"]) == (2, 1, [])
    assert not _pending(tmp_path)
    assert _schedule(tmp_path) == schedule
    assert _restored_schedule(tmp_path, tmp_path / "fresh") == schedule


def test_a_first_backfill_killed_then_run_again_mirrors_every_submission_once(
    world: World, tmp_path: Path
) -> None:
    _child(world, tmp_path, "Extract:40")
    _assert_no_duplicates(tmp_path)
    world.decide(_old(("pending",))[-1], "approved")
    result = _child(world, tmp_path)
    assert result is not None
    # A new mirror: what earlier tests removed from the emulator, it never saw.
    assert_table_holds(_target(tmp_path), world.served(), {})
    assert result["rows"] == SUBMISSIONS - len(world.deleted)


def test_the_command_killed_at_random_moments_then_run_again(world: World, tmp_path: Path) -> None:
    rng = random.Random(15)
    database = tmp_path / "argos.duckdb"
    command = [
        sys.executable, "-m", "argos_async", "mirror", "--base-url", world.url,
        "--api-key-file", str(world.key_file), "--database", str(database),
        "--start-date", "2025-01-01", "--page-size", "100", "--shards", "4",
    ]  # fmt: skip
    pending = _old(("pending",))[-3:-1]
    codes: list[int] = []
    # Until two runs were killed (at most 8 runs): a machine fast enough to finish a run
    # before its moment comes still gets its kills, and a run that finished is harmless.
    while codes.count(-9) < 2 and len(codes) < 8:
        process = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            process.wait(timeout=rng.uniform(0.5, 4.0))
        except subprocess.TimeoutExpired:
            process.kill()
        codes.append(process.wait(timeout=30))
        if len(codes) <= len(pending):
            world.decide(pending[len(codes) - 1], "approved")
        _assert_no_duplicates(tmp_path)
    assert codes.count(-9) == 2, codes  # killed, not finished
    started = time.monotonic()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert time.monotonic() - started < 120
    target = Target("duckdb", str(database), Path(str(database) + ".dlt"))
    assert_table_holds(target, world.served(), {})  # a new mirror (see above)
    assert f"{SUBMISSIONS - len(world.deleted):,} rows." in done.stderr


def test_sigterm_stops_the_command_cleanly_and_the_next_run_finishes(
    world: World, tmp_path: Path
) -> None:
    """SIGTERM (143; SIGINT takes the same path, 130) while the first run lists."""
    signum, code = signal.SIGTERM, 143
    database = tmp_path / "argos.duckdb"
    command = [
        sys.executable, "-m", "argos_async", "mirror", "--base-url", world.url,
        "--api-key-file", str(world.key_file), "--database", str(database),
        "--start-date", "2025-01-01", "--page-size", "50", "--shards", "2",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    # The run has begun once it has opened the database.
    while not database.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == code, err[-3000:]
    assert "interrupted; run the same command again to continue" in err
    assert "Traceback" not in err
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    target = Target("duckdb", str(database), Path(str(database) + ".dlt"))
    assert_table_holds(target, world.served(), {})
