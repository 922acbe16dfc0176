"""The README's runnable commands, run verbatim in a fresh copy of the repository, as a
newcomer runs them: each one alone, creating its own virtualenv."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from support import REPO

RUNNABLE = re.compile(r"<!-- runnable: (\w+) -->\n```console\n(.+?)\n```", re.DOTALL)


def runnable_commands() -> dict[str, str]:
    return dict(RUNNABLE.findall((REPO / "README.md").read_text()))


def fresh_copy(destination: Path) -> Path:
    """The repository's files as a clone would have them (tracked and new ones, nothing
    ignored: no virtualenv, no caches)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def run_verbatim(command: str, where: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ARGOS_", "VIRTUAL_ENV"))}
    clean.pop("PYTHONPATH", None)
    return subprocess.run(
        ["bash", "-c", command],
        cwd=where,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )


def test_the_readme_marks_the_two_commands_as_runnable() -> None:
    commands = runnable_commands()
    assert set(commands) == {"demo", "tests"}
    for command in commands.values():
        assert "\n" not in command  # one line to paste
        assert command.startswith("python3 -m venv .venv && ")


def test_the_demo_command_runs_the_main_job_on_a_fresh_clone(tmp_path: Path) -> None:
    clone = fresh_copy(tmp_path / "clone")
    done = run_verbatim(runnable_commands()["demo"], clone)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Exported 100,000 submissions" in done.stderr, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    with (clone / "demo.jsonl").open("rb") as out:
        assert sum(1 for _ in out) == 100_000


def test_the_test_command_runs_the_suite_on_a_fresh_clone(tmp_path: Path) -> None:
    clone = fresh_copy(tmp_path / "clone")
    # Verbatim, with pytest told (by its own environment variable) to run one test of the
    # suite rather than all of it again, from inside itself.
    done = run_verbatim(
        runnable_commands()["tests"],
        clone,
        PYTEST_ADDOPTS="-p no:cacheprovider -k test_version",
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert re.search(r"\b1 passed\b", done.stdout), done.stdout[-3000:]


@pytest.mark.parametrize("line", ["pip install argos-async", 'pip install "argos-async['])
def test_the_readme_installs_from_the_clone_not_from_pypi(line: str) -> None:
    assert line not in (REPO / "README.md").read_text()
