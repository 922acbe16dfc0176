"""The command line: ``python -m argos_async export ...`` (also the ``argos-async`` script).

Only the command line lives here: options, messages, the progress line, signals and exit codes
(0 done, 1 the API failed or the output could not be written, 2 bad usage, 130 and 143
interrupted by SIGINT and SIGTERM). The export itself, with its durability protocol, is
``_export``; the arguments are checked by the backfill planner (``_plan``) before anything
starts.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

from ._cli_options import (
    EXIT_CODES,
    Usage,
    api_key,
    as_options,
    base_url,
    say,
    secure_transmission,
)
from ._client import ArgosClient
from ._export import (
    ExportProgress,
    ExportRefused,
    ExportRequest,
    ExportResult,
    recorded_end_date,
    run_export,
)
from ._mirror_cli import add_mirror_command, run_mirror_command
from ._plan import BackfillPlan, plan_backfill
from ._progress import Progress, counted, showing_log
from ._protocol.wire import DEFAULT_BASE_URL
from .errors import ArgosError, AuthenticationError

DEMO_SUBMISSIONS = 100_000
DEMO_FAULT_RATE = 0.02
INTERRUPTED: Final = "argos-async: interrupted; run again with --resume to continue"


EXPORT_EPILOG = """\
environment:
  ARGOS_API_KEY    the API key (from the project's dashboard), unless --api-key-file
  ARGOS_BASE_URL   the API's origin, unless --base-url (default %(default_url)s)
  ARGOS_SECRET_KEY with --secure-transmission, the project's secret key (default: the API key)

exit codes:
  0    done: every submission of the range is in OUT, once (or OUT was complete already)
  1    the API failed, or OUT could not be written (the message says why)
  2    bad usage: an argument, the key, OUT or its checkpoint (nothing was sent)
  130  interrupted (Ctrl-C, SIGINT): run again with --resume to continue
  143  stopped by SIGTERM: run again with --resume to continue
"""


def build_parser() -> argparse.ArgumentParser:
    """The command line: ``argos-async export ...``."""
    return _parsers()[0]


def _parsers() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    parser = argparse.ArgumentParser(
        prog="argos-async", description="Read KYC submissions from the Argos REST API v3."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    export = commands.add_parser(
        "export",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXPORT_EPILOG % {"default_url": DEFAULT_BASE_URL},
        help="stream submissions to a JSON Lines file, resumably",
        description=(
            "Stream submissions to a JSON Lines file, one item per line exactly as the API "
            "sent it. With --start-date the range is cut into day windows pulled by --shards "
            "parallel listings. Progress is checkpointed after every page: if the export is "
            "stopped, run the same command with --resume to finish it, every submission once. "
            "The API key comes from ARGOS_API_KEY or --api-key-file, never the command line."
        ),
    )
    export.add_argument("--out", required=True, type=Path, help="the JSON Lines file to write")
    export.add_argument(
        "--checkpoint", type=Path, help="the checkpoint file (default: OUT.ckpt beside --out)"
    )
    export.add_argument(
        "--resume",
        action="store_true",
        help=(
            "continue an interrupted export of the same OUT (starts it if OUT is missing or "
            "empty; refuses an OUT that has no checkpoint)"
        ),
    )
    export.add_argument(
        "--overwrite", action="store_true", help="start over even if OUT or its checkpoint exist"
    )
    export.add_argument("--start-date", help="first day, YYYY-MM-DD (enables sharding)")
    export.add_argument("--end-date", help="last day, YYYY-MM-DD (default: today, UTC)")
    export.add_argument("--email", help="only the submissions of this email address")
    export.add_argument("--userid", help="only the submissions of this user id")
    export.add_argument(
        "--request-type", choices=("kyc", "aml", "data", "others"), help="only these fields"
    )
    export.add_argument(
        "--shards", type=int, default=8, help="parallel day-window listings (default 8)"
    )
    export.add_argument(
        "--page-size", type=int, default=2000, help="items per request, 1..2000 (default 2000)"
    )
    export.add_argument("--api-key-file", type=Path, help="read the API key from this file")
    export.add_argument(
        "--base-url", help="the API's origin (default: ARGOS_BASE_URL, else the API's host)"
    )
    export.add_argument(
        "--secure-transmission",
        action="store_true",
        help=(
            "for a project with secure transmission on: send and read everything encrypted, "
            "keyed by ARGOS_SECRET_KEY if set, else the API key (with --demo, the emulator "
            "speaks it too)"
        ),
    )
    export.add_argument(
        "--demo",
        action="store_true",
        help="run against a built-in emulator of the API (a year of data, a few faults)",
    )
    export.add_argument(
        "--demo-submissions",
        type=int,
        default=DEMO_SUBMISSIONS,
        metavar="N",
        help=f"how many submissions the demo emulator holds (default {DEMO_SUBMISSIONS:,})",
    )
    export.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress line (default: when stderr is a terminal)",
    )
    chatter = export.add_mutually_exclusive_group()
    chatter.add_argument(
        "-q", "--quiet", action="store_true", help="no retry lines, only errors and the summary"
    )
    chatter.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also say what the export plans and every smaller event (a page asked for again)",
    )
    add_mirror_command(commands)
    return parser, export


def run() -> NoReturn:
    """The ``argos-async`` and ``python -m argos_async`` entry point: :func:`main`, then the
    process's exit with its code."""
    code = main()
    # The job is done and its files are closed: the interpreter's last garbage collection
    # would only walk the whole heap (tens of milliseconds) just before the process ends.
    gc.freeze()
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit code."""
    parser, export = _parsers()
    args = parser.parse_args(argv)
    if args.command == "mirror":
        return run_mirror_command(args)
    try:
        plan = _check_arguments(args)
        return _run_stoppably(_export(args, plan))
    except Usage as problem:
        # The export's own usage and "argos-async export: error: ...", like argparse's errors.
        _usage_error(export, str(problem))
    except KeyboardInterrupt:  # before the export began: nothing to resume, but harmless
        print(INTERRUPTED, file=sys.stderr)
        return EXIT_CODES[signal.SIGINT]


def _run_stoppably(job: Coroutine[Any, Any, int]) -> int:
    """Runs the export; SIGINT and SIGTERM cancel it, so that it stops as after any failure
    (the output cut back to nothing it cannot account for, the lock released), and give
    130 or 143."""

    async def run() -> int:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        received: list[signal.Signals] = []

        def stop(signum: signal.Signals) -> None:
            received.append(signum)
            task.cancel()

        for signum in EXIT_CODES:
            loop.add_signal_handler(signum, stop, signum)
        try:
            return await job
        except asyncio.CancelledError:
            if not received:
                raise
            return EXIT_CODES[received[0]]
        finally:
            for signum in EXIT_CODES:
                loop.remove_signal_handler(signum)

    return asyncio.run(run())


def _usage_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    parser.error(message)


def _check_arguments(args: argparse.Namespace) -> BackfillPlan:
    """Fails on bad arguments before a demo's emulator starts or any file is touched."""
    if args.resume and args.overwrite:
        raise Usage("--resume and --overwrite exclude each other")
    args.secure = secure_transmission(args)  # checked once, here; the export reads it
    if args.demo:
        if args.demo_submissions < 1:
            raise Usage("--demo-submissions must be at least 1")
        if args.start_date is None:
            # The emulator's data set spans 2025: a year, in day windows.
            args.start_date, args.end_date = "2025-01-01", args.end_date or "2025-12-31"
    else:
        base_url(args)
    if args.resume and args.start_date is not None and args.end_date is None:
        # "Until today" meant the day the export started, not the day it is resumed.
        args.end_date = recorded_end_date(_request(args).checkpoint_path)
    try:
        return plan_backfill(
            args.start_date,
            args.end_date,
            shards=args.shards,
            page_size=args.page_size,
            email=args.email,
            userid=args.userid,
            request_type=args.request_type,
        )
    except (TypeError, ValueError) as exc:
        raise Usage(as_options(str(exc), EXPORT_OPTIONS)) from None


def _request(args: argparse.Namespace) -> ExportRequest:
    return ExportRequest(
        out=args.out, checkpoint=args.checkpoint, resume=args.resume, overwrite=args.overwrite
    )


async def _export(args: argparse.Namespace, plan: BackfillPlan) -> int:
    if args.demo:
        from .testing import ArgosEmulator, FaultPlan

        faults = FaultPlan.mixed(DEMO_FAULT_RATE, seed=1)
        secure = args.secure
        async with ArgosEmulator(
            submissions=args.demo_submissions,
            faults=faults,
            secure_transmission=None if secure is None else secure.secret_key or True,
        ) as emulator:
            client = ArgosClient(
                api_key=emulator.api_key,
                base_url=emulator.url,
                backoff_base=0.05,
                secure_transmission=secure or False,
            )
            return await _run_export(client, plan, args)
    key = api_key(args)
    if key is None:
        raise Usage("set ARGOS_API_KEY or pass --api-key-file, or pass --demo to try the emulator")
    client = ArgosClient(
        api_key=key, base_url=base_url(args), secure_transmission=args.secure or False
    )
    return await _run_export(client, plan, args)


async def _run_export(client: ArgosClient, plan: BackfillPlan, args: argparse.Namespace) -> int:
    request = _request(args)
    enabled = sys.stderr.isatty() if args.progress is None else args.progress
    progress = Progress(sys.stderr, enabled=enabled)
    ranged = len(plan.windows) > 1

    def show(now: ExportProgress) -> None:
        stats = now.stats
        if not stats.pages:
            # What earlier runs did: the ETA goes by this run's pace alone.
            progress.fraction_before = now.windows_done_before / stats.windows
        progress.update(
            items=stats.items,
            pages=stats.pages,
            retries=now.retries,
            fraction=stats.windows_done / stats.windows if ranged else None,
        )

    if args.verbose:
        say(
            f"exporting {counted(len(plan.windows), 'window', 'windows')} with "
            f"{counted(plan.shards, 'shard', 'shards')} from {client.base_url} to {request.out} "
            f"(checkpoint {request.checkpoint_path})"
        )
    level = logging.ERROR if args.quiet else logging.INFO if args.verbose else logging.WARNING
    try:
        async with client:
            with showing_log(progress, level):
                result = await run_export(client, plan, request, progress=show)
    except ExportRefused as refused:
        raise Usage(f"{refused.option}: {refused}" if refused.option else str(refused)) from None
    except asyncio.CancelledError:
        progress.close()
        print(INTERRUPTED, file=sys.stderr)
        raise
    except AuthenticationError as exc:
        # Running again would be refused again: the key is what needs fixing.
        progress.close()
        say(
            f"the API key was refused ({exc}); check ARGOS_API_KEY or --api-key-file (the key "
            "is on the project's dashboard)"
        )
        return 1
    except (ArgosError, OSError) as exc:
        progress.close()
        problem = exc if isinstance(exc, ArgosError) else f"cannot write: {exc}"
        say(
            f"{problem}\n{request.out} holds every submission up to the last checkpoint; run "
            "again with --resume to continue"
        )
        return 1
    progress.close()
    if result.already_complete:
        held = "" if result.total is None else f" ({_submissions(result.total)})"
        say(
            f"{result.out} is complete{held}, as its checkpoint {result.checkpoint} records; "
            "nothing to do (pass --overwrite to export again)"
        )
        return 0
    print(_summary(progress, result), file=sys.stderr)
    if not args.quiet:
        say(
            f"kept {result.checkpoint}: it records that the export is complete, so that "
            "--resume says so rather than start again; delete it when you no longer need that"
        )
    return 0


EXPORT_OPTIONS: Final = (
    "start_date", "end_date", "page_size", "shards", "email", "userid", "request_type",
)  # fmt: skip
"""The library's argument names that are export options of the same name."""


def _submissions(n: int) -> str:
    return counted(n, "submission", "submissions")


def _summary(progress: Progress, result: ExportResult) -> str:
    pace = f"({progress.rate():,.0f} items/s, {counted(progress.retries, 'retry', 'retries')})"
    counts = f"{_submissions(result.items)} in {counted(result.pages, 'page', 'pages')}"
    if not result.resumed:
        return f"Exported {counts} in {progress.elapsed:.1f} s {pace} to {result.out}"
    text = f"Resumed: exported {counts} in {progress.elapsed:.1f} s this run {pace}"
    if result.total is not None:
        text += f"; {result.out} now holds {_submissions(result.total)} in all"
    return text
