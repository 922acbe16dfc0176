"""How a client sends its calls: timeouts, deadline, retries, backoff and read-ahead, validated
once into a ``RequestOptions`` that every call of a client (or of a ``with_options`` view)
shares. Nothing below ``ArgosClient`` validates these again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgspec

from ._protocol.checks import check_int, check_optional_seconds, check_prefetch, check_seconds


class RequestOptions(msgspec.Struct, frozen=True):
    """Validated per-call options (see ``ArgosClient`` for what each means)."""

    timeout: float = 60.0
    """Seconds one attempt may take."""
    deadline: float | None = None
    """Seconds one call may take, all its attempts and waits included; ``None``: no bound."""
    max_retries: int = 5
    """Attempts after the first, at most."""
    backoff_base: float = 0.5
    """The first backoff delay before jitter; it doubles with each retry."""
    backoff_max: float = 30.0
    """The longest backoff delay before jitter."""
    max_retry_after: float = 60.0
    """The longest ``Retry-After`` honoured; a call asked to wait longer fails at once."""
    prefetch: int = 1
    """Pages a listing reads ahead while the caller works on the current one (0 or 1)."""

    def replace(self, **changes: Any) -> RequestOptions:
        """A copy with ``changes`` applied, each validated; raises naming a bad one."""
        for name, value in changes.items():
            check = _CHECKS.get(name)
            if check is None:
                raise TypeError(f"unknown option {name!r}")
            changes[name] = check(name, value)
        return msgspec.structs.replace(self, **changes)


def _retries(name: str, value: object) -> int:
    return check_int(name, value, minimum=0)


def _prefetch(name: str, value: object) -> int:
    return check_prefetch(value)


_CHECKS: Final[dict[str, Callable[[str, object], Any]]] = {
    "timeout": check_seconds,
    "deadline": check_optional_seconds,
    "max_retries": _retries,
    "backoff_base": check_seconds,
    "backoff_max": check_seconds,
    "max_retry_after": check_seconds,
    "prefetch": _prefetch,
}

DEFAULT_OPTIONS: Final = RequestOptions()
