"""Developer sessions: ``nox -s tests lint typecheck demo bench bench_mirror``."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.default_venv_backend = "venv"

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (warnings are errors; see pyproject.toml)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHONS)
def tests_all(session: nox.Session) -> None:
    """The test suite on every supported Python that is installed."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff==0.17.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package, tests, examples and benchmarks."""
    session.install(
        "-e", ".[test,bench]", "mypy==2.4.1", "nox", "exceptiongroup",
        "pyarrow-stubs>=20.0.0.20260819", "types-psycopg2>=2.9",
    )  # fmt: skip
    session.run("mypy", "--strict")


@nox.session
def demo(session: nox.Session) -> None:
    """The main job against the built-in emulator: an export to demo.jsonl."""
    session.install("-e", ".")
    session.run(
        "python", "-m", "argos_async", "export", "--demo", "--out", "demo.jsonl", "--overwrite"
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark scenario side by side with the peers (a few minutes on 2 cores)."""
    session.install("-e", ".[bench]")
    session.chdir("benchmarks")
    session.run("python", "run.py", *session.posargs)


@nox.session
def bench_mirror(session: nox.Session) -> None:
    """The mirror's benchmark: DuckDB via Arrow, dlt's plain dicts and the export, side by side."""
    session.install("-e", ".[bench,dlt]")
    session.chdir("benchmarks")
    session.run("python", "mirror.py", *session.posargs)
