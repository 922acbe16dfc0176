"""The command line: ``python -m argos_async export ...`` (also the ``argos-async`` script).

Exit codes: 0 done, 1 the API failed or the output could not be written (the message is
printed), 2 bad usage.

The export is resumable after a crash at any moment, with every submission exactly once in
the output: a checkpoint exists before the first byte is written; after each page the export
appends the page's lines, makes them durable, and only then records in the checkpoint both
the windows' positions and the output's new length. ``--resume`` cuts the output back to the
recorded length (dropping lines of pages the checkpoint does not know about) and carries on
from the recorded positions. It refuses an output it cannot account for: one that is not
empty but has no checkpoint, or one shorter than its checkpoint records. An export holds a
lock on its output, so a second export of the same file stops at once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Final, NoReturn

import anyio
import msgspec

from ._backfill import Backfill
from ._checkpoint import Checkpoint
from ._client import ArgosClient
from ._progress import Progress, counted, showing_log
from ._protocol.checks import check_api_key, check_base_url
from ._protocol.wire import DEFAULT_BASE_URL
from .errors import ArgosError, AuthenticationError, CheckpointError
from .models import Page

DEMO_SUBMISSIONS = 100_000
DEMO_FAULT_RATE = 0.02
OUTPUT_BYTES = "output_bytes"
OUTPUT_ITEMS = "output_items"


EXPORT_EPILOG = """\
environment:
  ARGOS_API_KEY    the API key (from the project's dashboard), unless --api-key-file
  ARGOS_BASE_URL   the API's origin, unless --base-url (default %(default_url)s)

exit codes:
  0    done: every submission of the range is in OUT, once
  1    the API failed, or OUT could not be written (the message says why)
  2    bad usage: an argument, the key, OUT or its checkpoint (nothing was sent)
  130  interrupted (Ctrl-C): run again with --resume to continue
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
            "killed, run the same command with --resume to finish it, every submission once. "
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
    return parser, export


class _Usage(Exception):
    """A usage error found after parsing: exit 2 with this message."""


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit code."""
    parser, export = _parsers()
    args = parser.parse_args(argv)
    try:
        _check_arguments(args)
        return asyncio.run(_export(args))
    except _Usage as problem:
        # The export's own usage and "argos-async export: error: ...", like argparse's errors.
        _usage_error(export, str(problem))
    except KeyboardInterrupt:
        print("argos-async: interrupted; run again with --resume to continue", file=sys.stderr)
        return 130


def _usage_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    parser.error(message)


def _check_arguments(args: argparse.Namespace) -> None:
    """Fails on bad arguments before a demo's emulator starts or any file is touched."""
    if args.resume and args.overwrite:
        raise _Usage("--resume and --overwrite exclude each other")
    if args.demo:
        if args.demo_submissions < 1:
            raise _Usage("--demo-submissions must be at least 1")
        if args.start_date is None:
            # The emulator's data set spans 2025: a year, in day windows.
            args.start_date, args.end_date = "2025-01-01", args.end_date or "2025-12-31"
    if not args.demo:
        _base_url(args)
    # The backfill validates its own arguments; a client sends nothing until it is used.
    _backfill(ArgosClient(api_key="validation-only", base_url="http://127.0.0.1"), args, None)


def _base_url(args: argparse.Namespace) -> str:
    if args.base_url is not None:
        where, url = "--base-url", args.base_url
    else:
        where, url = "ARGOS_BASE_URL", os.environ.get("ARGOS_BASE_URL") or DEFAULT_BASE_URL
    try:
        return check_base_url(url)
    except (TypeError, ValueError) as exc:
        raise _Usage(f"{where}: {exc}") from None


async def _export(args: argparse.Namespace) -> int:
    if args.demo:
        from .testing import ArgosEmulator, FaultPlan

        faults = FaultPlan.mixed(DEMO_FAULT_RATE, seed=1)
        async with ArgosEmulator(submissions=args.demo_submissions, faults=faults) as emulator:
            client = ArgosClient(api_key=emulator.api_key, base_url=emulator.url, backoff_base=0.05)
            return await _run_export(client, args)
    return await _run_export(ArgosClient(api_key=_api_key(args), base_url=_base_url(args)), args)


def _api_key(args: argparse.Namespace) -> str:
    if args.api_key_file is not None:
        try:
            key = Path(args.api_key_file).read_text().strip()
        except OSError as exc:
            raise _Usage(
                f"--api-key-file: cannot read {args.api_key_file}: {exc.strerror}"
            ) from None
        if not key:
            raise _Usage(f"--api-key-file: {args.api_key_file} is empty")
        return _checked_key(key, f"--api-key-file: the key in {args.api_key_file}")
    key = os.environ.get("ARGOS_API_KEY", "").strip()
    if not key:
        raise _Usage("set ARGOS_API_KEY or pass --api-key-file, or pass --demo to try the emulator")
    return _checked_key(key, "ARGOS_API_KEY")


def _checked_key(key: str, where: str) -> str:
    try:
        return check_api_key(key, where)
    except ValueError as exc:
        raise _Usage(str(exc)) from None


def _backfill(client: ArgosClient, args: argparse.Namespace, checkpoint: Path | None) -> Backfill:
    try:
        return client.backfill(
            args.start_date,
            args.end_date,
            shards=args.shards,
            page_size=args.page_size,
            checkpoint=checkpoint,
            email=args.email,
            userid=args.userid,
            request_type=args.request_type,
        )
    except CheckpointError as exc:
        raise _Usage(f"--resume: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise _Usage(_as_options(str(exc))) from None


async def _run_export(client: ArgosClient, args: argparse.Namespace) -> int:
    out: Path = args.out
    checkpoint_path: Path = args.checkpoint or out.with_name(out.name + ".ckpt")
    if not args.resume and not args.overwrite and (out.exists() or checkpoint_path.exists()):
        raise _Usage(
            f"{out if out.exists() else checkpoint_path} exists: pass --resume to continue "
            "that export, or --overwrite to start over"
        )
    async with client:
        # Everything from here on, the checkpoint's removal and loading included, happens
        # under OUT's lock, so that a second export of the same OUT cannot undo this one's.
        with _open_locked(out, checkpoint_path) as file:
            if args.overwrite:
                try:
                    checkpoint_path.unlink(missing_ok=True)
                except OSError as exc:
                    raise _Usage(f"cannot remove {checkpoint_path}: {exc.strerror}") from None
            backfill = _backfill(client, args, checkpoint_path)
            checkpoint = backfill.checkpoint
            assert checkpoint is not None
            resumed = checkpoint.from_file
            kept = _resume_point(args, out, os.fstat(file.fileno()).st_size, checkpoint)
            total_known = OUTPUT_ITEMS in checkpoint.extra or not resumed
            written = checkpoint.extra.get(OUTPUT_ITEMS, 0)
            if not resumed:
                # Before the first byte goes out: from now on OUT always has a checkpoint
                # that says how much of it counts, so a --resume never has to guess.
                checkpoint.extra.update({OUTPUT_BYTES: 0, OUTPUT_ITEMS: 0})
                try:
                    checkpoint.save()
                except OSError as exc:
                    raise _Usage(f"cannot write {checkpoint_path}: {exc.strerror}") from None

            stats = backfill.stats
            ranged = stats.windows > 1
            enabled = sys.stderr.isatty() if args.progress is None else args.progress
            progress = Progress(
                sys.stderr, enabled=enabled, fraction_before=stats.windows_done / stats.windows
            )

            def show() -> None:
                progress.update(
                    items=stats.items,
                    pages=stats.pages,
                    retries=client.stats.retries,
                    fraction=stats.windows_done / stats.windows if ranged else None,
                )

            # Lines past the recorded length belong to pages the checkpoint does not know:
            # they will be fetched and written again.
            file.truncate(kept)
            file.seek(kept)
            try:
                with showing_log(progress):
                    async with backfill.pages() as pages:
                        async for page in pages:
                            await _append(file, page)
                            written += len(page.items)
                            checkpoint.extra[OUTPUT_BYTES] = file.tell()
                            checkpoint.extra[OUTPUT_ITEMS] = written
                            show()
            except AuthenticationError as exc:
                # Running again would be refused again: the key is what needs fixing.
                progress.close()
                print(
                    f"argos-async: the API key was refused ({exc}); check ARGOS_API_KEY or "
                    "--api-key-file",
                    file=sys.stderr,
                )
                return 1
            except (ArgosError, OSError) as exc:
                progress.close()
                problem = exc if isinstance(exc, ArgosError) else f"cannot write: {exc}"
                print(
                    f"argos-async: {problem}\n{out} holds every submission up to the last "
                    f"checkpoint; run again with --resume to continue",
                    file=sys.stderr,
                )
                return 1
            show()
    progress.close()
    print(_summary(progress, out, resumed, written if total_known else None), file=sys.stderr)
    return 0


def _resume_point(args: argparse.Namespace, out: Path, size: int, checkpoint: Checkpoint) -> int:
    """How many bytes of OUT to keep, or a usage error when OUT and checkpoint disagree."""
    if not checkpoint.from_file:
        if size and args.resume:
            raise _Usage(
                f"--resume: {out} is not empty but has no checkpoint ({checkpoint.path}), so "
                "what it holds cannot be trusted; pass --overwrite to start it over"
            )
        return 0
    if OUTPUT_BYTES not in checkpoint.extra:
        raise _Usage(
            f"--resume: {checkpoint.path} was not written by an export (it does not record "
            "the output's length)"
        )
    kept = _recorded_count(checkpoint, OUTPUT_BYTES)
    if OUTPUT_ITEMS in checkpoint.extra:
        _recorded_count(checkpoint, OUTPUT_ITEMS)
    if size < kept:
        raise _Usage(
            f"--resume: {out} is shorter than the checkpoint records ({size:,} of {kept:,} "
            "bytes); it was changed since, so the export cannot be resumed"
        )
    return kept


_OPTION_NAMES: Final = re.compile(
    r"\b(start_date|end_date|page_size|shards|email|userid|request_type)\b"
)


def _as_options(message: str) -> str:
    """A library message about ``start_date`` as one about ``--start-date``."""
    return _OPTION_NAMES.sub(lambda m: "--" + m.group(1).replace("_", "-"), message)


def _recorded_count(checkpoint: Checkpoint, name: str) -> int:
    """A count the checkpoint keeps for OUT, refused unless it is a whole number >= 0: a
    hand-edited 1.5 must not cut OUT to one byte."""
    value = checkpoint.extra[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Usage(
            f"--resume: {checkpoint.path} is damaged ({name} is {value!r}, not a count); "
            "the output was left as it is"
        )
    return value


def _summary(progress: Progress, out: Path, resumed: bool, total: int | None) -> str:
    pace = f"({progress.rate():,.0f} items/s, {counted(progress.retries, 'retry', 'retries')})"
    counts = (
        f"{counted(progress.items, 'submission', 'submissions')} "
        f"in {counted(progress.pages, 'page', 'pages')}"
    )
    if not resumed:
        return f"Exported {counts} in {progress.elapsed:.1f} s {pace} to {out}"
    text = f"Resumed: exported {counts} in {progress.elapsed:.1f} s this run {pace}"
    if total is not None:
        text += f"; {out} now holds {counted(total, 'submission', 'submissions')} in all"
    return text


@contextmanager
def _open_locked(out: Path, checkpoint: Path) -> Iterator[BinaryIO]:
    """OUT opened for update (created if missing), locked against other exports. An OUT this
    run created is removed again if the run stops before it has a checkpoint."""
    if out.exists() and not out.is_file():
        # A device or a pipe cannot be truncated, rolled back to a checkpoint or fsynced.
        raise _Usage(f"--out: {out} is not a regular file; the export writes a file it can resume")
    created = not out.exists()
    try:
        descriptor = os.open(out, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise _Usage(f"--out: cannot open {out}: {exc.strerror}") from None
    with os.fdopen(descriptor, "r+b") as file:
        if not _lock(file):
            raise _Usage(
                f"{out} is being written by another export: wait for it to end, or choose "
                "another --out"
            )
        try:
            yield file
        except BaseException:
            if created and not checkpoint.exists() and os.fstat(file.fileno()).st_size == 0:
                out.unlink(missing_ok=True)
            raise


def _lock(file: BinaryIO) -> bool:
    """An exclusive lock for as long as the file stays open; the system drops it when the
    process ends, even by SIGKILL, so a killed export never leaves a stale lock. False when
    another process holds it."""
    if sys.platform == "win32":  # pragma: no cover - no flock: a second export goes undetected
        return True
    import fcntl

    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # pragma: no cover - a file system without locks (some network mounts)
        return True
    return True


async def _append(file: BinaryIO, page: Page) -> None:
    """Appends the page's items, one per line, and makes them durable before the checkpoint
    may claim them."""
    raw_items = page.raw_items
    if raw_items:
        lines: list[msgspec.Raw] | list[bytes] = raw_items
        if b"\n" in page.body or b"\r" in page.body:
            # JSON strings cannot hold a raw newline, so any newline is whitespace between
            # tokens: folding it keeps one item per line without changing what the item says.
            lines = [bytes(raw).replace(b"\r", b" ").replace(b"\n", b" ") for raw in raw_items]
        file.write(b"\n".join(lines) + b"\n")
    file.flush()
    await anyio.to_thread.run_sync(os.fsync, file.fileno())
