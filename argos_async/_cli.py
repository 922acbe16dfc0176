"""The command line: ``python -m argos_async export ...`` (also the ``argos-async`` script).

Exit codes: 0 done, 1 the API failed (its message is printed), 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import msgspec

from ._client import ArgosClient
from ._progress import Progress
from .errors import ArgosError
from .models import Page

DEMO_SUBMISSIONS = 20_000


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="argos-async", description="Read KYC submissions from the Argos REST API v3."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    export = commands.add_parser(
        "export",
        help="stream submissions to a JSON Lines file",
        description=(
            "Stream every submission to a JSON Lines file, one item per line, exactly as the "
            "API sent it. The API key comes from ARGOS_API_KEY (never from the command line)."
        ),
    )
    export.add_argument("--out", required=True, type=Path, help="the JSON Lines file to write")
    export.add_argument(
        "--demo",
        action="store_true",
        help="run against a built-in emulator of the API instead of a real account",
    )
    export.add_argument(
        "--demo-submissions",
        type=int,
        default=DEMO_SUBMISSIONS,
        metavar="N",
        help=f"how many submissions the demo emulator holds (default {DEMO_SUBMISSIONS:,})",
    )
    export.add_argument("--start-date", help="first day, YYYY-MM-DD")
    export.add_argument("--end-date", help="last day, YYYY-MM-DD")
    export.add_argument(
        "--page-size", type=int, default=2000, help="items per request, 1..2000 (default 2000)"
    )
    export.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress line (default: when stderr is a terminal)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return asyncio.run(_export(args, parser))
    except KeyboardInterrupt:
        print("argos-async: interrupted", file=sys.stderr)
        return 130


async def _export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.demo:
        from .testing import ArgosEmulator

        if args.demo_submissions < 1:
            parser.error("--demo-submissions must be at least 1")
        async with ArgosEmulator(submissions=args.demo_submissions) as emulator:
            client = ArgosClient(api_key=emulator.api_key, base_url=emulator.url)
            return await _run_export(client, args, parser, total=args.demo_submissions)
    if not os.environ.get("ARGOS_API_KEY"):
        parser.error("set ARGOS_API_KEY to your API key, or pass --demo to try the emulator")
    try:
        client = ArgosClient()
    except ValueError as exc:
        parser.error(str(exc))
    return await _run_export(client, args, parser, total=None)


async def _run_export(
    client: ArgosClient,
    args: argparse.Namespace,
    parser: argparse.ArgumentParser,
    *,
    total: int | None,
) -> int:
    async with client:
        try:
            pages = client.iter_pages(
                start_date=args.start_date, end_date=args.end_date, page_size=args.page_size
            )
        except (TypeError, ValueError) as exc:
            parser.error(str(exc).replace("_", "-"))
        enabled = sys.stderr.isatty() if args.progress is None else args.progress
        progress = Progress(sys.stderr, enabled=enabled, total=total)
        try:
            with args.out.open("wb") as out:
                async for page in pages:
                    _write_page(out, page)
                    progress.advance(len(page.items))
        except ArgosError as exc:
            progress.close()
            print(
                f"argos-async: {exc}\n{args.out} holds the {progress.items:,} submissions "
                "exported before the error",
                file=sys.stderr,
            )
            return 1
        finally:
            await pages.aclose()
    progress.close()
    elapsed = progress.elapsed
    print(
        f"Exported {progress.items:,} submissions in {progress.pages:,} pages in "
        f"{elapsed:.1f} s ({progress.items / max(elapsed, 1e-9):,.0f} items/s) to {args.out}",
        file=sys.stderr,
    )
    return 0


def _write_page(out: BinaryIO, page: Page) -> None:
    raw_items = page.raw_items
    if not raw_items:
        return
    lines: list[msgspec.Raw] | list[bytes] = raw_items
    if b"\n" in page.body or b"\r" in page.body:
        # JSON strings cannot hold a raw newline, so any newline is whitespace between
        # tokens: folding it keeps one item per line without changing what the item says.
        lines = [bytes(raw).replace(b"\r", b" ").replace(b"\n", b" ") for raw in raw_items]
    out.write(b"\n".join(lines) + b"\n")
