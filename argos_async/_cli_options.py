"""What every command of the command line reads the same way: the key, the API's address,
usage errors, and messages on stderr."""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import signal
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from ._protocol.checks import check_api_key, check_base_url
from ._protocol.secure import SecureTransmission
from ._protocol.wire import DEFAULT_BASE_URL

EXIT_CODES: Final = {signal.SIGINT: 130, signal.SIGTERM: 143}
"""The exit code of a command stopped by each signal."""


class Usage(Exception):
    """A usage error found after parsing: exit 2 with this message."""


def say(text: str) -> None:
    """A message of the command line's own on stderr."""
    print(f"argos-async: {text}", file=sys.stderr)


def api_key(args: argparse.Namespace) -> str | None:
    """The key from ``--api-key-file``, else ``ARGOS_API_KEY``, checked; None when neither
    gives one."""
    if args.api_key_file is not None:
        try:
            key = Path(args.api_key_file).read_text().strip()
        except OSError as exc:
            raise Usage(
                f"--api-key-file: cannot read {args.api_key_file}: {exc.strerror}"
            ) from None
        if not key:
            raise Usage(f"--api-key-file: {args.api_key_file} is empty")
        where = f"--api-key-file: the key in {args.api_key_file}"
    else:
        key = os.environ.get("ARGOS_API_KEY", "").strip()
        if not key:
            return None
        where = "ARGOS_API_KEY"
    try:
        return check_api_key(key, where)
    except ValueError as exc:
        raise Usage(str(exc)) from None


def secure_transmission(args: argparse.Namespace) -> SecureTransmission | None:
    """``--secure-transmission``: keyed by ``ARGOS_SECRET_KEY`` when it is set, else by the
    API key; ``None`` without the option."""
    if not getattr(args, "secure_transmission", False):
        return None
    if importlib.util.find_spec("cryptography") is None:
        raise Usage(
            "--secure-transmission needs the 'cryptography' package: "
            "pip install -e '.[secure]' in a clone"
        )
    secret = os.environ.get("ARGOS_SECRET_KEY", "").strip()
    return SecureTransmission(secret_key=secret) if secret else SecureTransmission()


def base_url(args: argparse.Namespace) -> str:
    """``--base-url``, else ``ARGOS_BASE_URL``, else the API's host, checked."""
    if args.base_url is not None:
        where, url = "--base-url", args.base_url
    else:
        where, url = "ARGOS_BASE_URL", os.environ.get("ARGOS_BASE_URL") or DEFAULT_BASE_URL
    try:
        return check_base_url(url)
    except (TypeError, ValueError) as exc:
        raise Usage(f"{where}: {exc}") from None


def as_options(message: str, names: Iterable[str]) -> str:
    """A library message about ``start_date`` as one about ``--start-date``, for ``names``."""
    pattern = re.compile(r"\b(" + "|".join(names) + r")\b")
    return pattern.sub(lambda m: "--" + m.group(1).replace("_", "-"), message)
