"""The command line: ``python -m argos_async export ...`` (also the ``argos-async`` script).

Exit codes: 0 done, 1 the API failed (its message is printed), 2 bad usage.

The export is resumable after a crash at any moment, with every submission exactly once in
the output: after each page it appends the page's lines, makes them durable, and only then
records in the checkpoint both the windows' positions and the output's new length. ``--resume``
cuts the output back to the recorded length (dropping lines of pages the checkpoint does not
know about) and carries on from the recorded positions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from contextlib import aclosing
from pathlib import Path
from typing import BinaryIO, NoReturn

import anyio
import msgspec

from ._checkpoint import CheckpointError
from ._client import ArgosClient
from ._progress import Progress
from .errors import ArgosError
from .models import Page

DEMO_SUBMISSIONS = 100_000
DEMO_FAULT_RATE = 0.02
OUTPUT_BYTES = "output_bytes"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="argos-async", description="Read KYC submissions from the Argos REST API v3."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    export = commands.add_parser(
        "export",
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
        help="continue an interrupted export of the same OUT (starts it if there is none yet)",
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
    return parser


class _Usage(Exception):
    """A usage error found after parsing: exit 2 with this message."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return asyncio.run(_export(args))
    except _Usage as problem:
        _usage_error(parser, str(problem))
    except KeyboardInterrupt:
        print("argos-async: interrupted; run again with --resume to continue", file=sys.stderr)
        return 130


def _usage_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    parser.error(message)


async def _export(args: argparse.Namespace) -> int:
    if args.demo:
        from .testing import ArgosEmulator, FaultPlan

        if args.demo_submissions < 1:
            raise _Usage("--demo-submissions must be at least 1")
        if args.start_date is None:
            # The emulator's data set spans 2025: a year, in day windows.
            args.start_date, args.end_date = "2025-01-01", args.end_date or "2025-12-31"
        faults = FaultPlan.mixed(DEMO_FAULT_RATE, seed=1)
        async with ArgosEmulator(submissions=args.demo_submissions, faults=faults) as emulator:
            client = ArgosClient(api_key=emulator.api_key, base_url=emulator.url, backoff_base=0.05)
            return await _run_export(client, args)
    return await _run_export(ArgosClient(api_key=_api_key(args)), args)


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
        return key
    key = os.environ.get("ARGOS_API_KEY", "").strip()
    if not key:
        raise _Usage("set ARGOS_API_KEY or pass --api-key-file, or pass --demo to try the emulator")
    return key


async def _run_export(client: ArgosClient, args: argparse.Namespace) -> int:
    out: Path = args.out
    checkpoint: Path = args.checkpoint or out.with_name(out.name + ".ckpt")
    if args.resume and args.overwrite:
        raise _Usage("--resume and --overwrite exclude each other")
    if not args.resume:
        if not args.overwrite and (out.exists() or checkpoint.exists()):
            raise _Usage(
                f"{out if out.exists() else checkpoint} exists: pass --resume to continue that "
                "export, or --overwrite to start over"
            )
        checkpoint.unlink(missing_ok=True)

    async with client:
        try:
            backfill = client.backfill(
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
            raise _Usage(str(exc).replace("_", "-")) from None
        assert backfill.checkpoint is not None
        kept = int(backfill.checkpoint.extra.get(OUTPUT_BYTES, 0))
        if kept and (not out.exists() or out.stat().st_size < kept):
            raise _Usage(
                f"--resume: {out} is shorter than the checkpoint records ({kept:,} bytes); "
                "it was changed since, so the export cannot be resumed"
            )

        enabled = sys.stderr.isatty() if args.progress is None else args.progress
        progress = Progress(sys.stderr, enabled=enabled)
        stats = backfill.stats
        ranged = stats.windows > 1

        def show() -> None:
            progress.update(
                items=stats.items,
                pages=stats.pages,
                retries=client.stats.retries,
                fraction=stats.windows_done / stats.windows if ranged else None,
            )

        # Opened for update, created if missing: a resume of an export that died before its
        # first checkpoint simply starts it.
        with os.fdopen(os.open(out, os.O_RDWR | os.O_CREAT, 0o644), "r+b") as file:
            # Lines past the recorded length belong to pages the checkpoint does not know:
            # they will be fetched and written again.
            file.truncate(kept)
            file.seek(kept)
            try:
                async with aclosing(backfill.pages()) as pages:
                    async for page in pages:
                        await _append(file, page)
                        backfill.checkpoint.extra[OUTPUT_BYTES] = file.tell()
                        show()
            except ArgosError as exc:
                progress.close()
                print(
                    f"argos-async: {exc}\n{out} holds every submission up to the last "
                    f"checkpoint; run again with --resume to continue",
                    file=sys.stderr,
                )
                return 1
        show()
    progress.close()
    elapsed = progress.elapsed
    print(
        f"Exported {progress.items:,} submissions in {stats.pages:,} pages in {elapsed:.1f} s "
        f"({progress.rate():,.0f} items/s, {client.stats.retries:,} retries) to {out}",
        file=sys.stderr,
    )
    return 0


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
