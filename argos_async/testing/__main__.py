"""`python -m argos_async.testing serve`: run the emulator until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import signal
import sys
from collections.abc import Sequence

from ._faults import FaultPlan
from ._http import is_loopback
from ._server import ArgosEmulator
from ._webhook_delivery import webhook_target
from ._webhook_faults import WebhookFaults
from ._wire import API_KEY_HEADER, RETRY_AFTER_HEADER, RETRY_AFTER_STATUSES, STATUS_MESSAGES

_STATUS_KINDS = ", ".join(str(status) for status in STATUS_MESSAGES)
_RETRY_KINDS = ", ".join(
    f"{status}-retry-{form}" for status in RETRY_AFTER_STATUSES for form in ("after", "date")
)


_EXAMPLE_URL = "http://127.0.0.1:8080"
_EXAMPLE_KEY = "emu-Xq3v9T0bLw2mRk7sPz1cNd4e"


def listening_line(
    url: str,
    submissions: int,
    api_key: str,
    faults: FaultPlan | None,
    secure: str | None = None,
    webhook_url: str | None = None,
) -> str:
    """The line `serve` prints once it listens; `secure` says where secure transmission's key
    comes from, when it is on (never the key itself)."""
    shown = "" if faults is None else f", faults: {faults!r}"
    if secure is not None:
        shown += f", secure transmission: {secure}"
    if webhook_url is not None:
        shown += f", webhooks to {webhook_url}"
    return (
        f"Argos emulator listening on {url} ({submissions} submissions, api key: {api_key}{shown})"
    )


_EPILOG = f"""\
what it prints:
  Once it listens, serve prints one line to stdout, e.g.

    {listening_line(_EXAMPLE_URL, 10_000, _EXAMPLE_KEY, None)}

  that is: the origin to send requests to, how many submissions it serves, and the API key
  it accepts in the {API_KEY_HEADER} header (with --faults, the fault plan in force follows;
  with secure transmission, where its key comes from; with --webhook-url, where webhooks
  go).
  The key is a throwaway demo key, made up afresh at every start unless --api-key gives
  one; it opens this emulator and nothing else. Point the client, or
  `python -m argos_async export`, at the emulator with:

    export ARGOS_BASE_URL={_EXAMPLE_URL}
    export ARGOS_API_KEY={_EXAMPLE_KEY}

secure transmission:
  With --secure-transmission the emulator speaks the API's encrypted mode (AES-256-ECB under
  sha256 of the key): requests must carry only `data`, the parameters as encrypted JSON, and
  every 200 body comes back as {{"data": "<base64>"}}. The key is the API key, or with
  --secret-key-file the secret key in that file. The client's switch is
  ArgosClient(secure_transmission=True), or SecureTransmission(secret_key=...); the
  export's is --secure-transmission (with ARGOS_SECRET_KEY for a secret key).

the data:
  N submissions (--submissions) created over the 365 days from 2025-01-01; the same N and
  --seed give the same data. serve runs until SIGINT (Ctrl-C) or SIGTERM.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m argos_async.testing",
        description="Serve the Argos KYC API v3 emulator over loopback HTTP.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run the emulator until SIGINT/SIGTERM",
        description="Serve the Argos KYC API v3 emulator over loopback HTTP: GET\n"
        "/v3/submission and /v3/submission/applicant over a synthetic data set.\n\n"
        "Besides the API, it answers an admin endpoint (with the same x-api-key): GET, PATCH\n"
        "(a JSON merge patch, as ArgosEmulator.update takes) and DELETE\n"
        "/_emulator/submissions/ID, so that another process can change what it serves;\n"
        "argos_async.testing.EmulatorAdmin calls it. POST /_emulator/submissions creates a\n"
        "submission. With --webhook-url, every change POSTs the provider's webhook there.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="loopback address to listen on (default %(default)s)"
    )
    serve.add_argument(
        "--port", type=int, default=8080, help="port, 0 for any free one (default %(default)s)"
    )
    serve.add_argument(
        "--submissions",
        type=int,
        default=10_000,
        metavar="N",
        help="submissions in the data set (default %(default)s)",
    )
    serve.add_argument(
        "--seed", type=int, default=7, help="seed of the data set (default %(default)s)"
    )
    serve.add_argument(
        "--api-key",
        default=None,
        metavar="KEY",
        help=f"the key to accept in {API_KEY_HEADER} (default: a random emu-... key, new at"
        " every start)",
    )
    serve.add_argument(
        "--filter-mode",
        choices=("index", "scan"),
        default="index",
        help="email/userid filters: index returns full pages of matches, scan filters after"
        " reading, so pages may come back short or empty (default %(default)s)",
    )
    serve.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="seconds every request waits before it is answered (default %(default)s)",
    )
    serve.add_argument(
        "--faults",
        metavar="SPEC",
        default=None,
        help="faults on list requests: mixed=RATE[:RETRY_AFTER] (e.g. mixed=0.2), or a comma"
        f" list of KIND=PROB[:ARG], KIND one of {_STATUS_KINDS}, {_RETRY_KINDS}"
        f" (=PROB:SECONDS, {RETRY_AFTER_HEADER} as seconds or as an HTTP-date), quota, drop,"
        " truncate (=PROB[:FRACTION]), slow (=PROB:SECONDS), repeat-key (=PROB[:BACK]),"
        " redirect (=PROB:URL);"
        " e.g. 503=0.05,drop=0.02,slow=0.01:2,429-retry-date=0.01:3 (default: none)",
    )
    serve.add_argument(
        "--secure-transmission",
        action="store_true",
        help="speak the API's encrypted mode, keyed by the API key (default: off)",
    )
    serve.add_argument(
        "--secret-key-file",
        metavar="PATH",
        default=None,
        help="key the encrypted mode with the secret key in this file instead, which implies"
        " --secure-transmission (default: none)",
    )
    serve.add_argument(
        "--fault-seed",
        type=int,
        default=0,
        metavar="N",
        help="seed of the fault draws (default %(default)s)",
    )
    serve.add_argument(
        "--webhook-url",
        metavar="URL",
        default=None,
        help="POST a webhook (created, updated, approved, rejected, aml, delete) to this"
        " loopback http(s) URL after every change made through the admin endpoint"
        " (default: none)",
    )
    serve.add_argument(
        "--webhook-faults",
        metavar="SPEC",
        default=None,
        help="delivery faults of the webhooks: a comma list of KIND=PROB[:ARG], KIND one of"
        " drop, duplicate, reorder (=PROB[:HOLD_SECONDS]), delay (=PROB[:SECONDS]);"
        " e.g. duplicate=0.2,reorder=0.2,drop=0.1,delay=0.05:2 (default: none)",
    )
    serve.add_argument(
        "--webhook-fault-seed",
        type=int,
        default=0,
        metavar="N",
        help="seed of the webhook fault draws (default %(default)s)",
    )
    serve.add_argument(
        "--webhook-timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="seconds a webhook delivery attempt waits for an answer (default %(default)s)",
    )
    serve.add_argument(
        "--webhook-attempts",
        type=int,
        default=3,
        metavar="N",
        help="tries per webhook delivery, with a backoff of 0.5 s doubling between them"
        " (default %(default)s)",
    )
    return parser


async def _serve(
    args: argparse.Namespace,
    faults: FaultPlan | None,
    secret_key: str | None,
    webhook_faults: WebhookFaults | None,
) -> None:
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
        secure_transmission=secret_key or args.secure_transmission,
        webhook_url=args.webhook_url,
        webhook_faults=webhook_faults,
        webhook_timeout=args.webhook_timeout,
        webhook_attempts=args.webhook_attempts,
    ) as emu:
        secure = None
        if emu.secure_transmission is not None:
            secure = "the secret key of --secret-key-file" if secret_key else "the api key"
        line = listening_line(
            emu.url, len(emu.dataset), emu.api_key, faults, secure, args.webhook_url
        )
        print(line, flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not is_loopback(args.host):
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
    secret_key = None
    if args.secret_key_file is not None:
        try:
            with open(args.secret_key_file, encoding="utf-8") as file:
                secret_key = file.read().strip()
        except OSError as exc:
            parser.error(f"--secret-key-file: cannot read it: {exc.strerror}")
        except UnicodeDecodeError:
            parser.error("--secret-key-file: the file is not UTF-8 text")
        if not secret_key:
            parser.error("--secret-key-file: the file is empty")
    secure = args.secure_transmission or secret_key
    if secure and importlib.util.find_spec("cryptography") is None:
        option = "--secret-key-file" if secret_key else "--secure-transmission"
        parser.error(
            f"{option} needs the 'cryptography' package: pip install -e '.[secure]' in a clone"
        )
    try:
        webhook_target(args.webhook_url)
    except ValueError as exc:
        parser.error(f"--webhook-url: {exc}")
    webhook_faults = None
    if args.webhook_faults is not None:
        try:
            webhook_faults = WebhookFaults.parse(args.webhook_faults, seed=args.webhook_fault_seed)
        except ValueError as exc:
            parser.error(f"--webhook-faults: {exc}")
    if not args.webhook_timeout > 0:
        parser.error("--webhook-timeout must be > 0")
    if args.webhook_attempts < 1:
        parser.error("--webhook-attempts must be >= 1")
    try:
        asyncio.run(_serve(args, faults, secret_key, webhook_faults))
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
