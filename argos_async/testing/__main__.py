"""`python -m argos_async.testing serve`: run the emulator until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from ._faults import FaultPlan
from ._server import ArgosEmulator, _is_loopback
from ._wire import API_KEY_HEADER, RETRY_AFTER_HEADER, RETRY_AFTER_STATUSES, STATUS_MESSAGES

_STATUS_KINDS = ", ".join(str(status) for status in STATUS_MESSAGES)
_RETRY_KINDS = ", ".join(
    f"{status}-retry-{form}" for status in RETRY_AFTER_STATUSES for form in ("after", "date")
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m argos_async.testing",
        description="Serve the Argos KYC API v3 emulator over loopback HTTP.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the emulator until SIGINT/SIGTERM")
    serve.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port, 0 for any (default 8080)")
    serve.add_argument("--submissions", type=int, default=10_000, help="data set size")
    serve.add_argument("--seed", type=int, default=7, help="data set seed (default 7)")
    serve.add_argument(
        "--api-key", default=None, help=f"accepted {API_KEY_HEADER} (default: random)"
    )
    serve.add_argument("--filter-mode", choices=("index", "scan"), default="index")
    serve.add_argument("--latency", type=float, default=0.0, help="seconds added per response")
    serve.add_argument(
        "--faults",
        metavar="SPEC",
        default=None,
        help="faults on list requests: mixed=RATE[:RETRY_AFTER] (e.g. mixed=0.2), or a comma"
        f" list of KIND=PROB[:ARG], KIND one of {_STATUS_KINDS}, {_RETRY_KINDS}"
        f" (=PROB:SECONDS, {RETRY_AFTER_HEADER} as seconds or as an HTTP-date), quota, drop,"
        " truncate (=PROB[:FRACTION]), slow (=PROB:SECONDS), repeat-key (=PROB[:BACK]),"
        " redirect (=PROB:URL);"
        " e.g. 503=0.05,drop=0.02,slow=0.01:2,429-retry-date=0.01:3",
    )
    serve.add_argument(
        "--fault-seed", type=int, default=0, metavar="N", help="seed of the fault draws (default 0)"
    )
    return parser


async def _serve(args: argparse.Namespace, faults: FaultPlan | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with ArgosEmulator(
        args.submissions,
        args.seed,
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        filter_mode=args.filter_mode,
        latency=args.latency,
        faults=faults,
    ) as emu:
        shown = "" if faults is None else f", faults: {faults!r}"
        print(
            f"Argos emulator listening on {emu.url} ({len(emu.dataset)} submissions,"
            f" api key: {emu.api_key}{shown})",
            flush=True,
        )
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not _is_loopback(args.host):
        parser.error(f"--host must be a loopback address, not {args.host!r}")
    if not 0 <= args.port <= 65_535:
        parser.error("--port must be within 0..65535")
    if args.submissions < 0:
        parser.error("--submissions must be >= 0")
    if args.latency < 0:
        parser.error("--latency must be >= 0")
    faults = None
    if args.faults is not None:
        try:
            faults = FaultPlan.parse(args.faults, seed=args.fault_seed)
        except ValueError as exc:
            parser.error(f"--faults: {exc}")
    try:
        asyncio.run(_serve(args, faults))
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
