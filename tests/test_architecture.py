"""ARCHITECTURE.md names every module of the package, so a reader finds each one there."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from support import REPO

PACKAGE = REPO / "argos_async"


def _named(text: str) -> set[str]:
    return set(re.findall(r"`([^`\s]+)`", text))


def test_every_module_is_named_in_architecture_md() -> None:
    named = _named((REPO / "ARCHITECTURE.md").read_text())
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        forms = {relative, f"argos_async/{relative}"}
        if path.name == "__init__.py":
            # A package is named by its folder (`testing/`), or its __init__ by path.
            folder = path.parent.relative_to(PACKAGE).as_posix()
            forms |= {f"{folder}/", f"argos_async/{folder}/"} if folder != "." else set()
        if path.name == "__main__.py":
            forms |= {f"{path.parent.relative_to(PACKAGE).as_posix()}/__main__.py"}
        if not forms & named:
            missing.append(relative)
    assert missing == []


def test_the_check_sees_modules_and_the_document() -> None:
    named = _named((REPO / "ARCHITECTURE.md").read_text())
    assert "_client.py" in named
    assert len(list(PACKAGE.rglob("*.py"))) > 30
    assert "not-a-module.py" not in named


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_mirror_imports_dlt_or_pyarrow() -> None:
    importers = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if _imports(path) & {"dlt", "pyarrow", "duckdb", "psycopg2"}
    }
    # The command imports dlt inside the function that runs a mirror, never at import.
    assert {p for p in importers if not p.startswith("dlt/")} == {"_mirror_cli.py"}
    assert "dlt/_source.py" in importers


def test_the_client_the_command_and_the_emulator_load_without_dlt() -> None:
    code = (
        "import sys, argos_async, argos_async._cli, argos_async.testing;"
        "print(sorted(m for m in ('dlt', 'pyarrow', 'duckdb') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert done.stdout.strip() == "[]"
