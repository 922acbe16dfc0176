"""``python -m argos_async mirror``: the mirror as a command (its options, the demo, messages
and exit codes); ``_cli`` only adds it beside ``export``. dlt is imported when the command
runs, so ``export`` works without the ``dlt`` extra.

Exit codes: 0 done, 1 the API or the load failed (run again: the table and the state are as
the last finished load left them), 2 bad usage, 130/143 interrupted by SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Final

from ._cli_options import EXIT_CODES, Usage, api_key, as_options, base_url, say
from ._progress import counted
from ._protocol.wire import DEFAULT_BASE_URL
from .errors import ArgosError, AuthenticationError

if TYPE_CHECKING:
    from .dlt import MirrorResult
    from .testing import ArgosEmulator

DEFAULT_DATABASE: Final = "argos.duckdb"
DEFAULT_DATASET: Final = "kyc"
DEFAULT_PIPELINE: Final = "argos_mirror"
DEMO_SUBMISSIONS: Final = 20_000
DEMO_START: Final = date(2025, 1, 1)
DEMO_TODAY: Final = date(2025, 12, 31)
DEMO_DECISIONS_PER_RUN: Final = 40
DEMO_DELETIONS_PER_RUN: Final = 2
INTERRUPTED: Final = "argos-async: interrupted; run the same command again to continue"

MIRROR_EPILOG = """\
destinations:
  duckdb    a DuckDB file (--database, default argos.duckdb), the default
  postgres  PostgreSQL; credentials the way dlt takes them, e.g.
            DESTINATION__POSTGRES__CREDENTIALS=postgresql://user:password@host:5432/db
            or [destination.postgres] credentials in .dlt/secrets.toml

environment:
  ARGOS_API_KEY    the API key, unless --api-key-file (or SOURCES__ARGOS__API_KEY for dlt)
  ARGOS_BASE_URL   the API's origin, unless --base-url (default %(default_url)s)

exit codes:
  0    done: the table holds every submission of the account, each once, as now
  1    the API or the load failed (the message says why): run again to continue
  2    bad usage (nothing was sent)
  130  interrupted (SIGINT), 143 stopped by SIGTERM: run again to continue
"""


def add_mirror_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Adds ``mirror`` to the command line's subcommands; returns its parser."""
    mirror = commands.add_parser(
        "mirror",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=MIRROR_EPILOG % {"default_url": DEFAULT_BASE_URL},
        help="mirror the account into a database (DuckDB or PostgreSQL) and keep it current",
        description=(
            "Mirror every submission into a database table (kyc.submissions by default), "
            "merged on submission_id, and keep it current: each run lists the days since the "
            "last one plus --lag-days before them, and looks up by id every older submission "
            "still pending or incomplete. Killed at any point, the next run goes on from the "
            "last finished load. Needs the dlt extra (pip install -e '.[dlt]' in a clone)."
        ),
    )
    mirror.add_argument(
        "--destination", choices=("duckdb", "postgres"), default="duckdb", help="(default duckdb)"
    )
    mirror.add_argument(
        "--database",
        type=Path,
        default=None,
        help=f"the DuckDB file (default {DEFAULT_DATABASE}); duckdb only",
    )
    mirror.add_argument(
        "--dataset", default=DEFAULT_DATASET, help=f"the schema to load into ({DEFAULT_DATASET})"
    )
    mirror.add_argument("--pipeline-name", default=DEFAULT_PIPELINE, help=argparse.SUPPRESS)
    mirror.add_argument(
        "--pipelines-dir",
        type=Path,
        help="dlt's working directory (default: DATABASE.dlt beside a DuckDB file, "
        "dlt's own for postgres)",
    )
    mirror.add_argument("--start-date", help="the first day to mirror, YYYY-MM-DD")
    mirror.add_argument(
        "--lag-days", type=int, default=3, help="days listed again each run (default 3)"
    )
    mirror.add_argument(
        "--shards", type=int, default=8, help="parallel day-window listings (default 8)"
    )
    mirror.add_argument(
        "--page-size", type=int, default=2000, help="items per request, 1..2000 (default 2000)"
    )
    mirror.add_argument(
        "--concurrency", type=int, default=16, help="lookups by id in flight (default 16)"
    )
    mirror.add_argument(
        "--days-per-run",
        type=int,
        help="load a long first backfill in parts of this many days, each one kept",
    )
    mirror.add_argument(
        "--refresh-days",
        type=int,
        help="look up open submissions of the last N days only (default: all of them)",
    )
    mirror.add_argument("--api-key-file", type=Path, help="read the API key from this file")
    mirror.add_argument("--base-url", help="the API's origin (default: ARGOS_BASE_URL)")
    mirror.add_argument(
        "--demo",
        action="store_true",
        help="mirror a built-in emulator (a year of data; each run, some pending submissions "
        "are decided and some removed, as time would)",
    )
    mirror.add_argument(
        "--demo-submissions",
        type=int,
        default=DEMO_SUBMISSIONS,
        metavar="N",
        help=f"how many submissions the demo emulator holds (default {DEMO_SUBMISSIONS:,})",
    )
    mirror.set_defaults(mirror_parser=mirror)
    return mirror


def run_mirror_command(args: argparse.Namespace) -> int:
    """Runs ``mirror`` as parsed; returns the exit code (a usage error exits 2)."""
    try:
        return _run(args)
    except Usage as problem:
        parser: argparse.ArgumentParser = args.mirror_parser
        parser.error(str(problem))


def _run(args: argparse.Namespace) -> int:
    source = _source_arguments(args)
    try:
        import dlt

        from .dlt import mirror
    except ImportError as exc:  # pragma: no cover - the extra is part of the test setup
        raise Usage(
            f"the mirror needs the dlt extra (pip install -e '.[dlt]' in a clone): {exc}"
        ) from None
    _checked(source)
    pipeline = _pipeline(args, dlt)
    if args.demo:
        with _demo_emulator(args, pipeline) as emulator:
            source.update(
                api_key=emulator.api_key,
                base_url=emulator.url,
                today=DEMO_TODAY,
                client_options={"backoff_base": 0.05},
            )
            return _mirrored(args, lambda: mirror(pipeline, **source))
    return _mirrored(args, lambda: mirror(pipeline, **source))


def _source_arguments(args: argparse.Namespace) -> dict[str, Any]:
    if args.destination != "duckdb" and args.database is not None:
        raise Usage("--database is for --destination duckdb")
    start = args.start_date
    if args.demo:
        if args.demo_submissions < 1:
            raise Usage("--demo-submissions must be at least 1")
        start = start or DEMO_START.isoformat()
    elif start is None:
        raise Usage("--start-date is required (or pass --demo to try the emulator)")
    arguments: dict[str, Any] = {
        "start_date": start,
        "lag_days": args.lag_days,
        "shards": args.shards,
        "page_size": args.page_size,
        "concurrency": args.concurrency,
        "days_per_run": args.days_per_run,
        "refresh_days": args.refresh_days,
    }
    if not args.demo:
        arguments.update(api_key=api_key(args), base_url=base_url(args))
    return arguments


MIRROR_OPTIONS: Final = (
    "start_date", "lag_days", "shards", "page_size", "concurrency", "days_per_run", "refresh_days",
)  # fmt: skip
"""The source's argument names that are mirror options of the same name."""


def _checked(arguments: dict[str, Any]) -> None:
    """The source's own checks, its messages naming the options as typed."""
    from .dlt import argos_source

    try:
        argos_source(**arguments)
    except (TypeError, ValueError) as exc:
        raise Usage(as_options(str(exc), MIRROR_OPTIONS)) from None


def _pipeline(args: argparse.Namespace, dlt: Any) -> Any:
    pipelines_dir = args.pipelines_dir
    if args.destination == "duckdb":
        database = args.database or Path(DEFAULT_DATABASE)
        destination = dlt.destinations.duckdb(str(database))
        if pipelines_dir is None:
            # Beside the file: two databases never share a pipeline's state.
            pipelines_dir = database.with_name(database.name + ".dlt")
    else:
        destination = "postgres"  # credentials from dlt's configuration
    return dlt.pipeline(
        args.pipeline_name,
        destination=destination,
        dataset_name=args.dataset,
        pipelines_dir=None if pipelines_dir is None else str(pipelines_dir),
    )


@contextmanager
def _demo_emulator(args: argparse.Namespace, pipeline: Any) -> Iterator[ArgosEmulator]:
    """The demo's emulator, serving from a thread of its own; each run later than the first
    finds more of the pending submissions decided and a few removed, as time would."""
    import anyio.from_thread

    from .testing import ArgosEmulator

    emulator = ArgosEmulator(args.demo_submissions, seed=7, start=DEMO_START)
    _age(emulator, _runs_so_far(pipeline))
    with (
        anyio.from_thread.start_blocking_portal("asyncio") as portal,
        portal.wrap_async_context_manager(emulator),
    ):
        yield emulator


def _runs_so_far(pipeline: Any) -> int:
    resources = pipeline.state.get("sources", {}).get("argos", {}).get("resources", {})
    return int(resources.get("submissions", {}).get("runs", 0))


def _age(emulator: ArgosEmulator, runs: int) -> None:
    """What ``runs`` demo days have done to the data: decisions and removals, cumulative."""
    open_ids = [
        item["submission_id"]
        for item in emulator.dataset.items
        if (item.get("kyc") or {}).get("result") in ("pending", "incomplete")
    ]
    decided = open_ids[: runs * DEMO_DECISIONS_PER_RUN]
    removed = open_ids[::-1][: runs * DEMO_DELETIONS_PER_RUN]
    for i, sid in enumerate(decided):
        if sid not in removed:
            emulator.update(sid, kyc={"result": "approved" if i % 3 else "rejected"})
    for sid in removed:
        emulator.delete(sid)


def _mirrored(args: argparse.Namespace, job: Any) -> int:
    from dlt.pipeline.exceptions import PipelineStepFailed

    where = _where(args)
    try:
        with _signals() as received:
            try:
                result: MirrorResult = job()
            except (KeyboardInterrupt, PipelineStepFailed) as exc:
                interrupt = _cause(exc, KeyboardInterrupt)
                if not received and interrupt is None:
                    raise
                # dlt's own handler holds a signal until its step can stop: it says which.
                code = getattr(interrupt, "signal_code", signal.SIGINT)
                print(INTERRUPTED, file=sys.stderr)
                return EXIT_CODES.get(received[0] if received else code, 130)
    except PipelineStepFailed as failed:
        auth = _cause(failed, AuthenticationError)
        api = _cause(failed, ArgosError)
        if auth is not None:
            say(f"the API key was refused ({auth}); check ARGOS_API_KEY or --api-key-file")
        elif api is not None:
            say(f"{api}\n{where} holds what the last finished run loaded; run again to continue")
        else:
            say(
                f"the {failed.step} step failed: {_root(failed)}\n{where} holds what the last "
                "finished run loaded; run again to continue"
            )
        return 1
    print(_summary(where, result), file=sys.stderr)
    return 0


def _where(args: argparse.Namespace) -> str:
    if args.destination == "duckdb":
        return f"{args.database or DEFAULT_DATABASE} ({args.dataset}.submissions)"
    return f"postgres ({args.dataset}.submissions)"


def _summary(where: str, result: MirrorResult) -> str:
    resumed = ", after loading what a stopped run had left" if result.resumed else ""
    deleted = f", {result.deleted_rows:,} of them marked deleted" if result.deleted_rows else ""
    return (
        f"Mirrored into {where}: {counted(result.rows, 'row', 'rows')}{deleted}. "
        f"This run: {result.new:,} new, {result.changed:,} changed, {result.deleted:,} "
        f"deleted ({result.listed:,} listed, {result.looked_up:,} looked up by id, "
        f"{counted(result.loads, 'load', 'loads')}{resumed}) in {result.seconds:.1f} s"
    )


def _cause(exc: BaseException, kind: type[BaseException]) -> Any:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _root(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


@contextmanager
def _signals() -> Iterator[list[signal.Signals]]:
    """SIGINT and SIGTERM stop the job as an interrupt does; dlt's steps then leave what was
    not finished for the next run."""
    received: list[signal.Signals] = []
    if threading.current_thread() is not threading.main_thread():
        yield received  # only the main thread gets signals (and may set handlers)
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        received.append(signal.Signals(signum))
        raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, interrupt) for signum in EXIT_CODES}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
